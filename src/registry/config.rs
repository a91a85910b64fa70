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

mod checks;
mod coerce;

use checks::check_tags;
pub(crate) use checks::{check_text, check_value, is_deceptive};
use coerce::{coerce, normalize_text, scalar_to_string};

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
