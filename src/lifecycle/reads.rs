//! What a decision reads: which [`Facts`](super::Facts) fields, and whether the actor's
//! permission, [`decide`](super::decide) looks at for one input, so the executor reads from
//! GitHub and the store only what the decision will use.

use super::Input;
use crate::command::Command;
use crate::domain::{Request, RequestStatus};

/// What the executor must read before deciding an input. A field left `false` may stay empty
/// (`None`, or [`Permission::NotRead`](crate::domain::Permission::NotRead) for the permission):
/// the decision is the same whatever it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The actor's role on the repository ([`Actor::permission`](super::Actor::permission)).
    pub permission: bool,
    /// `.tfpilot.yml`: [`Facts::settings`](super::Facts::settings), and the lists it narrows the
    /// [`Policy`](crate::domain::Policy) with.
    pub settings: bool,
    /// `.tfpilot.yml` too, but only when the request's environment is a production one (the
    /// executor knows the policy that says so): the prod allow-lists it narrows decide there.
    pub settings_in_prod: bool,
    /// The pull request's state on GitHub ([`Facts::pr`](super::Facts::pr)).
    pub pr: bool,
    /// The base branch's head ([`Facts::base_head`](super::Facts::base_head)), read when the pull
    /// request turns out to be merged.
    pub base_head: bool,
    /// Whether the base branch holds the request's block
    /// ([`Facts::base_block`](super::Facts::base_block)).
    pub base_block: bool,
    /// The requests a `status` lists ([`Facts::listing`](super::Facts::listing)).
    pub listing: bool,
    /// Whether the actor and the request's approvers are members of the teams the policy's
    /// lists name (read from GitHub, expanded into the policy before deciding).
    pub memberships: bool,
}

/// What [`decide`](super::decide) will read to decide `input` for `request`.
pub fn reads(input: &Input, request: Option<&Request>) -> Needs {
    match input {
        Input::Command { command, .. } => command_reads(command, request),
        // Only a turn on a request that is collecting inputs changes anything, and only a
        // writer's.
        Input::Turn { .. } => Needs {
            permission: request.is_some_and(|r| {
                matches!(r.status, RequestStatus::Collecting | RequestStatus::Ready)
            }),
            ..Needs::default()
        },
        // Events carry what they need; nobody's permission matters.
        Input::PrClosed { .. } | Input::Run(_) | Input::Drift(_) | Input::EffectFailed { .. } => {
            Needs::default()
        }
    }
}

/// What [`decide`](super::decide) will read to decide `command` for `request` (the part of
/// [`reads`] for commands, usable before the command's input is complete).
pub fn command_reads(command: &Command, request: Option<&Request>) -> Needs {
    let guarded = matches!(
        command,
        Command::Approve | Command::Merge | Command::Apply | Command::Destroy | Command::Cleanup
    );
    // The repository's approvers apply to approve (and to the apply of a change merged without
    // an approval) in every environment, not only in prod.
    let settings = matches!(
        command,
        Command::New { .. } | Command::Approve | Command::Apply | Command::Drift { .. }
    );
    let with_pr = matches!(command, Command::Approve | Command::Merge | Command::Apply)
        && request.is_some_and(|r| r.pull_request.is_some());
    Needs {
        permission: command.is_mutating(),
        settings,
        settings_in_prod: guarded && !settings,
        pr: with_pr,
        base_head: with_pr,
        base_block: matches!(command, Command::Apply) && request.is_some(),
        listing: matches!(command, Command::Status { filters }
            if request.is_none() || !filters.is_empty()),
        memberships: guarded && request.is_some(),
    }
}
