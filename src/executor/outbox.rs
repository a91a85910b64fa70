//! Deciding and carrying out: an input is decided inside the store's compare-and-swap together
//! with its effects (the outbox); then the effects are carried out in order and each recorded as
//! done, failed (best effort) or refused (the lifecycle decides what a refusal means).

use std::collections::BTreeSet;

use anyhow::Context as _;
use std::time::Duration;

use time::OffsetDateTime;

use super::Executor;
use super::facts::Scope;
use super::perform::{Done, EffectError};
use crate::domain::{EffectKey, EffectRecord, EffectResult, OutboxLease, Request};
use crate::github::Permission;
use crate::ids::RequestId;
use crate::lifecycle::{
    self, Actor, Body, CommentAt, Decision, Denial, Effect, Facts, Input, PendingEffect, Policy,
};
use crate::store::{CommentRecord, RequestStoreExt, StoreError, UpdateError, Versioned};

/// How long one performer holds a request's outbox without carrying out an effect: the lease is
/// renewed after every effect, and a performer that stopped (a crash, a kill) is taken over by
/// whoever holds the request next once its lease ran out. An effect still running when it is
/// taken over is not done twice: a resumed effect is looked for first (marker, dispatch id,
/// commit content).
pub const OUTBOX_LEASE: Duration = Duration::from_secs(2 * 60);

/// An effect that changes code or infrastructure (a commit, a pull request, a merge, a workflow
/// dispatch) decided longer ago than this is not carried out: it is reported as not done (the
/// lifecycle decides the failure against the request as it is now) and the person runs the
/// command again.
pub const STALE_EFFECT: Duration = Duration::from_secs(30 * 60);

