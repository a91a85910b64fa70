//! The deterministic extractor: reads `key=value` and `key: value` pairs, and plain phrases where
//! an input is named ("turn versioning on", "keep objects 30 days", "for lambda").
//!
//! It reads a message in three passes: explicit pairs first (their keys through the catalogue's
//! names and aliases; pairs after "tags"/"labels" become map entries), then each clause (split at
//! commas, semicolons, sentence ends and "and"/"but") for inputs named by their words, by a unit
//! ("30 days" where one input counts days) or by an allowed value ("lambda"), then tokens that
//! match a list input's pattern (`subnet-…`). A message that names nothing may answer the first
//! open question ("yes", "30", "lambda").
//!
//! Pure: no I/O, no clock. Everything it proposes is validated by the catalogue afterwards.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use regex::Regex;
use serde_json::Value;

use super::{
    Clarification, ClarificationKind, ExtractRequest, Extraction, Extractor, ExtractorKind,
};
use crate::command::resolve_key;
use crate::registry::{InputSpec, InputType, ModuleSpec, normalize_key};

/// Only the start of a very long message is read.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// The deterministic extractor (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct RulesExtractor;

#[async_trait]
impl Extractor for RulesExtractor {
    async fn extract(&self, req: &ExtractRequest<'_>) -> Extraction {
        extract(req)
    }

    fn kind(&self) -> ExtractorKind {
        ExtractorKind::Rules
    }
}

static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?x)
        (?P<key>\b[A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_:/@+-]+)?)
        \s*(?P<sep>=|:)\s*
        (?P<value>"[^"\n]*"|'[^'\n]*'|[^\s;]+)
        "#,
    )
    .unwrap_or_else(|e| panic!("PAIR regex: {e}"))
});

static CLAUSE_BREAK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[,;\n]|\.\s|\b(?:and|but|also|then|plus)\b")
        .unwrap_or_else(|e| panic!("CLAUSE_BREAK regex: {e}"))
});

static SENTENCE_BREAK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[;\n]|\.\s").unwrap_or_else(|e| panic!("SENTENCE_BREAK regex: {e}"))
});

static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]+)?")
        .unwrap_or_else(|e| panic!("NUMBER regex: {e}"))
});

const YES: &[&str] = &[
    "yes", "y", "yep", "yeah", "sure", "ok", "okay", "on", "true", "enable", "enabled", "with",
    "want", "need", "add", "please", "do", "activate", "use",
];
const NO: &[&str] = &[
    "no",
    "n",
    "nope",
    "not",
    "don't",
    "dont",
    "never",
    "without",
    "disable",
    "disabled",
    "off",
    "false",
    "none",
    "skip",
    "deactivate",
];
/// Words between an input's name and its value ("name it invoices", "image is nginx").
const FILLER: &[&str] = &[
    "is", "=", "to", "be", "of", "should", "it", "as", "called", "named", "the", "a", "an", "set",
    "use", "with", "at", "for", "will", "must",
];

