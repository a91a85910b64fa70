//! Normalization and validation: from the raw values a user gave (`versioning=yes`,
//! `tags.Team=payments`) to a [`ModuleConfig`] ready to render, or to a [`ConfigErrors`] that
//! lists every problem at once, each naming the input.
//!
//! Pure functions: no I/O, no clock, no randomness.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{InputSpec, InputType, ModuleSpec, display_safe};
use crate::ids::RequestId;

/// A normalized input value. Lists and maps hold strings (`list(string)`, `map(string)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputValue {
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    List(Vec<String>),
    Map(BTreeMap<String, String>),
}

impl InputValue {
    pub fn input_type(&self) -> InputType {
        match self {
            InputValue::Bool(_) => InputType::Bool,
            InputValue::Number(_) => InputType::Number,
            InputValue::String(_) => InputType::String,
            InputValue::List(_) => InputType::List,
            InputValue::Map(_) => InputType::Map,
        }
    }

    /// The value as it reads in a template or a message (`true`, `30`, `invoices`).
    pub fn to_plain_string(&self) -> String {
        match self {
            InputValue::Bool(b) => b.to_string(),
            InputValue::Number(n) => n.to_string(),
            InputValue::String(s) => s.clone(),
            other => serde_json::to_string(other).unwrap_or_default(),
        }
    }

    /// Converts a catalogue (TOML) value of the expected type.
    pub(crate) fn from_toml(v: &toml::Value, ty: InputType) -> Option<InputValue> {
        match (ty, v) {
            (InputType::String, toml::Value::String(s)) => Some(InputValue::String(s.clone())),
            (InputType::Bool, toml::Value::Boolean(b)) => Some(InputValue::Bool(*b)),
            (InputType::Number, toml::Value::Integer(i)) => Some(InputValue::Number((*i).into())),
            (InputType::Number, toml::Value::Float(f)) => {
                serde_json::Number::from_f64(*f).map(InputValue::Number)
            }
            (InputType::List, toml::Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(InputValue::List),
            (InputType::Map, toml::Value::Table(t)) => t
                .iter()
                .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect::<Option<BTreeMap<_, _>>>()
                .map(InputValue::Map),
            _ => None,
        }
    }
}

impl fmt::Display for InputValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_plain_string())
    }
}

/// Where a request lives: the values computed names and tags are made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigContext {
    pub request_id: RequestId,
    /// The project (from `.tfpilot.yml`), e.g. `core`.
    pub project: String,
    /// The environment (`dev`, `prod`), also the directory under `envs/`.
    pub environment: String,
}

/// A validated, normalized module configuration: what TfPilot renders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleConfig {
    pub module_type: String,
    pub context: ConfigContext,
    /// Every input after normalization and defaults (optional inputs without a default and
    /// without a value are absent). The tags input holds only the user's own tags.
    pub inputs: BTreeMap<String, InputValue>,
    /// The values TfPilot derived: names, and the tags input with the standard tags merged in.
    pub computed: BTreeMap<String, InputValue>,
}

impl ModuleConfig {
    /// The module block's arguments in the order they are written: computed names, then the
    /// inputs in catalogue order, the tags last.
    pub fn arguments<'a>(&'a self, spec: &'a ModuleSpec) -> Vec<(&'a str, &'a InputValue)> {
        let tags = spec.tags_input.as_deref();
        let mut out: Vec<(&str, &InputValue)> = spec
            .module_variables()
            .filter(|name| Some(*name) != tags)
            .filter_map(|name| self.value(name).map(|v| (name, v)))
            .collect();
        if let Some(tags) = tags
            && let Some(v) = self.value(tags)
        {
            out.push((tags, v));
        }
        out
    }

    /// The value passed to a module variable (computed values take precedence).
    pub fn value(&self, name: &str) -> Option<&InputValue> {
        self.computed.get(name).or_else(|| self.inputs.get(name))
    }
}

