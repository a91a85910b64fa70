//! The decider: the state one decision builds up, and the small helpers every command uses.

use super::{Actor, CommentAt, Facts, deny, reply_key};
use crate::conversation::ConversationContext;
use crate::domain::{
    Body, Denial, Effect, EffectKey, PendingEffect, Policy, Request, RequestStatus,
};
use crate::registry::ModuleSpec;

pub(super) struct Decider<'a> {
    pub(super) request: Option<Request>,
    pub(super) actor: &'a Actor,
    pub(super) policy: &'a Policy,
    pub(super) facts: &'a Facts<'a>,
    pub(super) effects: Vec<PendingEffect>,
    pub(super) input_key: EffectKey,
}

/// Statuses in which the pull request is open and not merged.
pub(super) const PR_STAGES: &[RequestStatus] = &[
    RequestStatus::PrOpen,
    RequestStatus::Planning,
    RequestStatus::Planned,
    RequestStatus::PlanFailed,
    RequestStatus::Approved,
];

impl<'a> Decider<'a> {
    pub(super) fn push(&mut self, key: EffectKey, effect: Effect) {
        self.effects.push(PendingEffect {
            key,
            input: self.input_key.clone(),
            decided_at: self.facts.now,
            effect,
        });
    }

    pub(super) fn reply(&mut self, at: CommentAt, text: String) {
        self.push(
            reply_key(at),
            Effect::Comment {
                thread: at.thread,
                body: Body::Text { text },
            },
        );
    }

    pub(super) fn comment(&mut self, key: EffectKey, thread: u64, text: String) {
        self.push(
            key,
            Effect::Comment {
                thread,
                body: Body::Text { text },
            },
        );
    }

    pub(super) fn req(&mut self) -> &mut Request {
        self.request
            .as_mut()
            .unwrap_or_else(|| unreachable!("callers check that a request exists"))
    }

    pub(super) fn set_status(
        &mut self,
        status: RequestStatus,
        event: &str,
        detail: Option<String>,
    ) {
        let now = self.facts.now;
        let login = self.actor.login.clone();
        let r = self.req();
        r.status = status;
        r.record(now, login, event, detail);
    }

    pub(super) fn prefix(&self) -> &str {
        &self.facts.prefix
    }

    pub(super) fn spec(&self, r: &Request) -> Result<&'a ModuleSpec, Denial> {
        self.facts.registry.get(&r.module_type).ok_or_else(|| {
            deny(
                format!(
                    "This request is for module type `{}`, which this TfPilot no longer knows.",
                    r.module_type
                ),
                format!("`{} cancel` it and open a new request.", self.prefix()),
            )
        })
    }

    pub(super) fn ctx(&self, r: &Request) -> ConversationContext {
        let mut ctx = ConversationContext::new(
            r.id,
            r.project.clone().unwrap_or_default(),
            r.environment.clone().unwrap_or_default(),
        );
        ctx.prefix = self.facts.prefix.clone();
        ctx
    }

    pub(super) fn env(&self) -> String {
        self.request
            .as_ref()
            .and_then(|r| r.environment.clone())
            .unwrap_or_default()
    }
}