/// Reads `req.message` (see the module docs).
pub fn extract(req: &ExtractRequest<'_>) -> Extraction {
    let spec = req.spec;
    let message = bounded(req.message, MAX_MESSAGE_BYTES);
    let mut found = Found::default();

    // Pass 1: explicit pairs. Their text is blanked so later passes do not read it again.
    let mut read_spans: Vec<(usize, usize)> = Vec::new();
    for sentence in split_spans(message, &SENTENCE_BREAK) {
        let text = &message[sentence.clone()];
        let maps = map_mentions(spec, text);
        for cap in PAIR.captures_iter(text) {
            let (Some(all), Some(key), Some(sep), Some(value)) = (
                cap.get(0),
                cap.name("key"),
                cap.name("sep"),
                cap.name("value"),
            ) else {
                continue;
            };
            let value = unquote(value.as_str());
            let key_text = key.as_str();
            let mut pairs: Vec<(String, String)> = Vec::new();
            match resolve_key(spec, key_text) {
                Some(canonical) => pairs.push((canonical, value)),
                None => {
                    // `tags Team=payments, Owner=alice`: entries of the map input named before.
                    let named_before = maps
                        .iter()
                        .rev()
                        .find(|(end, _)| *end <= all.start())
                        .map(|(_, map)| map.clone());
                    match named_before {
                        Some(map) => {
                            let mut parts = value.split(',').map(str::trim);
                            let first = parts.next().unwrap_or_default();
                            pairs.push((format!("{map}.{key_text}"), first.to_owned()));
                            for part in parts {
                                if let Some((k, v)) = part.split_once('=') {
                                    pairs
                                        .push((format!("{map}.{}", k.trim()), v.trim().to_owned()));
                                }
                            }
                        }
                        // An unknown `key=value` is passed on so the reply can say "did you
                        // mean"; `word: text` is ordinary prose and is left alone.
                        None if sep.as_str() == "=" => pairs.push((key_text.to_owned(), value)),
                        None => {}
                    }
                }
            }
            let prose = sep.as_str() == ":" && pairs.iter().any(|(_, v)| v.starts_with("//"));
            if prose || pairs.is_empty() {
                continue;
            }
            for (target, value) in pairs {
                if !value.is_empty() && !target.ends_with('.') {
                    found.propose(target, Value::String(value));
                }
            }
            read_spans.push((sentence.start + all.start(), sentence.start + all.end()));
        }
    }

    // The text of the pairs read is blanked (same byte length) so later passes skip it.
    let mut rest = String::with_capacity(message.len());
    let mut last = 0;
    for (start, end) in read_spans {
        rest.push_str(&message[last..start]);
        rest.extend(std::iter::repeat_n(' ', end - start));
        last = end;
    }
    rest.push_str(&message[last..]);

    // Pass 2: list inputs recognized by their pattern anywhere (`subnet-0abc…`, `sg-…`, ARNs),
    // so a list split by "and" stays whole.
    for input in spec
        .inputs
        .iter()
        .filter(|i| i.input_type == InputType::List)
    {
        let Some(re) = &input.pattern else { continue };
        if found.has(&input.name) {
            continue;
        }
        let items: Vec<String> = words(&rest)
            .into_iter()
            .map(|w| w.raw)
            .filter(|w| re.is_match(w))
            .collect();
        if !items.is_empty() {
            found.propose(input.name.clone(), Value::String(items.join(",")));
        }
    }

    // Pass 3: clauses that name an input, a unit or an allowed value.
    for clause in split_spans(&rest, &CLAUSE_BREAK) {
        let words = words(&rest[clause.clone()]);
        if words.is_empty() {
            continue;
        }
        read_clause(spec, &words, &rest[clause], &mut found);
    }

    // A message that named nothing may answer the first open question.
    if found.proposed.is_empty()
        && found.clarifications.is_empty()
        && let Some(question) = req.pending.first()
        && let Some(input) = spec.input(&question.input)
        && let Some(value) = answer(input, question, message)
    {
        found.propose(input.name.clone(), value);
    }

    let reply = if found.proposed.is_empty() && found.clarifications.is_empty() {
        let example = spec
            .required_inputs()
            .find(|i| !req.collected.contains_key(&i.name))
            .or_else(|| spec.inputs.first())
            .map(|i| format!(" (for example `{}=…`)", i.name))
            .unwrap_or_default();
        format!(
            "I did not find any input values in that. Write them as `key=value`{example}, \
             or in words such as \"turn versioning on\"."
        )
    } else {
        String::new()
    };
    Extraction {
        proposed: found.proposed,
        clarifications: found.clarifications,
        reply,
        source: ExtractorKind::Rules,
    }
}

#[derive(Default)]
struct Found {
    proposed: BTreeMap<String, Value>,
    clarifications: Vec<Clarification>,
}