/// One problem with a user's values. Every variant names the input (or key) it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConfigError {
    /// A required input has no value.
    Missing { input: String, description: String },
    /// A key that is not an input of this module type.
    Unknown {
        key: String,
        suggestion: Option<String>,
    },
    /// A value that cannot be used; `reason` is a sentence for the user.
    Invalid { input: String, reason: String },
    /// Two keys that mean the same input, with different values.
    Duplicate { input: String, keys: Vec<String> },
    /// The project or environment cannot be used in names.
    Context { field: String, reason: String },
    /// A derived value (a resource name) cannot be made valid.
    Computed { name: String, reason: String },
}

impl ConfigError {
    /// The input, key or field the problem is about.
    pub fn subject(&self) -> &str {
        match self {
            ConfigError::Missing { input, .. }
            | ConfigError::Invalid { input, .. }
            | ConfigError::Duplicate { input, .. } => input,
            ConfigError::Unknown { key, .. } => key,
            ConfigError::Context { field, .. } => field,
            ConfigError::Computed { name, .. } => name,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing { input, description } => {
                write!(f, "`{input}` is required: {description}")
            }
            ConfigError::Unknown { key, suggestion } => {
                write!(f, "`{}` is not an input of this module", display_safe(key))?;
                match suggestion {
                    Some(s) => write!(f, " — did you mean `{s}`?"),
                    None => Ok(()),
                }
            }
            ConfigError::Invalid { input, reason } => write!(f, "`{input}`: {reason}"),
            ConfigError::Duplicate { input, keys } => {
                let keys: Vec<String> = keys
                    .iter()
                    .map(|k| format!("`{}`", display_safe(k)))
                    .collect();
                write!(
                    f,
                    "`{input}` is given more than once with different values (as {}); give it once",
                    keys.join(" and ")
                )
            }
            ConfigError::Context { field, reason } => write!(f, "{field}: {reason}"),
            ConfigError::Computed { name, reason } => write!(f, "`{name}`: {reason}"),
        }
    }
}

/// Every problem found in one set of values. Its `Display` is written for the GitHub user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ConfigErrors {
    pub module_type: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errors.len() {
            1 => writeln!(f, "The `{}` inputs have a problem:", self.module_type)?,
            n => writeln!(f, "The `{}` inputs have {n} problems:", self.module_type)?,
        }
        for (i, e) in self.errors.iter().enumerate() {
            if i + 1 == self.errors.len() {
                write!(f, "- {e}")?;
            } else {
                writeln!(f, "- {e}")?;
            }
        }
        Ok(())
    }
}

/// An input that has no value yet, with what a prompt needs to ask for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingInput {
    pub name: String,
    pub description: String,
    pub input_type: InputType,
    pub required: bool,
    /// The value that applies if the user gives none (optional inputs only).
    pub default: Option<InputValue>,
    pub unit: Option<String>,
    pub allowed_values: Vec<InputValue>,
}

/// The state of a conversation's values so far: what is valid, what is wrong, what is missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartialConfig {
    /// The valid values given so far, under canonical names (invalid ones are left out).
    pub inputs: BTreeMap<String, InputValue>,
    /// Unknown keys, invalid values and duplicates (never "missing").
    pub errors: Vec<ConfigError>,
    /// Required inputs without a value yet, in catalogue order.
    pub missing_required: Vec<MissingInput>,
    /// Optional inputs without a value yet, with the default that will apply.
    pub unset_optional: Vec<MissingInput>,
}

impl PartialConfig {
    /// True when [`build_module_config`] has every input it needs (it may still find problems
    /// in the derived names).
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty() && self.missing_required.is_empty()
    }
}

/// Builds a raw value map from `key=value` string pairs (CLI `--set`, command arguments).
pub fn raw_from_pairs<K: Into<String>, V: Into<String>>(
    pairs: impl IntoIterator<Item = (K, V)>,
) -> BTreeMap<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), Value::String(v.into())))
        .collect()
}

