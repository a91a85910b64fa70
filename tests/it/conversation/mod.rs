//! The conversation end to end: comments through the command parser, the assistant (rules, and
//! OpenAI-compatible against a local stub server) and the conversation state to the reply
//! TfPilot posts.

mod flow;
mod openai;
pub(crate) mod stub;
