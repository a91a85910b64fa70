//! Review: `submit`, `plan`, `approve` and `merge`.

use super::decider::Decider;
use super::guards::{
    is_author, mention_list, quorum_short, require_listed, revision_uncommitted, run_active,
    running,
};
use super::{CommentAt, deny, plan_key_prefix, reply_key};
use crate::comments::lifecycle::{self as say, next_step, short_sha};
use crate::domain::{
    Approval, Body, Denial, Effect, EffectKey, PrPurpose, Request, RequestStatus, RunKind,
    request_branch,
};

impl Decider<'_> {
    pub(super) fn submit(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        match r.status {
            RequestStatus::Ready | RequestStatus::PrClosed => {}
            RequestStatus::Collecting => {
                return Err(deny(
                    "This request is not complete yet, so there is nothing to submit.",
                    format!("Give the missing inputs first; `{p} show` lists them."),
                ));
            }
            _ => {
                let pr = r
                    .pull_request
                    .as_ref()
                    .map(|pr| format!(" as #{}", pr.number))
                    .unwrap_or_default();
                return Err(deny(
                    format!("This request was already submitted{pr}."),
                    next_step(r, &p),
                ));
            }
        }
        let Some(block) = r.block.clone() else {
            return Err(deny(
                "This request has no Terraform block yet.",
                format!("`{p} show` says what is missing."),
            ));
        };
        if r.revision == 0 {
            self.req().revision = 1;
        }
        self.req().approvals.clear();
        self.commit_block(block)?;
        let r = self.req().clone();
        let spec = self.spec(&r)?;
        let base = r.base_branch.clone().unwrap_or_else(|| "main".into());
        self.push(
            EffectKey::open_pr(PrPurpose::Request),
            Effect::OpenPr {
                purpose: PrPurpose::Request,
                branch: request_branch(r.id),
                base,
                title: say::pr_title(&r, &spec.display_name),
                body: say::pr_body(&r, &spec.display_name, &p),
            },
        );
        self.dispatch(RunKind::Plan)?;
        self.set_status(RequestStatus::Planning, "submitted", None);
        self.push(
            reply_key(at),
            Effect::Comment {
                thread: at.thread,
                body: Body::PrOpened {
                    purpose: PrPurpose::Request,
                },
            },
        );
        Ok(())
    }

    pub(super) fn plan(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        match r.status {
            RequestStatus::PrOpen
            | RequestStatus::Planned
            | RequestStatus::PlanFailed
            | RequestStatus::Approved => {
                if revision_uncommitted(r) {
                    return Err(deny(
                        format!(
                            "Revision {} of this request could not be committed to its pull request, so there is nothing new to plan.",
                            r.revision
                        ),
                        format!(
                            "Fix the problem, then change a value again (`{p} set key=value`) to commit it; `{p} show` lists the inputs."
                        ),
                    ));
                }
                // The approvals stay with the commit they were given on; the new plan keeps
                // them only if it makes the same resource changes (see `Effect::PostPlan`).
                self.push(
                    EffectKey::minimize(r.revision, r.version),
                    Effect::MinimizeComments {
                        key_prefix: plan_key_prefix(r.id, r.revision),
                    },
                );
                self.dispatch(RunKind::Plan)?;
                self.set_status(RequestStatus::Planning, "plan", None);
            }
            RequestStatus::Merged | RequestStatus::ApplyFailed => self.plan_merged(r)?,
            // Drifted: a plan of the merged change shows what an apply would put back.
            RequestStatus::Applied if r.drift.is_some() => self.plan_merged(r)?,
            RequestStatus::Planning => return Err(running(r, RunKind::Plan)),
            _ => {
                return Err(self.wrong_state(
                    r,
                    "plan",
                    "a submitted request (after `submit`, before `destroy`)",
                ));
            }
        }
        self.reply(at, say::plan_started(&reply_key(at), &self.env(), &p));
        Ok(())
    }

    /// After the merge, a plan runs on the base branch: the change as merged.
    fn plan_merged(&mut self, r: &Request) -> Result<(), Denial> {
        if run_active(r, RunKind::Plan) {
            return Err(running(r, RunKind::Plan));
        }
        self.dispatch(RunKind::Plan)?;
        let now = self.facts.now;
        let login = self.actor.login.clone();
        self.req()
            .record(now, login, "plan", Some("merged change".into()));
        Ok(())
    }

    /// `approve`: of the pull request's head before the merge; or, for a change merged (with
    /// GitHub's button) before it was approved, of the merged commit whose plan succeeded, which
    /// lets `apply` go on. Both need the same people and record the approval the same way.
    pub(super) fn approve(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        self.require_approver(r)?;
        let merged = match r.status {
            RequestStatus::Planned | RequestStatus::Approved => false,
            RequestStatus::Merged | RequestStatus::ApplyFailed => true,
            RequestStatus::Planning => return Err(running(r, RunKind::Plan)),
            _ => {
                return Err(self.wrong_state(r, "approve", "a request whose plan succeeded"));
            }
        };
        let head = if merged {
            self.merged_head_to_approve(r)?
        } else {
            self.open_head_to_approve(r)?
        };
        self.record_approval(at, &head, merged);
        Ok(())
    }

    /// Who may approve: the prod allow-list in prod, the approvers where they are required, and
    /// wherever approvals are needed (four eyes) nobody who wrote the inputs (the requester, or
    /// whoever changed them since).
    fn require_approver(&self, r: &Request) -> Result<(), Denial> {
        let env = self.env();
        self.require_prod_list("approve")?;
        if self.policy.approvers_required {
            require_listed(
                &self.actor.login,
                &self.policy.approvers,
                "Only approvers can approve requests here.",
                "TFPILOT_APPROVERS",
            )?;
        }
        if !(self.policy.approvals_needed(&env) > 0 && is_author(r, &self.actor.login)) {
            return Ok(());
        }
        let others = self.eligible_approvers(r);
        let reason = if r.requester.eq_ignore_ascii_case(&self.actor.login) {
            format!(
                "You opened this request, and a `{env}` request needs approval from someone else."
            )
        } else {
            format!(
                "You changed the inputs of this request, and a `{env}` request needs approval from someone who did not write it."
            )
        };
        Err(deny(
            reason,
            if others.is_empty() {
                "Nobody else is on the prod allow-list (TFPILOT_PROD_ALLOWED_USERS); an administrator must add someone.".to_owned()
            } else {
                format!("Ask {}.", mention_list(&others.iter().collect::<Vec<_>>()))
            },
        ))
    }

    /// The head an approval before the merge is for: the open pull request's, TfPilot's own,
    /// with a fresh successful plan.
    fn open_head_to_approve(&self, r: &Request) -> Result<String, Denial> {
        let Some(pr) = &self.facts.pr else {
            return Err(deny(
                "The pull request could not be read.",
                "Try again in a moment.",
            ));
        };
        if !pr.open || pr.merged {
            return Err(deny(
                "The pull request is not open any more.",
                next_step(r, self.prefix()),
            ));
        }
        self.own_head(r, &pr.head_sha)?;
        self.fresh_plan(r, &[&pr.head_sha])?;
        Ok(pr.head_sha.clone())
    }

    /// The commit an approval after the merge is for: the one the successful plan of the merged
    /// change was made at.
    fn merged_head_to_approve(&self, r: &Request) -> Result<String, Denial> {
        if run_active(r, RunKind::Plan) {
            return Err(running(r, RunKind::Plan));
        }
        let heads = self.merged_heads()?;
        self.own_head(r, &heads[0])?;
        let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
        self.fresh_plan(r, &heads)?;
        Ok(r.run(RunKind::Plan)
            .and_then(|run| run.head_sha.clone())
            .unwrap_or_default())
    }

    /// Records the actor's approval of `head` (replacing their earlier one and any of another
    /// head) and answers; before the merge the request becomes `approved` once the approvals
    /// of `head` reach the environment's quorum.
    fn record_approval(&mut self, at: CommentAt, head: &str, merged: bool) {
        let p = self.prefix().to_owned();
        let env = self.env();
        let now = self.facts.now;
        let login = self.actor.login.clone();
        let plan = self
            .request
            .as_ref()
            .and_then(|r| r.run(RunKind::Plan))
            .and_then(|run| run.changes.clone());
        let req = self.req();
        req.approvals
            .retain(|a| a.head_sha == head && !a.login.eq_ignore_ascii_case(&login));
        req.approvals.push(Approval {
            login: login.clone(),
            at: now,
            head_sha: head.to_owned(),
            plan,
        });
        let approvers: Vec<String> = req.approvals.iter().map(|a| a.login.clone()).collect();
        req.record(now, login, "approve", Some(short_sha(head)));
        let r = self.req().clone();
        let needed = self.policy.approvals_needed(&env);
        let counted = self.counted_approvals(&r, &[head]);
        let text = if (counted.len() as u64) < u64::from(needed) {
            let reason = quorum_short(&env, needed, &counted);
            let ask = self.ask_for_approval(&r, &[head], "");
            say::approval_pending(&reply_key(at), &reason, &ask)
        } else if merged {
            say::approved_merged(&reply_key(at), &approvers, head, &env, &p)
        } else {
            self.req().status = RequestStatus::Approved;
            say::approved(&reply_key(at), &approvers, head, &env, &p)
        };
        self.reply(at, text);
    }

    /// Whether the pull request's head has the approvals a merge needs: the environment's
    /// quorum, and at least one.
    fn require_merge_approvals(&self, r: &Request, head: &str) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        let env = self.env();
        let needed = self.policy.approvals_needed(&env).max(1);
        let counted = if self.policy.approvals_needed(&env) == 0 {
            // Nobody's approval is required here: any approval of the head will do.
            r.approvals
                .iter()
                .filter(|a| a.head_sha == head)
                .map(|a| a.login.clone())
                .collect()
        } else {
            self.counted_approvals(r, &[head])
        };
        if counted.len() >= needed as usize {
            return Ok(());
        }
        if r.approvals.iter().all(|a| a.head_sha != head) {
            if r.status == RequestStatus::Planned {
                return Err(self.wrong_state(r, "merge", "an approved request"));
            }
            return Err(deny(
                format!(
                    "The approval is for another commit: the pull request moved to `{}` after it was approved.",
                    short_sha(head)
                ),
                format!("Comment `{p} plan`, then approve again."),
            ));
        }
        Err(deny(
            quorum_short(&env, needed, &counted),
            self.ask_for_approval(r, &[head], ""),
        ))
    }

    pub(super) fn merge(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        self.require_prod_list("merge")?;
        // `planned` too: a plan identical to the approved one keeps the approvals.
        if !matches!(r.status, RequestStatus::Approved | RequestStatus::Planned) {
            return Err(self.wrong_state(r, "merge", "an approved request"));
        }
        let (Some(pr), Some(number)) = (&self.facts.pr, r.pull_request.as_ref().map(|p| p.number))
        else {
            return Err(deny(
                "The pull request could not be read.",
                "Try again in a moment.",
            ));
        };
        if pr.merged || !pr.open {
            return Err(deny(
                "The pull request is not open any more.",
                next_step(r, &p),
            ));
        }
        self.own_head(r, &pr.head_sha)?;
        self.require_merge_approvals(r, &pr.head_sha)?;
        if pr.mergeable == Some(false) {
            return Err(deny(
                "GitHub says the pull request cannot be merged (it conflicts with the base branch).",
                "Resolve the conflict on the branch, then plan and approve again.",
            ));
        }
        self.push(
            EffectKey::merge(number),
            Effect::Merge {
                number,
                expected_head: pr.head_sha.clone(),
            },
        );
        let now = self.facts.now;
        let login = self.actor.login.clone();
        self.req().record(now, login, "merge", None);
        // Said after the merge (a failed merge drops it and says why instead), so the merge event
        // that follows has nothing to add.
        let plan_ok = r.run(RunKind::Plan).is_some_and(|run| {
            run.succeeded()
                && run.revision == r.revision
                && run.head_sha.as_deref() == Some(pr.head_sha.as_str())
        });
        let env = self.env();
        self.reply(
            at,
            say::merged(&reply_key(at), number, plan_ok, true, false, &env, &p),
        );
        Ok(())
    }
}