impl Found {
    fn has(&self, input: &str) -> bool {
        self.proposed.contains_key(input)
    }

    /// The first value for a key wins: a message that says two things about one input is read
    /// in order, and an explicit pair comes before prose.
    fn propose(&mut self, key: String, value: Value) {
        self.clarifications.retain(|c| c.input != key);
        self.proposed.entry(key).or_insert(value);
    }

    fn ask(&mut self, input: &InputSpec, question: Option<String>) {
        if self.has(&input.name) || self.clarifications.iter().any(|c| c.input == input.name) {
            return;
        }
        let mut c = crate::assist::clarification_for(input);
        if let Some(q) = question {
            c.question = q;
        }
        self.clarifications.push(c);
    }
}

/// A word of a clause: as written (for values) and lowercased with a plural `s` dropped (for
/// matching input names).
#[derive(Debug, Clone)]
struct Word {
    raw: String,
    lower: String,
    stem: String,
}

fn words(text: &str) -> Vec<Word> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| ",.;:!?()[]{}\"'`*".contains(c)))
        .filter(|w| !w.is_empty())
        .map(|raw| {
            // "don’t" as phones type it is "don't": the negations are matched on the ASCII form.
            let lower = raw
                .to_lowercase()
                .replace(['\u{2019}', '\u{2018}', '\u{02bc}'], "'");
            Word {
                raw: raw.to_owned(),
                stem: stem(&lower),
                lower,
            }
        })
        .collect()
}

fn stem(lower: &str) -> String {
    match lower.strip_suffix('s') {
        Some(s) if s.len() >= 3 && !s.ends_with('s') => s.to_owned(),
        _ => lower.to_owned(),
    }
}

fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    v.trim_end_matches(|c: char| ".,!?)".contains(c)).to_owned()
}

/// Byte ranges of `text` between matches of `breaks`.
fn split_spans(text: &str, breaks: &Regex) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    for m in breaks.find_iter(text) {
        spans.push(start..m.start());
        start = m.end();
    }
    spans.push(start..text.len());
    spans
}

/// The phrases that name an input: its name and aliases as words, and the name without a
/// trailing unit word (`visibility_timeout_seconds` → "visibility timeout").
fn phrases(input: &InputSpec) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut add = |key: &str| {
        let ws: Vec<String> = normalize_key(key)
            .split('_')
            .filter(|w| !w.is_empty())
            .map(stem)
            .collect();
        if !ws.is_empty() && !out.contains(&ws) {
            out.push(ws);
        }
    };
    add(&input.name);
    for alias in &input.aliases {
        add(alias);
    }
    for suffix in ["_seconds", "_days", "_ids", "_enabled", "_arns", "_count"] {
        if let Some(base) = input.name.strip_suffix(suffix) {
            add(base);
        }
    }
    out
}

