//! Lifecycle comments: denials, what a command started, run results, merges, cancellations, the
//! status of requests, pull request titles and bodies, and the error answer of last resort.
//!
//! Every body starts with its marker (the effect key) so a retried effect finds it.

use std::fmt::Write as _;

use super::conversation::untrusted_text;
use super::marker;
use crate::domain::EffectKey;
use crate::domain::{Conclusion, Denial, RequestStatus};
use crate::domain::{Request, RunKind, RunOutcome, RunStatus};
use crate::ids::RequestId;
use crate::registry::display_safe;

fn with_marker(key: &EffectKey, body: &str) -> String {
    format!("{}\n{body}", marker(key.as_str()))
}

/// A refused command: the reason and what would allow it.
pub fn denial(key: &EffectKey, d: &Denial) -> String {
    with_marker(key, &format!("⛔ {}\n\n{}\n", d.reason, d.remedy))
}

/// The answer when TfPilot itself failed (after its retries): never silent, never detailed.
pub fn internal_error(key: &EffectKey, delivery: &str) -> String {
    with_marker(
        key,
        &format!(
            "⚠️ Something went wrong on TfPilot's side while handling this (delivery `{}`), and \
             retrying did not help. Nothing more was done. Try the command again later; if it keeps \
             failing, give the delivery id to whoever runs TfPilot.\n",
            display_safe(delivery)
        ),
    )
}

/// An effect that GitHub refused.
pub fn effect_failed(key: &EffectKey, what: &str, reason: &str, remedy: &str) -> String {
    with_marker(
        key,
        &format!(
            "⚠️ TfPilot could not {what}: {}\n\n{remedy}\n",
            untrusted_text(reason)
        ),
    )
}

/// The title of a request's pull request.
pub fn pr_title(r: &Request, display_name: &str) -> String {
    format!(
        "tfpilot: {display_name} `{}` in {} ({})",
        name_of(r),
        r.environment.as_deref().unwrap_or("?"),
        short(r.id)
    )
}

fn name_of(r: &Request) -> String {
    r.inputs
        .get("name")
        .and_then(|v| v.as_str())
        .map(display_safe)
        .unwrap_or_else(|| short(r.id))
}

/// The body of a request's pull request: where it comes from and what happens next.
pub fn pr_body(r: &Request, display_name: &str, prefix: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{display_name} requested by @{} in #{} (TfPilot request `{}`).\n",
        r.requester, r.issue_number, r.id
    );
    let _ = writeln!(
        s,
        "TfPilot writes only the lines between this request's markers in `envs/{}/`. The plan \
         follows as a comment here. Then `{prefix} approve`, merge, and `{prefix} apply` on #{}.",
        r.environment.as_deref().unwrap_or("?"),
        r.issue_number
    );
    s
}

pub fn cleanup_pr_title(r: &Request) -> String {
    format!(
        "tfpilot: remove {} `{}` from {} ({})",
        r.module_type,
        name_of(r),
        r.environment.as_deref().unwrap_or("?"),
        short(r.id)
    )
}

pub fn cleanup_pr_body(r: &Request) -> String {
    format!(
        "Removes the block of TfPilot request `{}` from `envs/{}/`. Its resources were destroyed \
         (see #{}). Nothing else in the file changes.\n",
        r.id,
        r.environment.as_deref().unwrap_or("?"),
        r.issue_number
    )
}

/// The answer to `submit` (or the cleanup notice) once the pull request exists.
pub fn pr_opened(key: &EffectKey, r: &Request, cleanup: bool, prefix: &str) -> String {
    if cleanup {
        let pr = r
            .cleanup_pull_request
            .as_ref()
            .map(|p| format!("#{} ({})", p.number, p.url))
            .unwrap_or_else(|| "the cleanup pull request".into());
        return with_marker(
            key,
            &format!(
                "🧹 The resources are destroyed. {pr} removes this request's block from `envs/{}/`; \
                 merge it to finish. The request is archived.\n",
                r.environment.as_deref().unwrap_or("?")
            ),
        );
    }
    let pr = r
        .pull_request
        .as_ref()
        .map(|p| format!("#{} ({})", p.number, p.url))
        .unwrap_or_else(|| "The pull request".into());
    with_marker(
        key,
        &format!(
            "🚀 Submitted revision {}: {pr} holds the block, and the plan is running. TfPilot posts \
             it on the pull request when it is done; then `{prefix} approve`.\n",
            r.revision
        ),
    )
}

