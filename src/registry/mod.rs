//! The module catalogue: which module types TfPilot can write, their inputs (types, defaults,
//! aliases, validation rules) and the values TfPilot computes for them (derived names, tags).
//!
//! One TOML file per module type lives in `registry/` at the repository root. The files are
//! compiled into the binary ([`Registry::embedded`]) because the Lambda host has no checkout;
//! [`Registry::load_dir`] reads another directory (an infra repo's own catalogue, tests).
//!
//! Turning a user's raw values into a validated [`ModuleConfig`] is [`build_module_config`]
//! (see [`config`]); the names TfPilot derives follow the AWS rules in [`naming`].

pub mod config;
pub mod naming;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use config::{
    ConfigContext, ConfigError, ConfigErrors, InputValue, MissingInput, ModuleConfig,
    PartialConfig, build_module_config, validate_partial,
};
pub use naming::NamingRule;

/// The catalogue files compiled into the binary. A test checks this list against `registry/`.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "ecs-service.toml",
        include_str!("../../registry/ecs-service.toml"),
    ),
    (
        "iam-role-app.toml",
        include_str!("../../registry/iam-role-app.toml"),
    ),
    (
        "s3-bucket.toml",
        include_str!("../../registry/s3-bucket.toml"),
    ),
    (
        "sqs-queue.toml",
        include_str!("../../registry/sqs-queue.toml"),
    ),
];

/// The names of the catalogue files compiled into the binary (for the test that keeps the
/// list in step with `registry/`).
pub fn embedded_file_names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _)| *name)
}

/// The set of module types TfPilot knows.
#[derive(Debug, Clone)]
pub struct Registry {
    modules: BTreeMap<String, ModuleSpec>,
}

/// A module type: what it is, where its block goes, and its inputs.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleSpec {
    /// The module type, also the directory under `modules/` (`s3-bucket`).
    pub module_type: String,
    /// Other words users may type for this module type (`s3`, `bucket`).
    pub aliases: Vec<String>,
    pub display_name: String,
    pub description: String,
    /// The file under `envs/<env>/` that holds the blocks of this type (`tfpilot.s3.tf`).
    pub target_file: String,
    /// The map input that receives the standard tags (merged over the user's tags), if any.
    pub tags_input: Option<String>,
    /// User-facing inputs, in catalogue order.
    pub inputs: Vec<InputSpec>,
    /// Values TfPilot derives and passes to the module (names).
    pub computed: Vec<ComputedSpec>,
}

/// One input of a module type.
#[derive(Debug, Clone, Serialize)]
pub struct InputSpec {
    /// The canonical snake_case name (also the module variable, unless `module_variable` is false).
    pub name: String,
    #[serde(rename = "type")]
    pub input_type: InputType,
    pub required: bool,
    /// The value used when the user gives none; `None` for required inputs and for optional
    /// inputs the module treats as "not set" (`default = null`).
    pub default: Option<InputValue>,
    pub description: String,
    /// Other names users may use (`versioning`, `visibility_timeout`), stored normalized.
    pub aliases: Vec<String>,
    /// For strings and numbers (and each list element): the only values accepted.
    pub allowed_values: Vec<InputValue>,
    /// For strings, list elements and map values: a regular expression the whole value must match.
    #[serde(serialize_with = "serialize_regex")]
    pub pattern: Option<Regex>,
    /// For map inputs: a regular expression every key must match.
    #[serde(serialize_with = "serialize_regex")]
    pub key_pattern: Option<Regex>,
    /// Numbers: inclusive bounds and whether fractions are refused.
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub integer: bool,
    /// Strings: inclusive bounds on the length in characters.
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    /// The unit of a number (`days`, `seconds`, `MiB`), for prompts and "30 days" style answers.
    pub unit: Option<String>,
    /// False for inputs that only feed computed values (the short `name`).
    pub module_variable: bool,
}

/// A value TfPilot derives from the context and the inputs, passed to the module as a string.
#[derive(Debug, Clone, Serialize)]
pub struct ComputedSpec {
    /// The module variable that receives the value.
    pub name: String,
    pub description: String,
    /// `{project}`, `{environment}`, `{request_id}`, `{short_id}` and `{<input>}` placeholders.
    pub template: String,
    /// The AWS naming rule the result must satisfy (and is shortened for).
    pub naming: Option<NamingRule>,
    /// A bool input that, when true, makes this a FIFO name (`.fifo` suffix, SQS only).
    pub fifo_when: Option<String>,
}

