//! Deciding and carrying out: an input is decided inside the store's compare-and-swap together
//! with its effects (the outbox); then the effects are carried out in order and each recorded as
//! done, failed (best effort) or refused (the lifecycle decides what a refusal means).

use std::collections::BTreeSet;
use std::time::Duration;

use time::OffsetDateTime;

use super::Executor;
use super::facts::Scope;
use super::perform::{Done, EffectError};
use crate::domain::{EffectKey, EffectRecord, EffectResult, Request};
use crate::github::Permission;
use crate::ids::RequestId;
use crate::lifecycle::{
    self, Actor, Body, CommentAt, Decision, Denial, Effect, Facts, Input, PendingEffect, Policy,
};
use crate::store::{CommentRecord, RequestStoreExt, StoreError, UpdateError, Versioned};

/// How long effects decided by another delivery are left to it before this one resumes them
/// (the other delivery crashed and was given up).
pub const OUTBOX_LEASE: Duration = Duration::from_secs(10 * 60);

/// Why the decision closure did not write.
enum Refusal {
    Denied(Denial),
    /// Another delivery's effects on this request are still being carried out.
    Busy,
}

enum Decided {
    /// Written with its effects.
    Written,
    /// Nothing to store: these comments (if any) are the whole answer.
    Stateless(Vec<PendingEffect>),
    /// The input was decided before (a redelivery): only resume.
    Already,
}