/// Normalizes and validates `raw` against `spec`, merges defaults and computes names and tags.
///
/// Keys may be canonical names, aliases, camelCase or kebab-case; `map.key` sets one entry of a
/// map input. A JSON `null` counts as "not given". Every problem is reported, not just the first.
pub fn build_module_config(
    spec: &ModuleSpec,
    raw: &BTreeMap<String, Value>,
    ctx: &ConfigContext,
) -> Result<ModuleConfig, ConfigErrors> {
    let Collected { values, mut errors } = collect(spec, raw, Some(ctx));

    let mut inputs = BTreeMap::new();
    for input in &spec.inputs {
        match values.get(&input.name) {
            Some(v) => {
                inputs.insert(input.name.clone(), v.clone());
            }
            None if input.required => {
                // An invalid value was already reported; don't also call it missing.
                if !errors.iter().any(|e| e.subject() == input.name) {
                    errors.push(ConfigError::Missing {
                        input: input.name.clone(),
                        description: input.description.clone(),
                    });
                }
            }
            None => {
                if let Some(d) = &input.default {
                    inputs.insert(input.name.clone(), d.clone());
                }
            }
        }
    }

    errors.extend(check_context(ctx));
    let mut computed = BTreeMap::new();
    if errors.is_empty() {
        for c in &spec.computed {
            match compute(c, &inputs, ctx) {
                Ok(v) => {
                    computed.insert(c.name.clone(), InputValue::String(v));
                }
                Err(reason) => errors.push(ConfigError::Computed {
                    name: c.name.clone(),
                    reason,
                }),
            }
        }
        if let Some(tags_input) = &spec.tags_input {
            let mut tags = match inputs.get(tags_input) {
                Some(InputValue::Map(m)) => m.clone(),
                _ => BTreeMap::new(),
            };
            for (k, v) in standard_tags(ctx) {
                tags.insert(k.to_owned(), v);
            }
            computed.insert(tags_input.clone(), InputValue::Map(tags));
        }
    }

    if errors.is_empty() {
        Ok(ModuleConfig {
            module_type: spec.module_type.clone(),
            context: ctx.clone(),
            inputs,
            computed,
        })
    } else {
        Err(ConfigErrors {
            module_type: spec.module_type.clone(),
            errors,
        })
    }
}

/// Validates the values collected so far without failing on the ones still missing: for a
/// conversation that asks for inputs one reply at a time.
pub fn validate_partial(spec: &ModuleSpec, raw: &BTreeMap<String, Value>) -> PartialConfig {
    let Collected { values, errors } = collect(spec, raw, None);
    let mut missing_required = Vec::new();
    let mut unset_optional = Vec::new();
    for input in &spec.inputs {
        if values.contains_key(&input.name) {
            continue;
        }
        let missing = MissingInput {
            name: input.name.clone(),
            description: input.description.clone(),
            input_type: input.input_type,
            required: input.required,
            default: input.default.clone(),
            unit: input.unit.clone(),
            allowed_values: input.allowed_values.clone(),
        };
        if input.required {
            if !errors.iter().any(|e| e.subject() == input.name) {
                missing_required.push(missing);
            }
        } else {
            unset_optional.push(missing);
        }
    }
    PartialConfig {
        inputs: values,
        errors,
        missing_required,
        unset_optional,
    }
}

