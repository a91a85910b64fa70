//! Carrying out a chat notice: best effort, bounded in time (see [`crate::slack`]). A notice
//! that cannot be delivered is recorded as failed and logged; the lifecycle goes on.

use super::Executor;
use super::perform::{Done, EffectError};
use crate::domain::{EffectResult, Notice};
use crate::metrics::SLACK_NOTICES;
use crate::slack::{Sent, SlackError};

impl Executor {
    pub(super) async fn notify(&self, notice: &Notice) -> Result<Done, EffectError> {
        let Some(slack) = &self.slack else {
            return Ok(Done::with(EffectResult::default()));
        };
        let outcome = slack.send(notice).await;
        let label = match &outcome {
            Ok(Sent::Delivered) => "delivered",
            Ok(Sent::NotConfigured) => "not_configured",
            Err(SlackError::Refused { .. }) => "refused",
            Err(SlackError::Unavailable(_)) => "unavailable",
            Err(SlackError::UnknownRoute(_)) => "unknown_route",
        };
        metrics::counter!(SLACK_NOTICES, "outcome" => label).increment(1);
        match outcome {
            Ok(_) => Ok(Done::with(EffectResult::default())),
            Err(e) => Err(EffectError::Refused(e.to_string())),
        }
    }
}