impl Executor {
    /// Decides `input` (inside the compare-and-swap) and carries out what was decided. Returns
    /// the request's id when one is involved.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn process(
        &self,
        scope: &Scope,
        existing: Option<Versioned<Request>>,
        input: &Input,
        actor: &Actor,
        policy: &Policy,
        facts: &Facts<'_>,
        answer_at: Option<CommentAt>,
    ) -> anyhow::Result<Option<RequestId>> {
        let Some(current) = existing else {
            return self
                .process_new(scope, input, actor, policy, facts, answer_at)
                .await;
        };
        let key = lifecycle::input_key(input);
        let id = current.id;
        if current.effects.contains_key(&key) {
            self.run_outbox(id, &[key], OffsetDateTime::now_utc())
                .await?;
            return Ok(Some(id));
        }
        // Effects another delivery left behind long ago (it crashed and was given up).
        self.run_outbox(id, &[], facts.now).await?;
        let now = facts.now;
        let updated = self
            .store
            .update(id, |r| {
                decide_in_place(r, &key, input, actor, policy, facts, now)
            })
            .await;
        match updated {
            Ok(u) => match u.output {
                Decided::Written => {
                    self.record_decided(scope, input, id).await?;
                    self.run_outbox(id, &[key], facts.now).await?
                }
                Decided::Already => {
                    self.run_outbox(id, &[key], OffsetDateTime::now_utc())
                        .await?
                }
                Decided::Stateless(effects) => self.post_stateless(scope, &effects).await?,
            },
            Err(UpdateError::Refused(Refusal::Denied(denial))) => {
                if let Some(at) = answer_at {
                    self.answer_denial(scope, at, &denial).await?;
                }
            }
            Err(UpdateError::Refused(Refusal::Busy)) => {
                anyhow::bail!(
                    "request {id} is still carrying out an earlier command; retrying later"
                )
            }
            Err(UpdateError::Store(e)) => return Err(e.into()),
        }
        Ok(Some(id))
    }

    /// Records that a comment (a command or a turn) was decided for request `id`, so that it is
    /// never decided for another request (a replay once `id` is archived and the issue has a new
    /// request). Idempotent; written after the decision, and again when it is resumed.
    pub(super) async fn record_decided(
        &self,
        scope: &Scope,
        input: &Input,
        id: RequestId,
    ) -> anyhow::Result<()> {
        let (Input::Command { at, .. } | Input::Turn { at, .. }) = input else {
            return Ok(());
        };
        let record = CommentRecord {
            request: Some(id),
            answer: None,
            at: OffsetDateTime::now_utc(),
        };
        self.store
            .record_comment(&scope.repo, at.comment_id, &record)
            .await?;
        Ok(())
    }

    /// Decides an input about no stored request: a new one is created with its outbox.
    async fn process_new(
        &self,
        scope: &Scope,
        input: &Input,
        actor: &Actor,
        policy: &Policy,
        facts: &Facts<'_>,
        answer_at: Option<CommentAt>,
    ) -> anyhow::Result<Option<RequestId>> {
        let key = lifecycle::input_key(input);
        let decision = match lifecycle::decide(None, input, actor, policy, facts) {
            Ok(d) => d,
            Err(denial) => {
                if let Some(at) = answer_at {
                    self.answer_denial(scope, at, &denial).await?;
                }
                return Ok(None);
            }
        };
        let Decision { request, effects } = decision;
        let Some(mut request) = request else {
            self.post_stateless(scope, &effects).await?;
            return Ok(None);
        };
        if let Input::Command { at, .. } = input {
            // The comment is recorded as having opened this request before it is created: a
            // replay of it (a new delivery id) after the request is archived opens nothing.
            let record = CommentRecord {
                request: Some(request.id),
                answer: None,
                at: facts.now,
            };
            if let Some(first) = self
                .store
                .record_comment(&scope.repo, at.comment_id, &record)
                .await?
                && first.request != Some(request.id)
            {
                anyhow::bail!(
                    "comment {} was decided meanwhile by another delivery; looking again",
                    at.comment_id
                );
            }
        }
        request.outbox = effects;
        request
            .effects
            .insert(key.clone(), record(facts.now, EffectResult::default()));
        let id = request.id;
        match self.store.create(request).await {
            Ok(_) => {}
            Err(StoreError::ThreadTaken { .. }) => {
                anyhow::bail!("another request took this thread meanwhile; deciding again")
            }
            Err(e) => return Err(e.into()),
        }
        self.run_outbox(id, &[key], OffsetDateTime::now_utc())
            .await?;
        Ok(Some(id))
    }

    /// Posts the comments of a decision that stores nothing (help, show, status, denials).
    pub(super) async fn post_stateless(
        &self,
        scope: &Scope,
        effects: &[PendingEffect],
    ) -> anyhow::Result<()> {
        for e in effects {
            if let Effect::Comment {
                thread,
                body: Body::Text { text },
            } = &e.effect
            {
                self.post_once(scope, *thread, &e.key, text).await?;
            }
        }
        Ok(())
    }

    /// Carries out the request's pending effects that belong to `owned` inputs (or that were
    /// left by another delivery longer than [`OUTBOX_LEASE`] ago), in order.
    pub(super) async fn run_outbox(
        &self,
        id: RequestId,
        owned: &[EffectKey],
        since: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let mut owned: Vec<EffectKey> = owned.to_vec();
        let mut attempted: BTreeSet<EffectKey> = BTreeSet::new();
        loop {
            let Some(current) = self.store.get(id).await? else {
                return Ok(());
            };
            let now = OffsetDateTime::now_utc();
            let Some(entry) = current
                .outbox
                .iter()
                .find(|e| {
                    !attempted.contains(&e.key) && (owned.contains(&e.input) || stale(e, now))
                })
                .cloned()
            else {
                return Ok(());
            };
            attempted.insert(entry.key.clone());
            let scope = self.request_scope(&current)?;
            if entry.effect == Effect::Archive {
                self.archive(id, &entry).await?;
                return Ok(());
            }
            // Effects decided by this very invocation were never tried; older ones may have
            // happened before a crash and are looked for first.
            let resumed = entry.decided_at < since;
            let outcome = self.perform(&scope, &current, &entry, resumed).await;
            if let Some(failed_input) = self.settle(id, &entry, outcome).await? {
                owned.push(failed_input);
            }
        }
    }

    /// Records what became of an effect. Returns the failure's input key when the effect was
    /// refused (its effects are then the caller's to carry out).
    async fn settle(
        &self,
        id: RequestId,
        entry: &PendingEffect,
        outcome: Result<Done, EffectError>,
    ) -> anyhow::Result<Option<EffectKey>> {
        match outcome {
            Ok(done) => self.mark_done(id, entry, done).await?,
            Err(EffectError::Retry(e)) => {
                return Err(e.context(format!("cannot {} yet", entry.effect.describe())));
            }
            Err(EffectError::Refused(reason)) if entry.effect.is_best_effort() => {
                tracing::warn!(effect = %entry.effect.describe(), %reason, "effect failed; going on");
                self.mark_done(
                    id,
                    entry,
                    Done::with(EffectResult::Failed {
                        error: reason.clone(),
                    }),
                )
                .await?;
            }
            Err(EffectError::Refused(reason)) => {
                tracing::warn!(effect = %entry.effect.describe(), %reason, "effect refused");
                return Ok(Some(self.fail(id, entry, &reason).await?));
            }
        }
        Ok(None)
    }

    async fn mark_done(
        &self,
        id: RequestId,
        entry: &PendingEffect,
        done: Done,
    ) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        self.store
            .update(id, |r| {
                let Some(i) = r.outbox.iter().position(|e| e.key == entry.key) else {
                    return Ok::<_, std::convert::Infallible>(());
                };
                r.outbox.remove(i);
                r.effects
                    .insert(entry.key.clone(), record(now, done.result.clone()));
                for (k, v) in &done.records {
                    r.effects.insert(k.clone(), record(now, v.clone()));
                }
                if let Some(apply) = &done.apply {
                    apply(r);
                }
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// Replaces the rest of a failed input's effects with what the lifecycle decides for the
    /// failure. Returns the failure's input key (whose effects the caller then carries out).
    async fn fail(
        &self,
        id: RequestId,
        entry: &PendingEffect,
        reason: &str,
    ) -> anyhow::Result<EffectKey> {
        let input = Input::EffectFailed {
            key: entry.key.clone(),
            effect: entry.effect.clone(),
            reason: reason.to_owned(),
        };
        let failed_key = lifecycle::input_key(&input);
        self.store
            .update(id, |r| {
                let facts = self.stored_facts(r);
                r.outbox.retain(|e| e.input != entry.input);
                r.effects.insert(
                    entry.key.clone(),
                    record(
                        facts.now,
                        EffectResult::Failed {
                            error: reason.to_owned(),
                        },
                    ),
                );
                let actor = Actor {
                    login: "tfpilot".into(),
                    permission: Permission::NotRead,
                };
                if let Ok(d) = lifecycle::decide(Some(r), &input, &actor, &self.policy, &facts) {
                    if let Some(next) = d.request {
                        *r = next;
                    }
                    r.outbox.extend(d.effects);
                }
                r.effects.insert(
                    failed_key.clone(),
                    record(facts.now, EffectResult::default()),
                );
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(failed_key)
    }

    /// The facts of a decision about a stored request that needs nothing from GitHub.
    fn stored_facts(&self, r: &Request) -> Facts<'_> {
        Facts {
            now: OffsetDateTime::now_utc(),
            registry: &self.registry,
            repo: r.repo.clone(),
            installation: r.installation_id,
            prefix: self.prefix.clone(),
            settings: None,
            new_request_id: r.id,
            pr: None,
            base_block: None,
            base_head: None,
            listing: None,
        }
    }

    async fn archive(&self, id: RequestId, entry: &PendingEffect) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        let updated = self
            .store
            .update(id, |r| {
                r.outbox.retain(|e| e.key != entry.key);
                r.effects
                    .insert(entry.key.clone(), record(now, EffectResult::default()));
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if !updated.request.outbox.is_empty() {
            // Something was decided after the archive (should not happen): keep the request.
            tracing::warn!(request = %id, "effects pending after the archive; not archiving yet");
            return Ok(());
        }
        match self.store.archive(&updated.request).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict { .. }) => {
                anyhow::bail!("request {id} changed while it was being archived; retrying")
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The decision about a stored request, made on the stored value inside the compare-and-swap.
#[allow(clippy::too_many_arguments)]
fn decide_in_place(
    r: &mut Request,
    key: &EffectKey,
    input: &Input,
    actor: &Actor,
    policy: &Policy,
    facts: &Facts<'_>,
    now: OffsetDateTime,
) -> Result<Decided, Refusal> {
    if r.effects.contains_key(key) {
        return Ok(Decided::Already);
    }
    if busy(r, now) {
        return Err(Refusal::Busy);
    }
    let d = lifecycle::decide(Some(r), input, actor, policy, facts).map_err(Refusal::Denied)?;
    let Some(next) = d.request else {
        return Ok(Decided::Stateless(d.effects));
    };
    if next == *r
        && d.effects
            .iter()
            .all(|e| matches!(e.effect, Effect::Comment { .. }))
    {
        return Ok(Decided::Stateless(d.effects));
    }
    *r = next;
    r.outbox.extend(d.effects);
    r.effects
        .insert(key.clone(), record(now, EffectResult::default()));
    Ok(Decided::Written)
}

pub(super) fn record(at: OffsetDateTime, result: EffectResult) -> EffectRecord {
    EffectRecord { at, result }
}

fn stale(e: &PendingEffect, now: OffsetDateTime) -> bool {
    (now - e.decided_at) > OUTBOX_LEASE
}

/// Whether another delivery's effects (other than comments) are still being carried out.
fn busy(r: &Request, now: OffsetDateTime) -> bool {
    r.outbox
        .iter()
        .any(|e| !matches!(e.effect, Effect::Comment { .. }) && !stale(e, now))
}