/// How strongly a clause names an input: the number of words of its longest phrase found in the
/// clause (0: not named), where that phrase starts, and the index of the word after the last
/// word of any of its phrases.
fn mention(input: &InputSpec, words: &[Word]) -> Mention {
    let mut best = Mention::default();
    for phrase in phrases(input) {
        let positions: Option<Vec<usize>> = phrase
            .iter()
            .map(|p| words.iter().position(|w| w.stem == *p))
            .collect();
        let Some(positions) = positions else { continue };
        let start = positions.iter().copied().min().unwrap_or(0);
        let end = positions.iter().copied().max().map_or(0, |i| i + 1);
        let better =
            phrase.len() > best.score || (phrase.len() == best.score && start < best.start);
        if better {
            best.score = phrase.len();
            best.start = start;
        }
        // The value follows the last word that names the input ("bucket name is …").
        best.end = best.end.max(end);
    }
    best
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mention {
    score: usize,
    start: usize,
    end: usize,
}

/// Where `text` names a map input ("tags", "labels", "env vars"): the byte offset after the word
/// that completes the name, and the input. One pass over the words.
fn map_mentions(spec: &ModuleSpec, text: &str) -> Vec<(usize, String)> {
    let maps: Vec<(&str, Vec<Vec<String>>)> = spec
        .inputs
        .iter()
        .filter(|i| i.input_type == InputType::Map)
        .map(|i| (i.name.as_str(), phrases(i)))
        .collect();
    let mut out = Vec::new();
    if maps.is_empty() {
        return out;
    }
    let mut seen: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for raw in text.split_whitespace() {
        // `raw` is a slice of `text`, so its offset is the distance between the two.
        let end = raw.as_ptr() as usize - text.as_ptr() as usize + raw.len();
        let word = stem(
            &raw.trim_matches(|c: char| ",.;:!?()[]{}\"'`*".contains(c))
                .to_lowercase(),
        );
        if word.is_empty() {
            continue;
        }
        seen.insert(word.clone());
        for (name, phrases) in &maps {
            let named = phrases
                .iter()
                .any(|p| p.contains(&word) && p.iter().all(|w| seen.contains(w)));
            if named {
                out.push((end, (*name).to_owned()));
            }
        }
    }
    out
}

fn read_clause(spec: &ModuleSpec, words: &[Word], clause: &str, found: &mut Found) {
    // The input the clause names most strongly (more words, then earlier); a full tie between
    // two inputs is no answer.
    let mut best: Option<(Mention, &InputSpec)> = None;
    let mut tie = false;
    for input in &spec.inputs {
        let m = mention(input, words);
        if m.score == 0 {
            continue;
        }
        match best {
            Some((b, _))
                if (m.score, std::cmp::Reverse(m.start))
                    < (b.score, std::cmp::Reverse(b.start)) => {}
            Some((b, _)) if m.score == b.score && m.start == b.start => tie = true,
            _ => {
                best = Some((m, input));
                tie = false;
            }
        }
    }
    if let Some((m, input)) = best
        && !tie
    {
        if !found.has(&input.name) {
            read_value(input, words, m.end, clause, found);
        }
        // "fifo with a dlq": every switch the clause names takes its yes or no.
        if input.input_type == InputType::Bool {
            for other in spec
                .inputs
                .iter()
                .filter(|i| i.input_type == InputType::Bool && i.name != input.name)
            {
                if !found.has(&other.name) && mention(other, words).score > 0 {
                    read_value(other, words, 0, clause, found);
                }
            }
        }
        return;
    }
    // No input named: a number with a unit only one input counts in.
    if let Some((n, Some(unit))) = first_number(words) {
        let candidates: Vec<&InputSpec> = spec
            .inputs
            .iter()
            .filter(|i| i.input_type == InputType::Number && !found.has(&i.name))
            .filter(|i| {
                i.unit
                    .as_deref()
                    .is_some_and(|u| convert(n, &unit, u).is_some())
            })
            .collect();
        if let [input] = candidates.as_slice()
            && let Some(v) = input.unit.as_deref().and_then(|u| convert(n, &unit, u))
        {
            found.propose(input.name.clone(), number_value(v));
            return;
        }
    }
    // Or one of the allowed values of exactly one input ("for lambda").
    let mut choices = spec
        .inputs
        .iter()
        .filter(|i| i.input_type == InputType::String && !found.has(&i.name))
        .filter_map(|i| choose(i, words).map(|v| (i, v)));
    if let (Some((input, value)), None) = (choices.next(), choices.next()) {
        found.propose(input.name.clone(), Value::String(value));
    }
    // "called invoices", "call it invoices": the `name` input.
    if let Some(input) = spec.input("name")
        && !found.has("name")
        && let Some(i) = words
            .iter()
            .position(|w| matches!(w.lower.as_str(), "called" | "named" | "call" | "name"))
        && let Some(w) = words[i + 1..]
            .iter()
            .find(|w| !FILLER.contains(&w.lower.as_str()))
    {
        found.propose(input.name.clone(), Value::String(w.raw.clone()));
    }
}

fn read_value(input: &InputSpec, words: &[Word], after: usize, clause: &str, found: &mut Found) {
    match input.input_type {
        InputType::Bool => {
            if clause.trim_end().ends_with('?') {
                found.ask(input, None);
            } else {
                let negative = words.iter().any(|w| NO.contains(&w.lower.as_str()))
                    || words.iter().any(|w| w.lower.ends_with("n't"));
                found.propose(input.name.clone(), Value::Bool(!negative));
            }
        }
        InputType::Number => {
            let value = first_number(words).and_then(|(n, unit)| in_input_unit(input, n, unit));
            match value {
                Some(v) => found.propose(input.name.clone(), number_value(v)),
                None => found.ask(input, None),
            }
        }
        InputType::String if !input.allowed_values.is_empty() => match choose(input, words) {
            Some(v) => found.propose(input.name.clone(), Value::String(v)),
            None => found.ask(input, None),
        },
        InputType::String => {
            let rest: Vec<&Word> = words[after.min(words.len())..]
                .iter()
                .skip_while(|w| FILLER.contains(&w.lower.as_str()))
                .collect();
            let takes_spaces = input.pattern.as_ref().is_none_or(|re| re.is_match("a b"));
            let value = if takes_spaces {
                rest.iter()
                    .map(|w| w.raw.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                rest.first().map(|w| w.raw.clone()).unwrap_or_default()
            };
            if value.is_empty() {
                found.ask(input, None);
            } else {
                found.propose(input.name.clone(), Value::String(value));
            }
        }
        InputType::List => {
            let items: Vec<String> = match &input.pattern {
                Some(re) => words
                    .iter()
                    .filter(|w| re.is_match(&w.raw))
                    .map(|w| w.raw.clone())
                    .collect(),
                None => words[after.min(words.len())..]
                    .iter()
                    .filter(|w| !FILLER.contains(&w.lower.as_str()))
                    .map(|w| w.raw.clone())
                    .collect(),
            };
            if items.is_empty() {
                found.ask(input, None);
            } else {
                found.propose(input.name.clone(), Value::String(items.join(",")));
            }
        }
        // Map entries are read as pairs in the first pass; naming the map alone asks for them.
        InputType::Map => {
            if !found.proposed.keys().any(|k| {
                k.strip_prefix(&input.name)
                    .is_some_and(|r| r.starts_with('.'))
            }) {
                found.ask(input, None);
            }
        }
    }
}

/// The allowed value a clause names: the whole value, or its first part (`lambda` for
/// `lambda.amazonaws.com`, `ecs` for `ecs-tasks.amazonaws.com`). Several: no answer.
fn choose(input: &InputSpec, words: &[Word]) -> Option<String> {
    let mut hits: Vec<String> = Vec::new();
    for allowed in &input.allowed_values {
        let a = allowed.to_plain_string();
        let lower = a.to_lowercase();
        let named = words.iter().any(|w| {
            w.lower == lower
                || (w.lower.len() >= 3
                    && lower.starts_with(&w.lower)
                    && lower[w.lower.len()..].starts_with(['.', '-']))
        });
        if named && !hits.contains(&a) {
            hits.push(a);
        }
    }
    match hits.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

fn number_word(w: &str) -> Option<f64> {
    Some(match w {
        "a" | "an" | "one" => 1.0,
        "two" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "twelve" => 12.0,
        "fourteen" => 14.0,
        "thirty" => 30.0,
        "ninety" => 90.0,
        _ => return None,
    })
}

/// The first number in a clause and the word after it if it is a unit: "30 days", "30days",
/// "a week" (a number word counts only before a unit).
fn first_number(words: &[Word]) -> Option<(f64, Option<String>)> {
    for (i, w) in words.iter().enumerate() {
        if let Some(cap) = NUMBER.captures(&w.lower)
            && cap.get(0).is_some_and(|m| m.start() == 0)
            && let Some(n) = cap.name("n").and_then(|n| n.as_str().parse::<f64>().ok())
        {
            let unit = cap
                .name("unit")
                .map(|u| u.as_str().to_owned())
                .or_else(|| words.get(i + 1).map(|n| n.lower.clone()))
                .filter(|u| unit_factor(u).is_some());
            return Some((n, unit));
        }
        if let Some(n) = number_word(&w.lower)
            && let Some(next) = words.get(i + 1)
            && unit_factor(&next.lower).is_some()
        {
            return Some((n, Some(next.lower.clone())));
        }
    }
    None
}

/// A unit word's family and size: time in seconds, memory in MiB, CPU in CPU units.
fn unit_factor(word: &str) -> Option<(&'static str, f64)> {
    let w = word.to_lowercase();
    Some(match w.as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => ("time", 1.0),
        "m" | "min" | "mins" | "minute" | "minutes" => ("time", 60.0),
        "h" | "hr" | "hrs" | "hour" | "hours" => ("time", 3600.0),
        "d" | "day" | "days" => ("time", 86_400.0),
        "w" | "wk" | "week" | "weeks" => ("time", 604_800.0),
        "year" | "years" | "yr" | "yrs" => ("time", 365.0 * 86_400.0),
        "mb" | "mib" => ("memory", 1.0),
        "gb" | "gib" => ("memory", 1024.0),
        "cpu" | "vcpu" | "vcpus" => ("cpu", 1024.0),
        "units" | "cpu units" => ("cpu", 1.0),
        _ => return None,
    })
}

/// `n` of `from` expressed in the input's unit `to`, if they measure the same thing and the
/// result is whole (a fraction of a day is not a number of days).
fn convert(n: f64, from: &str, to: &str) -> Option<f64> {
    let (family_from, size_from) = unit_factor(from)?;
    let (family_to, size_to) = unit_factor(to)?;
    if family_from != family_to {
        return None;
    }
    let v = n * size_from / size_to;
    (v.fract() == 0.0).then_some(v)
}

/// `n` (in `unit`, when one was written) in the input's unit. A unit that does not convert (another
/// kind, or not a whole number of the input's unit) gives nothing: "36 hours" is not 36 days.
fn in_input_unit(input: &InputSpec, n: f64, unit: Option<String>) -> Option<f64> {
    match (unit, input.unit.as_deref()) {
        (Some(unit), Some(target)) => convert(n, &unit, target),
        _ => Some(n),
    }
}

fn number_value(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

/// Reads a message as the answer to an open question.
fn answer(input: &InputSpec, question: &Clarification, message: &str) -> Option<Value> {
    let ws = words(message);
    match &question.kind {
        ClarificationKind::YesNo => {
            if ws.iter().any(|w| NO.contains(&w.lower.as_str())) {
                Some(Value::Bool(false))
            } else if ws.iter().any(|w| YES.contains(&w.lower.as_str())) {
                Some(Value::Bool(true))
            } else {
                None
            }
        }
        ClarificationKind::Choice { .. } if input.input_type == InputType::Number => {
            let (n, unit) = first_number(&ws)?;
            in_input_unit(input, n, unit).map(number_value)
        }
        ClarificationKind::Choice { .. } => choose(input, &ws).map(Value::String),
        ClarificationKind::Text => match input.input_type {
            InputType::Number => {
                let (n, unit) = first_number(&ws)?;
                in_input_unit(input, n, unit).map(number_value)
            }
            InputType::Bool => None,
            InputType::String => match ws.as_slice() {
                [one] => Some(Value::String(one.raw.clone())),
                _ if input.pattern.as_ref().is_none_or(|re| re.is_match("a b")) => {
                    Some(Value::String(message.trim().to_owned()))
                }
                _ => None,
            },
            InputType::List | InputType::Map => Some(Value::String(message.trim().to_owned())),
        },
    }
}

#[cfg(test)]
mod tests;
