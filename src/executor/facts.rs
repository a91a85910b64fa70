//! Gathering what a decision needs: the repository and its client ([`Scope`]), `.tfpilot.yml`,
//! the pull request's state, the request's block on the base branch, a `status` listing and what
//! the assistant read from a message.

use std::sync::Arc;

use time::OffsetDateTime;

use super::Executor;
use crate::assist::{ExtractRequest, Extraction, Turn};
use crate::command::Command;
use crate::domain::{ListFilter, Memberships, Request};
use crate::github::{PrState, Repo};
use crate::ids::{InstallationId, RepoName, RequestId};
use crate::lifecycle::{self, BaseBlock, Denial, Facts, Policy, PrFacts};
use crate::registry::ModuleSpec;
use crate::settings::{SETTINGS_FILE, Settings};
use crate::terraform::blocks::find_block;
use crate::webhook::events::{InstallationRef, Repository};

/// The repository an event is about, with its client.
pub(super) struct Scope {
    pub(super) gh: Arc<dyn Repo>,
    pub(super) repo: RepoName,
    pub(super) installation: InstallationId,
    pub(super) default_branch: Option<String>,
}

impl Executor {
    pub(super) fn scope(
        &self,
        repo: &RepoName,
        installation: Option<InstallationId>,
        default_branch: Option<&str>,
    ) -> Option<Scope> {
        let installation = installation?;
        Some(Scope {
            gh: self.forge.repo(installation, repo),
            repo: repo.clone(),
            installation,
            default_branch: default_branch.map(str::to_owned),
        })
    }

    /// The scope of an event about `repository` sent for `installation` (none: not TfPilot's).
    pub(super) fn event_scope(
        &self,
        repository: &Repository,
        installation: Option<&InstallationRef>,
    ) -> Option<Scope> {
        self.scope(
            &repository.full_name,
            installation.map(|i| i.id),
            repository.default_branch.as_deref(),
        )
    }

    /// The scope a stored request's effects are carried out in.
    pub(super) fn request_scope(&self, r: &Request) -> anyhow::Result<Scope> {
        let Some(installation) = r.installation_id else {
            anyhow::bail!("request {} has no installation to act with", r.id);
        };
        Ok(Scope {
            gh: self.forge.repo(installation, &r.repo),
            repo: r.repo.clone(),
            installation,
            default_branch: r.base_branch.clone(),
        })
    }

