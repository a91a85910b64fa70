//! Who may do what: the allow-lists in force ([`Policy`]), which environments are production,
//! and a person's role on the repository ([`Permission`]).

/// Environments treated as production unless configured otherwise.
pub const DEFAULT_PROD_ENVIRONMENTS: &[&str] = &["prod", "production"];

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
