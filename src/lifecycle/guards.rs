//! Guardrails: who may do what, and whether the request, its plan and its pull request allow it.

use super::decider::Decider;
use super::{CommentAt, deny, tfpilot_head};
use crate::command::Command;
use crate::comments::lifecycle::{next_step, short_sha};
use crate::domain::{Denial, EffectKey, Permission, Request, RunKind, RunRecord, request_branch};

impl Decider<'_> {
    pub(super) fn require_write(&self, what: &str) -> Result<(), Denial> {
        if self.actor.permission.can_write() {
            return Ok(());
        }
        Err(deny(
            format!(
                "@{} has {} access to this repository, and {what} needs write access.",
                self.actor.login,
                permission_word(self.actor.permission)
            ),
            "Ask a maintainer for write access, or ask someone who has it to do this.",
        ))
    }

    /// In production, `action` (approve, merge, apply, cleanup) needs the prod allow-list.
    pub(super) fn require_prod_list(&self, action: &str) -> Result<(), Denial> {
        let env = self.env();
        if !self.policy.is_prod(&env) {
            return Ok(());
        }
        require_listed(
            &self.actor.login,
            &self.policy.prod_allowed_users,
            &format!("Only members of the prod allow-list can {action} in `{env}`."),
            "TFPILOT_PROD_ALLOWED_USERS",
        )
    }

    pub(super) fn require_destroy_list(&self) -> Result<(), Denial> {
        let env = self.env();
        if !self.policy.is_prod(&env) {
            return Ok(());
        }
        require_listed(
            &self.actor.login,
            &self.policy.destroy_prod_allowed_users,
            &format!("Only members of the prod-destroy allow-list can destroy in `{env}`."),
            "TFPILOT_DESTROY_PROD_ALLOWED_USERS",
        )
    }

    pub(super) fn require_request(
        &self,
        at: CommentAt,
        command: &Command,
    ) -> Result<Request, Denial> {
        match &self.request {
            Some(r) => Ok(r.clone()),
            None => {
                let where_ = if at.on_pull_request {
                    "pull request"
                } else {
                    "issue"
                };
                Err(deny(
                    format!(
                        "There is no TfPilot request on this {where_}, so there is nothing to `{}`.",
                        command.name()
                    ),
                    format!(
                        "Open one on an issue with `{} new <module> env=<env>` (`{} help` lists the modules).",
                        self.prefix(),
                        self.prefix()
                    ),
                ))
            }
        }
    }

    pub(super) fn wrong_state(&self, r: &Request, command: &str, allowed: &str) -> Denial {
        deny(
            format!(
                "`{command}` cannot be used while the request is `{}`; it is for {allowed}.",
                r.status
            ),
            next_step(r, self.prefix()),
        )
    }

    /// A plan that succeeded for the request's current revision and the given head.
    pub(super) fn fresh_plan(&self, r: &Request, heads: &[&str]) -> Result<(), Denial> {
        let p = self.prefix();
        let Some(plan) = r.run(RunKind::Plan) else {
            return Err(deny(
                "This request has no plan yet.",
                format!("Comment `{p} plan`."),
            ));
        };
        if !plan.succeeded() {
            return Err(deny(
                "The last plan of this request did not succeed.",
                format!("Fix the problem it shows and comment `{p} plan` again."),
            ));
        }
        if plan.revision != r.revision {
            return Err(deny(
                format!(
                    "The last plan is for revision {}, but the request is at revision {}.",
                    plan.revision, r.revision
                ),
                format!("Comment `{p} plan` to plan the current revision."),
            ));
        }
        let planned = plan.head_sha.as_deref().unwrap_or_default();
        if !heads.iter().any(|h| !h.is_empty() && *h == planned) {
            return Err(deny(
                format!(
                    "The plan is stale: it was made for commit `{}`, and the pull request is now at `{}`.",
                    short_sha(planned),
                    short_sha(heads.first().copied().unwrap_or_default())
                ),
                format!("Comment `{p} plan` to plan the current head."),
            ));
        }
        Ok(())
    }

    /// The pull request's head must be the last commit TfPilot made on the request branch:
    /// commits pushed by someone else (to other environments, modules, workflows…) never get
    /// an approval or a merge under TfPilot's name.
    pub(super) fn own_head(&self, r: &Request, head: &str) -> Result<(), Denial> {
        let branch = request_branch(r.id);
        let ours = tfpilot_head(r, &branch);
        if ours.is_some_and(|o| !o.is_empty() && o == head) {
            return Ok(());
        }
        let p = self.prefix();
        Err(deny(
            format!(
                "The pull request has commits TfPilot did not make: it is at `{}`, and TfPilot's last commit on `{branch}` is `{}`. TfPilot approves and merges only the change it wrote.",
                short_sha(head),
                ours.map(|o| short_sha(o)).unwrap_or_else(|| "none".into())
            ),
            format!(
                "Remove those commits from `{branch}` (reset it to TfPilot's commit), then `{p} plan` and approve again; or `{p} cancel` and open a new request."
            ),
        ))
    }

    /// The commits a merged change is known by (the PR's last head, the merge commit, the base
    /// branch's head now).
    pub(super) fn merged_heads(&self) -> Result<Vec<String>, Denial> {
        let p = self.prefix();
        match &self.facts.pr {
            Some(pr) if pr.merged => {
                let mut heads = vec![pr.head_sha.clone()];
                heads.extend(pr.merge_sha.clone());
                // A plan of the merged change after the merge runs on the base branch, which
                // may have moved on since: its current head counts too (the block there is
                // checked to be the request's own before an apply).
                heads.extend(self.facts.base_head.clone());
                Ok(heads)
            }
            _ => Err(deny(
                "GitHub does not show the pull request as merged.",
                format!("Merge it (`{p} merge` or GitHub's button), then apply."),
            )),
        }
    }

    /// Who may still approve this request: everyone allowed to (the prod allow-list in prod,
    /// the approvers when they are required) but, where approvals are needed, the people who
    /// wrote its inputs. A team stays named as the team.
    pub(super) fn eligible_approvers(&self, r: &Request) -> Vec<String> {
        let env = self.env();
        let prod = self.policy.is_prod(&env);
        let four_eyes = self.policy.approvals_needed(&env) > 0;
        let listed = |list: &[String], l: &str| list.iter().any(|x| x.eq_ignore_ascii_case(l));
        let mut out: Vec<String> = if prod {
            self.policy.prod_allowed_users.clone()
        } else {
            self.policy.approvers.clone()
        };
        out.retain(|l| {
            (!four_eyes || !is_author(r, l))
                && (!self.policy.approvers_required || listed(&self.policy.approvers, l))
        });
        out
    }

    /// Whether an approval by `login` counts: they may approve here (the prod allow-list in
    /// prod, the approvers where required, a team's members as read for this decision) and did
    /// not write the request.
    fn approval_counts(&self, r: &Request, login: &str) -> bool {
        let prod = self.policy.is_prod(&self.env());
        let listed = |list: &[String]| list.iter().any(|x| x.eq_ignore_ascii_case(login));
        !is_author(r, login)
            && (!prod || listed(&self.policy.prod_allowed_users))
            && (!self.policy.approvers_required || listed(&self.policy.approvers))
    }

    /// The distinct people whose approval of one of `heads` counts toward the quorum.
    pub(super) fn counted_approvals(&self, r: &Request, heads: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &r.approvals {
            let on_head = heads.iter().any(|h| !h.is_empty() && *h == a.head_sha);
            if on_head
                && self.approval_counts(r, &a.login)
                && !out.iter().any(|l| l.eq_ignore_ascii_case(&a.login))
            {
                out.push(a.login.clone());
            }
        }
        out
    }

    /// Who else could bring the approvals of `heads` to the quorum, for a remedy (`then`: what
    /// to do after, as `, then apply`).
    pub(super) fn ask_for_approval(&self, r: &Request, heads: &[&str], then: &str) -> String {
        let counted = self.counted_approvals(r, heads);
        let others: Vec<String> = self
            .eligible_approvers(r)
            .into_iter()
            .filter(|l| !counted.iter().any(|c| c.eq_ignore_ascii_case(l)))
            .collect();
        if others.is_empty() {
            "Nobody else who did not write this request may approve it here (TFPILOT_PROD_ALLOWED_USERS, TFPILOT_APPROVERS); an administrator must add someone.".to_owned()
        } else {
            format!(
                "Ask {} to `{} approve` it{then}.",
                mention_list(&others.iter().collect::<Vec<_>>()),
                self.prefix()
            )
        }
    }

    /// In prod (and wherever approvals are needed) a change is applied only with the quorum of
    /// approvals of the merged commit by people allowed to give them: the merge button does not
    /// check that.
    pub(super) fn require_approval(&self, r: &Request, heads: &[&str]) -> Result<(), Denial> {
        let env = self.env();
        let needed = self.policy.approvals_needed(&env);
        if needed == 0 {
            return Ok(());
        }
        let counted = self.counted_approvals(r, heads);
        if counted.len() >= needed as usize {
            return Ok(());
        }
        let remedy = self.ask_for_approval(r, heads, ", then apply");
        let reason = if counted.is_empty() {
            format!(
                "This change to `{env}` was merged without a TfPilot approval of the merged commit, and `{env}` needs one before it is applied."
            )
        } else {
            quorum_short(&env, needed, &counted)
        };
        Err(deny(reason, remedy))
    }
}

