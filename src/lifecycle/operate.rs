//! Operating the merged change: `apply`, `destroy`, `cleanup`; and `cancel`.

use super::decider::{Decider, PR_STAGES};
use super::guards::{run_active, running};
use super::{BaseBlock, CommentAt, deny, reply_key};
use crate::comments::lifecycle as say;
use crate::domain::{
    BlockChange, Body, Denial, Effect, EffectKey, PrPurpose, Request, RequestStatus, RunKind,
    cleanup_branch,
};

impl Decider<'_> {
    pub(super) fn apply(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        self.require_prod_list("apply")?;
        match r.status {
            RequestStatus::Merged | RequestStatus::ApplyFailed => {}
            // Drifted: applying the approved merged change again puts the resources back.
            RequestStatus::Applied if r.drift.is_some() => {}
            RequestStatus::Applying | RequestStatus::Destroying => {
                let kind = if r.status == RequestStatus::Applying {
                    RunKind::Apply
                } else {
                    RunKind::Destroy
                };
                return Err(running(r, kind));
            }
            RequestStatus::Applied => {
                return Err(deny(
                    "This request is already applied.",
                    format!("To change it, open a new request; to remove it, `{p} destroy`."),
                ));
            }
            s if PR_STAGES.contains(&s) => {
                let number = r
                    .pull_request
                    .as_ref()
                    .map(|p| p.number)
                    .unwrap_or_default();
                return Err(deny(
                    format!(
                        "The pull request #{number} is not merged yet; only a merged change is applied."
                    ),
                    format!("Approve it, merge it (`{p} merge` or GitHub's button), then apply."),
                ));
            }
            _ => return Err(self.wrong_state(r, "apply", "a merged request")),
        }
        if run_active(r, RunKind::Plan) {
            return Err(running(r, RunKind::Plan));
        }
        let pr = self.facts.pr.as_ref();
        if !pr.is_some_and(|pr| pr.merged) {
            return Err(deny(
                "GitHub does not show the pull request as merged.",
                format!("Merge it (`{p} merge` or GitHub's button), then apply."),
            ));
        }
        self.require_base_block(r)?;
        let heads = self.merged_heads()?;
        let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
        self.fresh_plan(r, &heads)?;
        self.require_approval(r, &heads)?;
        self.dispatch(RunKind::Apply)?;
        self.set_status(RequestStatus::Applying, "apply", None);
        self.reply(
            at,
            say::run_started(&reply_key(at), RunKind::Apply, &self.env()),
        );
        Ok(())
    }

    /// The merge commit of the request's pull request: what an apply applies (the workflow's
    /// `expected_sha`). GitHub's answer now first, then the one the merge event brought.
    pub(super) fn merge_commit(&self, r: &Request) -> Result<String, Denial> {
        let p = self.prefix();
        let from_github = self.facts.pr.as_ref().and_then(|pr| pr.merge_sha.clone());
        let from_event = r
            .pull_request
            .as_ref()
            .and_then(|pr| pr.merge_commit_sha.clone());
        from_github.or(from_event).ok_or_else(|| {
            deny(
                "GitHub has not said which commit merged the pull request, so there is no approved commit to apply.",
                format!("Try `{p} apply` again in a minute."),
            )
        })
    }

    /// The base branch must hold the request's block as it was planned and approved.
    fn require_base_block(&self, r: &Request) -> Result<(), Denial> {
        let p = self.prefix();
        let base = r.base_branch.clone().unwrap_or_else(|| "main".into());
        let (reason, remedy) = match &self.facts.base_block {
            Some(BaseBlock::Same) => return Ok(()),
            Some(BaseBlock::Different) => (
                format!(
                    "The block of this request on `{base}` is not the one that was planned and approved."
                ),
                format!("Restore it (or open a new request), then `{p} plan` and apply."),
            ),
            Some(BaseBlock::Missing) => (
                format!("The block of this request is not on `{base}`."),
                "Nothing of this request would be applied; open a new request.".to_owned(),
            ),
            Some(BaseBlock::Unreadable(why)) => (
                format!("The Terraform file on `{base}` cannot be read as TfPilot blocks: {why}"),
                "Fix the markers in that file, then apply again.".to_owned(),
            ),
            None => (
                format!("The file on `{base}` could not be read."),
                "Try again in a moment.".to_owned(),
            ),
        };
        Err(deny(reason, remedy))
    }

    pub(super) fn destroy(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        self.require_destroy_list()?;
        match r.status {
            RequestStatus::Merged
            | RequestStatus::Applied
            | RequestStatus::ApplyFailed
            | RequestStatus::DestroyFailed => {}
            RequestStatus::Applying => return Err(running(r, RunKind::Apply)),
            RequestStatus::Destroying => return Err(running(r, RunKind::Destroy)),
            RequestStatus::Destroyed => {
                return Err(deny(
                    "This request is already destroyed.",
                    format!("`{p} cleanup` opens the pull request that removes its block."),
                ));
            }
            _ => {
                return Err(deny(
                    format!(
                        "Nothing of this request was merged (it is `{}`), so there is nothing to destroy.",
                        r.status
                    ),
                    format!("`{p} cancel` ends the request."),
                ));
            }
        }
        if run_active(r, RunKind::Apply) || run_active(r, RunKind::Plan) {
            return Err(running(
                r,
                if run_active(r, RunKind::Apply) {
                    RunKind::Apply
                } else {
                    RunKind::Plan
                },
            ));
        }
        self.dispatch(RunKind::Destroy)?;
        self.set_status(RequestStatus::Destroying, "destroy", None);
        self.reply(
            at,
            say::run_started(&reply_key(at), RunKind::Destroy, &self.env()),
        );
        Ok(())
    }

    /// The pull request that removes the block, then the archive.
    pub(super) fn cleanup_effects(&mut self) -> Result<(), Denial> {
        let r = self.req().clone();
        let spec = self.spec(&r)?;
        let env = r.environment.clone().unwrap_or_default();
        let base = r.base_branch.clone().unwrap_or_else(|| "main".into());
        let branch = cleanup_branch(r.id);
        self.push(
            EffectKey::cleanup_commit(),
            Effect::CommitBlock {
                branch: branch.clone(),
                base: base.clone(),
                file: format!("envs/{env}/{}", spec.target_file),
                change: BlockChange::Remove,
                message: format!(
                    "tfpilot: remove `{}` {} from {env}\n\nIts resources were destroyed (request from #{}).",
                    r.module_type, r.id, r.issue_number
                ),
            },
        );
        self.push(
            EffectKey::open_pr(PrPurpose::Cleanup),
            Effect::OpenPr {
                purpose: PrPurpose::Cleanup,
                branch,
                base,
                title: say::cleanup_pr_title(&r),
                body: say::cleanup_pr_body(&r),
            },
        );
        self.push(
            EffectKey::cleanup_reply(),
            Effect::Comment {
                thread: r.issue_number,
                body: Body::PrOpened {
                    purpose: PrPurpose::Cleanup,
                },
            },
        );
        self.push(EffectKey::archive(), Effect::Archive);
        Ok(())
    }

    pub(super) fn cleanup(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        self.require_prod_list("clean up")?;
        if r.status != RequestStatus::Destroyed {
            return Err(self.wrong_state(
                r,
                "cleanup",
                "a destroyed request whose cleanup pull request could not be opened",
            ));
        }
        let now = self.facts.now;
        let login = self.actor.login.clone();
        self.req().record(now, login, "cleanup", None);
        self.reply(at, say::cleanup_started(&reply_key(at)));
        self.cleanup_effects()
    }

    pub(super) fn cancel(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        let open_pr = match r.status {
            RequestStatus::Collecting | RequestStatus::Ready | RequestStatus::PrClosed => None,
            s if PR_STAGES.contains(&s) => r.pull_request.as_ref().map(|pr| pr.number),
            _ => {
                return Err(deny(
                    format!(
                        "This request is `{}`: its change is merged, so cancelling would leave its resources behind.",
                        r.status
                    ),
                    format!("`{p} destroy` removes its resources and then its block."),
                ));
            }
        };
        if let Some(number) = open_pr {
            self.push(EffectKey::close(number), Effect::ClosePr { number });
        }
        self.set_status(RequestStatus::Cancelled, "cancel", None);
        self.reply(at, say::cancelled(&reply_key(at), open_pr));
        self.push(EffectKey::archive(), Effect::Archive);
        Ok(())
    }
}