/// The tags every TfPilot resource carries; users cannot set these keys themselves.
pub fn standard_tags(ctx: &ConfigContext) -> [(&'static str, String); 4] {
    [
        ("ManagedBy", "tfpilot".to_owned()),
        ("TfPilotRequestId", ctx.request_id.to_string()),
        ("Project", ctx.project.clone()),
        ("Environment", ctx.environment.clone()),
    ]
}

struct Collected {
    values: BTreeMap<String, InputValue>,
    errors: Vec<ConfigError>,
}

/// Resolves keys, coerces and checks values. `ctx` is only used for the tag rules.
fn collect(
    spec: &ModuleSpec,
    raw: &BTreeMap<String, Value>,
    ctx: Option<&ConfigContext>,
) -> Collected {
    let mut errors = Vec::new();
    // canonical name -> (keys as given, value)
    let mut given: BTreeMap<String, Vec<(String, InputValue)>> = BTreeMap::new();
    let mut map_entries: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut invalid: Vec<String> = Vec::new();

    for (key, value) in raw {
        if value.is_null() {
            continue;
        }
        // `tags.Team=payments`: one entry of a map input. The entry key keeps its spelling.
        if let Some((head, entry)) = key.split_once('.')
            && let Some(input) = spec.resolve_key(head)
            && input.input_type == InputType::Map
        {
            match scalar_to_string(value) {
                Some(v) if !entry.is_empty() => {
                    let entry = normalize_text(entry);
                    let slot = map_entries.entry(input.name.clone()).or_default();
                    if slot.get(&entry).is_some_and(|old| *old != v) {
                        invalid.push(input.name.clone());
                        errors.push(ConfigError::Invalid {
                            input: input.name.clone(),
                            reason: format!(
                                "key `{}` is given twice with different values",
                                display_safe(&entry)
                            ),
                        });
                    }
                    slot.insert(entry, v);
                }
                _ => {
                    invalid.push(input.name.clone());
                    errors.push(ConfigError::Invalid {
                        input: input.name.clone(),
                        reason: format!(
                            "`{}` must give one text value to one key, like `{}.Team=payments`",
                            display_safe(key),
                            input.name
                        ),
                    });
                }
            }
            continue;
        }
        let Some(input) = spec.resolve_key(key) else {
            errors.push(ConfigError::Unknown {
                key: key.clone(),
                suggestion: spec.suggest_input(key).map(str::to_owned),
            });
            continue;
        };
        match coerce(input, value) {
            Ok(v) => given
                .entry(input.name.clone())
                .or_default()
                .push((key.clone(), v)),
            Err(reason) => {
                invalid.push(input.name.clone());
                errors.push(ConfigError::Invalid {
                    input: input.name.clone(),
                    reason,
                });
            }
        }
    }

    let mut values = BTreeMap::new();
    for (name, mut versions) in given {
        let first = versions.remove(0);
        if versions.iter().any(|(_, v)| *v != first.1) {
            let mut keys = vec![first.0];
            keys.extend(versions.into_iter().map(|(k, _)| k));
            errors.push(ConfigError::Duplicate { input: name, keys });
            continue;
        }
        values.insert(name, first.1);
    }
    for (name, entries) in map_entries {
        if invalid.contains(&name)
            || errors
                .iter()
                .any(|e| matches!(e, ConfigError::Duplicate { input, .. } if *input == name))
        {
            continue;
        }
        let slot = values
            .entry(name)
            .or_insert_with(|| InputValue::Map(BTreeMap::new()));
        if let InputValue::Map(m) = slot {
            m.extend(entries);
        }
    }

    // Check every value against its input's rules (after merging, so map entries are checked).
    values.retain(|name, value| {
        let Some(input) = spec.input(name) else {
            return false;
        };
        let mut result = check_value(input, value);
        if result.is_ok() && spec.tags_input.as_deref() == Some(name.as_str()) {
            result = check_tags(value, ctx);
        }
        match result {
            Ok(()) => true,
            Err(reason) => {
                errors.push(ConfigError::Invalid {
                    input: name.clone(),
                    reason,
                });
                false
            }
        }
    });
    Collected { values, errors }
}

/// Text as Terraform will see it: trimmed and in Unicode NFC (Terraform normalizes every string
/// to NFC, so `é` written as `e` + combining accent would otherwise differ from what we store and
/// could make two distinct-looking map keys collide at plan time).
fn normalize_text(s: &str) -> String {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
        .normalize(s.trim())
        .into_owned()
}

fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(normalize_text(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a true/false value",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Turns a raw value into the input's type, accepting the obvious spellings.
fn coerce(input: &InputSpec, raw: &Value) -> Result<InputValue, String> {
    let value = match input.input_type {
        InputType::String => match scalar_to_string(raw) {
            Some(s) => InputValue::String(canonical_allowed(input, s)),
            None => return Err(format!("expected text, got {}", kind_of(raw))),
        },
        InputType::Bool => InputValue::Bool(coerce_bool(raw)?),
        InputType::Number => InputValue::Number(coerce_number(input, raw)?),
        InputType::List => InputValue::List(
            coerce_list(raw)?
                .into_iter()
                .map(|s| canonical_allowed(input, s))
                .collect(),
        ),
        InputType::Map => InputValue::Map(coerce_map(raw)?),
    };
    Ok(value)
}

/// Allowed values are matched without regard to case and stored in the catalogue's spelling.
fn canonical_allowed(input: &InputSpec, s: String) -> String {
    input
        .allowed_values
        .iter()
        .find_map(|a| match a {
            InputValue::String(a) if a.eq_ignore_ascii_case(&s) => Some(a.clone()),
            _ => None,
        })
        .unwrap_or(s)
}

fn coerce_bool(raw: &Value) -> Result<bool, String> {
    match raw {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" | "1" | "enabled" | "enable" => Ok(true),
            "false" | "no" | "n" | "off" | "0" | "disabled" | "disable" => Ok(false),
            _ => Err(format!(
                "`{}` is not true or false (yes/no and on/off work too)",
                display_safe(s)
            )),
        },
        other => Err(format!("expected true or false, got {}", kind_of(other))),
    }
}

fn coerce_number(input: &InputSpec, raw: &Value) -> Result<serde_json::Number, String> {
    let (n, shown) = match raw {
        Value::Number(n) => (n.as_f64().unwrap_or(f64::NAN), n.to_string()),
        Value::String(s) => (
            parse_number_with_unit(s, input.unit.as_deref())?,
            s.trim().to_owned(),
        ),
        other => return Err(format!("expected a number, got {}", kind_of(other))),
    };
    if !n.is_finite() {
        return Err(format!("`{}` is not a number", display_safe(&shown)));
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        // Whole numbers are stored as integers so `30` renders as `30`, not `30.0`.
        Ok(serde_json::Number::from(n as i64))
    } else if input.integer {
        Err(format!("`{}` must be a whole number", display_safe(&shown)))
    } else {
        serde_json::Number::from_f64(n)
            .ok_or_else(|| format!("`{}` is not a number", display_safe(&shown)))
    }
}

/// `30`, `30 days`, `1 day`, `-2.5`; a unit word must be the input's own unit.
fn parse_number_with_unit(s: &str, unit: Option<&str>) -> Result<f64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(t.len());
    let (num, rest) = t.split_at(split);
    let rest = rest.trim();
    let unit_ok = rest.is_empty()
        || unit.is_some_and(|u| {
            rest.eq_ignore_ascii_case(u)
                || u.strip_suffix('s')
                    .is_some_and(|singular| rest.eq_ignore_ascii_case(singular))
        });
    let parsed = num.parse::<f64>().ok().filter(|n| n.is_finite());
    match (parsed, unit_ok) {
        (Some(n), true) => Ok(n),
        (Some(_), false) => Err(match unit {
            Some(u) => format!("`{}`: give the number in {u}", display_safe(t)),
            None => format!("`{}` is not a plain number", display_safe(t)),
        }),
        (None, _) => Err(format!("`{}` is not a number", display_safe(t))),
    }
}

fn coerce_list(raw: &Value) -> Result<Vec<String>, String> {
    let items: Vec<Value> = match raw {
        Value::Array(items) => items.clone(),
        Value::String(s) if s.trim_start().starts_with('[') => {
            serde_json::from_str(s).map_err(|_| {
                format!(
                    "`{}` is not a list; write a,b,c or a JSON list",
                    display_safe(s)
                )
            })?
        }
        Value::String(s) => {
            return Ok(s
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .collect());
        }
        other => vec![other.clone()],
    };
    items
        .iter()
        .map(|i| {
            scalar_to_string(i)
                .ok_or_else(|| format!("list items must be text, got {}", kind_of(i)))
        })
        .collect()
}

fn coerce_map(raw: &Value) -> Result<BTreeMap<String, String>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    match raw {
        Value::String(s) if !s.trim_start().starts_with('{') => {
            for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((k, v)) = pair.split_once('=').or_else(|| pair.split_once(':')) else {
                    return Err(format!("`{}` is not a key=value pair", display_safe(pair)));
                };
                pairs.push((normalize_text(k), normalize_text(v)));
            }
        }
        Value::String(_) | Value::Object(_) => {
            let object: serde_json::Map<String, Value> = match raw {
                Value::Object(o) => o.clone(),
                _ => serde_json::from_str(raw.as_str().unwrap_or_default()).map_err(|_| {
                    format!(
                        "`{}` is not a map; write key=value,key2=value2 or a JSON object",
                        display_safe(raw.as_str().unwrap_or_default())
                    )
                })?,
            };
            for (k, v) in &object {
                let v = scalar_to_string(v).ok_or_else(|| {
                    format!(
                        "the value of `{}` must be text, got {}",
                        display_safe(k),
                        kind_of(v)
                    )
                })?;
                pairs.push((normalize_text(k), v));
            }
        }
        other => {
            return Err(format!(
                "expected a map of key=value pairs, got {}",
                kind_of(other)
            ));
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in pairs {
        if let Some(previous) = out.insert(k.clone(), v.clone())
            && previous != v
        {
            // Also catches keys that only differ in Unicode normalization, which Terraform
            // would see as one key.
            return Err(format!(
                "key `{}` is given twice with different values",
                display_safe(&k)
            ));
        }
    }
    Ok(out)
}

/// Checks a normalized value against the input's rules. Also used on catalogue defaults.
pub(crate) fn check_value(input: &InputSpec, value: &InputValue) -> Result<(), String> {
    if value.input_type() != input.input_type {
        return Err(format!(
            "expected a {}, got a {}",
            input.input_type,
            value.input_type()
        ));
    }
    match value {
        InputValue::Bool(_) => Ok(()),
        InputValue::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if input.integer && f.fract() != 0.0 {
                return Err(format!("`{n}` must be a whole number"));
            }
            let unit = input
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            if let Some(min) = input.min
                && f < min
            {
                return Err(format!("`{n}` is below the minimum of {min}{unit}"));
            }
            if let Some(max) = input.max
                && f > max
            {
                return Err(format!("`{n}` is above the maximum of {max}{unit}"));
            }
            check_allowed(input, value)
        }
        InputValue::String(s) => {
            check_text(s)?;
            let len = s.chars().count();
            if let Some(min) = input.min_length
                && len < min
            {
                return Err(format!(
                    "`{}` is too short (at least {min} characters)",
                    display_safe(s)
                ));
            }
            if let Some(max) = input.max_length
                && len > max
            {
                return Err(format!(
                    "`{}` is too long (at most {max} characters)",
                    display_safe(s)
                ));
            }
            check_pattern(input.pattern.as_ref(), s)?;
            check_allowed(input, value)
        }
        InputValue::List(items) => {
            for item in items {
                check_text(item)?;
                check_pattern(input.pattern.as_ref(), item)?;
                if !input.allowed_values.is_empty() {
                    check_allowed(input, &InputValue::String(item.clone()))?;
                }
            }
            Ok(())
        }
        InputValue::Map(map) => {
            for (k, v) in map {
                if k.is_empty() {
                    return Err("map keys must not be empty".into());
                }
                check_text(k).map_err(|e| format!("key `{}`: {e}", display_safe(k)))?;
                check_text(v).map_err(|e| format!("value of `{}`: {e}", display_safe(k)))?;
                if let Some(re) = &input.key_pattern
                    && !re.is_match(k)
                {
                    return Err(format!(
                        "key `{}` is not allowed (expected {})",
                        display_safe(k),
                        pattern_hint(re)
                    ));
                }
                check_pattern(input.pattern.as_ref(), v)
                    .map_err(|e| format!("value of `{}`: {e}", display_safe(k)))?;
            }
            Ok(())
        }
    }
}

