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
use std::fmt;

use pulldown_cmark::{Event, Parser, Tag, TagEnd, TextMergeStream};

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
    "destroy", "cleanup", "status", "cancel",
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
        }
    }

    /// Whether the command changes anything (and so needs write permission on the repository).
    pub fn is_mutating(&self) -> bool {
        !matches!(self, Command::Help | Command::Show | Command::Status { .. })
    }
}

/// A key the catalogue does not know, with the closest input name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    pub given: String,
    pub suggestion: Option<String>,
}

/// Why a comment's command could not be read. `Display` is the message for the GitHub user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    CommentTooLong {
        bytes: usize,
        max: usize,
    },
    /// More than one command line: none of them is run.
    MultipleCommands {
        count: usize,
        /// The first few command words, as typed (display-safe).
        first: Vec<String>,
    },
    CommandTooLong {
        bytes: usize,
        max: usize,
    },
    UnclosedQuote,
    UnknownCommand {
        given: String,
        /// A complete suggestion (`apply`, `new s3-bucket`).
        suggestion: Option<String>,
    },
    /// Words after a command that takes none.
    UnexpectedArguments {
        command: &'static str,
        given: String,
    },
    MissingModule {
        known: Vec<String>,
    },
    UnknownModule(UnknownModuleType),
    UnknownFlag {
        command: &'static str,
        given: String,
        suggestion: Option<String>,
        known: Vec<&'static str>,
    },
    /// `set`/`unset` without anything to set or unset.
    MissingArguments {
        command: &'static str,
    },
    /// A bare word where `key=value` was expected.
    ExpectedKeyValue {
        command: &'static str,
        given: String,
    },
    /// A `key=value` where only a key was expected (`unset`).
    ExpectedKey {
        given: String,
    },
    /// `key=` with nothing after it. `clearable`: `unset` would clear it (an input of `set`).
    MissingValue {
        key: String,
        clearable: bool,
    },
    InvalidKey {
        given: String,
    },
    ValueTooLong {
        key: String,
        bytes: usize,
        max: usize,
    },
    TooManyValues {
        count: usize,
        max: usize,
    },
    /// The same input given twice with different values.
    DuplicateKey {
        key: String,
    },
    /// `set env=prod`: where a request lives is not an input.
    ReservedKey {
        key: String,
    },
    InvalidEnvironment {
        given: String,
    },
    InvalidProject {
        given: String,
    },
    InvalidStatus {
        given: String,
        suggestion: Option<&'static str>,
    },
    /// Keys that are not inputs of the module.
    UnknownInputs {
        module: String,
        keys: Vec<UnknownKey>,
    },
    FreeTextTooLong {
        bytes: usize,
        max: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseError::*;
        match self {
            CommentTooLong { bytes, max } => write!(
                f,
                "This comment is too long to read commands from ({bytes} bytes; at most {max})."
            ),
            MultipleCommands { count, first } => {
                let mut list: Vec<String> = first.iter().map(|c| format!("`{c}`")).collect();
                if *count > first.len() {
                    list.push(format!("and {} more", count - first.len()));
                }
                write!(
                    f,
                    "This comment holds {count} commands ({}); I run one command per comment, so I ran none of them. \
                     Post each command in its own comment.",
                    list.join(", ")
                )
            }
            CommandTooLong { bytes, max } => write!(
                f,
                "This command line is too long ({bytes} bytes; at most {max}). Give fewer values at once."
            ),
            UnclosedQuote => f.write_str(
                "A quote (`\"` or `'`) is not closed. Put values with spaces in double quotes \
                 (`name=\"my bucket\"`); free text with an apostrophe goes on the next line, below the command.",
            ),
            UnknownCommand { given, suggestion } => {
                write!(f, "`{}` is not a command", display_safe(given))?;
                if let Some(s) = suggestion {
                    write!(f, " — did you mean `{s}`?")?;
                } else {
                    f.write_str(".")?;
                }
                write!(f, " Commands: {}.", code_list(COMMAND_NAMES))
            }
            UnexpectedArguments { command, given } => write!(
                f,
                "`{command}` takes no arguments, but got `{}`. Comment the command alone.",
                display_safe(given)
            ),
            MissingModule { known } => {
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                write!(
                    f,
                    "`new` needs a module type, for example `new s3-bucket env=dev name=invoices`. Module types: {}.",
                    code_list(&known)
                )
            }
            UnknownModule(e) => {
                write!(f, "`{}` is not a module type", display_safe(&e.given))?;
                match &e.suggestion {
                    Some(s) => write!(f, " — did you mean `{s}`?")?,
                    None => f.write_str(".")?,
                }
                let known: Vec<&str> = e.known.iter().map(String::as_str).collect();
                write!(f, " Module types: {}.", code_list(&known))
            }
            UnknownFlag {
                command,
                given,
                suggestion,
                known,
            } => {
                if known.is_empty() {
                    return write!(
                        f,
                        "`{command}` takes no options, but got `{}`.",
                        display_safe(given)
                    );
                }
                write!(f, "`{command}` has no option `{}`", display_safe(given))?;
                if let Some(s) = suggestion {
                    write!(f, " — did you mean `{s}`?")?;
                } else {
                    f.write_str(".")?;
                }
                write!(f, " Options: {}.", code_list(known))
            }
            MissingArguments { command } => match *command {
                "unset" => f.write_str(
                    "`unset` needs the inputs to clear, for example `unset expiration_days`.",
                ),
                _ => write!(
                    f,
                    "`{command}` needs values as `key=value`, for example `{command} versioning_enabled=true`."
                ),
            },
            ExpectedKeyValue { command, given } => write!(
                f,
                "`{command}` takes `key=value` pairs, but `{}` has no `=`. To write a value with spaces, quote it: `key=\"two words\"`.",
                display_safe(given)
            ),
            ExpectedKey { given } => write!(
                f,
                "`unset` takes input names only, but got `{}`. To change a value, use `set`.",
                display_safe(given)
            ),
            MissingValue { key, clearable } => {
                let key = display_safe(key);
                if *clearable {
                    write!(
                        f,
                        "`{key}=` has no value. Write `{key}=<value>`, or `unset {key}` to clear it."
                    )
                } else {
                    write!(f, "`{key}` has no value. Write `{key}=<value>`.")
                }
            }
            InvalidKey { given } => write!(
                f,
                "`{}` is not a valid key: keys are words like `name` or `tags.Team`.",
                display_safe(given)
            ),
            ValueTooLong { key, bytes, max } => write!(
                f,
                "The value of `{}` is too long ({bytes} bytes; at most {max}).",
                display_safe(key)
            ),
            TooManyValues { count, max } => write!(
                f,
                "This command gives {count} values; at most {max} are taken at once."
            ),
            DuplicateKey { key } => write!(
                f,
                "`{}` is given more than once with different values; give it once.",
                display_safe(key)
            ),
            ReservedKey { key } => write!(
                f,
                "`{}` is not an input: the environment, project and module of a request are fixed when it is opened. \
                 To change them, `cancel` this request and open a new one.",
                display_safe(key)
            ),
            InvalidEnvironment { given } => write!(
                f,
                "`{}` is not an environment name (1–32 lowercase letters, digits and hyphens, starting with a letter, like `dev`).",
                display_safe(given)
            ),
            InvalidProject { given } => write!(
                f,
                "`{}` is not a project name (1–32 lowercase letters, digits and hyphens, starting with a letter).",
                display_safe(given)
            ),
            InvalidStatus { given, suggestion } => {
                write!(f, "`{}` is not a request status", display_safe(given))?;
                if let Some(s) = suggestion {
                    write!(f, " — did you mean `{s}`?")?;
                } else {
                    f.write_str(".")?;
                }
                let all: Vec<&str> = RequestStatus::ALL.iter().map(|s| s.as_str()).collect();
                write!(f, " Statuses: {}.", code_list(&all))
            }
            UnknownInputs { module, keys } => {
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(
                        f,
                        "`{}` is not an input of `{module}`",
                        display_safe(&k.given)
                    )?;
                    match &k.suggestion {
                        Some(s) => write!(f, " — did you mean `{s}`?")?,
                        None => f.write_str(".")?,
                    }
                }
                Ok(())
            }
            FreeTextTooLong { bytes, max } => write!(
                f,
                "The text with this `new` is too long ({bytes} bytes; at most {max}). Give the details in later comments."
            ),
        }
    }
}

