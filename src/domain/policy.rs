//! Who may do what: the allow-lists in force ([`Policy`]), which environments are production,
//! and a person's role on the repository ([`Permission`]).

/// Environments treated as production unless configured otherwise.
pub const DEFAULT_PROD_ENVIRONMENTS: &[&str] = &["prod", "production"];

/// How an allow-list entry names an account by its numeric id (`id:583231`) instead of its
/// login, which its owner can rename.
pub const ID_PREFIX: &str = "id:";

/// `list` with an entry `id:<id>` replaced by `login` (see [`Policy::for_actor`]).
pub fn resolve_id(list: &[String], login: &str, id: Option<u64>) -> Vec<String> {
    let Some(id) = id else {
        return list.to_vec();
    };
    let mine = format!("{ID_PREFIX}{id}");
    list.iter()
        .map(|entry| {
            if entry.eq_ignore_ascii_case(&mine) {
                login.to_owned()
            } else {
                entry.clone()
            }
        })
        .collect()
}

/// Who may do what, from the environment (narrowed per repository by
/// `settings::Settings::narrow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Environment names that are production.
    pub prod_environments: Vec<String>,
    /// May approve, merge, apply and clean up in production. Empty: nobody may.
    pub prod_allowed_users: Vec<String>,
    /// May destroy in production. Empty: nobody may.
    pub destroy_prod_allowed_users: Vec<String>,
    /// When `approvers_required`, only these may approve (in every environment).
    pub approvers: Vec<String>,
    pub approvers_required: bool,
}

impl Policy {
    /// The policy as it applies to the person `login` whose account id is `id`: an allow-list
    /// entry `id:<number>` (which survives a renamed login) names them when the number is their
    /// id, and is replaced by their login here, so the decisions compare logins only.
    pub fn for_actor(&self, login: &str, id: Option<u64>) -> Policy {
        let Some(id) = id else {
            return self.clone();
        };
        let resolve = |list: &[String]| resolve_id(list, login, Some(id));
        Policy {
            prod_environments: self.prod_environments.clone(),
            prod_allowed_users: resolve(&self.prod_allowed_users),
            destroy_prod_allowed_users: resolve(&self.destroy_prod_allowed_users),
            approvers: resolve(&self.approvers),
            approvers_required: self.approvers_required,
        }
    }

    pub fn is_prod(&self, environment: &str) -> bool {
        self.prod_environments
            .iter()
            .any(|p| p.eq_ignore_ascii_case(environment))
    }
}

/// A person's role on the repository, as GitHub reports it — or [`Permission::NotRead`] when
/// nobody asked GitHub (an input that needed no role). Ordered: a higher role can do what a
/// lower one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    /// Not read from GitHub: never enough for anything that needs a role.
    NotRead,
    /// Read, and no access.
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Permission {
    /// Whether the user may change the repository (write, maintain, admin): the bar for every
    /// mutating TfPilot command.
    pub fn can_write(self) -> bool {
        self >= Self::Write
    }

    /// GitHub's word for the role (`none` for no access).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRead => "unknown",
            Self::None => "none",
            Self::Read => "read",
            Self::Triage => "triage",
            Self::Write => "write",
            Self::Maintain => "maintain",
            Self::Admin => "admin",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            prod_environments: vec!["prod".into()],
            prod_allowed_users: vec!["alice".into(), "id:42".into()],
            destroy_prod_allowed_users: vec!["ID:42".into()],
            approvers: vec!["id:7".into()],
            approvers_required: true,
        }
    }

    #[test]
    fn an_id_entry_names_the_actor_with_that_id_only() {
        let p = policy().for_actor("erin", Some(42));
        assert_eq!(p.prod_allowed_users, ["alice", "erin"]);
        assert_eq!(p.destroy_prod_allowed_users, ["erin"]);
        assert_eq!(p.approvers, ["id:7"], "another id stays as it is");
        assert_eq!(policy().for_actor("erin", Some(43)), policy());
        assert_eq!(policy().for_actor("erin", None), policy());
        // A login that looks like an entry does not match by accident.
        assert_eq!(
            policy().for_actor("id:42", None).prod_allowed_users,
            ["alice", "id:42"]
        );
    }
}