/// Characters that could change how the generated file reads: control characters (newlines,
/// tabs, escapes), line and paragraph separators, and bidirectional controls and marks that can
/// make reviewed code look different from what it is. TfPilot's marker text is refused too.
pub(crate) fn check_text(s: &str) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| is_deceptive(*c)) {
        return Err(format!(
            "contains the character {}, which is not allowed (no newlines, tabs, control or text-direction characters)",
            c.escape_unicode()
        ));
    }
    let lower = s.to_ascii_lowercase();
    if lower.contains("tfpilot:begin:") || lower.contains("tfpilot:end:") {
        return Err("must not contain TfPilot's block marker text".into());
    }
    Ok(())
}

/// A character that changes how the text around it is laid out: a control character (line
/// breaks, NEL), a line or paragraph separator, or a bidirectional control or mark (the Trojan
/// Source set: embeddings, overrides, isolates, and the LRM, RLM and ALM marks).
pub(crate) fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn pattern_hint(re: &Regex) -> String {
    let p = re.as_str();
    let inner = p
        .strip_prefix("^(?:")
        .and_then(|p| p.strip_suffix(")$"))
        .unwrap_or(p);
    format!("a value matching `{inner}`")
}

fn check_pattern(re: Option<&Regex>, s: &str) -> Result<(), String> {
    match re {
        Some(re) if !re.is_match(s) => Err(format!(
            "`{}` is not allowed (expected {})",
            display_safe(s),
            pattern_hint(re)
        )),
        _ => Ok(()),
    }
}

