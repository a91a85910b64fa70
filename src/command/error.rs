//! What can be wrong with a command, in words for the person who typed it.

use std::fmt;

use super::*;

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
    /// `modules` with more than one word after it.
    TooManyModules {
        given: String,
    },
    /// `drift` with something other than an environment.
    DriftArguments {
        given: String,
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
            TooManyModules { given } => write!(
                f,
                "`modules` takes at most one module type, but got `{}`. For example `modules s3-bucket`.",
                display_safe(given)
            ),
            DriftArguments { given } => write!(
                f,
                "`drift` takes only an environment (`drift env=prod`), but got `{}`.",
                display_safe(given)
            ),
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
