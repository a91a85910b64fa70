//! What TfPilot writes into its check runs (`tfpilot/plan`, `tfpilot/apply`): the title, a
//! summary with the resources table, and the masked plan — each within the Checks API's limit
//! of 65,535 characters, a long plan keeping its end (what will happen) and pointing at the run's
//! artifact for the rest — and the words of the buttons.

use std::fmt::Write as _;

use super::plan::{PlanComment, fence_for, omitted_note, split_backward};
use crate::domain::RunOutcome;
use crate::terraform::plan::to_github_diff;

/// The plan's check run.
pub const PLAN_CHECK: &str = "tfpilot/plan";
/// The apply's check run.
pub const APPLY_CHECK: &str = "tfpilot/apply";
/// The check run of a pull request that changes `.tfpilot.yml`.
pub const CONFIG_CHECK: &str = "tfpilot/config";

/// The Checks API's limit for `output.summary` and `output.text`, in characters (counted here
/// in bytes, which is never less).
pub const MAX_OUTPUT_CHARS: usize = 65_535;

/// A check run's output, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckText {
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
}

/// A button for `command` (`approve`, `apply`): its label, description and identifier (what a
/// click sends back), within GitHub's 20/40/20 characters.
pub fn button(command: &str, prefix: &str) -> (String, String, String) {
    let mut label = command.to_owned();
    if let Some(first) = label.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let description: String = format!("Same as commenting {prefix} {command}")
        .chars()
        .take(40)
        .collect();
    (label, description, command.to_owned())
}

/// The plan's check run while the plan runs.
pub fn plan_running(environment: &str, revision: u64) -> CheckText {
    CheckText {
        title: format!("Planning revision {revision} in {environment}…"),
        summary:
            "TfPilot started the plan workflow; the result will be here and in the pull request."
                .to_owned(),
        text: None,
    }
}

/// The plan's check run once the plan is posted: its summary line as the title, the resources
/// table, and the plan text (the end of it when it is longer than the limit).
pub fn plan_done(c: &PlanComment<'_>, prefix: &str, limit: usize) -> CheckText {
    let mut summary = format!(
        "**{}** · `{}` · revision {} · [workflow run]({})\n\n",
        c.summary.line(),
        c.environment,
        c.revision,
        c.run_url
    );
    if c.summary.changes.is_empty() {
        summary.push_str("No resource changes.\n");
    } else {
        summary.push_str("| resource | action |\n| --- | --- |\n");
        let mut shown = 0;
        for change in &c.summary.changes {
            let row = format!(
                "| `{}` | {}{} |\n",
                change.address.replace('|', "\\|").replace('`', "'"),
                change.action,
                if change.importing { " (import)" } else { "" }
            );
            // Room is kept for the note on the rows left out and the next steps.
            if summary.len() + row.len() + 400 > limit {
                break;
            }
            summary.push_str(&row);
            shown += 1;
        }
        let left = c.summary.changes.len() - shown;
        if left > 0 {
            let _ = writeln!(
                summary,
                "\n{left} more resources are in the plan below and in the run's `plan` artifact."
            );
        }
    }
    let _ = write!(
        summary,
        "\nApprove with the button above or `{prefix} approve` on the pull request."
    );
    CheckText {
        title: c.summary.line(),
        summary,
        text: Some(plan_text(c.plan_text, c.lines_cut, c.run_url, limit)),
    }
}

/// The masked plan in a `diff` block; when longer than `limit`, its end, cut at a line, after a
/// note saying how many lines are left out (`lines_cut` were before `plan` already) and where
/// the whole plan is.
fn plan_text(plan: &str, lines_cut: usize, run_url: &str, limit: usize) -> String {
    let diff = to_github_diff(plan);
    let fence = fence_for(&diff);
    let lines: Vec<&str> = diff.lines().collect();
    let wrapper = fence.len() * 2 + "diff\n\n".len();
    let room = limit
        .saturating_sub(wrapper)
        .saturating_sub(omitted_note(usize::MAX, run_url).len())
        .max(1);
    let (chunks, omitted) = split_backward(&lines, |_| room, 1);
    let omitted = omitted + lines_cut;
    let mut out = String::new();
    if omitted > 0 {
        out.push_str(&omitted_note(omitted, run_url));
    }
    let _ = write!(out, "{fence}diff\n{}{fence}\n", chunks.concat());
    out
}

/// The plan's check run when the plan failed or was cancelled.
pub fn plan_ended(outcome: RunOutcome, run_url: &str, prefix: &str) -> CheckText {
    let title = match outcome {
        RunOutcome::Cancelled => "The plan was cancelled",
        _ => "The plan failed",
    };
    CheckText {
        title: title.to_owned(),
        summary: format!(
            "Read why in the [workflow run]({run_url}); fix it and comment `{prefix} plan` to plan again."
        ),
        text: None,
    }
}