/// A conversation reply that also opened a new revision.
pub fn revised(reply: &str, revision: u64, prefix: &str) -> String {
    format!(
        "{reply}\n🔁 **Revision {revision}:** the pull request is updated, the earlier plan is hidden \
         as outdated and approvals are cleared. A new plan is running; then `{prefix} approve`.\n"
    )
}

pub fn plan_started(key: &EffectKey, environment: &str, prefix: &str) -> String {
    with_marker(
        key,
        &format!(
            "🔄 Planning `{environment}` again. The plan will be posted on the pull request; then `{prefix} approve`.\n"
        ),
    )
}

pub fn approved(
    key: &EffectKey,
    approvers: &[String],
    head: &str,
    environment: &str,
    prefix: &str,
) -> String {
    let who: Vec<String> = approvers.iter().map(|a| format!("@{a}")).collect();
    with_marker(
        key,
        &format!(
            "✅ Approved for `{environment}` by {} (commit `{}`). Next: `{prefix} merge` (or GitHub's button), then `{prefix} apply`.\n",
            who.join(", "),
            short_sha(head)
        ),
    )
}

/// What a new plan did to the approvals given before it: kept (the same resource changes) or
/// cleared.
pub fn approvals_after_plan(
    key: &EffectKey,
    kept: &[String],
    cleared: &[String],
    prefix: &str,
) -> String {
    let who = |l: &[String]| {
        l.iter()
            .map(|a| format!("@{a}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = String::new();
    if !kept.is_empty() {
        let _ = writeln!(
            s,
            "✅ The new plan makes the same resource changes as the one approved, so the approvals of {} still count.",
            who(kept)
        );
    }
    if !cleared.is_empty() {
        let _ = writeln!(
            s,
            "The new plan's resource changes differ from the ones approved, so the approvals of {} no longer count: `{prefix} approve` again after reading it.",
            who(cleared)
        );
    }
    with_marker(key, &s)
}

/// An approval recorded that does not reach the environment's quorum yet.
pub fn approval_pending(key: &EffectKey, reason: &str, ask: &str) -> String {
    with_marker(key, &format!("☑️ Approval recorded. {reason}\n\n{ask}\n"))
}

/// An approval of a change merged before it was approved.
pub fn approved_merged(
    key: &EffectKey,
    approvers: &[String],
    head: &str,
    environment: &str,
    prefix: &str,
) -> String {
    let who: Vec<String> = approvers.iter().map(|a| format!("@{a}")).collect();
    with_marker(
        key,
        &format!(
            "✅ Approved for `{environment}` by {} (merged change, commit `{}`). Next: `{prefix} apply`.\n",
            who.join(", "),
            short_sha(head)
        ),
    )
}

pub fn merged(
    key: &EffectKey,
    number: u64,
    plan_ok: bool,
    approved: bool,
    approval_needed: bool,
    environment: &str,
    prefix: &str,
) -> String {
    let mut s = format!("🔀 #{number} is merged.");
    if plan_ok && approved {
        let _ = write!(s, " Next: `{prefix} apply` to apply it to `{environment}`.");
    } else if !plan_ok {
        let _ = write!(
            s,
            " It was merged without a successful plan of its last commit: `{prefix} plan` plans the merged change, then `{prefix} apply`."
        );
    } else if approval_needed {
        let _ = write!(
            s,
            " It was merged without a TfPilot approval of its last commit, and `{environment}` needs one: `{prefix} approve` (by someone allowed to approve who did not write it), then `{prefix} apply`."
        );
    } else {
        let _ = write!(
            s,
            " It was merged without a TfPilot approval of its last commit. `{prefix} apply` applies it to `{environment}`."
        );
    }
    with_marker(key, &format!("{s}\n"))
}

pub fn pr_closed(key: &EffectKey, number: u64, prefix: &str) -> String {
    with_marker(
        key,
        &format!(
            "#{number} was closed without merging. `{prefix} submit` opens it again, or `{prefix} cancel` ends the request.\n"
        ),
    )
}

pub fn run_started(key: &EffectKey, kind: RunKind, environment: &str) -> String {
    let verb = match kind {
        RunKind::Apply => "Applying",
        RunKind::Destroy => "Destroying this request's resources in",
        _ => "Running in",
    };
    with_marker(
        key,
        &format!(
            "⏳ {verb} `{environment}`: the {} workflow is started. TfPilot posts the result here.\n",
            kind.as_str()
        ),
    )
}

pub fn run_ended(
    key: &EffectKey,
    kind: RunKind,
    conclusion: Conclusion,
    url: &str,
    environment: &str,
    prefix: &str,
) -> String {
    let word = kind.as_str();
    let body = match (kind, conclusion) {
        (_, Conclusion::Cancelled) => format!(
            "⏹️ The {word} run was cancelled ([run]({url})); GitHub cancels a queued run when another one takes its place in the environment's queue. Nothing was changed by it: `{prefix} {word}` starts it again."
        ),
        (RunKind::Plan, _) => {
            format!("❌ The plan failed ([run]({url})). Fix the problem and `{prefix} plan` again.")
        }
        (RunKind::Apply, Conclusion::Success) => format!(
            "🎉 Applied to `{environment}` ([run]({url})). `{prefix} destroy` removes these resources when they are no longer needed."
        ),
        (RunKind::Apply, _) => format!(
            "❌ The apply failed ([run]({url})). Fix the problem and `{prefix} apply` again, or `{prefix} destroy`."
        ),
        (RunKind::Destroy, Conclusion::Success) => format!(
            "🗑️ Destroyed this request's resources in `{environment}` ([run]({url})). Opening the pull request that removes its block…"
        ),
        (RunKind::Destroy, _) => format!(
            "❌ The destroy failed ([run]({url})). Fix the problem and `{prefix} destroy` again."
        ),
        _ => format!(
            "The {word} run finished: {} ([run]({url})).",
            conclusion.as_str()
        ),
    };
    with_marker(key, &format!("{body}\n"))
}

pub fn cleanup_started(key: &EffectKey) -> String {
    with_marker(
        key,
        "🧹 Opening the pull request that removes this request's block…\n",
    )
}

pub fn cancelled(key: &EffectKey, closed_pr: Option<u64>) -> String {
    let pr = closed_pr
        .map(|n| format!(" #{n} is closed."))
        .unwrap_or_default();
    with_marker(
        key,
        &format!("🛑 Request cancelled.{pr} Nothing was applied.\n"),
    )
}

/// `status` on a request's thread.
pub fn status(key: &EffectKey, r: &Request, prefix: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Request `{}` · `{}` · `{}`\n",
        short(r.id),
        r.module_type,
        r.environment.as_deref().unwrap_or("?")
    );
    let _ = writeln!(s, "| | |\n| --- | --- |");
    let _ = writeln!(s, "| status | `{}` |", r.status);
    let _ = writeln!(s, "| requested by | @{} |", r.requester);
    let _ = writeln!(s, "| revision | {} |", r.revision);
    if let Some(pr) = &r.pull_request {
        let merged = if pr.merged { " (merged)" } else { "" };
        let _ = writeln!(s, "| pull request | #{}{merged} |", pr.number);
    }
    for (kind, run) in &r.runs {
        let state = run
            .conclusion
            .map(RunOutcome::as_str)
            .or(run.status.map(RunStatus::as_str))
            .unwrap_or("requested");
        let link = run
            .url
            .as_deref()
            .map(|u| format!(" ([run]({u}))"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "| last {} | {state}, revision {}{link} |",
            kind.as_str(),
            run.revision
        );
    }
    if !r.approvals.is_empty() {
        let who: Vec<String> = r.approvals.iter().map(|a| a.login.clone()).collect();
        let _ = writeln!(s, "| approved by | {} |", who.join(", "));
    }
    if let Some(d) = &r.drift {
        let _ = writeln!(
            s,
            "| drift | ⚠️ {} resource(s) changed outside TfPilot ([drift check]({})) |",
            d.changes.len(),
            d.url
        );
    }
    let _ = writeln!(s, "\n{}", next_step(r, prefix));
    with_marker(key, &s)
}

/// The most requests a status list shows.
const MAX_LISTED: usize = 50;

/// `status` with filters, or where the thread has no request.
pub fn status_list(key: &EffectKey, requests: &[Request], filters: &str) -> String {
    let mut s = format!("### Requests: {filters}\n\n");
    if requests.is_empty() {
        s.push_str("None.\n");
        return with_marker(key, &s);
    }
    let _ = writeln!(
        s,
        "| request | module | env | status | thread |\n| --- | --- | --- | --- | --- |"
    );
    for r in requests.iter().take(MAX_LISTED) {
        let _ = writeln!(
            s,
            "| `{}` | `{}` | `{}` | `{}` | {}#{} |",
            short(r.id),
            r.module_type,
            r.environment.as_deref().unwrap_or("?"),
            r.status,
            r.repo,
            r.issue_number
        );
    }
    if requests.len() > MAX_LISTED {
        let _ = writeln!(s, "\nand {} more.", requests.len() - MAX_LISTED);
    }
    with_marker(key, &s)
}

/// A request id as people see it: its first eight characters.
pub fn short(id: RequestId) -> String {
    id.to_string().chars().take(8).collect()
}

/// A commit as people see it: its first seven characters.
pub fn short_sha(sha: &str) -> String {
    sha.chars().take(7).collect()
}

/// What a person can do next with a request, for denials.
pub fn next_step(r: &Request, p: &str) -> String {
    use RequestStatus::*;
    match r.status {
        Collecting => format!("Give the missing inputs; `{p} show` lists them."),
        Ready => format!("`{p} submit` opens the pull request."),
        PrOpen => format!("`{p} plan` runs the plan."),
        Planning => "Wait for the plan; TfPilot will post it.".into(),
        Planned => format!("`{p} approve` approves the plan."),
        PlanFailed => format!("Fix the problem and `{p} plan` again."),
        Approved => format!("`{p} merge` (or GitHub's button) merges it."),
        Merged => format!("`{p} apply` applies it."),
        Applying => "Wait for the apply; TfPilot will post the result.".into(),
        Applied => format!("`{p} destroy` removes its resources."),
        ApplyFailed => format!("Fix the problem and `{p} apply` again, or `{p} destroy`."),
        Destroying => "Wait for the destroy; TfPilot will post the result.".into(),
        DestroyFailed => format!("Fix the problem and `{p} destroy` again."),
        Destroyed => format!("`{p} cleanup` opens the pull request that removes its block."),
        Cancelled => format!("Open a new request with `{p} new`."),
        PrClosed => format!("`{p} submit` opens the pull request again, or `{p} cancel`."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comments::marker_key;

    #[test]
    fn a_denial_gives_the_reason_and_the_remedy_under_its_marker() {
        let d = Denial {
            reason: "Only members of the prod allow-list can apply in `prod`.".into(),
            remedy: "Ask one of @alice, @bob.".into(),
        };
        let body = denial(&EffectKey::reply(42), &d);
        assert_eq!(marker_key(&body), Some("reply:42"));
        assert!(body.contains("allow-list can apply in `prod`"));
        assert!(body.contains("Ask one of @alice, @bob."));
    }

    #[test]
    fn effect_failures_show_githubs_words_as_plain_text() {
        let body = effect_failed(
            &"failed:x".parse().unwrap(),
            "merge the pull request",
            "Head **branch** was [modified](x) @team",
            "Try again.",
        );
        assert!(body.contains("\\*\\*branch\\*\\*"), "{body}");
        assert!(body.contains("@\u{200B}team"), "{body}");
    }

    #[test]
    fn the_internal_error_names_the_delivery_only() {
        let body = internal_error(&"error:abc".parse().unwrap(), "abc-123");
        assert!(body.contains("`abc-123`"));
        assert!(!body.to_lowercase().contains("panic"));
    }
}