/// The type of an input, matching the module variable's Terraform type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Number,
    Bool,
    /// `list(string)`
    List,
    /// `map(string)`
    Map,
}

impl InputType {
    /// The Terraform type expression of a module variable of this type.
    pub fn terraform_type(self) -> &'static str {
        match self {
            InputType::String => "string",
            InputType::Number => "number",
            InputType::Bool => "bool",
            InputType::List => "list(string)",
            InputType::Map => "map(string)",
        }
    }
}

impl fmt::Display for InputType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputType::String => "string",
            InputType::Number => "number",
            InputType::Bool => "bool",
            InputType::List => "list",
            InputType::Map => "map",
        })
    }
}

fn serialize_regex<S: serde::Serializer>(re: &Option<Regex>, s: S) -> Result<S::Ok, S::Error> {
    match re {
        Some(re) => s.serialize_some(re.as_str()),
        None => s.serialize_none(),
    }
}

/// A problem with a catalogue file (found when loading, so a bad catalogue never half-works).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read the module catalogue at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Parse {
        file: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error(
        "the module catalogue at {0} holds no module types (expected registry/<type>.toml files)"
    )]
    Empty(PathBuf),
}

/// An unknown module type, with the closest known one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownModuleType {
    pub given: String,
    pub suggestion: Option<String>,
    pub known: Vec<String>,
}

