//! Who may do what: the allow-lists in force ([`Policy`]), which environments are production,
//! how many approvals each needs, and a person's role on the repository ([`Permission`]).
//!
//! A list entry is a login, an account id (`id:583231`) or a GitHub team (`acme/platform`,
//! written `@acme/platform`). Team membership is read from GitHub when a decision needs it and
//! handed in as [`Memberships`]: [`Policy::with_members`] then names each member found after
//! the team, so the decisions compare logins only.

use std::collections::{BTreeMap, BTreeSet};

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

/// Whether a list entry names a GitHub team (`org/team-slug`) rather than a person: logins
/// cannot hold a `/`.
pub fn is_team(entry: &str) -> bool {
    entry.contains('/')
}

/// The teams among the entries of `lists`, each once (lowercase `org/slug`).
pub fn teams_in<'a>(lists: impl IntoIterator<Item = &'a [String]>) -> Vec<String> {
    let set: BTreeSet<String> = lists
        .into_iter()
        .flatten()
        .filter(|e| is_team(e))
        .map(|e| e.to_ascii_lowercase())
        .collect();
    set.into_iter().collect()
}

/// `prod=2,staging=1`: how many approvals each environment needs (`TFPILOT_APPROVALS_REQUIRED`).
pub fn parse_quorums(v: &str) -> Result<BTreeMap<String, u32>, String> {
    let mut out = BTreeMap::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parsed = part
            .split_once('=')
            .and_then(|(env, n)| Some((env.trim(), n.trim().parse::<u32>().ok()?)))
            .filter(|(env, n)| super::is_name(env) && *n <= MAX_APPROVALS);
        let Some((env, n)) = parsed else {
            return Err(format!(
                "`{part}` is not `<environment>=<number of approvals, at most {MAX_APPROVALS}>` (expected a comma-separated list such as prod=2,staging=1)"
            ));
        };
        out.insert(env.to_owned(), n);
    }
    Ok(out)
}

/// The most approvals an environment may require (more would never be met in practice).
pub const MAX_APPROVALS: u32 = 10;

/// Who GitHub says is an active member of which team, for the people and teams a decision
/// asked about (everyone else is unknown, and so not a member).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    /// (lowercase `org/slug`, login as asked).
    members: BTreeSet<(String, String)>,
}

impl Memberships {
    pub fn add(&mut self, team: &str, login: &str) {
        self.members
            .insert((team.to_ascii_lowercase(), login.to_owned()));
    }

    /// `list` with the members found of each team named in it added after the team (a login
    /// already listed is not repeated).
    pub fn expand(&self, list: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(list.len());
        let push = |out: &mut Vec<String>, l: &str| {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(l)) {
                out.push(l.to_owned());
            }
        };
        for entry in list {
            push(&mut out, entry);
            if is_team(entry) {
                let team = entry.to_ascii_lowercase();
                for (_, login) in self.members.iter().filter(|(t, _)| *t == team) {
                    push(&mut out, login);
                }
            }
        }
        out
    }
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
    /// Distinct approvals an environment needs before a merge or an apply, where it differs from
    /// the default ([`Policy::approvals_needed`]).
    pub approvals_required: BTreeMap<String, u32>,
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
            approvals_required: self.approvals_required.clone(),
        }
    }

    /// The teams the lists name (lowercase `org/slug`, each once).
    pub fn teams(&self) -> Vec<String> {
        teams_in([
            &self.prod_allowed_users[..],
            &self.destroy_prod_allowed_users[..],
            &self.approvers[..],
        ])
    }

    /// The policy with the members found of each team named in its lists (see
    /// [`Memberships::expand`]).
    pub fn with_members(&self, members: &Memberships) -> Policy {
        Policy {
            prod_environments: self.prod_environments.clone(),
            prod_allowed_users: members.expand(&self.prod_allowed_users),
            destroy_prod_allowed_users: members.expand(&self.destroy_prod_allowed_users),
            approvers: members.expand(&self.approvers),
            approvers_required: self.approvers_required,
            approvals_required: self.approvals_required.clone(),
        }
    }

    /// How many distinct approvals (by people who did not write the request) `environment`
    /// needs: as configured, else one in production and wherever approvers are required, else
    /// none.
    pub fn approvals_needed(&self, environment: &str) -> u32 {
        let configured = self
            .approvals_required
            .iter()
            .find(|(env, _)| env.eq_ignore_ascii_case(environment))
            .map(|(_, n)| *n);
        let default = u32::from(self.is_prod(environment) || self.approvers_required);
        configured.unwrap_or(default)
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
            approvals_required: BTreeMap::new(),
        }
    }

    #[test]
    fn a_team_entry_is_followed_by_the_members_found() {
        let mut p = policy();
        p.prod_allowed_users = vec!["alice".into(), "acme/Platform".into()];
        assert_eq!(p.teams(), ["acme/platform"]);
        let mut m = Memberships::default();
        m.add("ACME/platform", "dana");
        m.add("acme/platform", "alice");
        m.add("acme/other", "erin");
        let p = p.with_members(&m);
        assert_eq!(p.prod_allowed_users, ["alice", "acme/Platform", "dana"]);
        assert_eq!(p.approvers, ["id:7"], "no team named there");
        assert!(is_team("@acme/platform") && !is_team("alice"));
    }

    #[test]
    fn approvals_needed_by_default_and_as_configured() {
        let mut p = policy();
        p.approvers_required = false;
        assert_eq!(p.approvals_needed("prod"), 1);
        assert_eq!(p.approvals_needed("dev"), 0);
        p.approvals_required = BTreeMap::from([("PROD".into(), 2), ("dev".into(), 1)]);
        assert_eq!(p.approvals_needed("prod"), 2);
        assert_eq!(p.approvals_needed("dev"), 1);
        p.approvers_required = true;
        assert_eq!(p.approvals_needed("staging"), 1);
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
