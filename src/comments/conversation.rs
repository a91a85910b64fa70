//! Conversation comments: the reply to a turn (what was understood, what was refused, a table of
//! inputs, what is still needed, the open question and, once complete, the exact block), the
//! `help` text, and the answer to a command that could not be read.

use std::fmt::Write as _;

use super::plan::fence_for;
use super::{GITHUB_MAX_COMMENT_CHARS, marker};
use crate::assist::{Clarification, ClarificationKind, ExtractorKind};
use crate::command::{ParseError, StatusFilters};
use crate::conversation::{InputState, Outcome, Reply};
use crate::domain::EffectKey;
use crate::registry::{InputValue, Registry, display_safe};

/// The longest assistant note shown.
const NOTE_CHARS: usize = 500;

/// The most refused values listed one by one.
const MAX_PROBLEMS: usize = 20;

/// The reply to a conversation turn (or to `show`), within GitHub's comment limit.
pub fn conversation_reply(reply: &Reply, marker_key: &EffectKey) -> String {
    let body = with_marker(marker_key, &render(reply, true));
    if body.len() <= GITHUB_MAX_COMMENT_CHARS {
        return body;
    }
    // Only a huge block (thousands of map entries) gets here; the pull request will show it.
    // Everything else in a reply is bounded (values are shortened, notes cut).
    with_marker(marker_key, &render(reply, false))
}

pub(super) fn with_marker(key: &EffectKey, body: &str) -> String {
    format!("{}\n{body}", marker(key.as_str()))
}