fn code_list(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
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

/// The plain text of a comment as a reader sees it, without code (blocks and inline), block
/// quotes, HTML (comments included), link and image text or headings. Paragraphs and line
/// breaks become newlines. Use it before handing a conversation turn to the assistant, so text
/// quoted from an earlier comment is not read again.
pub fn strip_markdown(body: &str) -> String {
    plain_text(body, None)
}

/// Stands for inline text that is shown but not read (inline code, a link's or an image's text)
/// while a comment is split into lines; removed before anything else reads the line.
const UNREAD_INLINE: char = '\u{FFFC}';

/// [`strip_markdown`], with `unread_inline` (if any) written where inline code, a link or an
/// image was left out.
fn plain_text(body: &str, unread_inline: Option<char>) -> String {
    let mut out = String::with_capacity(body.len().min(MAX_COMMENT_BYTES));
    // Depth inside elements whose text does not count.
    let mut skipped = 0usize;
    for event in TextMergeStream::new(Parser::new(body)) {
        match event {
            Event::Start(tag) if is_skipped(&tag) => {
                if skipped == 0
                    && matches!(tag, Tag::Link { .. } | Tag::Image { .. })
                    && let Some(c) = unread_inline
                {
                    out.push(c);
                }
                skipped += 1;
            }
            Event::Code(_) if skipped == 0 => out.extend(unread_inline),
            Event::End(tag) => {
                if is_skipped_end(tag) {
                    skipped = skipped.saturating_sub(1);
                }
                if matches!(
                    tag,
                    TagEnd::Paragraph | TagEnd::Item | TagEnd::Heading(_) | TagEnd::CodeBlock
                ) && !out.ends_with('\n')
                {
                    out.push('\n');
                }
            }
            Event::Text(text) if skipped == 0 => out.push_str(&text),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            // Inline code, HTML (comments too), math and footnotes never hold commands.
            _ => {}
        }
    }
    out
}

fn is_skipped(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::BlockQuote(_)
            | Tag::CodeBlock(_)
            | Tag::HtmlBlock
            | Tag::Link { .. }
            | Tag::Image { .. }
            | Tag::Heading { .. }
            | Tag::MetadataBlock(_)
    )
}

