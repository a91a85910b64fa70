//! The answers on a request's issue to a drift check: what changed outside TfPilot (the plan
//! comment's format, masked) and the last change TfPilot made, or that the drift is gone.

use std::fmt::Write as _;

use super::conversation::with_marker;
use super::plan::fence_for;
use crate::domain::{EffectKey, Request};
use crate::terraform::plan::to_github_diff;

/// The longest plan excerpt shown (the rest is in the run).
const MAX_EXCERPT_CHARS: usize = 30_000;

/// Drift found: the changed resources, the request's part of the plan, and the last change
/// TfPilot made (what GitHub can tell; a change made in a cloud console leaves no trace there).
pub fn found(key: &EffectKey, r: &Request, changes: &[String], excerpt: &str, url: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### 🌊 Drift in `{}` (`{}`)\n\n@{} the [drift check]({url}) found {} resource(s) of this request changed outside TfPilot:\n",
        r.module_type,
        r.environment.as_deref().unwrap_or("?"),
        r.requester,
        changes.len()
    );
    for c in changes {
        let _ = writeln!(s, "- `{c}`");
    }
    if !excerpt.trim().is_empty() {
        let text: String = excerpt.chars().take(MAX_EXCERPT_CHARS).collect();
        let diff = to_github_diff(&text);
        let fence = fence_for(&diff);
        let _ = writeln!(
            s,
            "\n<details><summary>What Terraform would change back</summary>\n\n{fence}diff\n{diff}\n{fence}\n\n</details>"
        );
    }
    let _ = writeln!(s, "\n{}", last_change(r));
    with_marker(key, &s)
}

/// The answer to `drift`: the check is started.
pub fn check_started(key: &EffectKey, environments: &[String]) -> String {
    let envs: Vec<String> = environments.iter().map(|e| format!("`{e}`")).collect();
    with_marker(
        key,
        &format!(
            "🔎 Drift check started for {}. I answer here when it finishes, and on the issue of each request whose resources changed.\n",
            envs.join(", ")
        ),
    )
}

/// What an asked-for drift check found in `environment`: the drifted requests
/// (`(short id, module, issue)`), or none.
pub fn summary(
    key: &EffectKey,
    environment: &str,
    drifted: &[(String, String, u64)],
    url: &str,
) -> String {
    let mut s = String::new();
    if drifted.is_empty() {
        let _ = writeln!(
            s,
            "✅ [Drift check]({url}) of `{environment}`: no drift in TfPilot's resources."
        );
    } else {
        let _ = writeln!(
            s,
            "🌊 [Drift check]({url}) of `{environment}`: {} request(s) drifted:\n",
            drifted.len()
        );
        for (id, module, issue) in drifted {
            let _ = writeln!(s, "- `{id}` (`{module}`) on #{issue}");
        }
    }
    with_marker(key, &s)
}

/// The drift found earlier is gone.
pub fn gone(key: &EffectKey, r: &Request, url: &str) -> String {
    with_marker(
        key,
        &format!(
            "✅ The [drift check]({url}) finds `{}` in `{}` as TfPilot applied it again: no drift.\n",
            r.module_type,
            r.environment.as_deref().unwrap_or("?")
        ),
    )
}

/// The last change TfPilot made to the request's block, from what the request recorded.
fn last_change(r: &Request) -> String {
    let mut s = format!("**Last change through TfPilot:** revision {}", r.revision);
    if let Some(pr) = &r.pull_request {
        let _ = write!(s, ", pull request #{}", pr.number);
        if let Some(sha) = &pr.merge_commit_sha {
            let _ = write!(
                s,
                " merged as `{}`",
                sha.chars().take(7).collect::<String>()
            );
        }
    }
    if let Some(a) = r.approvals.last() {
        let _ = write!(s, ", approved by @{}", a.login);
    }
    s.push_str(
        ". A change made outside Terraform (a console, another tool) leaves no trace on GitHub, so \
         who made this one is not known here.",
    );
    s
}
