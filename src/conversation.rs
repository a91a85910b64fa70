//! The state of one request's conversation and how each turn changes it: pure functions from
//! (state, what the person said) to (new state, [`Reply`]). No async, no I/O.
//!
//! A value enters the conversation only after the catalogue accepted it ([`validate_partial`]);
//! an invalid proposal — typed or from the assistant — is reported in the reply, naming the
//! input, and the state keeps the previous value. Values are stored normalized under canonical
//! input names, so a stored conversation always validates. Once every required input has a
//! value, the reply carries the validated [`ModuleConfig`] and the exact bounded block.
//!
//! The reply is data; [`crate::comments::conversation`] renders it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::assist::{Clarification, Extraction, ExtractorKind};
use crate::command::{DEFAULT_PREFIX, resolve_key};
use crate::ids::RequestId;
use crate::registry::{
    ConfigContext, ConfigError, InputValue, ModuleConfig, ModuleSpec, PartialConfig,
    build_module_config, validate_partial,
};
use crate::terraform::render_block;

/// The most open questions a conversation keeps.
pub const MAX_PENDING: usize = 5;

/// What a conversation has collected: the executor keeps it in the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Accepted values: canonical input names, normalized values.
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
    /// The questions asked last, for the next message to answer.
    #[serde(default)]
    pub pending: Vec<Clarification>,
    /// How many turns changed (or tried to change) the values.
    #[serde(default)]
    pub turns: u32,
}

/// Where the request lives, and how commands are written in this installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationContext {
    pub request_id: RequestId,
    pub project: String,
    pub environment: String,
    /// The command prefix shown in replies (`/tfpilot`).
    pub prefix: String,
}

impl ConversationContext {
    pub fn new(
        request_id: RequestId,
        project: impl Into<String>,
        environment: impl Into<String>,
    ) -> Self {
        ConversationContext {
            request_id,
            project: project.into(),
            environment: environment.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }

    pub fn config_context(&self) -> ConfigContext {
        ConfigContext {
            request_id: self.request_id,
            project: self.project.clone(),
            environment: self.environment.clone(),
        }
    }
}

/// What TfPilot answers after a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub module_type: String,
    pub display_name: String,
    /// The file under `envs/<environment>/` the block goes to.
    pub target_file: String,
    pub request_id: RequestId,
    pub project: String,
    pub environment: String,
    pub prefix: String,
    /// Who read the message, when an extractor did.
    pub source: Option<ExtractorKind>,
    /// The extractor's note to the person (untrusted text when it came from an LLM).
    pub note: Option<String>,
    /// Values this turn set or changed.
    pub understood: Vec<Change>,
    /// Inputs (or `map.entry`s) this turn cleared.
    pub cleared: Vec<String>,
    /// Proposals that were refused, each naming its input or key.
    pub problems: Vec<ConfigError>,
    /// Every input in catalogue order, with its state.
    pub inputs: Vec<InputRow>,
    pub questions: Vec<Clarification>,
    pub outcome: Outcome,
}

/// One accepted value.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub input: String,
    pub value: InputValue,
    pub previous: Option<InputValue>,
}

/// One input and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRow {
    pub name: String,
    pub description: String,
    pub required: bool,
    pub unit: Option<String>,
    pub state: InputState,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputState {
    /// Given in the conversation.
    Set(InputValue),
    /// Not given; the catalogue default applies.
    Default(InputValue),
    /// Required and not given yet.
    Missing,
    /// Optional without a default: the module's own behaviour applies.
    NotSet,
}

/// Whether the request can be submitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Required inputs are still missing.
    Incomplete,
    /// Every input is valid: the config to store and the exact block to write.
    Complete {
        config: Box<ModuleConfig>,
        block: String,
    },
    /// The values are all there but the config cannot be built (a derived name, the
    /// project or environment); each line is a sentence for the user.
    Blocked { problems: Vec<String> },
}

impl Reply {
    pub fn is_complete(&self) -> bool {
        matches!(self.outcome, Outcome::Complete { .. })
    }

    /// The validated config, once complete.
    pub fn config(&self) -> Option<&ModuleConfig> {
        match &self.outcome {
            Outcome::Complete { config, .. } => Some(config),
            _ => None,
        }
    }