fn render(reply: &Reply, with_block: bool) -> String {
    let mut out = String::new();
    let short_id: String = reply.request_id.to_string().chars().take(8).collect();
    let _ = writeln!(
        out,
        "### {} · `{}` · request `{short_id}`\n",
        reply.display_name, reply.environment
    );
    if let Some(note) = &reply.note {
        let note = match reply.source {
            Some(ExtractorKind::Rules) | None => note.clone(),
            // Text written by a model is shown as plain text: no markdown, links or mentions.
            Some(_) => untrusted_text(note),
        };
        let _ = writeln!(out, "> {note}\n");
    }
    if !reply.understood.is_empty() {
        let items: Vec<String> = reply
            .understood
            .iter()
            .map(|c| match &c.previous {
                Some(p) => format!(
                    "`{}` = {} (was {})",
                    c.input,
                    code(c.value.clone()),
                    code(p.clone())
                ),
                None => format!("`{}` = {}", c.input, code(c.value.clone())),
            })
            .collect();
        let _ = writeln!(out, "**Understood:** {}.\n", items.join(", "));
    }
    if !reply.cleared.is_empty() {
        let items: Vec<String> = reply.cleared.iter().map(|c| format!("`{c}`")).collect();
        let _ = writeln!(out, "**Cleared:** {}.\n", items.join(", "));
    }
    if !reply.problems.is_empty() {
        let _ = writeln!(out, "**Not accepted:**");
        for p in reply.problems.iter().take(MAX_PROBLEMS) {
            let _ = writeln!(out, "- {p}");
        }
        if reply.problems.len() > MAX_PROBLEMS {
            let _ = writeln!(
                out,
                "- and {} more problems like these",
                reply.problems.len() - MAX_PROBLEMS
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "| input | value | |\n| --- | --- | --- |");
    for row in &reply.inputs {
        let unit = row
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        let (value, about) = match &row.state {
            InputState::Set(v) => (format!("{}{unit}", code(v.clone())), String::new()),
            InputState::Default(v) => (
                format!("{}{unit}", code(v.clone())),
                format!("default · {}", cell(&row.description)),
            ),
            InputState::Missing => (
                "**needed**".to_owned(),
                format!("required · {}", cell(&row.description)),
            ),
            InputState::NotSet => (
                "*not set*".to_owned(),
                format!("optional · {}", cell(&row.description)),
            ),
        };
        let _ = writeln!(out, "| `{}` | {value} | {about} |", row.name);
    }
    out.push('\n');

    match &reply.outcome {
        Outcome::Complete { block, .. } => {
            let _ = writeln!(
                out,
                "**Ready.** This is the block TfPilot will write to `envs/{}/{}`:\n",
                reply.environment, reply.target_file
            );
            if with_block {
                let fence = fence_for(block);
                let _ = writeln!(
                    out,
                    "<details><summary>Terraform block</summary>\n\n{fence}hcl\n{block}{fence}\n\n</details>\n"
                );
            } else {
                let _ = writeln!(
                    out,
                    "*The block is too long to show here ({} bytes); the pull request will hold it.*\n",
                    block.len()
                );
            }
            let _ = writeln!(
                out,
                "Comment `{p} submit` to open the PR, or `{p} set key=value` to change a value.",
                p = reply.prefix
            );
        }
        Outcome::Blocked { problems } => {
            let _ = writeln!(out, "**The configuration cannot be built yet:**");
            for p in problems {
                let _ = writeln!(out, "- {p}");
            }
            let _ = writeln!(
                out,
                "\nChange a value with `{} set key=value`.",
                reply.prefix
            );
        }
        Outcome::Incomplete => {
            let missing: Vec<String> = reply.missing().map(|r| format!("`{}`", r.name)).collect();
            if !missing.is_empty() {
                let _ = writeln!(out, "**Still needed:** {}.\n", missing.join(", "));
            }
            for q in &reply.questions {
                let _ = writeln!(out, "**Question:** {}", question(q));
            }
            if !reply.questions.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "Answer in plain words or as `key=value`; `{} set key=value` works too.",
                reply.prefix
            );
        }
    }
    out
}

/// Questions are TfPilot's own words (the assistant only picks which input to ask about; see
/// `assist::openai`), so they keep their inline code.
fn question(q: &Clarification) -> String {
    let text = q.question.clone();
    match &q.kind {
        ClarificationKind::YesNo => format!("{text} (yes/no)"),
        ClarificationKind::Choice { options } => {
            let options: Vec<String> = options
                .iter()
                .map(|o| format!("`{}`", display_safe(o)))
                .collect();
            format!("{text} One of {}.", options.join(", "))
        }
        ClarificationKind::Text => text,
    }
}

/// A value as inline code, safe inside a table cell.
pub(super) fn code(v: InputValue) -> String {
    format!("`{}`", cell(&display_safe(&v.to_plain_string())))
}

/// Text that cannot break a table row.
pub(super) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Text from outside (an LLM) shown as plain text: one line, markdown characters escaped,
/// mentions and issue references defused, length bounded.
pub fn untrusted_text(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(NOTE_CHARS) {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '<' | '>' | '(' | ')' | '#' | '+'
            | '-' | '!' | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            // A zero-width space after `@` keeps GitHub from notifying anyone.
            '@' => out.push_str("@\u{200B}"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    if s.chars().count() > NOTE_CHARS {
        out.push('…');
    }
    out
}

/// The answer to `help`.
pub fn help(prefix: &str, registry: &Registry, marker_key: &EffectKey) -> String {
    let p = prefix;
    let mut out = String::new();
    let _ = writeln!(out, "### TfPilot commands\n");
    let _ = writeln!(out, "| command | what it does |\n| --- | --- |");
    let rows: [(String, &str); 15] = [
        (
            format!("{p} new <module> env=<env> [key=value…] [text]"),
            "open a request for a module in an environment; describe the rest in words",
        ),
        (format!("{p} set key=value…"), "set or change input values"),
        (
            format!("{p} unset key…"),
            "clear inputs (back to their defaults)",
        ),
        (
            format!("{p} show"),
            "show the collected inputs and the Terraform block",
        ),
        (
            format!("{p} submit"),
            "open the pull request with the block and plan it",
        ),
        (format!("{p} plan"), "plan the pull request again"),
        (format!("{p} approve"), "approve the planned change"),
        (format!("{p} merge"), "merge the approved pull request"),
        (format!("{p} apply"), "apply the merged change"),
        (
            format!("{p} destroy"),
            "destroy the request's resources, then remove its block",
        ),
        (
            format!("{p} cleanup"),
            "remove the block of a destroyed request",
        ),
        (
            format!("{p} status [env=…] [status=…] [module=…] [all]"),
            "this request, or a list of requests",
        ),
        (format!("{p} cancel"), "cancel the request"),
        (
            format!("{p} modules [type]"),
            "the module types, or one type's inputs (required, defaults, allowed values, units)",
        ),
        (format!("{p} help"), "this list"),
    ];
    for (command, what) in rows {
        let _ = writeln!(out, "| `{command}` | {what} |");
    }
    let modules: Vec<String> = registry
        .modules()
        .map(|m| format!("`{}` ({})", m.module_type, m.display_name))
        .collect();
    let _ = writeln!(
        out,
        "\n**Module types:** {}. `{p} modules <type>` lists a type's inputs.\n",
        modules.join(", ")
    );
    let _ = writeln!(
        out,
        "Values with spaces go in double quotes: `name=\"my bucket\"`. One command per comment; \
         between commands, answer my questions in plain words. In `prod`, approve, merge, apply and \
         cleanup are for the production allow-list, and destroy for the prod-destroy allow-list."
    );
    with_marker(marker_key, &out)
}

/// The answer to a comment whose command could not be read.
pub fn parse_error(err: &ParseError, prefix: &str, marker_key: &EffectKey) -> String {
    with_marker(
        marker_key,
        &format!("⚠️ {err}\n\nComment `{prefix} help` for the list of commands.\n"),
    )
}

/// A short description of `status` filters, for the status list heading.
pub fn describe_filters(filters: &StatusFilters) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &filters.environment {
        parts.push(format!("env `{e}`"));
    }
    if let Some(p) = &filters.project {
        parts.push(format!("project `{p}`"));
    }
    if let Some(m) = &filters.module_type {
        parts.push(format!("module `{m}`"));
    }
    if !filters.statuses.is_empty() {
        let s: Vec<String> = filters.statuses.iter().map(|s| format!("`{s}`")).collect();
        parts.push(format!("status {}", s.join(" or ")));
    }
    if filters.include_archived {
        parts.push("including archived".to_owned());
    }
    if parts.is_empty() {
        "all open requests".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests;