    pub(super) fn facts(&self, scope: &Scope) -> Facts<'_> {
        Facts {
            now: OffsetDateTime::now_utc(),
            registry: &self.registry,
            repo: scope.repo.clone(),
            installation: Some(scope.installation),
            prefix: self.prefix.clone(),
            settings: None,
            new_request_id: RequestId::new_random(),
            pr: None,
            base_block: None,
            base_head: None,
            listing: None,
        }
    }

    /// What `command` needs besides the comment, exactly as [`lifecycle::command_reads`] says:
    /// the policy as `.tfpilot.yml` narrows it (a broken file is a denial), the pull request,
    /// the base block, a listing.
    pub(super) async fn command_facts<'a>(
        &'a self,
        scope: &Scope,
        command: &Command,
        request: Option<&Request>,
        (login, actor_id): (&str, Option<u64>),
        mut facts: Facts<'a>,
    ) -> anyhow::Result<Result<(Policy, Facts<'a>), Denial>> {
        let needs = lifecycle::command_reads(command, request);
        // Allow-list entries written as account ids name the actor by their login from here on.
        let mut policy = self.policy.for_actor(login, actor_id);
        let in_prod = request
            .and_then(|r| r.environment.as_deref())
            .is_some_and(|env| policy.is_prod(env));
        let mut repo_lists = None;
        if needs.settings || (needs.settings_in_prod && in_prod) {
            match self.read_settings(scope).await? {
                Ok(settings) => {
                    repo_lists = Some(settings.for_actor(login, actor_id));
                    facts.settings = Some(settings);
                }
                Err(denial) => return Ok(Err(denial)),
            }
        }
        // Teams in the lists: who of the actor and the approvers so far is a member, now.
        let mut teams = policy.teams();
        teams.extend(repo_lists.iter().flat_map(Settings::teams));
        teams.sort();
        teams.dedup();
        if needs.memberships && !teams.is_empty() {
            let mut people = vec![login.to_owned()];
            people.extend(
                request
                    .iter()
                    .flat_map(|r| r.approvals.iter().map(|a| a.login.clone())),
            );
            let members = memberships(scope, &teams, &people).await?;
            policy = policy.with_members(&members);
            repo_lists = repo_lists.map(|s| s.with_members(&members));
        }
        if let Some(repo_lists) = repo_lists {
            policy = repo_lists.narrow(&policy);
        }
        if let Some(r) = request {
            let number = r
                .pull_request
                .as_ref()
                .map(|pr| pr.number)
                .filter(|_| needs.pr);
            if needs.base_block {
                // The block on the base branch, that branch's head and the pull request: one read.
                let (block, base_head, pr) = self.base_block(scope, r, number).await?;
                facts.base_block = Some(block);
                if let Some(pr) = pr {
                    facts.base_head = base_head.filter(|_| needs.base_head && pr.merged);
                    facts.pr = Some(pr);
                }
            } else if let Some(number) = number {
                let (pr, base_head) = self.pr_facts(scope, r, number).await?;
                facts.pr = Some(pr);
                facts.base_head = base_head.filter(|_| needs.base_head);
            }
        }
        if needs.listing
            && let Command::Status { filters } = command
        {
            let mut filter: ListFilter = filters.to_list_filter();
            filter.repo = Some(scope.repo.clone());
            facts.listing = Some(self.store.list(&filter).await?);
        }
        Ok(Ok((policy, facts)))
    }

    /// The pull request's state, and the base branch's head when it is merged.
    async fn pr_facts(
        &self,
        scope: &Scope,
        r: &Request,
        number: u64,
    ) -> anyhow::Result<(PrFacts, Option<String>)> {
        let state = scope.gh.pull_request(number).await?;
        let base_head = if state.merged {
            let base = r.base_branch.as_deref().unwrap_or("main");
            scope.gh.branch_head(base).await?
        } else {
            None
        };
        Ok((pr_facts_of(state), base_head))
    }

    /// What the assistant reads from a `new` command's free text.
    pub(super) async fn extract_new(&self, command: &Command) -> Option<Extraction> {
        let Command::New {
            module, free_text, ..
        } = command
        else {
            return None;
        };
        if free_text.trim().is_empty() {
            return None;
        }
        let spec = self.registry.get(module)?;
        Some(
            self.extractor
                .extract(&ExtractRequest {
                    spec,
                    collected: &Default::default(),
                    pending: &[],
                    message: free_text,
                    history: &[],
                })
                .await,
        )
    }

    /// What the assistant reads from a conversation turn, with the chat so far.
    pub(super) async fn extract_turn(
        &self,
        current: &Request,
        spec: &ModuleSpec,
        text: &str,
    ) -> Extraction {
        let history: Vec<Turn> = match self.store.chat(current.id).await {
            Ok(turns) => turns.iter().map(Turn::from).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the chat log; reading the turn alone");
                Vec::new()
            }
        };
        let conv = crate::lifecycle::conversation_of(current, spec);
        self.extractor
            .extract(&ExtractRequest {
                spec,
                collected: &conv.values,
                pending: &conv.pending,
                message: text,
                history: &history,
            })
            .await
    }

    /// `.tfpilot.yml` from the default branch; a broken file is a denial naming the problem.
    pub(super) async fn read_settings(
        &self,
        scope: &Scope,
    ) -> anyhow::Result<Result<Settings, Denial>> {
        let default_branch = match &scope.default_branch {
            Some(b) => b.clone(),
            None => scope.gh.default_branch().await?,
        };
        let file = scope.gh.get_file(&default_branch, SETTINGS_FILE).await?;
        Ok(
            Settings::from_file(&scope.repo, &default_branch, file.as_ref().map(|f| f.text.as_str()))
                .map_err(|e| Denial {
                    reason: e.to_string(),
                    remedy: format!(
                        "Fix `{SETTINGS_FILE}` on `{default_branch}`; until then TfPilot refuses what the settings govern here."
                    ),
                }),
        )
    }

    /// The request's block on the base branch, with the branch's head and (when `pr` is asked
    /// for) the pull request's state, read together.
    async fn base_block(
        &self,
        scope: &Scope,
        r: &Request,
        pr: Option<u64>,
    ) -> anyhow::Result<(BaseBlock, Option<String>, Option<PrFacts>)> {
        let Some(spec) = self.registry.get(&r.module_type) else {
            let pr = match pr {
                Some(number) => Some(self.pr_facts(scope, r, number).await?.0),
                None => None,
            };
            return Ok((BaseBlock::Missing, None, pr));
        };
        let base = r.base_branch.clone().unwrap_or_else(|| "main".into());
        let path = format!(
            "envs/{}/{}",
            r.environment.as_deref().unwrap_or_default(),
            spec.target_file
        );
        let read = scope.gh.read_at_head(&base, &path, pr).await?;
        let pr = read.pr.map(pr_facts_of);
        let block = match &read.file {
            Some(file) => block_on_base(r, &file.text),
            None => BaseBlock::Missing,
        };
        Ok((block, read.head, pr))
    }
}

/// Whether `text` (the base branch's file) holds the request's block as it was approved.
fn block_on_base(r: &Request, file_text: &str) -> BaseBlock {
    match find_block(file_text, &r.id) {
        Err(e) => BaseBlock::Unreadable(e.to_string()),
        Ok(None) => BaseBlock::Missing,
        Ok(Some(found)) => {
            let text = file_text[found.range.clone()].replace("\r\n", "\n");
            if r.block.as_deref() == Some(text.as_str())
                || r.block.as_deref().map(|b| b.trim_end()) == Some(text.trim_end())
            {
                BaseBlock::Same
            } else {
                BaseBlock::Different
            }
        }
    }
}

fn pr_facts_of(state: PrState) -> PrFacts {
    PrFacts {
        open: state.open,
        merged: state.merged,
        head_sha: state.head_sha,
        merge_sha: state.merge_commit_sha,
        mergeable: state.mergeable,
    }
}

/// Which of `people` GitHub says are active members of which of `teams` (one call per pair;
/// only made where a list names a team).
async fn memberships(
    scope: &Scope,
    teams: &[String],
    people: &[String],
) -> anyhow::Result<Memberships> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Memberships::default();
    for login in people {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(login)) {
            continue;
        }
        seen.push(login);
        for team in teams {
            if scope.gh.team_member(team, login).await? {
                out.add(team, login);
            }
        }
    }
    Ok(out)
}