fn is_skipped_end(tag: TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::BlockQuote(_)
            | TagEnd::CodeBlock
            | TagEnd::HtmlBlock
            | TagEnd::Link
            | TagEnd::Image
            | TagEnd::Heading(_)
            | TagEnd::MetadataBlock(_)
    )
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The rest of `line` after the prefix, if the line is a command line: it starts with the
/// prefix (any case, after leading spaces) followed by a space or the end of the line.
fn command_rest<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let line = line.trim_start();
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = &line[prefix.len()..];
    match rest.chars().next() {
        None => Some(rest),
        Some(c) if c.is_whitespace() => Some(rest),
        Some(_) => None,
    }
}

/// Stand-ins used while splitting: shell-words would read `#…` as a shell comment (on GitHub
/// `#12` is an issue, `#team` a value) and an apostrophe inside a word (`don't`) as an opening
/// quote. Lines that already hold a stand-in are split as they are.
const HASH_STAND_IN: char = '\u{E000}';
const APOSTROPHE_STAND_IN: char = '\u{E001}';

fn split_words(line: &str) -> Result<Vec<String>, ParseError> {
    if line.contains([HASH_STAND_IN, APOSTROPHE_STAND_IN]) {
        return shell_words::split(line).map_err(|_| ParseError::UnclosedQuote);
    }
    let chars: Vec<char> = line.chars().collect();
    let prepared: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| match c {
            '#' => HASH_STAND_IN,
            '\'' | '\u{2019}'
                if i > 0
                    && chars[i - 1].is_alphanumeric()
                    && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric()) =>
            {
                APOSTROPHE_STAND_IN
            }
            // Phones and word processors type curly double quotes.
            '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' => '"',
            // A no-break space (or any other) separates words like a space.
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    let words = shell_words::split(&prepared).map_err(|_| ParseError::UnclosedQuote)?;
    Ok(words
        .into_iter()
        .map(|w| {
            w.chars()
                .map(|c| match c {
                    HASH_STAND_IN => '#',
                    APOSTROPHE_STAND_IN => '\'',
                    c => c,
                })
                .collect()
        })
        .collect())
}

/// One word of a command line.
#[derive(Debug)]
enum Arg {
    Pair { key: String, value: String },
    Flag { name: String, value: Option<String> },
    Word(String),
}