impl fmt::Display for UnknownModuleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown module type `{}`", display_safe(&self.given))?;
        if let Some(s) = &self.suggestion {
            write!(f, " — did you mean `{s}`?")?;
        }
        write!(f, " Known module types: ")?;
        for (i, k) in self.known.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{k}`")?;
        }
        f.write_str(".")
    }
}

impl Registry {
    /// The catalogue compiled into the binary (the files in `registry/`).
    pub fn embedded() -> &'static Registry {
        static EMBEDDED_REGISTRY: OnceLock<Registry> = OnceLock::new();
        EMBEDDED_REGISTRY.get_or_init(|| {
            // The embedded files are part of the source tree and `embedded_registry_loads` tests
            // them, so a failure here is a build defect, not an input error.
            Registry::from_sources(EMBEDDED.iter().map(|(n, t)| ((*n).to_owned(), *t)))
                .unwrap_or_else(|e| panic!("the embedded module catalogue is invalid: {e}"))
        })
    }

    /// Reads every `*.toml` file in `dir` (not recursive).
    pub fn load_dir(dir: &Path) -> Result<Registry, RegistryError> {
        let io = |source| RegistryError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                let text = std::fs::read_to_string(&path).map_err(|source| RegistryError::Io {
                    path: path.clone(),
                    source,
                })?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((name, text));
            }
        }
        if files.is_empty() {
            return Err(RegistryError::Empty(dir.to_owned()));
        }
        files.sort();
        Registry::from_sources(files.iter().map(|(n, t)| (n.clone(), t.as_str())))
    }

    /// Builds a catalogue from `(file name, TOML text)` pairs.
    pub fn from_sources<'a>(
        files: impl IntoIterator<Item = (String, &'a str)>,
    ) -> Result<Registry, RegistryError> {
        let mut modules = BTreeMap::new();
        let mut words: BTreeMap<String, String> = BTreeMap::new();
        for (file, text) in files {
            let raw: raw::ModuleFile =
                toml::from_str(text).map_err(|source| RegistryError::Parse {
                    file: file.clone(),
                    source,
                })?;
            let spec = raw
                .into_spec(&file)
                .map_err(|message| RegistryError::Invalid {
                    file: file.clone(),
                    message,
                })?;
            let expected_file = format!("{}.toml", spec.module_type);
            if file != expected_file {
                return Err(RegistryError::Invalid {
                    file,
                    message: format!(
                        "declares module type `{}`, so the file must be named `{expected_file}`",
                        spec.module_type
                    ),
                });
            }
            for word in std::iter::once(&spec.module_type).chain(&spec.aliases) {
                let key = normalize_type(word);
                if let Some(other) = words.insert(key, spec.module_type.clone()) {
                    return Err(RegistryError::Invalid {
                        file,
                        message: format!(
                            "module type name or alias `{word}` is already used by `{other}`"
                        ),
                    });
                }
            }
            modules.insert(spec.module_type.clone(), spec);
        }
        Ok(Registry { modules })
    }

    /// The spec of a module type, by its exact name or one of its aliases (case and `_`/`-`
    /// insensitive).
    pub fn get(&self, module_type: &str) -> Option<&ModuleSpec> {
        if let Some(spec) = self.modules.get(module_type) {
            return Some(spec);
        }
        let wanted = normalize_type(module_type);
        self.modules.values().find(|spec| {
            normalize_type(&spec.module_type) == wanted
                || spec.aliases.iter().any(|a| normalize_type(a) == wanted)
        })
    }

    /// Like [`Registry::get`], with a did-you-mean error for unknown types.
    pub fn lookup(&self, module_type: &str) -> Result<&ModuleSpec, UnknownModuleType> {
        self.get(module_type).ok_or_else(|| UnknownModuleType {
            given: module_type.to_owned(),
            suggestion: self.suggest_module_type(module_type).map(str::to_owned),
            known: self.module_types().map(str::to_owned).collect(),
        })
    }

    /// The known module types, sorted.
    pub fn module_types(&self) -> impl Iterator<Item = &str> {
        self.modules.keys().map(String::as_str)
    }

    /// Every module spec, sorted by type.
    pub fn modules(&self) -> impl Iterator<Item = &ModuleSpec> {
        self.modules.values()
    }

    /// The known module type closest to an unknown word, if any is close enough.
    pub fn suggest_module_type(&self, given: &str) -> Option<&str> {
        let given = normalize_type(given);
        let candidates = self.modules.values().flat_map(|spec| {
            std::iter::once(&spec.module_type)
                .chain(&spec.aliases)
                .map(move |w| (normalize_type(w), spec.module_type.as_str()))
        });
        closest(&given, candidates)
    }
}

impl ModuleSpec {
    /// The input with this canonical name.
    pub fn input(&self, name: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// Maps a key as a user typed it (`versioningEnabled`, `visibility-timeout`, an alias) to the
    /// input it means.
    pub fn resolve_key(&self, user_key: &str) -> Option<&InputSpec> {
        let key = normalize_key(user_key);
        self.inputs
            .iter()
            .find(|i| i.name == key)
            .or_else(|| self.inputs.iter().find(|i| i.aliases.contains(&key)))
    }

    /// The input name closest to an unknown key, for "did you mean".
    pub fn suggest_input(&self, user_key: &str) -> Option<&str> {
        let key = normalize_key(user_key);
        let candidates = self.inputs.iter().flat_map(|input| {
            std::iter::once(&input.name)
                .chain(&input.aliases)
                .map(move |w| (w.clone(), input.name.as_str()))
        });
        closest(&key, candidates)
    }

    /// The required inputs, in catalogue order.
    pub fn required_inputs(&self) -> impl Iterator<Item = &InputSpec> {
        self.inputs.iter().filter(|i| i.required)
    }

    /// The module variables TfPilot sets: computed values first, then inputs passed to the module.
    pub fn module_variables(&self) -> impl Iterator<Item = &str> {
        self.computed.iter().map(|c| c.name.as_str()).chain(
            self.inputs
                .iter()
                .filter(|i| i.module_variable)
                .map(|i| i.name.as_str()),
        )
    }
}

impl InputSpec {
    /// Whether a key as a user typed it means this input ([`normalize_key`], then name or alias).
    pub fn matches_key(&self, user_key: &str) -> bool {
        let key = normalize_key(user_key);
        self.name == key || self.aliases.contains(&key)
    }

    /// The canonical name if `user_key` means this input.
    pub fn resolve_key(&self, user_key: &str) -> Option<&str> {
        self.matches_key(user_key).then_some(self.name.as_str())
    }
}

/// Normalizes an input key to snake_case: `versioningEnabled`, `Versioning-Enabled` and
/// `versioning enabled` all become `versioning_enabled`.
pub fn normalize_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev: Option<char> = None;
    for c in key.trim().chars() {
        if c.is_uppercase() {
            if prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c == '-' || c == ' ' || c == '.' || c == '_' {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.push(c);
        }
        prev = Some(c);
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Normalizes a module type word: lowercase, `_` and spaces as `-`.
fn normalize_type(word: &str) -> String {
    normalize_key(word).replace('_', "-")
}

/// The candidate whose word is closest to `given`, if it is close enough to be a likely typo.
fn closest<'a>(
    given: &str,
    candidates: impl Iterator<Item = (String, &'a str)>,
) -> Option<&'a str> {
    let mut best: Option<(f64, &'a str)> = None;
    for (word, target) in candidates {
        let mut score = strsim::jaro_winkler(given, &word);
        // A key that is a prefix or a part of the word ("retention" for
        // "message_retention_seconds") is a strong hint even when the lengths differ.
        if given.len() >= 4 && word.contains(given) {
            score = score.max(0.9);
        }
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, target));
        }
    }
    best.filter(|(s, _)| *s >= 0.8).map(|(_, t)| t)
}

/// Makes a user-supplied word safe to echo inside inline code in a GitHub comment: control and
/// text-direction characters are escaped, backticks replaced, and long values shortened.
pub(crate) fn display_safe(s: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = s
        .chars()
        .take(MAX)
        .flat_map(|c| {
            if c == '`' {
                vec!['\'']
            } else if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            {
                // A direction override would make the rest of the comment read differently.
                c.escape_default().collect()
            } else if config::is_deceptive(c) {
                c.escape_unicode().collect()
            } else {
                vec![c]
            }
        })
        .collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// The TOML shapes of a catalogue file; converted into the public types after validation.
