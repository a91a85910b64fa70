//! Plan comments: the summary line, a warning when anything is destroyed or replaced, links, and the
//! plan text in a collapsible `diff` block — split across comments when it would not fit in one.
//!
//! Every comment stays within GitHub's limit, every code fence and `<details>` opened in a comment
//! is closed in that comment, at most `max_comments` are posted, and when a plan is longer than that
//! the *end* of the plan is kept (its last lines say what will happen) with a link to the full plan.

use std::fmt::Write as _;

use super::{GITHUB_MAX_COMMENT_CHARS, marker};
use crate::domain::EffectKey;
use crate::ids::RequestId;
use crate::terraform::plan::{PlanSummary, to_github_diff};

/// What a plan comment says. `plan_text` must already be masked.
#[derive(Debug, Clone)]
pub struct PlanComment<'a> {
    pub request_id: RequestId,
    pub revision: u32,
    pub environment: &'a str,
    pub run_id: u64,
    pub run_url: &'a str,
    pub pr_url: Option<&'a str>,
    pub summary: &'a PlanSummary,
    pub plan_text: &'a str,
    /// Lines of the plan left out before `plan_text` (a long plan is cut to its end before it is
    /// masked and posted; see [`PlanCommentLimits::text_budget`]).
    pub lines_cut: usize,
}

/// How much a plan may take on GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanCommentLimits {
    /// Characters per comment (GitHub: 65,536). Counted in bytes, which is never less.
    pub max_chars: usize,
    /// Comments per plan; a longer plan keeps its end and links to the full plan.
    pub max_comments: usize,
}

impl Default for PlanCommentLimits {
    fn default() -> Self {
        Self {
            max_chars: GITHUB_MAX_COMMENT_CHARS,
            max_comments: 3,
        }
    }
}

impl PlanCommentLimits {
    /// The most of a plan's text (its end) that these comments can show, in bytes: a longer
    /// text can be cut to this many bytes from its end before it is masked and rendered.
    pub fn text_budget(&self) -> usize {
        self.max_chars.saturating_mul(self.max_comments.max(1))
    }
}

impl PlanComment<'_> {
    /// The effect key of part `part` (1-based) of this plan's comments.
    pub fn marker_key(&self, part: usize) -> EffectKey {
        EffectKey::plan_part(self.request_id, self.revision.into(), self.run_id, part)
    }

    fn header(&self, part: usize, parts: usize) -> String {
        let mut h = marker(self.marker_key(part).as_str());
        h.push('\n');
        if part > 1 {
            let _ = writeln!(
                h,
                "### Terraform plan · `{}` · revision {} (continued, part {part} of {parts})\n",
                self.environment, self.revision
            );
            return h;
        }
        let _ = writeln!(
            h,
            "### Terraform plan · `{}` · revision {}\n",
            self.environment, self.revision
        );
        let _ = writeln!(h, "**{}**\n", self.summary.line());
        let destructive: Vec<_> = self.summary.destructive().collect();
        if !destructive.is_empty() {
            let list = destructive
                .iter()
                .take(10)
                .map(|c| format!("`{}` ({})", c.address, c.action))
                .collect::<Vec<_>>()
                .join(", ");
            let more = destructive.len().saturating_sub(10);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(
                h,
                "> [!WARNING]\n> This plan destroys or replaces {} resource{}: {list}{more}.\n",
                destructive.len(),
                if destructive.len() == 1 { "" } else { "s" }
            );
        }
        let mut links = vec![format!("[workflow run]({})", self.run_url)];
        if let Some(pr) = self.pr_url {
            links.push(format!("[pull request]({pr})"));
        }
        let _ = writeln!(h, "{}\n", links.join(" · "));
        h
    }
}

