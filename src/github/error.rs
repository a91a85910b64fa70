//! The errors a GitHub operation can end in, typed where callers branch on them. Each message says
//! which operation failed and why, in words fit for a log line or (via the caller) a comment; none
//! ever contains a token or the App's key.

use std::time::Duration;

/// Why a GitHub operation failed. `operation` names it with its target
/// (`"open pull request request/… → main in acme/infra"`).
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// The repository, file, branch, comment, run or artifact does not exist (or the App cannot
    /// see it: GitHub answers 404 for both).
    #[error("{operation}: not found on GitHub ({message})")]
    NotFound { operation: String, message: String },

    /// The branch moved since it was read (`expectedHeadOid` or a merge's `sha` no longer matches):
    /// read it again and retry with the new head.
    #[error("{operation}: the branch moved on GitHub since TfPilot read it ({message})")]
    StaleHead { operation: String, message: String },

    /// GitHub's state does not allow it (e.g. a pull request that is not mergeable).
    #[error("{operation}: GitHub refused it in the current state ({message})")]
    Conflict { operation: String, message: String },

    /// GitHub refused the input (HTTP 422 and kin): e.g. a comment over 65,536 characters.
    #[error("{operation}: GitHub refused the request ({message})")]
    Validation { operation: String, message: String },

    /// The App lacks a permission, or the repository blocks the action (HTTP 403).
    #[error("{operation}: the TfPilot App is not allowed to do this ({message})")]
    PermissionDenied { operation: String, message: String },

    /// GitHub refused the App's credentials even after a fresh installation token.
    #[error("{operation}: GitHub refused TfPilot's credentials ({message})")]
    Unauthorized { operation: String, message: String },

    /// A rate limit still applied when the retry budget ran out.
    #[error("{operation}: GitHub's rate limit is in force{} ({message})", retry_hint(*retry_after))]
    RateLimited {
        operation: String,
        retry_after: Option<Duration>,
        message: String,
    },

    /// Server errors or network failures on every attempt within the retry budget.
    #[error(
        "{operation}: GitHub did not answer successfully after {attempts} attempts ({message})"
    )]
    Transient {
        operation: String,
        attempts: u32,
        message: String,
    },

    /// A file or download larger than the caller's cap.
    #[error("{operation}: larger than the {limit}-byte limit")]
    TooLarge { operation: String, limit: u64 },

    /// GitHub answered with something TfPilot cannot read.
    #[error("{operation}: unexpected answer from GitHub ({message})")]
    Unexpected { operation: String, message: String },

    /// The configured App private key cannot sign JWTs.
    #[error("the GitHub App private key is not a usable RSA private key in PEM format ({0})")]
    InvalidPrivateKey(String),

    /// The configured API base URL is not a URL.
    #[error("the GitHub API URL `{0}` is not a valid http(s) URL")]
    InvalidBaseUrl(String),
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; it lifts in about {} s", d.as_secs().max(1)),
        None => String::new(),
    }
}

impl GitHubError {
    /// Whether trying the same operation again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient { .. })
    }

    /// Whether the target does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// The operation that failed, when the error is about one.
    pub fn operation(&self) -> Option<&str> {
        match self {
            Self::NotFound { operation, .. }
            | Self::StaleHead { operation, .. }
            | Self::Conflict { operation, .. }
            | Self::Validation { operation, .. }
            | Self::PermissionDenied { operation, .. }
            | Self::Unauthorized { operation, .. }
            | Self::RateLimited { operation, .. }
            | Self::Transient { operation, .. }
            | Self::TooLarge { operation, .. }
            | Self::Unexpected { operation, .. } => Some(operation),
            Self::InvalidPrivateKey(_) | Self::InvalidBaseUrl(_) => None,
        }
    }
}

pub type Result<T, E = GitHubError> = std::result::Result<T, E>;