fn classify(word: String) -> Result<Arg, ParseError> {
    if let Some(flag) = word.strip_prefix("--") {
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.to_owned(), None),
        };
        return Ok(Arg::Flag { name, value });
    }
    match word.split_once('=') {
        Some((key, value)) => {
            if key.is_empty() {
                return Err(ParseError::InvalidKey { given: word });
            }
            check_key(key)?;
            if value.is_empty() {
                return Err(ParseError::MissingValue {
                    key: key.to_owned(),
                    clearable: !is_reserved(key),
                });
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(ParseError::ValueTooLong {
                    key: key.to_owned(),
                    bytes: value.len(),
                    max: MAX_VALUE_BYTES,
                });
            }
            Ok(Arg::Pair {
                key: key.to_owned(),
                value: value.to_owned(),
            })
        }
        None => Ok(Arg::Word(word)),
    }
}

/// Keys are `word` or `word.entry`: the word of ASCII letters, digits, `_` and `-`; the entry
/// (a map key such as a tag name) of any characters but control characters.
fn check_key(key: &str) -> Result<(), ParseError> {
    let (head, entry) = match key.split_once('.') {
        Some((h, e)) => (h, Some(e)),
        None => (key, None),
    };
    let head_ok = !head.is_empty()
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let entry_ok = entry.is_none_or(|e| !e.is_empty() && !e.chars().any(char::is_control));
    if head_ok && entry_ok && key.len() <= MAX_KEY_BYTES {
        Ok(())
    } else {
        Err(ParseError::InvalidKey {
            given: key.to_owned(),
        })
    }
}

fn parse_command_line(
    rest: &str,
    other_lines: &[&str],
    registry: &Registry,
) -> Result<Command, ParseError> {
    if rest.len() > MAX_COMMAND_BYTES {
        return Err(ParseError::CommandTooLong {
            bytes: rest.len(),
            max: MAX_COMMAND_BYTES,
        });
    }
    let mut words = split_words(rest)?.into_iter();
    let Some(word) = words.next() else {
        return Ok(Command::Help);
    };
    let args: Vec<String> = words.collect();
    let pairs = args
        .iter()
        .filter(|a| a.contains('=') && !a.starts_with("--"))
        .count();
    if pairs > MAX_PAIRS {
        return Err(ParseError::TooManyValues {
            count: pairs,
            max: MAX_PAIRS,
        });
    }
    let name = word.to_ascii_lowercase();
    let simple = |command: Command| -> Result<Command, ParseError> {
        match args.first() {
            None => Ok(command),
            Some(_) => Err(ParseError::UnexpectedArguments {
                command: command.name(),
                given: args.join(" "),
            }),
        }
    };
    match name.as_str() {
        // `help new` and the like: help is always answered in full.
        "help" => Ok(Command::Help),
        "new" => parse_new(args, other_lines, registry),
        "set" => parse_set(args),
        "unset" => parse_unset(args),
        "status" => parse_status(args, registry),
        "show" => simple(Command::Show),
        "submit" => simple(Command::Submit),
        "plan" => simple(Command::Plan),
        "approve" => simple(Command::Approve),
        "merge" => simple(Command::Merge),
        "apply" => simple(Command::Apply),
        "destroy" => simple(Command::Destroy),
        "cleanup" => simple(Command::Cleanup),
        "cancel" => simple(Command::Cancel),
        _ => Err(unknown_command(&word, registry)),
    }
}

fn unknown_command(word: &str, registry: &Registry) -> ParseError {
    // `/tfpilot s3-bucket …`: a module type where the command goes.
    let suggestion = match registry.get(word) {
        Some(spec) => Some(format!("new {}", spec.module_type)),
        None => suggest(word, COMMAND_NAMES.iter().copied()).map(str::to_owned),
    };
    ParseError::UnknownCommand {
        given: word.to_owned(),
        suggestion,
    }
}

/// The candidate closest to `given`, if it is a likely typo of it.
fn suggest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        let distance = strsim::damerau_levenshtein(&given, candidate);
        let limit = if candidate.len() <= 4 { 1 } else { 2 };
        let mut score = strsim::jaro_winkler(&given, candidate);
        if distance <= limit {
            score = score.max(0.95 - distance as f64 * 0.01);
        }
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.filter(|(s, _)| *s >= 0.88).map(|(_, c)| c)
}

fn environment_value(value: &str) -> Result<String, ParseError> {
    let v = value.trim().to_ascii_lowercase();
    if is_name(&v) {
        Ok(v)
    } else {
        Err(ParseError::InvalidEnvironment {
            given: value.to_owned(),
        })
    }
}

fn project_value(value: &str) -> Result<String, ParseError> {
    let v = value.trim().to_ascii_lowercase();
    if is_name(&v) {
        Ok(v)
    } else {
        Err(ParseError::InvalidProject {
            given: value.to_owned(),
        })
    }
}

