//! The words of one command line: split like a shell would, `key=value` pairs, and each
//! command's arguments.

use std::collections::BTreeMap;

use super::*;

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

pub(super) fn parse_command_line(
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
        "modules" => parse_modules(args, registry),
        "drift" => parse_drift(args),
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

/// `drift`, `drift env=prod` (or `--env prod`).
fn parse_drift(args: Vec<String>) -> Result<Command, ParseError> {
    const FLAGS: &[&str] = &["env", "environment"];
    let parsed: Vec<Arg> = args.into_iter().map(classify).collect::<Result<_, _>>()?;
    let mut parsed = parsed.into_iter().peekable();
    let mut environment: Option<String> = None;
    while let Some(arg) = parsed.next() {
        let value = match arg {
            Arg::Flag { name, value } => flag_value("drift", &name, value, FLAGS, &mut parsed)?.1,
            Arg::Pair { key, value } if FLAGS.contains(&normalize_key(&key).as_str()) => value,
            Arg::Pair { key, value } => {
                return Err(ParseError::DriftArguments {
                    given: format!("{key}={value}"),
                });
            }
            Arg::Word(w) => return Err(ParseError::DriftArguments { given: w }),
        };
        let v = environment_value(&value)?;
        if environment.as_ref().is_some_and(|old| *old != v) {
            return Err(ParseError::DuplicateKey { key: "env".into() });
        }
        environment = Some(v);
    }
    Ok(Command::Drift { environment })
}

/// `modules` alone lists the catalogue; `modules <type>` (an alias is fine) shows one type.
fn parse_modules(args: Vec<String>, registry: &Registry) -> Result<Command, ParseError> {
    match args.as_slice() {
        [] => Ok(Command::Modules { module: None }),
        [word] => {
            let spec = registry.lookup(word).map_err(ParseError::UnknownModule)?;
            Ok(Command::Modules {
                module: Some(spec.module_type.clone()),
            })
        }
        _ => Err(ParseError::TooManyModules {
            given: args.join(" "),
        }),
    }
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