/// Renders the plan as one or more comment bodies, in posting order.
pub fn plan_comments(c: &PlanComment<'_>, limits: PlanCommentLimits) -> Vec<String> {
    let diff = to_github_diff(c.plan_text);
    let fence = fence_for(&diff);
    let lines: Vec<&str> = diff.lines().collect();
    let max_comments = limits.max_comments.max(1);

    // Room for plan lines in each comment: the limit minus the widest header and wrapper
    // (computed for the largest part number, so it holds for all).
    let omitted_note_room = omitted_note(usize::MAX, c.run_url).len();
    let wrapper = wrap("", &fence, usize::MAX, usize::MAX).len();
    let capacity = |part: usize| {
        limits
            .max_chars
            .saturating_sub(c.header(part, max_comments.max(part)).len())
            .saturating_sub(wrapper)
            .saturating_sub(omitted_note_room)
            .max(1)
    };

    let mut chunks = split_forward(&lines, capacity);
    let mut omitted = c.lines_cut;
    if chunks.len() > max_comments {
        let (kept, dropped) = split_backward(&lines, capacity, max_comments);
        chunks = kept;
        omitted += dropped;
    }
    let parts = chunks.len().max(1);
    if chunks.is_empty() {
        chunks.push(String::new());
    }
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let part = i + 1;
            let mut body = c.header(part, parts);
            if part == 1 && omitted > 0 {
                body.push_str(&omitted_note(omitted, c.run_url));
            }
            body.push_str(&wrap(&chunk, &fence, part, parts));
            body
        })
        .collect()
}

/// The short note on the issue when a plan is ready: the summary line and where to read more.
/// The effect key of the plan's summary on the issue.
pub fn plan_summary_key(c: &PlanComment<'_>) -> EffectKey {
    EffectKey::plan_summary(c.request_id, c.revision.into(), c.run_id)
}

pub fn plan_issue_summary(c: &PlanComment<'_>) -> String {
    let mut s = marker(plan_summary_key(c).as_str());
    let _ = write!(
        s,
        "\nPlan for revision {} in `{}`: **{}**",
        c.revision,
        c.environment,
        c.summary.line()
    );
    let destroyed = c.summary.destructive().count();
    if destroyed > 0 {
        let _ = write!(s, " ⚠️ destroys or replaces {destroyed}");
    }
    match c.pr_url {
        Some(pr) => {
            let _ = write!(
                s,
                "\n\nDetails on the [pull request]({pr}) · [workflow run]({}).",
                c.run_url
            );
        }
        None => {
            let _ = write!(s, "\n\nDetails in the [workflow run]({}).", c.run_url);
        }
    }
    s
}

pub(super) fn omitted_note(lines: usize, run_url: &str) -> String {
    format!(
        "> [!NOTE]\n> The plan is too long to post in full: its first {lines} lines are left out here. \
         The whole plan is in the `plan` artifact of the [workflow run]({run_url}).\n\n"
    )
}

fn wrap(chunk: &str, fence: &str, part: usize, parts: usize) -> String {
    let title = if parts > 1 {
        format!("Plan output (part {part} of {parts})")
    } else {
        "Plan output".to_owned()
    };
    format!("<details><summary>{title}</summary>\n\n{fence}diff\n{chunk}{fence}\n\n</details>\n")
}

/// A code fence longer than any run of backticks in `text`, so the text cannot close it early.
pub(crate) fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for ch in text.chars() {
        if ch == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat(longest.max(2) + 1)
}

/// Splits a line longer than `room` bytes at char boundaries.
fn pieces(line: &str, room: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while rest.len() + 1 > room {
        let mut cut = room.saturating_sub(1).max(1).min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            // A single character wider than the room: take it anyway rather than loop forever.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
        if rest.is_empty() {
            return out;
        }
    }
    out.push(rest);
    out
}

