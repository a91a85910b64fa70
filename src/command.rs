//! The `/tfpilot …` grammar: one comment → at most one [`Command`], or a [`ParseError`] written
//! for the person who typed it.
//!
//! A comment is read as GitHub shows it: markdown is parsed first (pulldown-cmark) and only plain
//! text counts, so a command quoted in a code block, a block quote, an HTML comment, a link or a
//! heading is not a command. A command is a line that *starts* with the prefix (`/tfpilot`, any
//! case) as the reader sees it (inline code or a link before the prefix makes it prose); a
//! comment holds at most one such line. The words after it are split like a shell
//! would (shell-words: `name="my bucket"` is one word), except that `#` is an ordinary character,
//! an apostrophe inside a word (`don't`) is a letter, curly double quotes are quotes and a
//! no-break space is a space.
//!
//! Sizes are bounded before anything expensive runs: a comment past [`MAX_COMMENT_BYTES`], a
//! command line past [`MAX_COMMAND_BYTES`] or more than [`MAX_PAIRS`] `key=value` pairs is answered
//! with an error instead of being parsed.
//!
//! Keys of `new` are resolved against the module's catalogue entry here, because the module is
//! named in the same line. `set` and `unset` come without a module: the executor knows the
//! request's module and resolves them with [`resolve_values`] and [`resolve_keys`].

use std::collections::BTreeMap;

mod error;
mod grammar;
mod markdown;

pub use error::{ParseError, UnknownKey};
use grammar::parse_command_line;
pub use markdown::strip_markdown;
use markdown::{UNREAD_INLINE, command_rest, contains_ignore_ascii_case, plain_text};

use crate::domain::{ListFilter, RequestStatus, is_name};
use crate::registry::{ModuleSpec, Registry, UnknownModuleType, display_safe, normalize_key};

/// The prefix a command line starts with, unless the installation configures another.
pub const DEFAULT_PREFIX: &str = "/tfpilot";

/// Comments longer than this are not parsed (GitHub allows 65,536 characters, at most 4 bytes
/// each, so every real comment fits).
pub const MAX_COMMENT_BYTES: usize = 4 * 65_536;

/// The longest command line that is parsed.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// The most `key=value` pairs one command may carry.
pub const MAX_PAIRS: usize = 100;

/// The longest single value.
pub const MAX_VALUE_BYTES: usize = 4096;

/// The longest key (`tags.<entry>` included).
pub const MAX_KEY_BYTES: usize = 160;

/// The most free text `new` takes along (its own line and the comment's other lines).
pub const MAX_FREE_TEXT_BYTES: usize = 8 * 1024;

/// How many of the command lines of a comment with several are named in the answer.
const MAX_LISTED_COMMANDS: usize = 5;

/// Keys that name where a request lives or what it is; they can never be set as input values.
const RESERVED_KEYS: &[&str] = &[
    "env",
    "environment",
    "project",
    "module",
    "module_type",
    "type",
    "request",
    "request_id",
    "id",
];

/// One command, as typed. Module types are canonical (`s3-bucket`), keys of `new` are canonical
/// input names; values are the text the user wrote (the catalogue normalizes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    New {
        module: String,
        environment: Option<String>,
        project: Option<String>,
        values: BTreeMap<String, String>,
        /// Words on the command line that are not `key=value`, followed by the comment's other
        /// lines: for the assistant to read ("with versioning, keep objects 30 days").
        free_text: String,
    },
    /// Input values; keys as typed (resolve with [`resolve_values`]).
    Set {
        values: BTreeMap<String, String>,
    },
    /// Input names as typed (resolve with [`resolve_keys`]).
    Unset {
        keys: Vec<String>,
    },
    Show,
    Submit,
    Plan,
    Approve,
    Merge,
    Apply,
    Destroy,
    Cleanup,
    Status {
        filters: StatusFilters,
    },
    Cancel,
    /// The module catalogue: every module type (`None`), or one type's inputs (canonical type).
    Modules {
        module: Option<String>,
    },
    /// Start the drift check of one environment (`None`: every environment of the repository).
    Drift {
        environment: Option<String>,
    },
}

/// What `status` narrows its list to. Empty: the request of this thread (or all open requests,
/// where the thread has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFilters {
    pub environment: Option<String>,
    pub project: Option<String>,
    /// Canonical module type.
    pub module_type: Option<String>,
    pub statuses: Vec<RequestStatus>,
    /// `all`: also archived (destroyed) requests.
    pub include_archived: bool,
}

impl StatusFilters {
    pub fn is_empty(&self) -> bool {
        *self == StatusFilters::default()
    }

    /// The store query for these filters.
    pub fn to_list_filter(&self) -> ListFilter {
        ListFilter {
            statuses: self.statuses.clone(),
            environment: self.environment.clone(),
            module_type: self.module_type.clone(),
            project: self.project.clone(),
            repo: None,
            include_archived: self.include_archived,
        }
    }
}

/// Every command word, in the order `help` lists them.
pub const COMMAND_NAMES: &[&str] = &[
    "help", "new", "set", "unset", "show", "submit", "plan", "approve", "merge", "apply",
    "destroy", "cleanup", "status", "cancel", "modules", "drift",
];