fn is_reserved(key: &str) -> bool {
    let key = normalize_key(key);
    RESERVED_KEYS.contains(&key.as_str())
}

/// Inserts `key=value`, refusing the same key with a different value.
fn insert_pair(
    values: &mut BTreeMap<String, String>,
    key: String,
    value: String,
) -> Result<(), ParseError> {
    match values.get(&key) {
        Some(old) if *old != value => Err(ParseError::DuplicateKey { key }),
        _ => {
            values.insert(key, value);
            Ok(())
        }
    }
}

/// Turns `--name value` / `--name=value` into a name and value, with did-you-mean for unknown
/// option names. `args` is consumed as far as the flag's value goes.
fn flag_value(
    command: &'static str,
    name: &str,
    value: Option<String>,
    known: &[&'static str],
    rest: &mut std::iter::Peekable<std::vec::IntoIter<Arg>>,
) -> Result<(&'static str, String), ParseError> {
    let lower = name.to_ascii_lowercase();
    let Some(known_name) = known.iter().copied().find(|k| *k == lower) else {
        return Err(ParseError::UnknownFlag {
            command,
            given: format!("--{name}"),
            suggestion: suggest(&lower, known.iter().copied()).map(|s| format!("--{s}")),
            known: known.to_vec(),
        });
    };
    let value = match value {
        Some(v) => v,
        None => match rest.next_if(|a| matches!(a, Arg::Word(_))) {
            Some(Arg::Word(w)) => w,
            _ => {
                return Err(ParseError::MissingValue {
                    key: format!("--{known_name}"),
                    clearable: false,
                });
            }
        },
    };
    if value.is_empty() {
        return Err(ParseError::MissingValue {
            key: format!("--{known_name}"),
            clearable: false,
        });
    }
    Ok((known_name, value))
}

fn parse_new(
    args: Vec<String>,
    other_lines: &[&str],
    registry: &Registry,
) -> Result<Command, ParseError> {
    const FLAGS: &[&str] = &["env", "environment", "project"];
    let mut args = args.into_iter();
    let missing = || ParseError::MissingModule {
        known: registry.module_types().map(str::to_owned).collect(),
    };
    let module_word = match args.next() {
        None => return Err(missing()),
        Some(w) if w.contains('=') || w.starts_with("--") => return Err(missing()),
        Some(w) => w,
    };
    let spec = registry
        .lookup(&module_word)
        .map_err(ParseError::UnknownModule)?;
    let parsed: Vec<Arg> = args.map(classify).collect::<Result<_, _>>()?;
    let mut parsed = parsed.into_iter().peekable();
    let (mut environment, mut project) = (None, None);
    let mut typed = BTreeMap::new();
    let mut words = Vec::new();
    let mut set_place = |name: &str, value: &str| -> Result<(), ParseError> {
        let (slot, v) = match name {
            "project" => (&mut project, project_value(value)?),
            _ => (&mut environment, environment_value(value)?),
        };
        match slot {
            Some(old) if *old != v => Err(ParseError::DuplicateKey {
                key: name.to_owned(),
            }),
            _ => {
                *slot = Some(v);
                Ok(())
            }
        }
    };
    while let Some(arg) = parsed.next() {
        match arg {
            Arg::Flag { name, value } => {
                let (name, value) = flag_value("new", &name, value, FLAGS, &mut parsed)?;
                set_place(name, &value)?;
            }
            Arg::Pair { key, value } => match normalize_key(&key).as_str() {
                k @ ("env" | "environment" | "project") => set_place(k, &value)?,
                _ if is_reserved(&key) && spec.resolve_key(&key).is_none() => {
                    return Err(ParseError::ReservedKey { key });
                }
                _ => insert_pair(&mut typed, key, value)?,
            },
            Arg::Word(w) => words.push(w),
        }
    }
    let values = resolve_values(spec, &typed)?;
    let mut free_text = words.join(" ");
    for line in other_lines {
        if !free_text.is_empty() {
            free_text.push('\n');
        }
        free_text.push_str(line);
        if free_text.len() > MAX_FREE_TEXT_BYTES {
            break;
        }
    }
    if free_text.len() > MAX_FREE_TEXT_BYTES {
        return Err(ParseError::FreeTextTooLong {
            bytes: free_text.len(),
            max: MAX_FREE_TEXT_BYTES,
        });
    }
    Ok(Command::New {
        module: spec.module_type.clone(),
        environment,
        project,
        values,
        free_text,
    })
}

fn parse_set(args: Vec<String>) -> Result<Command, ParseError> {
    if args.is_empty() {
        return Err(ParseError::MissingArguments { command: "set" });
    }
    let mut values = BTreeMap::new();
    for word in args {
        match classify(word)? {
            Arg::Pair { key, value } => {
                if is_reserved(&key) {
                    return Err(ParseError::ReservedKey { key });
                }
                insert_pair(&mut values, key, value)?;
            }
            Arg::Flag { name, .. } => {
                return Err(ParseError::UnknownFlag {
                    command: "set",
                    given: format!("--{name}"),
                    suggestion: None,
                    known: Vec::new(),
                });
            }
            Arg::Word(given) => {
                return Err(ParseError::ExpectedKeyValue {
                    command: "set",
                    given,
                });
            }
        }
    }
    Ok(Command::Set { values })
}

fn parse_unset(args: Vec<String>) -> Result<Command, ParseError> {
    if args.is_empty() {
        return Err(ParseError::MissingArguments { command: "unset" });
    }
    let mut keys: Vec<String> = Vec::new();
    for word in args {
        if word.contains('=') {
            return Err(ParseError::ExpectedKey { given: word });
        }
        if word.starts_with("--") {
            return Err(ParseError::UnknownFlag {
                command: "unset",
                given: word,
                suggestion: None,
                known: Vec::new(),
            });
        }
        check_key(&word)?;
        if is_reserved(&word) {
            return Err(ParseError::ReservedKey { key: word });
        }
        if !keys.contains(&word) {
            keys.push(word);
        }
    }
    Ok(Command::Unset { keys })
}

fn parse_status(args: Vec<String>, registry: &Registry) -> Result<Command, ParseError> {
    const FILTERS: &[&str] = &["env", "environment", "project", "module", "status", "all"];
    let parsed: Vec<Arg> = args.into_iter().map(classify).collect::<Result<_, _>>()?;
    let mut parsed = parsed.into_iter().peekable();
    let mut filters = StatusFilters::default();
    while let Some(arg) = parsed.next() {
        let (name, value) = match arg {
            Arg::Word(w) if w.eq_ignore_ascii_case("all") => {
                filters.include_archived = true;
                continue;
            }
            Arg::Flag { name, value: None } if name.eq_ignore_ascii_case("all") => {
                filters.include_archived = true;
                continue;
            }
            Arg::Flag { name, value } => {
                let (name, value) = flag_value("status", &name, value, FILTERS, &mut parsed)?;
                (name.to_owned(), value)
            }
            Arg::Pair { key, value } => (key.to_ascii_lowercase(), value),
            Arg::Word(given) => {
                let lower = given.to_ascii_lowercase();
                // `status planned`: a status on its own reads naturally.
                if let Ok(s) = lower.parse::<RequestStatus>() {
                    filters.statuses.push(s);
                    continue;
                }
                return Err(ParseError::UnknownFlag {
                    command: "status",
                    given: given.clone(),
                    suggestion: suggest(&lower, FILTERS.iter().copied())
                        .or_else(|| suggest(&lower, RequestStatus::ALL.iter().map(|s| s.as_str())))
                        .map(str::to_owned),
                    known: FILTERS.to_vec(),
                });
            }
        };
        match name.as_str() {
            "env" | "environment" => filters.environment = Some(environment_value(&value)?),
            "project" => filters.project = Some(project_value(&value)?),
            "module" | "type" | "module_type" => {
                let spec = registry.lookup(&value).map_err(ParseError::UnknownModule)?;
                filters.module_type = Some(spec.module_type.clone());
            }
            "status" => {
                for s in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let lower = s.to_ascii_lowercase();
                    let status =
                        lower
                            .parse::<RequestStatus>()
                            .map_err(|_| ParseError::InvalidStatus {
                                given: s.to_owned(),
                                suggestion: suggest(
                                    &lower,
                                    RequestStatus::ALL.iter().map(|s| s.as_str()),
                                ),
                            })?;
                    if !filters.statuses.contains(&status) {
                        filters.statuses.push(status);
                    }
                }
            }
            other => {
                return Err(ParseError::UnknownFlag {
                    command: "status",
                    given: other.to_owned(),
                    suggestion: suggest(other, FILTERS.iter().copied()).map(str::to_owned),
                    known: FILTERS.to_vec(),
                });
            }
        }
    }
    Ok(Command::Status { filters })
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
