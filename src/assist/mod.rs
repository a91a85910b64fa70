//! The input assistant: turns what a person wrote ("turn versioning on, keep objects 30 days")
//! into *proposed* input values for one module, plus the questions still worth asking.
//!
//! Two [`Extractor`]s: [`RulesExtractor`] (deterministic, always available, the default) and
//! [`OpenAiExtractor`] (any OpenAI-compatible server, when a key is configured), which falls back to
//! the rules on any error, timeout or unusable answer.
//!
//! An extraction is only a proposal. Nothing here decides what is stored: the conversation
//! ([`crate::conversation`]) runs every proposed value through the catalogue's validation, and
//! only the spec's own inputs can be proposed at all — never the module type, the environment,
//! the project, the request id or an allow-list.

pub mod openai;
pub mod rules;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use openai::OpenAiExtractor;
pub use rules::RulesExtractor;

use crate::domain::{ChatRole, ChatTurn};
pub use crate::domain::{Clarification, ClarificationKind};
use crate::registry::{InputSpec, InputType, ModuleSpec};

/// How long the assistant may take before the rules answer instead.
pub const DEFAULT_LLM_TIMEOUT: Duration = Duration::from_secs(20);

/// The model used when none is configured.
pub const DEFAULT_LLM_MODEL: &str = "gpt-4o-mini";

/// Reads a message and proposes input values.
#[async_trait]
pub trait Extractor: Send + Sync {
    /// Never fails: an extractor that cannot do better answers with the rules' reading.
    async fn extract(&self, req: &ExtractRequest<'_>) -> Extraction;

    /// Which extractor this is, for logs.
    fn kind(&self) -> ExtractorKind;
}

/// What an extractor reads.
#[derive(Debug, Clone, Copy)]
pub struct ExtractRequest<'a> {
    pub spec: &'a ModuleSpec,
    /// The values the conversation holds so far (canonical names, normalized values).
    pub collected: &'a BTreeMap<String, Value>,
    /// The questions TfPilot asked last, so a bare "yes" or "30" can answer them.
    pub pending: &'a [Clarification],
    /// The new message, as plain text (see [`crate::command::strip_markdown`]).
    pub message: &'a str,
    /// Earlier turns, oldest first.
    pub history: &'a [Turn],
}

/// One earlier turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub role: ChatRole,
    pub text: String,
}

impl From<&ChatTurn> for Turn {
    fn from(t: &ChatTurn) -> Self {
        Turn {
            role: t.role,
            text: t.text.clone(),
        }
    }
}

/// Which extractor produced an extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractorKind {
    Rules,
    Llm,
    /// The LLM was asked but failed (error, timeout, unusable answer); the rules answered.
    LlmFellBackToRules,
}

impl ExtractorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExtractorKind::Rules => "rules",
            ExtractorKind::Llm => "llm",
            ExtractorKind::LlmFellBackToRules => "llm_fell_back_to_rules",
        }
    }
}

/// The standard question for an input: yes/no for bools, a choice where the catalogue lists
/// the allowed values, free text otherwise.
pub fn clarification_for(input: &InputSpec) -> Clarification {
    let name = &input.name;
    let (question, kind) = if input.input_type == InputType::Bool {
        (format!("Should `{name}` be on?"), ClarificationKind::YesNo)
    } else if !input.allowed_values.is_empty() {
        (
            format!("Which `{name}`?"),
            ClarificationKind::Choice {
                options: input
                    .allowed_values
                    .iter()
                    .map(|v| v.to_plain_string())
                    .collect(),
            },
        )
    } else {
        let q = match (&input.input_type, &input.unit) {
            (InputType::Number, Some(unit)) => format!("How many {unit} for `{name}`?"),
            (InputType::Map, _) => format!("Which `{name}`? Write them as `Key=Value` pairs."),
            (InputType::List, _) => format!("Which `{name}`? Separate them with commas."),
            _ => format!("What should `{name}` be?"),
        };
        (q, ClarificationKind::Text)
    };
    Clarification {
        input: name.clone(),
        question,
        kind,
    }
}

/// What an extractor understood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extraction {
    /// Proposed values: canonical input names (or `map.entry`), raw values for the catalogue to
    /// validate. A key the catalogue does not know may appear when the person wrote one
    /// (`versoning=on`), so the reply can say "did you mean".
    pub proposed: BTreeMap<String, Value>,
    pub clarifications: Vec<Clarification>,
    /// A short note to the person (may be empty). Text from an LLM: render it as untrusted.
    pub reply: String,
    pub source: ExtractorKind,
}

impl Extraction {
    pub fn empty(source: ExtractorKind) -> Self {
        Extraction {
            proposed: BTreeMap::new(),
            clarifications: Vec::new(),
            reply: String::new(),
            source,
        }
    }
}

/// The extractor the settings ask for: OpenAI-compatible when an API key is set (with the
/// configured base URL and model), the rules otherwise.
pub fn from_settings(
    api_key: Option<&SecretString>,
    base_url: Option<&str>,
    model: Option<&str>,
) -> Arc<dyn Extractor> {
    match api_key {
        Some(key) => Arc::new(OpenAiExtractor::new(
            key.clone(),
            base_url,
            model.unwrap_or(DEFAULT_LLM_MODEL),
            DEFAULT_LLM_TIMEOUT,
        )),
        None => Arc::new(RulesExtractor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn standard_questions_follow_the_input_type() {
        let r = Registry::embedded();
        let s3 = r.get("s3-bucket").unwrap();
        let q = crate::assist::clarification_for(s3.input("versioning_enabled").unwrap());
        assert_eq!(q.kind, ClarificationKind::YesNo);
        assert_eq!(q.question, "Should `versioning_enabled` be on?");
        let q = crate::assist::clarification_for(s3.input("expiration_days").unwrap());
        assert_eq!(q.question, "How many days for `expiration_days`?");
        let iam = r.get("iam-role-app").unwrap();
        let q = crate::assist::clarification_for(iam.input("trusted_service").unwrap());
        assert_eq!(
            q.kind,
            ClarificationKind::Choice {
                options: vec![
                    "ecs-tasks.amazonaws.com".into(),
                    "lambda.amazonaws.com".into(),
                    "ec2.amazonaws.com".into()
                ]
            }
        );
        let json = serde_json::to_value(&q).unwrap();
        assert_eq!(json["kind"], "choice");
        assert_eq!(json["input"], "trusted_service");
        let back: Clarification = serde_json::from_value(json).unwrap();
        assert_eq!(back, q);
    }

    #[test]
    fn settings_without_a_key_give_the_rules() {
        assert_eq!(from_settings(None, None, None).kind(), ExtractorKind::Rules);
        let key = SecretString::from("sk-test");
        let e = from_settings(Some(&key), Some("http://127.0.0.1:9/v1"), Some("m"));
        assert_eq!(e.kind(), ExtractorKind::Llm);
    }
}