mod raw {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ModuleFile {
        #[serde(rename = "type")]
        module_type: String,
        #[serde(default)]
        aliases: Vec<String>,
        display_name: String,
        description: String,
        target_file: String,
        tags_input: Option<String>,
        #[serde(default)]
        inputs: Vec<Input>,
        #[serde(default)]
        computed: Vec<Computed>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Input {
        name: String,
        #[serde(rename = "type")]
        input_type: InputType,
        #[serde(default)]
        required: bool,
        default: Option<toml::Value>,
        description: String,
        #[serde(default)]
        aliases: Vec<String>,
        #[serde(default)]
        allowed_values: Vec<toml::Value>,
        pattern: Option<String>,
        key_pattern: Option<String>,
        min: Option<f64>,
        max: Option<f64>,
        #[serde(default)]
        integer: bool,
        min_length: Option<usize>,
        max_length: Option<usize>,
        unit: Option<String>,
        #[serde(default = "yes")]
        module_variable: bool,
    }

    fn yes() -> bool {
        true
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Computed {
        name: String,
        description: String,
        template: String,
        naming: Option<NamingRule>,
        fifo_when: Option<String>,
    }

    fn is_snake_identifier(s: &str) -> bool {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !s.ends_with('_')
    }

    fn compile(pattern: &Option<String>, what: &str) -> Result<Option<Regex>, String> {
        pattern
            .as_ref()
            .map(|p| {
                // Anchored, so a pattern always describes the whole value.
                Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| format!("input `{what}`: invalid pattern: {e}"))
            })
            .transpose()
    }

    impl ModuleFile {
        pub fn into_spec(self, file: &str) -> Result<ModuleSpec, String> {
            let _ = file;
            let type_ok = self
                .module_type
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && self
                    .module_type
                    .starts_with(|c: char| c.is_ascii_lowercase());
            if !type_ok {
                return Err(format!(
                    "module type `{}` must be lowercase letters, digits and hyphens",
                    self.module_type
                ));
            }
            let target_ok = self.target_file.starts_with("tfpilot.")
                && self.target_file.ends_with(".tf")
                && self.target_file[..self.target_file.len() - 3]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
            if !target_ok {
                return Err(format!(
                    "target_file `{}` must look like `tfpilot.<kind>.tf`",
                    self.target_file
                ));
            }

            let mut inputs = Vec::new();
            let mut words: BTreeMap<String, String> = BTreeMap::new();
            for raw in self.inputs {
                let input = raw.into_spec()?;
                for word in std::iter::once(&input.name).chain(&input.aliases) {
                    if let Some(other) = words.insert(word.clone(), input.name.clone()) {
                        if other != input.name {
                            return Err(format!(
                                "input name or alias `{word}` is used by both `{other}` and `{}`",
                                input.name
                            ));
                        }
                        if word == &input.name {
                            return Err(format!("input `{word}` is declared twice"));
                        }
                    }
                }
                inputs.push(input);
            }

            if let Some(tags) = &self.tags_input {
                match inputs.iter().find(|i| &i.name == tags) {
                    Some(i) if i.input_type == InputType::Map && i.module_variable => {}
                    _ => {
                        return Err(format!(
                            "tags_input `{tags}` must name a map input passed to the module"
                        ));
                    }
                }
            }

            let input_names: BTreeSet<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
            let mut computed = Vec::new();
            for c in self.computed {
                if !is_snake_identifier(&c.name) {
                    return Err(format!("computed value `{}` must be snake_case", c.name));
                }
                if input_names.contains(c.name.as_str())
                    || computed.iter().any(|o: &ComputedSpec| o.name == c.name)
                {
                    return Err(format!(
                        "computed value `{}` clashes with another input or computed value",
                        c.name
                    ));
                }
                for placeholder in template_placeholders(&c.template)? {
                    let known = matches!(
                        placeholder,
                        "project" | "environment" | "request_id" | "short_id"
                    ) || input_names.contains(placeholder);
                    if !known {
                        return Err(format!(
                            "computed value `{}`: template placeholder `{{{placeholder}}}` is not a context value or an input",
                            c.name
                        ));
                    }
                }
                if let Some(flag) = &c.fifo_when {
                    let ok = inputs
                        .iter()
                        .any(|i| &i.name == flag && i.input_type == InputType::Bool);
                    if !ok {
                        return Err(format!(
                            "computed value `{}`: fifo_when `{flag}` must name a bool input",
                            c.name
                        ));
                    }
                }
                computed.push(ComputedSpec {
                    name: c.name,
                    description: c.description,
                    template: c.template,
                    naming: c.naming,
                    fifo_when: c.fifo_when,
                });
            }

            Ok(ModuleSpec {
                module_type: self.module_type,
                aliases: self.aliases,
                display_name: self.display_name,
                description: self.description,
                target_file: self.target_file,
                tags_input: self.tags_input,
                inputs,
                computed,
            })
        }
    }