fn check_allowed(input: &InputSpec, value: &InputValue) -> Result<(), String> {
    if input.allowed_values.is_empty() || input.allowed_values.contains(value) {
        return Ok(());
    }
    let allowed: Vec<String> = input
        .allowed_values
        .iter()
        .map(|a| format!("`{a}`"))
        .collect();
    Err(format!(
        "`{}` is not one of {}",
        display_safe(&value.to_plain_string()),
        allowed.join(", ")
    ))
}

/// AWS tag rules, plus: the standard tags are TfPilot's.
fn check_tags(value: &InputValue, ctx: Option<&ConfigContext>) -> Result<(), String> {
    let InputValue::Map(tags) = value else {
        return Ok(());
    };
    let allowed = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    };
    let mut problems = Vec::new();
    let standard: Vec<&str> = match ctx {
        Some(ctx) => standard_tags(ctx).iter().map(|(k, _)| *k).collect(),
        None => vec!["ManagedBy", "TfPilotRequestId", "Project", "Environment"],
    };
    if tags.len() > 50 - standard.len() {
        problems.push(format!(
            "at most {} tags can be added (AWS allows 50, TfPilot sets {})",
            50 - standard.len(),
            standard.len()
        ));
    }
    for (k, v) in tags {
        if standard.iter().any(|s| s.eq_ignore_ascii_case(k)) {
            problems.push(format!("tag `{k}` is set by TfPilot and cannot be changed"));
        } else if k.chars().count() > 128 {
            problems.push(format!(
                "tag key `{}` is longer than 128 characters",
                display_safe(k)
            ));
        } else if k.to_ascii_lowercase().starts_with("aws:") {
            problems.push(format!(
                "tag key `{}` uses the reserved `aws:` prefix",
                display_safe(k)
            ));
        } else if !allowed(k) {
            problems.push(format!(
                "tag key `{}` may only hold letters, digits, spaces and `_.:/=+-@`",
                display_safe(k)
            ));
        }
        if v.chars().count() > 256 {
            problems.push(format!(
                "the value of tag `{}` is longer than 256 characters",
                display_safe(k)
            ));
        } else if !allowed(v) {
            problems.push(format!(
                "the value of tag `{}` may only hold letters, digits, spaces and `_.:/=+-@`",
                display_safe(k)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Project and environment become part of resource names and directory paths.
fn check_context(ctx: &ConfigContext) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (field, value) in [("project", &ctx.project), ("environment", &ctx.environment)] {
        if !crate::domain::is_name(value) {
            errors.push(ConfigError::Context {
                field: field.to_owned(),
                reason: format!(
                    "`{}` must be 1–32 lowercase letters, digits and hyphens, starting with a letter",
                    display_safe(value)
                ),
            });
        }
    }
    errors
}

fn compute(
    c: &super::ComputedSpec,
    inputs: &BTreeMap<String, InputValue>,
    ctx: &ConfigContext,
) -> Result<String, String> {
    let id = ctx.request_id.to_string();
    let mut out = String::new();
    let mut rest = c.template.as_str();
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}').unwrap_or(after.len());
        let key = &after[..end];
        let value = match key {
            "project" => ctx.project.clone(),
            "environment" => ctx.environment.clone(),
            "request_id" => id.clone(),
            "short_id" => id[..8].to_owned(),
            input => inputs
                .get(input)
                .map(InputValue::to_plain_string)
                .unwrap_or_default(),
        };
        out.push_str(&value);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    let fifo = c
        .fifo_when
        .as_ref()
        .is_some_and(|flag| inputs.get(flag) == Some(&InputValue::Bool(true)));
    match c.naming {
        Some(rule) => rule
            .finish(&out, fifo)
            .map_err(|reason| format!("the derived name `{}` {reason}", display_safe(&out))),
        None => {
            check_text(&out)?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests;