/// Fills comments front to back. Each chunk holds whole lines, each ending in `\n`.
fn split_forward(lines: &[&str], capacity: impl Fn(usize) -> usize) -> Vec<String> {
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in lines {
        for piece in pieces(line, capacity(chunks.len() + 1)) {
            if !current.is_empty() && current.len() + piece.len() + 1 > capacity(chunks.len() + 1) {
                chunks.push(std::mem::take(&mut current));
            }
            current.push_str(piece);
            current.push('\n');
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Fills `max` comments back to front, keeping the end of the plan. Returns the chunks in order
/// and how many lines from the start did not fit.
pub(super) fn split_backward(
    lines: &[&str],
    capacity: impl Fn(usize) -> usize,
    max: usize,
) -> (Vec<String>, usize) {
    let mut chunks: Vec<Vec<&str>> = vec![Vec::new()];
    let mut used = 0;
    let mut kept_lines = 0;
    'lines: for line in lines.iter().rev() {
        // The last comment is part `max`; earlier ones are filled as we go back.
        let pieces: Vec<&str> = pieces(line, capacity(max)).into_iter().rev().collect();
        for piece in &pieces {
            let part = max + 1 - chunks.len();
            if used + piece.len() + 1 > capacity(part) {
                if chunks.len() == max {
                    break 'lines;
                }
                chunks.push(Vec::new());
                used = 0;
            }
            if let Some(c) = chunks.last_mut() {
                c.push(piece);
            }
            used += piece.len() + 1;
        }
        kept_lines += 1;
    }
    let omitted = lines.len() - kept_lines;
    let rendered = chunks
        .into_iter()
        .rev()
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.into_iter().rev().fold(String::new(), |mut s, piece| {
                s.push_str(piece);
                s.push('\n');
                s
            })
        })
        .collect();
    (rendered, omitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comments::marker_key;

    fn summary() -> PlanSummary {
        let json = br#"{"format_version":"1.2","resource_changes":[
            {"address":"module.tfpilot_x.aws_s3_bucket.this","change":{"actions":["create"]}}]}"#;
        PlanSummary::from_json(json).unwrap()
    }

    fn comment<'a>(s: &'a PlanSummary, text: &'a str, id: RequestId) -> PlanComment<'a> {
        PlanComment {
            request_id: id,
            revision: 2,
            environment: "dev",
            run_id: 77,
            run_url: "https://github.com/acme/infra/actions/runs/77",
            pr_url: Some("https://github.com/acme/infra/pull/5"),
            summary: s,
            plan_text: text,
            lines_cut: 0,
        }
    }

    fn assert_balanced(body: &str, fence: &str) {
        assert_eq!(
            body.matches("<details>").count(),
            body.matches("</details>").count()
        );
        let fences = body
            .lines()
            .filter(|l| {
                l.starts_with(fence)
                    && l.trim_start_matches('`')
                        .chars()
                        .all(|c| c.is_ascii_alphabetic())
            })
            .count();
        assert_eq!(fences % 2, 0, "unbalanced fences in:\n{body}");
    }

    #[test]
    fn a_small_plan_is_one_comment_with_summary_links_and_diff() {
        let s = summary();
        let id = RequestId::new_random();
        let text = "  + resource \"aws_s3_bucket\" \"this\" {\n      + bucket = \"invoices\"\n    }\n\nPlan: 1 to add, 0 to change, 0 to destroy.\n";
        let bodies = plan_comments(&comment(&s, text, id), PlanCommentLimits::default());
        assert_eq!(bodies.len(), 1);
        let b = &bodies[0];
        assert_eq!(
            marker_key(b),
            Some(format!("plan:{id}:r2:run77:1").as_str())
        );
        assert!(
            b.contains("**Plan: 1 to add, 0 to change, 0 to destroy.**"),
            "{b}"
        );
        assert!(b.contains("[workflow run](https://github.com/acme/infra/actions/runs/77)"));
        assert!(b.contains("[pull request](https://github.com/acme/infra/pull/5)"));
        assert!(
            b.contains("```diff\n+   resource \"aws_s3_bucket\" \"this\" {\n"),
            "{b}"
        );
        assert!(!b.contains("[!WARNING]"));
        assert_balanced(b, "```");
    }

    #[test]
    fn destroying_plans_carry_a_warning() {
        let json = br#"{"format_version":"1.2","resource_changes":[
            {"address":"a.b","change":{"actions":["delete","create"]}},
            {"address":"a.c","change":{"actions":["delete"]}}]}"#;
        let s = PlanSummary::from_json(json).unwrap();
        let id = RequestId::new_random();
        let b = &plan_comments(&comment(&s, "x\n", id), PlanCommentLimits::default())[0];
        assert!(b.contains("> [!WARNING]\n> This plan destroys or replaces 2 resources: `a.b` (replace), `a.c` (destroy)."), "{b}");
    }

    #[test]
    fn backticks_in_the_plan_cannot_close_the_fence() {
        let s = summary();
        let text = "  + x = <<EOT\n```\nnot markdown\n````\nEOT\n";
        let b = &plan_comments(
            &comment(&s, text, RequestId::new_random()),
            PlanCommentLimits::default(),
        )[0];
        assert!(b.contains("`````diff\n"), "{b}");
        assert_balanced(b, "`````");
    }

    #[test]
    fn a_long_plan_is_split_without_losing_a_line() {
        let s = summary();
        let text: String = (0..5000)
            .map(|i| format!("  + line {i} {}\n", "x".repeat(40)))
            .collect();
        let limits = PlanCommentLimits {
            max_chars: 65_536,
            max_comments: 10,
        };
        let bodies = plan_comments(&comment(&s, &text, RequestId::new_random()), limits);
        assert!(
            bodies.len() > 1 && bodies.len() <= 10,
            "{} comments",
            bodies.len()
        );
        let mut seen = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            assert!(b.len() <= 65_536, "comment {i} has {} bytes", b.len());
            assert!(b.contains(&format!("part {} of {}", i + 1, bodies.len())));
            assert_balanced(b, "```");
            let inner = b
                .split("```diff\n")
                .nth(1)
                .unwrap()
                .split("\n```")
                .next()
                .unwrap();
            seen.extend(inner.lines().map(str::to_owned));
        }
        let expected: Vec<String> = to_github_diff(&text).lines().map(str::to_owned).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_plan_beyond_the_comment_budget_keeps_its_end_and_links_to_the_artifact() {
        let s = summary();
        let mut text: String = (0..20_000)
            .map(|i| format!("  + line {i} {}\n", "y".repeat(60)))
            .collect();
        text.push_str("Plan: 1 to add, 0 to change, 0 to destroy.\n");
        let limits = PlanCommentLimits {
            max_chars: 65_536,
            max_comments: 3,
        };
        let bodies = plan_comments(&comment(&s, &text, RequestId::new_random()), limits);
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|b| b.len() <= 65_536));
        assert!(
            bodies[0].contains("first ") && bodies[0].contains("lines are left out"),
            "{}",
            &bodies[0][..600]
        );
        assert!(bodies[2].contains(" Plan: 1 to add, 0 to change, 0 to destroy.\n"));
        assert!(bodies[2].contains("line 19999 "));
        for b in &bodies {
            assert_balanced(b, "```");
        }
    }

    #[test]
    fn a_single_enormous_line_is_cut_to_fit() {
        let s = summary();
        let text = format!("  + blob = \"{}\"\n", "é".repeat(100_000));
        let limits = PlanCommentLimits {
            max_chars: 65_536,
            max_comments: 5,
        };
        let bodies = plan_comments(&comment(&s, &text, RequestId::new_random()), limits);
        assert!(bodies.len() >= 4, "{}", bodies.len());
        assert!(bodies.iter().all(|b| b.len() <= 65_536));
    }

    #[test]
    fn the_issue_summary_is_short_and_links_the_pr() {
        let s = summary();
        let b = plan_issue_summary(&comment(&s, "", RequestId::new_random()));
        assert!(
            b.contains("Plan for revision 2 in `dev`: **Plan: 1 to add"),
            "{b}"
        );
        assert!(b.contains("[pull request](https://github.com/acme/infra/pull/5)"));
        assert!(b.len() < 1000);
    }
}