    impl Input {
        fn into_spec(self) -> Result<InputSpec, String> {
            let name = self.name;
            if !is_snake_identifier(&name) {
                return Err(format!("input `{name}` must be snake_case"));
            }
            let mut aliases: Vec<String> = Vec::new();
            for alias in &self.aliases {
                let normalized = normalize_key(alias);
                if normalized.is_empty() {
                    return Err(format!("input `{name}`: empty alias"));
                }
                if normalized != name && !aliases.contains(&normalized) {
                    aliases.push(normalized);
                }
            }
            let pattern = compile(&self.pattern, &name)?;
            let key_pattern = compile(&self.key_pattern, &name)?;
            if key_pattern.is_some() && self.input_type != InputType::Map {
                return Err(format!(
                    "input `{name}`: key_pattern is only for map inputs"
                ));
            }
            let numeric = self.min.is_some() || self.max.is_some() || self.integer;
            if numeric && self.input_type != InputType::Number {
                return Err(format!(
                    "input `{name}`: min, max and integer are only for numbers"
                ));
            }
            if (self.min_length.is_some() || self.max_length.is_some())
                && self.input_type != InputType::String
            {
                return Err(format!(
                    "input `{name}`: min_length and max_length are only for strings"
                ));
            }
            if self.unit.is_some() && self.input_type != InputType::Number {
                return Err(format!("input `{name}`: unit is only for numbers"));
            }
            if self.required && self.default.is_some() {
                return Err(format!(
                    "input `{name}` is required, so it cannot have a default"
                ));
            }
            if !self.allowed_values.is_empty()
                && !matches!(
                    self.input_type,
                    InputType::String | InputType::Number | InputType::List
                )
            {
                return Err(format!(
                    "input `{name}`: allowed_values is only for strings, numbers and lists"
                ));
            }
            let element_type = if self.input_type == InputType::List {
                InputType::String
            } else {
                self.input_type
            };
            let allowed_values = self
                .allowed_values
                .iter()
                .map(|v| {
                    InputValue::from_toml(v, element_type).ok_or_else(|| {
                        format!("input `{name}`: allowed value {v} is not a {element_type}")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let default = self
                .default
                .as_ref()
                .map(|v| {
                    InputValue::from_toml(v, self.input_type).ok_or_else(|| {
                        format!("input `{name}`: default {v} is not a {}", self.input_type)
                    })
                })
                .transpose()?;
            let spec = InputSpec {
                name,
                input_type: self.input_type,
                required: self.required,
                default,
                description: self.description,
                aliases,
                allowed_values,
                pattern,
                key_pattern,
                min: self.min,
                max: self.max,
                integer: self.integer,
                min_length: self.min_length,
                max_length: self.max_length,
                unit: self.unit,
                module_variable: self.module_variable,
            };
            if let Some(default) = &spec.default {
                // A default must pass the input's own rules, or every request would fail.
                config::check_value(&spec, default).map_err(|reason| {
                    format!("input `{}`: default is invalid: {reason}", spec.name)
                })?;
            }
            Ok(spec)
        }
    }
}

/// The `{placeholder}` names in a computed value's template.
fn template_placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("template `{template}` has an unclosed `{{`"))?;
        out.push(&after[..end]);
        rest = &after[end + 1..];
    }
    if rest.contains('}') {
        return Err(format!("template `{template}` has a stray `}}`"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
