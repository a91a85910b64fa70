//! A drift check's finding about one applied request: drift is recorded on the request (a flag
//! beside its status, shown by `status`), reported once on its issue and to the team's chat, and
//! reported gone once when a later check finds the resources as applied. The same drift found
//! again (every night) is not reported again.

use super::decider::Decider;
use super::{CommentAt, DriftUpdate, deny, reply_key};
use crate::comments::drift as say;
use crate::domain::{Denial, DriftRecord, Effect, EffectKey, NoticeEvent, RequestStatus};

impl Decider<'_> {
    /// `drift [env=…]`: starts the repository's drift check of one environment, or of every
    /// environment `.tfpilot.yml` lists. Needs write access (it runs a workflow).
    pub(super) fn drift_check(
        &mut self,
        at: CommentAt,
        environment: Option<&str>,
    ) -> Result<(), Denial> {
        self.require_write("starting a drift check")?;
        let known = self
            .facts
            .settings
            .as_ref()
            .map(|s| s.environments.clone())
            .unwrap_or_default();
        let environments = match environment {
            None => known.clone(),
            Some(e) if known.iter().any(|k| k == e) => vec![e.to_owned()],
            Some(e) => {
                return Err(deny(
                    format!("`{e}` is not an environment of this repository."),
                    format!(
                        "Use one of {}, or `{} drift` for all of them.",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        self.prefix()
                    ),
                ));
            }
        };
        if environments.is_empty() {
            return Err(deny(
                "This repository lists no environment.",
                "Add `environments` to `.tfpilot.yml`.",
            ));
        }
        let dispatch_id = format!("drift-i{}-c{}", at.thread, at.comment_id);
        self.push(
            EffectKey::drift_check(at.comment_id),
            Effect::DriftCheck {
                environments: environments.clone(),
                dispatch_id,
            },
        );
        let text = say::check_started(&reply_key(at), &environments);
        self.reply(at, text);
        Ok(())
    }

    pub(super) fn drift(&mut self, update: &DriftUpdate) {
        let Some(r) = self.request.clone() else {
            return;
        };
        // Only applied resources can drift from what TfPilot applied.
        if r.status != RequestStatus::Applied {
            return;
        }
        let key = EffectKey::drift(update.run_id);
        let now = self.facts.now;
        if update.changes.is_empty() {
            if r.drift.is_some() {
                let req = self.req();
                req.drift = None;
                req.record(now, "tfpilot", "drift_gone", Some(update.url.clone()));
                self.comment(
                    key.clone(),
                    r.issue_number,
                    say::gone(&key, &r, &update.url),
                );
            }
            return;
        }
        if r.drift
            .as_ref()
            .is_some_and(|d| d.changes == update.changes)
        {
            return;
        }
        let req = self.req();
        req.drift = Some(DriftRecord {
            run_id: update.run_id,
            url: update.url.clone(),
            found_at: now,
            changes: update.changes.clone(),
        });
        req.record(
            now,
            "tfpilot",
            "drift_found",
            Some(format!("{} resource(s)", update.changes.len())),
        );
        let text = say::found(&key, &r, &update.changes, &update.excerpt, &update.url);
        self.comment(key, r.issue_number, text);
        self.notify(NoticeEvent::DriftFound, Some(update.url.clone()));
    }
}