/// Why the approvals given are not enough yet.
pub(super) fn quorum_short(env: &str, needed: u32, counted: &[String]) -> String {
    let approvals = if needed == 1 {
        "approval".to_owned()
    } else {
        format!("{needed} approvals")
    };
    format!(
        "`{env}` needs {approvals} by people who did not write the request, and this commit has {} ({}).",
        counted.len(),
        counted
            .iter()
            .map(|l| format!("@{l}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Whether `login` wrote inputs of `r`: opened it, or changed its inputs since.
pub(super) fn is_author(r: &Request, login: &str) -> bool {
    r.requester.eq_ignore_ascii_case(login)
        || r.timeline.iter().any(|e| {
            matches!(e.event.as_str(), "inputs_changed" | "revised")
                && e.actor.eq_ignore_ascii_case(login)
        })
}

pub(super) fn require_listed(
    login: &str,
    list: &[String],
    reason: &str,
    variable: &str,
) -> Result<(), Denial> {
    if list.iter().any(|l| l.eq_ignore_ascii_case(login)) {
        return Ok(());
    }
    let remedy = if list.is_empty() {
        format!(
            "The list is empty ({variable}, narrowed by `.tfpilot.yml`), so nobody can; an administrator must add people to it."
        )
    } else {
        let refs: Vec<&String> = list.iter().collect();
        format!("Ask {}.", mention_list(&refs))
    };
    Err(deny(reason, remedy))
}

pub(super) fn mention_list(logins: &[&String]) -> String {
    let names: Vec<String> = logins.iter().map(|l| format!("@{l}")).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("one of {}, {last}", rest.join(", ")),
    }
}

pub(super) fn permission_word(p: Permission) -> &'static str {
    match p {
        Permission::NotRead | Permission::None => "no",
        Permission::Read => "read",
        Permission::Triage => "triage",
        Permission::Write => "write",
        Permission::Maintain => "maintain",
        Permission::Admin => "admin",
    }
}

/// Whether the commit of the request's current revision was refused (the executor records a
/// failed effect with an `error`): the branch still holds the revision before.
pub(super) fn revision_uncommitted(r: &Request) -> bool {
    r.effects
        .get(&EffectKey::commit(r.revision))
        .is_some_and(|e| e.result.is_failure())
}

pub(super) fn run_active(r: &Request, kind: RunKind) -> bool {
    r.run(kind).is_some_and(RunRecord::is_active)
}

pub(super) fn running(r: &Request, kind: RunKind) -> Denial {
    let link = r
        .run(kind)
        .and_then(|run| run.url.as_deref())
        .map(|u| format!(" ([run]({u}))"))
        .unwrap_or_default();
    let article = if kind == RunKind::Apply { "An" } else { "A" };
    deny(
        format!(
            "{article} {} is already running for this request{link}.",
            kind.as_str()
        ),
        "Wait for it to finish; TfPilot will post the result here.",
    )
}