/// `tfpilot/config`: every problem of the changed `.tfpilot.yml`, or that it is fine.
pub fn config_checked(problems: &[String]) -> CheckText {
    if problems.is_empty() {
        return CheckText {
            title: "`.tfpilot.yml` is valid".to_owned(),
            summary: "TfPilot reads it as written once this pull request is merged.".to_owned(),
            text: None,
        };
    }
    let n = problems.len();
    let mut summary = String::from(
        "TfPilot would refuse what these settings govern (or ignore the entries named) once merged:\n\n",
    );
    for p in problems {
        let line = format!("* {p}\n");
        if summary.len() + line.len() + 64 > MAX_OUTPUT_CHARS {
            let _ = writeln!(summary, "* … and more.");
            break;
        }
        summary.push_str(&line);
    }
    CheckText {
        title: format!(
            "{n} problem{} in `.tfpilot.yml`",
            if n == 1 { "" } else { "s" }
        ),
        summary,
        text: None,
    }
}

/// `tfpilot/apply` when the apply ended.
pub fn apply_ended(outcome: RunOutcome, run_url: &str, environment: &str) -> CheckText {
    let title = match outcome {
        RunOutcome::Success => format!("Applied to {environment}"),
        RunOutcome::Cancelled => "The apply was cancelled".to_owned(),
        _ => format!("The apply to {environment} failed"),
    };
    CheckText {
        title,
        summary: format!("See the [workflow run]({run_url})."),
        text: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RequestId;
    use crate::terraform::plan::PlanSummary;

    fn summary(resources: usize) -> PlanSummary {
        let changes: Vec<String> = (0..resources)
            .map(|i| {
                format!(
                    r#"{{"address":"module.tfpilot_x.terraform_data.r{i}","change":{{"actions":["create"]}}}}"#
                )
            })
            .collect();
        let json = format!(
            r#"{{"format_version":"1.2","resource_changes":[{}]}}"#,
            changes.join(",")
        );
        PlanSummary::from_json(json.as_bytes()).unwrap()
    }

    fn plan<'a>(s: &'a PlanSummary, text: &'a str) -> PlanComment<'a> {
        PlanComment {
            request_id: RequestId::new_random(),
            revision: 2,
            environment: "prod",
            run_id: 77,
            run_url: "https://github.com/acme/infra/actions/runs/77",
            pr_url: None,
            summary: s,
            plan_text: text,
            lines_cut: 0,
        }
    }

    #[test]
    fn a_small_plan_is_whole_with_its_resources_table() {
        let s = summary(2);
        let text = "  + resource \"terraform_data\" \"r0\" {}\n\nPlan: 2 to add, 0 to change, 0 to destroy.\n";
        let out = plan_done(&plan(&s, text), "/tfpilot", MAX_OUTPUT_CHARS);
        assert_eq!(out.title, "Plan: 2 to add, 0 to change, 0 to destroy.");
        assert!(
            out.summary
                .contains("| `module.tfpilot_x.terraform_data.r1` | create |"),
            "{}",
            out.summary
        );
        let body = out.text.unwrap();
        assert!(body.starts_with("```diff\n"), "{body}");
        assert!(body.contains("Plan: 2 to add"), "{body}");
        assert!(!body.contains("left out"), "{body}");
    }

    #[test]
    fn a_huge_plan_is_cut_at_a_line_within_the_limit_keeping_its_end() {
        let s = summary(3000);
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!(
                "  + resource \"terraform_data\" \"r{i}\" {{ input = \"é{i}\" }}\n"
            ));
        }
        text.push_str("\nPlan: 20000 to add, 0 to change, 0 to destroy.\n");
        let out = plan_done(&plan(&s, &text), "/tfpilot", MAX_OUTPUT_CHARS);
        let body = out.text.unwrap();
        assert!(body.chars().count() <= MAX_OUTPUT_CHARS, "{}", body.len());
        assert!(
            body.len() > MAX_OUTPUT_CHARS - 2_000,
            "the room is used: {}",
            body.len()
        );
        assert!(body.contains("lines are left out here"), "the cut is said");
        assert!(body.contains("actions/runs/77"), "the whole plan is linked");
        assert!(body.trim_end().ends_with("```"), "the fence is closed");
        assert!(body.contains("Plan: 20000 to add"), "the end is kept");
        // Every plan line kept is whole.
        let inner = body.split("```diff\n").nth(1).unwrap();
        for line in inner.lines().filter(|l| l.contains("resource")) {
            assert!(line.ends_with("\" }"), "a cut line: {line}");
        }
        assert!(out.summary.chars().count() <= MAX_OUTPUT_CHARS);
        assert!(out.summary.contains("more resources are in the plan below"));
    }

    #[test]
    fn buttons_fit_githubs_limits() {
        for prefix in ["/tfpilot", "/a-very-long-custom-prefix-for-commands"] {
            for command in ["approve", "apply"] {
                let (label, description, identifier) = button(command, prefix);
                assert!(label.len() <= 20 && identifier.len() <= 20);
                assert!(description.chars().count() <= 40, "{description}");
            }
        }
        assert_eq!(button("approve", "/tfpilot").0, "Approve");
    }
}