/// Records of carried-out effects are kept this long (see [`compact`]).
pub const EFFECT_RECORD_KEEP: Duration = Duration::from_secs(24 * 60 * 60);

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
            self.run_outbox(id, OffsetDateTime::now_utc()).await?;
            self.touch_dashboard(scope, id);
            return Ok(Some(id));
        }
        // Whatever is still pending on the request (another input's effects, a failure's
        // answer, an archive) is carried out before this input is decided.
        self.run_outbox(id, facts.now).await?;
        let now = facts.now;
        let updated = self
            .store
            .update(id, |r| {
                decide_in_place(
                    r,
                    &key,
                    input,
                    actor,
                    policy,
                    facts,
                    now,
                    self.slack.is_some(),
                )
            })
            .await;
        match updated {
            Ok(u) => match u.output {
                Decided::Written => {
                    self.record_decided(scope, input, id).await?;
                    self.run_outbox(id, facts.now).await?;
                    self.touch_dashboard(scope, id);
                }
                Decided::Already => {
                    self.run_outbox(id, OffsetDateTime::now_utc()).await?;
                    self.touch_dashboard(scope, id);
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
        let Decision {
            request,
            mut effects,
        } = decision;
        keep_notices(&mut effects, self.slack.is_some());
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
        // Effects decided just now were never tried: no marker to look for first.
        self.run_outbox(id, facts.now).await?;
        self.touch_dashboard(scope, id);
        Ok(Some(id))
    }

    /// Carries out a decision that stores nothing: its comments (help, show, status, denials)
    /// and drift checks.
    pub(super) async fn post_stateless(
        &self,
        scope: &Scope,
        effects: &[PendingEffect],
    ) -> anyhow::Result<()> {
        for e in effects {
            match &e.effect {
                Effect::Comment {
                    thread,
                    body: Body::Text { text },
                } => {
                    self.post_once(scope, *thread, &e.key, text).await?;
                }
                Effect::DriftCheck {
                    environments,
                    dispatch_id,
                } => {
                    self.start_drift_check(scope, environments, dispatch_id)
                        .await?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Carries out every pending effect of the request, whatever input decided it, in order:
    /// whoever holds the request next drains what a crashed or given-up performer left. One
    /// performer at a time: the outbox is taken under a lease stored on the request (see
    /// [`OUTBOX_LEASE`]); while another performer holds it, this fails and the worker retries.
    /// Effects decided before `since` may have happened before a crash and are looked for
    /// first; a stale one (see [`STALE_EFFECT`]) is reported instead of carried out.
    pub(super) async fn run_outbox(
        &self,
        id: RequestId,
        since: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let call = uuid::Uuid::new_v4().simple();
        let owner = match &self.instance_run {
            Some(run) => format!("{run}#{call}"),
            None => call.to_string(),
        };
        let Some(first) = self.store.get(id).await? else {
            return Ok(());
        };
        if first.outbox.is_empty() {
            return Ok(());
        }
        // What it carries out changes the request (a resumed delivery, a sweep's decision too).
        if let Ok(scope) = self.request_scope(&first) {
            self.touch_dashboard(&scope, id);
        }
        self.take_lease(id, &owner).await?;
        let drained = self.drain(id, &owner, since).await;
        if drained.is_err() {
            self.release_lease(id, &owner).await;
        }
        drained
    }

    /// Takes the performer lease of request `id` for `owner`, or fails while another live
    /// performer holds it.
    async fn take_lease(&self, id: RequestId, owner: &str) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        let taken = self
            .store
            .update(id, |r| match &r.outbox_lease {
                Some(l)
                    if l.owner != owner
                        && l.until > now
                        && !r.outbox.is_empty()
                        && !held_by_dead_run(&l.owner, owner) =>
                {
                    Err(l.until)
                }
                _ => {
                    r.outbox_lease = (!r.outbox.is_empty()).then(|| OutboxLease {
                        owner: owner.to_owned(),
                        until: now + OUTBOX_LEASE,
                    });
                    Ok(())
                }
            })
            .await;
        match taken {
            Ok(_) => Ok(()),
            Err(UpdateError::Refused(until)) => anyhow::bail!(
                "request {id}'s pending effects are being carried out by another worker (until {until}); retrying later"
            ),
            Err(UpdateError::Store(StoreError::NotFound(_))) => Ok(()),
            Err(UpdateError::Store(e)) => Err(e.into()),
        }
    }

    /// Gives the lease back (best effort: it runs out by itself).
    async fn release_lease(&self, id: RequestId, owner: &str) {
        let released = self
            .store
            .update(id, |r| {
                if r.outbox_lease.as_ref().is_some_and(|l| l.owner == owner) {
                    r.outbox_lease = None;
                }
                Ok::<_, std::convert::Infallible>(())
            })
            .await;
        if let Err(e) = released {
            tracing::warn!(request = %id, error = %e, "cannot release the outbox lease");
        }
    }

    async fn drain(&self, id: RequestId, owner: &str, since: OffsetDateTime) -> anyhow::Result<()> {
        let mut attempted: BTreeSet<EffectKey> = BTreeSet::new();
        loop {
            let Some(current) = self.store.get(id).await? else {
                return Ok(());
            };
            let now = OffsetDateTime::now_utc();
            let pending: Vec<&PendingEffect> = current
                .outbox
                .iter()
                .filter(|e| !attempted.contains(&e.key))
                .collect();
            // The archive is always last, even when something was decided after it.
            let next = pending
                .iter()
                .find(|e| e.effect != Effect::Archive)
                .or_else(|| pending.first())
                .map(|e| (*e).clone());
            let Some(entry) = next else {
                if current.outbox.is_empty() {
                    self.release_lease(id, owner).await;
                    return Ok(());
                }
                anyhow::bail!(
                    "request {id} still has effects pending that could not be settled; retrying"
                );
            };
            attempted.insert(entry.key.clone());
            if entry.effect == Effect::Archive {
                if current.outbox.len() > 1 {
                    continue;
                }
                return self.archive(&current, &entry).await;
            }
            if stale(&entry, now) {
                let reason = format!(
                    "it was decided {} ago and not carried out then; TfPilot does not {} this late",
                    age(now, entry.decided_at),
                    entry.effect.describe()
                );
                tracing::warn!(request = %id, effect = %entry.effect.describe(), "a stale effect is not carried out");
                self.fail(id, &entry, &reason, owner).await?;
                continue;
            }
            let scope = self.request_scope(&current)?;
            // Effects decided by this very invocation were never tried; older ones may have
            // happened before a crash and are looked for first.
            let resumed = entry.decided_at < since;
            let outcome = self.perform(&scope, &current, &entry, resumed).await;
            self.settle(id, &entry, outcome, owner).await?;
        }
    }

    /// Records what became of an effect (a refusal is decided by the lifecycle, whose effects
    /// join the outbox).
    async fn settle(
        &self,
        id: RequestId,
        entry: &PendingEffect,
        outcome: Result<Done, EffectError>,
        owner: &str,
    ) -> anyhow::Result<()> {
        match outcome {
            Ok(done) => self.mark_done(id, entry, done, owner).await?,
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
                    owner,
                )
                .await?;
            }
            Err(EffectError::Refused(reason)) => {
                tracing::warn!(effect = %entry.effect.describe(), %reason, "effect refused");
                self.fail(id, entry, &reason, owner).await?;
            }
        }
        Ok(())
    }

    async fn mark_done(
        &self,
        id: RequestId,
        entry: &PendingEffect,
        done: Done,
        owner: &str,
    ) -> anyhow::Result<()> {
        let now = OffsetDateTime::now_utc();
        self.store
            .update(id, |r| {
                renew(r, owner, now);
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
                compact(r, now);
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .context("recording a carried-out effect on its request")?;
        Ok(())
    }

    /// Replaces the rest of a failed input's effects with what the lifecycle decides for the
    /// failure (those join the outbox, carried out by this same drain).
    async fn fail(
        &self,
        id: RequestId,
        entry: &PendingEffect,
        reason: &str,
        owner: &str,
    ) -> anyhow::Result<()> {
        let input = Input::EffectFailed {
            key: entry.key.clone(),
            effect: entry.effect.clone(),
            reason: reason.to_owned(),
        };
        let failed_key = lifecycle::input_key(&input);
        self.store
            .update(id, |r| {
                let facts = self.stored_facts(r);
                renew(r, owner, facts.now);
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
                if let Ok(mut d) = lifecycle::decide(Some(r), &input, &actor, &self.policy, &facts)
                {
                    keep_notices(&mut d.effects, self.slack.is_some());
                    let lease = r.outbox_lease.clone();
                    if let Some(next) = d.request {
                        *r = next;
                    }
                    r.outbox_lease = lease;
                    r.outbox.extend(d.effects);
                }
                r.effects.insert(
                    failed_key.clone(),
                    record(facts.now, EffectResult::default()),
                );
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .context("recording a failed effect on its request")?;
        Ok(())
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

    /// Moves the request to `history/` once the archive is all that is pending. The archive is
    /// recorded as done only in the copy that moves: a crash before the move leaves it pending
    /// on the live request, and the next performer archives it.
    async fn archive(
        &self,
        current: &Versioned<Request>,
        entry: &PendingEffect,
    ) -> anyhow::Result<()> {
        let id = current.id;
        let now = OffsetDateTime::now_utc();
        let mut last = current.value().clone();
        last.outbox.retain(|e| e.key != entry.key);
        last.outbox_lease = None;
        last.effects
            .insert(entry.key.clone(), record(now, EffectResult::default()));
        let moving = Versioned::new(last, current.etag().clone());
        match self.store.archive(&moving).await {
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
    notices: bool,
) -> Result<Decided, Refusal> {
    if r.effects.contains_key(key) {
        return Ok(Decided::Already);
    }
    if busy(r) {
        return Err(Refusal::Busy);
    }
    let mut d = lifecycle::decide(Some(r), input, actor, policy, facts).map_err(Refusal::Denied)?;
    keep_notices(&mut d.effects, notices);
    let Some(next) = d.request else {
        return Ok(Decided::Stateless(d.effects));
    };
    if next == *r && d.effects.iter().all(|e| e.effect.is_stateless()) {
        return Ok(Decided::Stateless(d.effects));
    }
    *r = next;
    r.outbox.extend(d.effects);
    r.effects
        .insert(key.clone(), record(now, EffectResult::default()));
    Ok(Decided::Written)
}

/// Drops the chat notices of a decision when no chat is configured: an effect that would do
/// nothing is not worth a write to the store.
fn keep_notices(effects: &mut Vec<PendingEffect>, notices: bool) {
    if !notices {
        effects.retain(|e| !matches!(e.effect, Effect::Notify { .. }));
    }
}

pub(super) fn record(at: OffsetDateTime, result: EffectResult) -> EffectRecord {
    EffectRecord { at, result }
}

/// Whether `e` changes code or infrastructure and was decided longer than [`STALE_EFFECT`] ago.
fn stale(e: &PendingEffect, now: OffsetDateTime) -> bool {
    matches!(
        e.effect,
        Effect::Dispatch { .. }
            | Effect::Merge { .. }
            | Effect::CommitBlock { .. }
            | Effect::OpenPr { .. }
    ) && (now - e.decided_at) > STALE_EFFECT
}

/// Whether effects (other than comments and chat notices) are still pending: the outbox was drained before this
/// decision, so another performer is carrying them out (or just decided them); the input is
/// decided once they are done.
fn busy(r: &Request) -> bool {
    r.outbox.iter().any(|e| !e.effect.lets_others_decide())
}

/// Whether an outbox lease `held` (`<instance>/<run>#<call>`) was taken by an earlier run of the
/// instance `owner` belongs to: that process is dead (one process at a time is an instance), so
/// its lease need not be waited out. Calls of the same run are live siblings and respected.
fn held_by_dead_run(held: &str, owner: &str) -> bool {
    match (held.split_once('#'), owner.split_once('#')) {
        (Some((held_run, _)), Some((my_run, _))) => crate::inbox::is_earlier_run(held_run, my_run),
        _ => false,
    }
}

/// Extends `owner`'s lease (if it still holds it); drops it once the outbox is empty.
fn renew(r: &mut Request, owner: &str, now: OffsetDateTime) {
    if let Some(l) = &mut r.outbox_lease
        && l.owner == owner
    {
        l.until = now + OUTBOX_LEASE;
    }
}

/// Keeps `request.effects` bounded. Kept: every input key (`input:…`: it is what makes a
/// redelivered comment, run or failure a no-op, and it is one short line per input), the record
/// of the current revision's commit (the guardrails read it), every record under the current
/// revision's plan prefix (hiding outdated plans needs their comment ids), and every record
/// younger than [`EFFECT_RECORD_KEEP`]. Dropped: older records of effects carried out (answers,
/// plans of earlier revisions, dispatches, merges): nothing decides on them any more, and a
/// resumed effect is looked for on GitHub (marker, dispatch id, commit content), not here.
pub(super) fn compact(r: &mut Request, now: OffsetDateTime) {
    let commit = EffectKey::commit(r.revision);
    let plans = EffectKey::plan_prefix(r.id, r.revision);
    let summaries = EffectKey::plan_summary_prefix(r.id, r.revision);
    let pending: BTreeSet<EffectKey> = r.outbox.iter().map(|e| e.input.clone()).collect();
    r.effects.retain(|key, rec| {
        key.is_input()
            || pending.contains(key)
            || *key == commit
            || key.starts_with(&plans)
            || key.starts_with(&summaries)
            || now - rec.at < EFFECT_RECORD_KEEP
    });
}

/// How long ago `at` was, in words ("45 minutes", "3 days").
fn age(now: OffsetDateTime, at: OffsetDateTime) -> String {
    let minutes = (now - at).whole_minutes().max(0);
    match minutes {
        m if m < 120 => format!("{m} minutes"),
        m if m < 48 * 60 => format!("{} hours", m / 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

#[cfg(test)]
mod lease_tests {
    use super::held_by_dead_run;

    #[test]
    fn only_an_earlier_run_of_the_same_instance_is_dead() {
        let me = "serve@h:3000/run-2#call-a";
        assert!(held_by_dead_run("serve@h:3000/run-1#call-x", me));
        assert!(
            !held_by_dead_run("serve@h:3000/run-2#call-b", me),
            "a live sibling call"
        );
        assert!(
            !held_by_dead_run("serve@h:3001/run-1#call-x", me),
            "another instance"
        );
        assert!(
            !held_by_dead_run("4f0c2a", me),
            "a plain owner (Lambda, tests)"
        );
        assert!(!held_by_dead_run("serve@h:3000/run-1#x", "4f0c2a"));
    }
}