impl Command {
    /// The command word (`new`, `approve`, …): stable, for logs, metrics and timeline entries.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help => "help",
            Command::New { .. } => "new",
            Command::Set { .. } => "set",
            Command::Unset { .. } => "unset",
            Command::Show => "show",
            Command::Submit => "submit",
            Command::Plan => "plan",
            Command::Approve => "approve",
            Command::Merge => "merge",
            Command::Apply => "apply",
            Command::Destroy => "destroy",
            Command::Cleanup => "cleanup",
            Command::Status { .. } => "status",
            Command::Cancel => "cancel",
            Command::Modules { .. } => "modules",
            Command::Drift { .. } => "drift",
        }
    }

    /// Whether the command changes anything (and so needs write permission on the repository).
    pub fn is_mutating(&self) -> bool {
        !matches!(
            self,
            Command::Help | Command::Show | Command::Status { .. } | Command::Modules { .. }
        )
    }
}

/// Reads the command in a comment, using the embedded module catalogue.
///
/// `None`: the comment holds no command (the executor treats it as a conversation turn, or
/// ignores it). `Some(Err(_))`: the comment tried to give a command and the error says why it
/// could not be read; it should be answered.
pub fn parse_comment(body: &str, prefix: &str) -> Option<Result<Command, ParseError>> {
    parse_comment_with(body, prefix, Registry::embedded())
}

/// [`parse_comment`] against a given catalogue (an infra repo's own, tests).
pub fn parse_comment_with(
    body: &str,
    prefix: &str,
    registry: &Registry,
) -> Option<Result<Command, ParseError>> {
    let prefix = prefix.trim();
    if prefix.is_empty() || !contains_ignore_ascii_case(body, prefix) {
        return None;
    }
    if body.len() > MAX_COMMENT_BYTES {
        return Some(Err(ParseError::CommentTooLong {
            bytes: body.len(),
            max: MAX_COMMENT_BYTES,
        }));
    }
    // Inline text that is not read (code, links) still stands where the reader sees it: marked,
    // it keeps a line that starts with it from counting as a command line.
    let text = plain_text(body, Some(UNREAD_INLINE));
    let mut commands: Vec<String> = Vec::new();
    let mut other_lines: Vec<String> = Vec::new();
    for line in text.lines() {
        match command_rest(line, prefix) {
            Some(rest) => commands.push(rest.replace(UNREAD_INLINE, "")),
            None => {
                let line = line.replace(UNREAD_INLINE, "");
                let line = line.trim();
                if !line.is_empty() {
                    other_lines.push(line.to_owned());
                }
            }
        }
    }
    let other_lines: Vec<&str> = other_lines.iter().map(String::as_str).collect();
    match commands.as_slice() {
        [] => None,
        [rest] => Some(parse_command_line(rest, &other_lines, registry)),
        many => Some(Err(ParseError::MultipleCommands {
            count: many.len(),
            first: many
                .iter()
                .take(MAX_LISTED_COMMANDS)
                .map(|rest| {
                    let word = rest.split_whitespace().next().unwrap_or("");
                    let word = if word.is_empty() {
                        prefix.to_owned()
                    } else {
                        format!("{prefix} {word}")
                    };
                    display_safe(&word)
                })
                .collect(),
        })),
    }
}

/// Resolves typed keys (`versioning`, `expiry-days`, `tags.Team`) to the module's canonical input
/// names (`versioning_enabled`, `expiration_days`, `tags.Team`). Every unknown key is reported,
/// each with the closest input; two keys meaning the same input with different values are refused.
pub fn resolve_values(
    spec: &ModuleSpec,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ParseError> {
    let mut out = BTreeMap::new();
    let mut unknown = Vec::new();
    for (key, value) in values {
        match resolve_key(spec, key) {
            Some(canonical) => {
                if let Some(old) = out.get(&canonical)
                    && old != value
                {
                    return Err(ParseError::DuplicateKey { key: canonical });
                }
                out.insert(canonical, value.clone());
            }
            None => unknown.push(unknown_key(spec, key)),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(ParseError::UnknownInputs {
            module: spec.module_type.clone(),
            keys: unknown,
        })
    }
}

/// Resolves typed input names (for `unset`) to canonical ones; unknown names are all reported.
pub fn resolve_keys(spec: &ModuleSpec, keys: &[String]) -> Result<Vec<String>, ParseError> {
    let mut out: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for key in keys {
        match resolve_key(spec, key) {
            Some(canonical) if !out.contains(&canonical) => out.push(canonical),
            Some(_) => {}
            None => unknown.push(unknown_key(spec, key)),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(ParseError::UnknownInputs {
            module: spec.module_type.clone(),
            keys: unknown,
        })
    }
}

/// The canonical spelling of one key: `name` or `<map input>.<entry>` (the entry keeps its case).
pub fn resolve_key(spec: &ModuleSpec, key: &str) -> Option<String> {
    let Some((head, entry)) = key.split_once('.') else {
        return spec.resolve_key(key).map(|input| input.name.clone());
    };
    let input = spec.resolve_key(head)?;
    (input.input_type == crate::registry::InputType::Map && !entry.trim().is_empty())
        .then(|| format!("{}.{}", input.name, entry.trim()))
}

fn unknown_key(spec: &ModuleSpec, key: &str) -> UnknownKey {
    UnknownKey {
        given: key.to_owned(),
        suggestion: spec.suggest_input(key).map(str::to_owned),
    }
}

#[cfg(test)]
mod tests;