    /// The bounded block, once complete.
    pub fn block(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Complete { block, .. } => Some(block),
            _ => None,
        }
    }

    /// The inputs still needed.
    pub fn missing(&self) -> impl Iterator<Item = &InputRow> {
        self.inputs
            .iter()
            .filter(|r| matches!(r.state, InputState::Missing))
    }
}

impl Conversation {
    /// A conversation that already holds `values` (raw or normalized; the invalid ones are
    /// dropped with the reason). For requests stored before conversations were kept.
    pub fn from_values(
        spec: &ModuleSpec,
        values: &BTreeMap<String, Value>,
    ) -> (Conversation, Vec<ConfigError>) {
        let partial = validate_partial(spec, values);
        let values = partial
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect();
        (
            Conversation {
                values,
                pending: Vec::new(),
                turns: 0,
            },
            partial.errors,
        )
    }
}

/// The first turn of `new`: typed `key=value`s (already resolved by the command parser) and,
/// when the command had free text, what the assistant read from it. A typed value wins over an
/// extracted one for the same input.
pub fn start(
    spec: &ModuleSpec,
    typed: &BTreeMap<String, String>,
    extraction: Option<&Extraction>,
    ctx: &ConversationContext,
) -> (Conversation, Reply) {
    let typed_inputs: Vec<String> = typed
        .keys()
        .filter_map(|k| resolve_key(spec, k))
        .map(|k| head(&k).to_owned())
        .collect();
    let mut proposals: Vec<(String, Value)> = Vec::new();
    if let Some(e) = extraction {
        proposals.extend(
            e.proposed
                .iter()
                .filter(|(k, _)| {
                    resolve_key(spec, k).is_none_or(|c| !typed_inputs.iter().any(|t| t == head(&c)))
                })
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    proposals.extend(
        typed
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
    );
    let turn = Turn {
        proposals,
        clear: Vec::new(),
        extraction,
        counts: true,
    };
    step(&Conversation::default(), spec, turn, ctx)
}

/// A conversational message, as an extractor read it.
pub fn apply_extraction(
    conv: &Conversation,
    spec: &ModuleSpec,
    extraction: &Extraction,
    ctx: &ConversationContext,
) -> (Conversation, Reply) {
    let turn = Turn {
        proposals: extraction
            .proposed
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        clear: Vec::new(),
        extraction: Some(extraction),
        counts: true,
    };
    step(conv, spec, turn, ctx)
}

/// `set key=value…`. Keys may be as typed (aliases, `tags.Team`); unknown ones are reported.
pub fn apply_set(
    conv: &Conversation,
    spec: &ModuleSpec,
    values: &BTreeMap<String, String>,
    ctx: &ConversationContext,
) -> (Conversation, Reply) {
    let turn = Turn {
        proposals: values
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        clear: Vec::new(),
        extraction: None,
        counts: true,
    };
    step(conv, spec, turn, ctx)
}

/// `unset key…`: the inputs go back to their defaults (required ones become missing again);
/// `tags.Team` removes one entry of a map.
pub fn apply_unset(
    conv: &Conversation,
    spec: &ModuleSpec,
    keys: &[String],
    ctx: &ConversationContext,
) -> (Conversation, Reply) {
    let turn = Turn {
        proposals: Vec::new(),
        clear: keys.to_vec(),
        extraction: None,
        counts: true,
    };
    step(conv, spec, turn, ctx)
}

/// `show`: where the conversation stands, without changing it.
pub fn show(conv: &Conversation, spec: &ModuleSpec, ctx: &ConversationContext) -> Reply {
    let turn = Turn {
        proposals: Vec::new(),
        clear: Vec::new(),
        extraction: None,
        counts: false,
    };
    step(conv, spec, turn, ctx).1
}

struct Turn<'a> {
    proposals: Vec<(String, Value)>,
    clear: Vec<String>,
    extraction: Option<&'a Extraction>,
    counts: bool,
}

/// The input a canonical key belongs to (`tags` for `tags.Team`).
fn head(key: &str) -> &str {
    key.split_once('.').map_or(key, |(h, _)| h)
}

fn to_json(v: &InputValue) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn unknown(spec: &ModuleSpec, key: &str) -> ConfigError {
    ConfigError::Unknown {
        key: key.to_owned(),
        suggestion: spec.suggest_input(key).map(str::to_owned),
    }
}

fn step(
    conv: &Conversation,
    spec: &ModuleSpec,
    turn: Turn<'_>,
    ctx: &ConversationContext,
) -> (Conversation, Reply) {
    // Start from what validates today (a stored conversation from an older catalogue may hold
    // a value that no longer does; it is reported and dropped).
    let before = validate_partial(spec, &conv.values);
    let mut problems: Vec<ConfigError> = before.errors;
    let mut values: BTreeMap<String, InputValue> = before.inputs;
    let old_values = values.clone();

    let cleared = clear_keys(spec, &mut values, &turn.clear, &mut problems);
    apply_proposals(spec, &mut values, &turn.proposals, &mut problems);

    let understood = changes(spec, &old_values, &values);

    let json_values: BTreeMap<String, Value> = values
        .iter()
        .map(|(k, v)| (k.clone(), to_json(v)))
        .collect();
    let partial = validate_partial(spec, &json_values);
    // Every value was checked on its own; a problem here would be a catalogue rule across
    // inputs. Report it rather than store a state that does not validate.
    problems.extend(partial.errors.iter().cloned());
    let values: BTreeMap<String, InputValue> = partial.inputs.clone();

    let mut pending = open_questions(spec, conv, turn.extraction, &values, &partial);

    let inputs = input_rows(spec, &values);

    let outcome = outcome_of(spec, &partial, &json_values, ctx);
    if matches!(outcome, Outcome::Complete { .. }) {
        pending.clear();
    }

    let next = Conversation {
        values: json_values
            .into_iter()
            .filter(|(k, _)| values.contains_key(k))
            .collect(),
        pending: pending.clone(),
        turns: conv.turns.saturating_add(u32::from(turn.counts)),
    };
    let note = turn
        .extraction
        .map(|e| e.reply.trim().to_owned())
        .filter(|r| !r.is_empty());
    let reply = Reply {
        module_type: spec.module_type.clone(),
        display_name: spec.display_name.clone(),
        target_file: spec.target_file.clone(),
        request_id: ctx.request_id,
        project: ctx.project.clone(),
        environment: ctx.environment.clone(),
        prefix: ctx.prefix.clone(),
        source: turn.extraction.map(|e| e.source),
        note,
        understood,
        cleared,
        problems: dedup(problems),
        inputs,
        questions: pending,
        outcome,
    };
    (next, reply)
}

/// Removes the inputs (or map entries) `keys` name; returns the canonical names removed.
fn clear_keys(
    spec: &ModuleSpec,
    values: &mut BTreeMap<String, InputValue>,
    keys: &[String],
    problems: &mut Vec<ConfigError>,
) -> Vec<String> {
    let mut cleared = Vec::new();
    for key in keys {
        let Some(canonical) = resolve_key(spec, key) else {
            problems.push(unknown(spec, key));
            continue;
        };
        match canonical.split_once('.') {
            Some((map, entry)) => {
                if let Some(InputValue::Map(m)) = values.get_mut(map)
                    && m.remove(entry).is_some()
                {
                    if m.is_empty() {
                        values.remove(map);
                    }
                    cleared.push(canonical);
                }
            }
            None => {
                if values.remove(&canonical).is_some() {
                    cleared.push(canonical);
                }
            }
        }
    }
    cleared
}

/// Validates each proposed value on its own and keeps those that pass; a map entry joins the
/// entries already there and the merged map is checked as a whole (AWS limits the number of
/// tags).
fn apply_proposals(
    spec: &ModuleSpec,
    values: &mut BTreeMap<String, InputValue>,
    proposals: &[(String, Value)],
    problems: &mut Vec<ConfigError>,
) {
    for (key, raw) in proposals {
        let Some(canonical) = resolve_key(spec, key) else {
            problems.push(unknown(spec, key));
            continue;
        };
        let input_name = head(&canonical).to_owned();
        let single = BTreeMap::from([(canonical.clone(), raw.clone())]);
        let partial = validate_partial(spec, &single);
        if !partial.errors.is_empty() {
            problems.extend(partial.errors);
            continue;
        }
        let Some(mut value) = partial.inputs.get(&input_name).cloned() else {
            continue;
        };
        if canonical.contains('.')
            && let (Some(InputValue::Map(existing)), InputValue::Map(entry)) =
                (values.get(&input_name), &value)
        {
            let mut merged = existing.clone();
            merged.extend(entry.clone());
            let whole = BTreeMap::from([(input_name.clone(), to_json(&InputValue::Map(merged)))]);
            let partial = validate_partial(spec, &whole);
            if !partial.errors.is_empty() {
                problems.extend(partial.errors);
                continue;
            }
            match partial.inputs.get(&input_name) {
                Some(v) => value = v.clone(),
                None => continue,
            }
        }
        values.insert(input_name, value);
    }
}

/// The inputs whose value this turn changed, in catalogue order.
fn changes(
    spec: &ModuleSpec,
    before: &BTreeMap<String, InputValue>,
    after: &BTreeMap<String, InputValue>,
) -> Vec<Change> {
    spec.inputs
        .iter()
        .filter_map(|input| {
            let new = after.get(&input.name)?;
            let previous = before.get(&input.name);
            (previous != Some(new)).then(|| Change {
                input: input.name.clone(),
                value: new.clone(),
                previous: previous.cloned(),
            })
        })
        .collect()
}

/// Open questions: the extractor's new ones, then earlier ones still unanswered, then (if
/// nothing is open) the first required input still missing, so a bare answer can fill it.
fn open_questions(
    spec: &ModuleSpec,
    conv: &Conversation,
    extraction: Option<&Extraction>,
    values: &BTreeMap<String, InputValue>,
    partial: &PartialConfig,
) -> Vec<Clarification> {
    let mut pending: Vec<Clarification> = Vec::new();
    let new_questions = extraction
        .map(|e| e.clarifications.as_slice())
        .unwrap_or_default();
    for q in new_questions.iter().chain(&conv.pending) {
        let known = spec.input(&q.input).is_some();
        if known
            && !values.contains_key(&q.input)
            && !pending.iter().any(|p| p.input == q.input)
            && pending.len() < MAX_PENDING
        {
            pending.push(q.clone());
        }
    }
    if pending.is_empty()
        && let Some(first) = partial.missing_required.first()
        && let Some(input) = spec.input(&first.name)
    {
        pending.push(crate::assist::clarification_for(input));
    }
    pending
}

/// The inputs table of the reply: set, default, missing or not set.
fn input_rows(spec: &ModuleSpec, values: &BTreeMap<String, InputValue>) -> Vec<InputRow> {
    spec.inputs
        .iter()
        .map(|input| InputRow {
            name: input.name.clone(),
            description: input.description.clone(),
            required: input.required,
            unit: input.unit.clone(),
            state: match (values.get(&input.name), &input.default) {
                (Some(v), _) => InputState::Set(v.clone()),
                (None, Some(d)) => InputState::Default(d.clone()),
                (None, None) if input.required => InputState::Missing,
                (None, None) => InputState::NotSet,
            },
        })
        .collect()
}

/// Whether the values make a complete config, and then its Terraform block.
fn outcome_of(
    spec: &ModuleSpec,
    partial: &PartialConfig,
    json_values: &BTreeMap<String, Value>,
    ctx: &ConversationContext,
) -> Outcome {
    if !partial.missing_required.is_empty() || !partial.errors.is_empty() {
        return Outcome::Incomplete;
    }
    match build_module_config(spec, json_values, &ctx.config_context()) {
        Ok(config) => match render_block(ctx.request_id, spec, &config) {
            Ok(block) => Outcome::Complete {
                config: Box::new(config),
                block,
            },
            Err(e) => Outcome::Blocked {
                problems: vec![format!("The Terraform block cannot be written: {e}")],
            },
        },
        Err(errors) => Outcome::Blocked {
            problems: errors.errors.iter().map(ToString::to_string).collect(),
        },
    }
}

fn dedup(errors: Vec<ConfigError>) -> Vec<ConfigError> {
    let mut out: Vec<ConfigError> = Vec::new();
    for e in errors {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
