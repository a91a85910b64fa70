//! The request lifecycle: states, transitions and guardrails, as pure functions.
//!
//! [`decide`] takes a request (or none), one [`Input`] (a command, a conversation turn, a pull
//! request closed, a workflow run update, an effect that failed), who caused it ([`Actor`]), the
//! [`Policy`] and the [`Facts`] the executor gathered before, and returns the next request and
//! the [`Effect`]s to carry out — or a [`Denial`] saying why not and what would allow it. No
//! async, no I/O, no clock: everything it needs is in its arguments, so every guardrail is a
//! plain unit test.
//!
//! States: `collecting → ready → (submit) planning → planned | plan_failed → approved →
//! merged → applying → applied | apply_failed`, then `destroying → destroyed` (cleanup PR, then
//! archived) or `destroy_failed`; `pr_open` (PR open, no plan running: a plan that could not be
//! started or was cancelled), `pr_closed` (closed unmerged), `cancelled` (archived).
//!
//! Effects are data with a stable key each; the executor writes them with the next state
//! (outbox), carries them out in order and records each key as done, so a crash resumes where it
//! stopped and nothing is done twice.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::assist::Extraction;
use crate::command::{self, Command};
use crate::comments;
use crate::comments::lifecycle::{self as say, next_step, short, short_sha};
use crate::conversation::{self, Conversation, ConversationContext, Reply};
use crate::domain::{Approval, Request, RequestStatus, RunKind, RunOutcome, RunRecord, RunStatus};
pub use crate::domain::{
    BlockChange, Body, Conclusion, Denial, Effect, EffectKey, PendingEffect, Permission, Policy,
    PrPurpose, RunPhase, cleanup_branch, request_branch,
};
use crate::ids::{InstallationId, RepoName, RequestId};
use crate::registry::{ModuleSpec, Registry};
use crate::settings::Settings;

/// Who caused an input. `permission` is the actor's role on the repository (the executor reads
/// it before deciding a mutating input; `None` when it did not need to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub login: String,
    pub permission: Permission,
}

/// Where a comment was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommentAt {
    pub comment_id: u64,
    /// The issue or pull request number.
    pub thread: u64,
    pub on_pull_request: bool,
}

/// One thing that happened to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A `/tfpilot` command. `extraction`: what the assistant read from `new`'s free text.
    Command {
        at: CommentAt,
        command: Command,
        extraction: Option<Extraction>,
    },
    /// A plain comment in a thread whose request is collecting inputs, as the assistant read it.
    Turn {
        at: CommentAt,
        extraction: Extraction,
    },
    /// The request's pull request was closed (merged or not).
    PrClosed {
        number: u64,
        merged: bool,
        head_sha: String,
        merge_sha: Option<String>,
    },
    /// A workflow run changed state.
    Run(RunUpdate),
    /// An effect could not be carried out for a reason that retrying will not fix.
    EffectFailed {
        key: EffectKey,
        effect: Effect,
        reason: String,
    },
}

/// A `workflow_run` event, reduced to what matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunUpdate {
    pub run_id: u64,
    /// The run's name (`plan <request id> (<env>) <dispatch id>`).
    pub title: String,
    pub phase: RunPhase,
    pub head_sha: String,
    pub url: String,
    /// The workflow file the run is of (`.github/workflows/plan.yml`).
    pub workflow_path: String,
    /// What started it (`workflow_dispatch` for TfPilot's runs).
    pub event: String,
    /// The branch it runs on (the dispatched ref).
    pub head_branch: String,
}

/// The state of the pull request on GitHub, read before deciding approve, merge and apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrFacts {
    pub open: bool,
    pub merged: bool,
    pub head_sha: String,
    pub merge_sha: Option<String>,
    /// `None` while GitHub computes it.
    pub mergeable: Option<bool>,
}

/// Whether the base branch holds the request's block as submitted (read before `apply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseBlock {
    Same,
    Different,
    Missing,
    /// The file could not be read as TfPilot blocks (the reason names the line).
    Unreadable(String),
}

/// What the executor read before deciding. Fields a decision does not need may be left empty.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: OffsetDateTime,
    pub registry: &'a Registry,
    pub repo: RepoName,
    pub installation: Option<InstallationId>,
    /// The command prefix (`/tfpilot`).
    pub prefix: String,
    /// `.tfpilot.yml` (needed by `new`).
    pub settings: Option<Settings>,
    /// The id a `new` request gets.
    pub new_request_id: RequestId,
    pub pr: Option<PrFacts>,
    pub base_block: Option<BaseBlock>,
    /// The head of the request's base branch (read with a merged pull request): a plan of the
    /// merged change made after the merge runs there.
    pub base_head: Option<String>,
    /// Requests for a `status` list.
    pub listing: Option<Vec<Request>>,
}

/// The next state and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The request as it should be stored (`None`: no request is involved).
    pub request: Option<Request>,
    pub effects: Vec<PendingEffect>,
}

/// The idempotency key of an input: a second delivery of the same thing finds it recorded.
pub fn input_key(input: &Input) -> EffectKey {
    match input {
        Input::Command { at, .. } | Input::Turn { at, .. } => {
            EffectKey::input_comment(at.comment_id)
        }
        Input::PrClosed { number, .. } => EffectKey::input_pr_closed(*number),
        Input::Run(run) => {
            EffectKey::input_run(run.run_id, matches!(run.phase, RunPhase::Completed(_)))
        }
        Input::EffectFailed { key, .. } => EffectKey::input_failed(key),
    }
}

/// Decides what `input` does to `request`.
pub fn decide(
    request: Option<&Request>,
    input: &Input,
    actor: &Actor,
    policy: &Policy,
    facts: &Facts<'_>,
) -> Result<Decision, Denial> {
    let mut d = Decider {
        request: request.cloned(),
        actor,
        policy,
        facts,
        effects: Vec::new(),
        input_key: input_key(input),
    };
    match input {
        Input::Command {
            at,
            command,
            extraction,
        } => d.command(*at, command, extraction.as_ref())?,
        Input::Turn { at, extraction } => d.turn(*at, extraction)?,
        Input::PrClosed {
            number,
            merged,
            head_sha,
            merge_sha,
        } => d.pr_closed(*number, *merged, head_sha, merge_sha.as_deref()),
        Input::Run(run) => d.run(run),
        Input::EffectFailed {
            key,
            effect,
            reason,
        } => d.effect_failed(key, effect, reason),
    }
    Ok(Decision {
        request: d.request,
        effects: d.effects,
    })
}

struct Decider<'a> {
    request: Option<Request>,
    actor: &'a Actor,
    policy: &'a Policy,
    facts: &'a Facts<'a>,
    effects: Vec<PendingEffect>,
    input_key: EffectKey,
}

/// Statuses in which the pull request is open and not merged.
const PR_STAGES: &[RequestStatus] = &[
    RequestStatus::PrOpen,
    RequestStatus::Planning,
    RequestStatus::Planned,
    RequestStatus::PlanFailed,
    RequestStatus::Approved,
];

impl<'a> Decider<'a> {
    fn push(&mut self, key: EffectKey, effect: Effect) {
        self.effects.push(PendingEffect {
            key,
            input: self.input_key.clone(),
            decided_at: self.facts.now,
            effect,
        });
    }

    fn reply(&mut self, at: CommentAt, text: String) {
        self.push(
            reply_key(at),
            Effect::Comment {
                thread: at.thread,
                body: Body::Text { text },
            },
        );
    }

    fn comment(&mut self, key: EffectKey, thread: u64, text: String) {
        self.push(
            key,
            Effect::Comment {
                thread,
                body: Body::Text { text },
            },
        );
    }

    fn req(&mut self) -> &mut Request {
        self.request
            .as_mut()
            .unwrap_or_else(|| unreachable!("callers check that a request exists"))
    }

    fn set_status(&mut self, status: RequestStatus, event: &str, detail: Option<String>) {
        let now = self.facts.now;
        let login = self.actor.login.clone();
        let r = self.req();
        r.status = status;
        r.record(now, login, event, detail);
    }

    fn prefix(&self) -> &str {
        &self.facts.prefix
    }

    fn spec(&self, r: &Request) -> Result<&'a ModuleSpec, Denial> {
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

    fn ctx(&self, r: &Request) -> ConversationContext {
        let mut ctx = ConversationContext::new(
            r.id,
            r.project.clone().unwrap_or_default(),
            r.environment.clone().unwrap_or_default(),
        );
        ctx.prefix = self.facts.prefix.clone();
        ctx
    }

    fn env(&self) -> String {
        self.request
            .as_ref()
            .and_then(|r| r.environment.clone())
            .unwrap_or_default()
    }

    // ---- guardrails -------------------------------------------------------------------------

    fn require_write(&self, what: &str) -> Result<(), Denial> {
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
    fn require_prod_list(&self, action: &str) -> Result<(), Denial> {
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

    fn require_destroy_list(&self) -> Result<(), Denial> {
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

    fn require_request(&self, at: CommentAt, command: &Command) -> Result<Request, Denial> {
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

    fn wrong_state(&self, r: &Request, command: &str, allowed: &str) -> Denial {
        deny(
            format!(
                "`{command}` cannot be used while the request is `{}`; it is for {allowed}.",
                r.status
            ),
            next_step(r, self.prefix()),
        )
    }

    // ---- commands ---------------------------------------------------------------------------

    fn command(
        &mut self,
        at: CommentAt,
        command: &Command,
        extraction: Option<&Extraction>,
    ) -> Result<(), Denial> {
        match command {
            Command::Help => {
                let text = comments::conversation::help(
                    self.prefix(),
                    self.facts.registry,
                    &reply_key(at),
                );
                self.reply(at, text);
                return Ok(());
            }
            Command::Status { filters } => {
                let text = match (&self.request, filters.is_empty()) {
                    (Some(r), true) => say::status(&reply_key(at), r, self.prefix()),
                    _ => say::status_list(
                        &reply_key(at),
                        self.facts.listing.as_deref().unwrap_or_default(),
                        &comments::conversation::describe_filters(filters),
                    ),
                };
                self.reply(at, text);
                return Ok(());
            }
            Command::New {
                module,
                environment,
                project,
                values,
                ..
            } => {
                return self.new_request(
                    at,
                    module,
                    environment.as_deref(),
                    project.as_deref(),
                    values,
                    extraction,
                );
            }
            _ => {}
        }
        let r = self.require_request(at, command)?;
        if command.is_mutating() {
            self.require_write(&format!("`{}`", command.name()))?;
        }
        if r.status == RequestStatus::Cancelled {
            return Err(deny(
                format!("This request is `{}`.", r.status),
                format!(
                    "Open a new one with `{} new <module> env=<env>`.",
                    self.prefix()
                ),
            ));
        }
        match command {
            Command::Show => {
                let spec = self.spec(&r)?;
                let conv = conversation_of(&r, spec);
                let reply = conversation::show(&conv, spec, &self.ctx(&r));
                let text = comments::conversation::conversation_reply(&reply, &reply_key(at));
                self.reply(at, text);
            }
            Command::Set { values } => {
                let spec = self.spec(&r)?;
                let values = command::resolve_values(spec, values)
                    .map_err(|e| deny(e.to_string(), "Use the input names `show` lists."))?;
                let (conv, reply) = conversation::apply_set(
                    &conversation_of(&r, spec),
                    spec,
                    &values,
                    &self.ctx(&r),
                );
                self.change_inputs(at, &r, conv, reply)?;
            }
            Command::Unset { keys } => {
                let spec = self.spec(&r)?;
                let keys = command::resolve_keys(spec, keys)
                    .map_err(|e| deny(e.to_string(), "Use the input names `show` lists."))?;
                let (conv, reply) = conversation::apply_unset(
                    &conversation_of(&r, spec),
                    spec,
                    &keys,
                    &self.ctx(&r),
                );
                self.change_inputs(at, &r, conv, reply)?;
            }
            Command::Submit => self.submit(at, &r)?,
            Command::Plan => self.plan(at, &r)?,
            Command::Approve => self.approve(at, &r)?,
            Command::Merge => self.merge(at, &r)?,
            Command::Apply => self.apply(at, &r)?,
            Command::Destroy => self.destroy(at, &r)?,
            Command::Cleanup => self.cleanup(at, &r)?,
            Command::Cancel => self.cancel(at, &r)?,
            Command::Help | Command::Status { .. } | Command::New { .. } => {}
        }
        Ok(())
    }

    fn new_request(
        &mut self,
        at: CommentAt,
        module: &str,
        environment: Option<&str>,
        project: Option<&str>,
        values: &BTreeMap<String, String>,
        extraction: Option<&Extraction>,
    ) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        if let Some(r) = &self.request {
            return Err(deny(
                format!(
                    "This thread already has request `{}` (`{}` in `{}`, {}).",
                    short(r.id),
                    r.module_type,
                    r.environment.as_deref().unwrap_or("?"),
                    r.status
                ),
                format!("Open the new request on another issue, or `{p} cancel` this one first."),
            ));
        }
        if at.on_pull_request {
            return Err(deny(
                "Requests are opened on issues, not on pull requests.",
                format!("Open an issue and comment `{p} new {module} …` there."),
            ));
        }
        self.require_write("opening a request")?;
        let Some(settings) = &self.facts.settings else {
            return Err(deny(
                "The repository settings could not be read.",
                "Try again in a moment.",
            ));
        };
        let spec = self.facts.registry.get(module).ok_or_else(|| {
            deny(
                format!("`{module}` is not a module type."),
                format!("`{p} help` lists the module types."),
            )
        })?;
        let Some(environment) = environment else {
            return Err(deny(
                format!("`new` needs the environment, e.g. `{p} new {module} env=dev`."),
                format!("Environments here: {}.", code_list(&settings.environments)),
            ));
        };
        if !settings.environments.iter().any(|e| e == environment) {
            return Err(deny(
                format!("`{environment}` is not an environment of this repository."),
                format!(
                    "Use one of {} (listed in `.tfpilot.yml`).",
                    code_list(&settings.environments)
                ),
            ));
        }
        if let Some(project) = project
            && project != settings.project
        {
            return Err(deny(
                format!(
                    "This repository is project `{}`, not `{project}`.",
                    settings.project
                ),
                "Leave out `project=`, or open the request in that project's repository.",
            ));
        }
        let mut r = Request::new(
            self.facts.new_request_id,
            self.facts.repo.clone(),
            at.thread,
            self.actor.login.clone(),
            spec.module_type.clone(),
            self.facts.now,
        );
        r.installation_id = self.facts.installation;
        r.project = Some(settings.project.clone());
        r.environment = Some(environment.to_owned());
        r.base_branch = Some(settings.base_branch.clone());
        r.workflows = settings.workflows.by_kind();
        r.record(self.facts.now, &self.actor.login, "created", None);
        let ctx = self.ctx(&r);
        let (conv, reply) = conversation::start(spec, values, extraction, &ctx);
        store_conversation(&mut r, &conv, &reply);
        let text = comments::conversation::conversation_reply(&reply, &reply_key(at));
        self.request = Some(r);
        self.reply(at, text);
        Ok(())
    }

    /// A conversation turn: plain words, read by the assistant.
    fn turn(&mut self, at: CommentAt, extraction: &Extraction) -> Result<(), Denial> {
        let Some(r) = self.request.clone() else {
            return Ok(());
        };
        if !matches!(r.status, RequestStatus::Collecting | RequestStatus::Ready) {
            // Discussion on a submitted request is not addressed to TfPilot.
            return Ok(());
        }
        self.require_write("changing the inputs")?;
        let spec = self.spec(&r)?;
        let (conv, reply) = conversation::apply_extraction(
            &conversation_of(&r, spec),
            spec,
            extraction,
            &self.ctx(&r),
        );
        self.change_inputs(at, &r, conv, reply)
    }

    /// `set`, `unset` and turns: before submit the conversation just moves on; once the pull
    /// request is open, a changed block is a new revision.
    fn change_inputs(
        &mut self,
        at: CommentAt,
        r: &Request,
        conv: Conversation,
        reply: Reply,
    ) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        match r.status {
            RequestStatus::Collecting | RequestStatus::Ready => {
                let text = comments::conversation::conversation_reply(&reply, &reply_key(at));
                let now = self.facts.now;
                let login = self.actor.login.clone();
                let req = self.req();
                store_conversation(req, &conv, &reply);
                req.record(now, login, "inputs_changed", None);
                self.reply(at, text);
                Ok(())
            }
            s if PR_STAGES.contains(&s) || s == RequestStatus::PrClosed => {
                if s == RequestStatus::PrClosed {
                    return Err(deny(
                        "The pull request of this request is closed.",
                        format!("`{p} submit` opens it again, or `{p} cancel` ends the request."),
                    ));
                }
                let Some(block) = reply.block().map(str::to_owned) else {
                    return Err(deny(
                        "After submit, every required input must keep a valid value, so this change was not made.",
                        format!(
                            "Give a new value with `{p} set key=value` instead; `{p} show` lists the inputs."
                        ),
                    ));
                };
                let text = comments::conversation::conversation_reply(&reply, &reply_key(at));
                if r.block.as_deref() == Some(block.as_str()) && !revision_uncommitted(r) {
                    // Nothing the Terraform block says changed: no new revision.
                    let req = self.req();
                    store_conversation(req, &conv, &reply);
                    self.reply(at, text);
                    return Ok(());
                }
                let old_revision = r.revision;
                let now = self.facts.now;
                let login = self.actor.login.clone();
                let req = self.req();
                store_conversation(req, &conv, &reply);
                req.revision += 1;
                req.approvals.clear();
                let revision = req.revision;
                req.record(now, login, "revised", Some(format!("revision {revision}")));
                self.push(
                    EffectKey::minimize_revision(old_revision),
                    Effect::MinimizeComments {
                        key_prefix: plan_key_prefix(r.id, old_revision),
                    },
                );
                self.commit_block(block)?;
                self.dispatch(RunKind::Plan)?;
                let req = self.req();
                req.status = RequestStatus::Planning;
                self.reply(at, say::revised(&text, revision, &p));
                Ok(())
            }
            _ => Err(deny(
                format!(
                    "The inputs cannot change any more: the request is `{}` and its change is merged.",
                    r.status
                ),
                format!("To change the resources, open a new request with `{p} new`."),
            )),
        }
    }

    fn commit_block(&mut self, block: String) -> Result<(), Denial> {
        let r = self.req().clone();
        let spec = self.spec(&r)?;
        let env = r.environment.clone().unwrap_or_default();
        let file = format!("envs/{env}/{}", spec.target_file);
        let base = r.base_branch.clone().unwrap_or_else(|| "main".into());
        let message = format!(
            "tfpilot: {} `{}` in {env} (revision {})\n\nRequest {} from #{}.",
            if r.revision <= 1 { "add" } else { "update" },
            r.module_type,
            r.revision,
            r.id,
            r.issue_number
        );
        let req = self.req();
        req.block = Some(block.clone());
        req.branch = Some(request_branch(r.id));
        self.push(
            EffectKey::commit(r.revision),
            Effect::CommitBlock {
                branch: request_branch(r.id),
                base,
                file,
                change: BlockChange::Upsert { block },
                message,
            },
        );
        Ok(())
    }

    /// Queues a dispatch of `kind` and records the run as requested.
    fn dispatch(&mut self, kind: RunKind) -> Result<(), Denial> {
        let r = self.req().clone();
        let Some(workflow) = r.workflows.get(&kind).cloned() else {
            return Err(deny(
                format!(
                    "No {} workflow is configured for this request.",
                    kind.as_str()
                ),
                "Add `workflows:` to `.tfpilot.yml` and open a new request.",
            ));
        };
        let base = r.base_branch.clone().unwrap_or_else(|| "main".into());
        let git_ref = match (kind, r.status) {
            (RunKind::Plan, s)
                if PR_STAGES.contains(&s)
                    || s == RequestStatus::Ready
                    || s == RequestStatus::PrClosed =>
            {
                request_branch(r.id)
            }
            _ => base,
        };
        // Unique per dispatch (the store bumps `version` on every write) and fixed-width, so one
        // id is never a prefix of another in a run name.
        let dispatch_id = format!("{}-{}-{:06}", short(r.id), kind.as_str(), r.version);
        let now = self.facts.now;
        self.req().runs.insert(
            kind,
            RunRecord {
                revision: r.revision,
                dispatch_id: Some(dispatch_id.clone()),
                dispatched_at: Some(now),
                status: Some(RunStatus::Requested),
                ..RunRecord::default()
            },
        );
        self.push(
            EffectKey::dispatch(&dispatch_id),
            Effect::Dispatch {
                kind,
                workflow,
                git_ref,
                environment: r.environment.clone().unwrap_or_default(),
                dispatch_id,
            },
        );
        Ok(())
    }

    fn submit(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
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

    fn plan(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
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
                self.req().approvals.clear();
                self.push(
                    EffectKey::minimize(r.revision, r.version),
                    Effect::MinimizeComments {
                        key_prefix: plan_key_prefix(r.id, r.revision),
                    },
                );
                self.dispatch(RunKind::Plan)?;
                self.set_status(RequestStatus::Planning, "plan", None);
            }
            RequestStatus::Merged | RequestStatus::ApplyFailed => {
                // After the merge, a plan runs on the base branch: the change as merged.
                if run_active(r, RunKind::Plan) {
                    return Err(running(r, RunKind::Plan));
                }
                self.dispatch(RunKind::Plan)?;
                let now = self.facts.now;
                let login = self.actor.login.clone();
                self.req()
                    .record(now, login, "plan", Some("merged change".into()));
            }
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

    /// A plan that succeeded for the request's current revision and the given head.
    fn fresh_plan(&self, r: &Request, heads: &[&str]) -> Result<(), Denial> {
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

    fn approve(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
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
        // Four eyes in prod: nobody approves inputs they wrote (the requester, or whoever
        // changed them since).
        if self.policy.is_prod(&env) && is_author(r, &self.actor.login) {
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
            return Err(deny(
                reason,
                if others.is_empty() {
                    "Nobody else is on the prod allow-list (TFPILOT_PROD_ALLOWED_USERS); an administrator must add someone.".to_owned()
                } else {
                    format!("Ask {}.", mention_list(&others.iter().collect::<Vec<_>>()))
                },
            ));
        }
        match r.status {
            RequestStatus::Planned | RequestStatus::Approved => {}
            RequestStatus::Merged | RequestStatus::ApplyFailed => {
                return self.approve_merged(at, r);
            }
            RequestStatus::Planning => return Err(running(r, RunKind::Plan)),
            _ => {
                return Err(self.wrong_state(r, "approve", "a request whose plan succeeded"));
            }
        }
        let Some(pr) = &self.facts.pr else {
            return Err(deny(
                "The pull request could not be read.",
                "Try again in a moment.",
            ));
        };
        if !pr.open || pr.merged {
            return Err(deny(
                "The pull request is not open any more.",
                next_step(r, &p),
            ));
        }
        self.own_head(r, &pr.head_sha)?;
        self.fresh_plan(r, &[&pr.head_sha])?;
        let head = pr.head_sha.clone();
        let now = self.facts.now;
        let login = self.actor.login.clone();
        let req = self.req();
        req.approvals
            .retain(|a| a.head_sha == head && !a.login.eq_ignore_ascii_case(&login));
        req.approvals.push(Approval {
            login: login.clone(),
            at: now,
            head_sha: head.clone(),
        });
        let approvers: Vec<String> = req.approvals.iter().map(|a| a.login.clone()).collect();
        self.set_status(RequestStatus::Approved, "approve", Some(short_sha(&head)));
        self.reply(
            at,
            say::approved(&reply_key(at), &approvers, &head, &env, &p),
        );
        Ok(())
    }

    /// Approving a change that was merged (with GitHub's button) before it was approved: the
    /// approval is for the merged commit whose plan succeeded, and lets `apply` go on.
    fn approve_merged(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        let env = self.env();
        if run_active(r, RunKind::Plan) {
            return Err(running(r, RunKind::Plan));
        }
        let heads = self.merged_heads()?;
        self.own_head(r, &heads[0])?;
        let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
        self.fresh_plan(r, &heads)?;
        let head = r
            .run(RunKind::Plan)
            .and_then(|run| run.head_sha.clone())
            .unwrap_or_default();
        let now = self.facts.now;
        let login = self.actor.login.clone();
        let req = self.req();
        req.approvals
            .retain(|a| a.head_sha == head && !a.login.eq_ignore_ascii_case(&login));
        req.approvals.push(Approval {
            login: login.clone(),
            at: now,
            head_sha: head.clone(),
        });
        let approvers: Vec<String> = req.approvals.iter().map(|a| a.login.clone()).collect();
        req.record(now, login, "approve", Some(short_sha(&head)));
        self.reply(
            at,
            say::approved_merged(&reply_key(at), &approvers, &head, &env, &p),
        );
        Ok(())
    }

    /// The pull request's head must be the last commit TfPilot made on the request branch:
    /// commits pushed by someone else (to other environments, modules, workflows…) never get
    /// an approval or a merge under TfPilot's name.
    fn own_head(&self, r: &Request, head: &str) -> Result<(), Denial> {
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
    fn merged_heads(&self) -> Result<Vec<String>, Denial> {
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
    /// the approvers when they are required) but the people who wrote its inputs.
    fn eligible_approvers(&self, r: &Request) -> Vec<String> {
        let env = self.env();
        let prod = self.policy.is_prod(&env);
        let listed = |list: &[String], l: &str| list.iter().any(|x| x.eq_ignore_ascii_case(l));
        let mut out: Vec<String> = if prod {
            self.policy.prod_allowed_users.clone()
        } else {
            self.policy.approvers.clone()
        };
        out.retain(|l| {
            (!prod || !is_author(r, l))
                && (!self.policy.approvers_required || listed(&self.policy.approvers, l))
        });
        out
    }

    /// In prod (and wherever approvers are required) a change is applied only with an approval
    /// of the merged commit by someone allowed to give it: the merge button does not check that.
    fn require_approval(&self, r: &Request, heads: &[&str]) -> Result<(), Denial> {
        let env = self.env();
        let prod = self.policy.is_prod(&env);
        if !prod && !self.policy.approvers_required {
            return Ok(());
        }
        let eligible = self.eligible_approvers(r);
        let valid = r.approvals.iter().any(|a| {
            heads.iter().any(|h| !h.is_empty() && *h == a.head_sha)
                && (!prod || eligible.iter().any(|l| l.eq_ignore_ascii_case(&a.login)))
                && (!self.policy.approvers_required
                    || self
                        .policy
                        .approvers
                        .iter()
                        .any(|l| l.eq_ignore_ascii_case(&a.login)))
        });
        if valid {
            return Ok(());
        }
        let p = self.prefix();
        let remedy = if eligible.is_empty() {
            "Nobody who did not write this request may approve it here (TFPILOT_PROD_ALLOWED_USERS, TFPILOT_APPROVERS); an administrator must add someone.".to_owned()
        } else {
            format!(
                "Ask {} to `{p} approve` it, then apply.",
                mention_list(&eligible.iter().collect::<Vec<_>>())
            )
        };
        Err(deny(
            format!(
                "This change to `{env}` was merged without a TfPilot approval of the merged commit, and `{env}` needs one before it is applied."
            ),
            remedy,
        ))
    }

    fn merge(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        self.require_prod_list("merge")?;
        if r.status != RequestStatus::Approved {
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
        if !r.approvals.iter().any(|a| a.head_sha == pr.head_sha) {
            return Err(deny(
                format!(
                    "The approval is for another commit: the pull request moved to `{}` after it was approved.",
                    short_sha(&pr.head_sha)
                ),
                format!("Comment `{p} plan`, then approve again."),
            ));
        }
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
        self.reply(at, say::merging(&reply_key(at), number));
        Ok(())
    }

    fn apply(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let p = self.prefix().to_owned();
        self.require_prod_list("apply")?;
        match r.status {
            RequestStatus::Merged | RequestStatus::ApplyFailed => {}
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
        let base = r.base_branch.clone().unwrap_or_else(|| "main".into());
        match &self.facts.base_block {
            Some(BaseBlock::Same) => {}
            Some(BaseBlock::Different) => {
                return Err(deny(
                    format!(
                        "The block of this request on `{base}` is not the one that was planned and approved."
                    ),
                    format!("Restore it (or open a new request), then `{p} plan` and apply."),
                ));
            }
            Some(BaseBlock::Missing) => {
                return Err(deny(
                    format!("The block of this request is not on `{base}`."),
                    "Nothing of this request would be applied; open a new request.",
                ));
            }
            Some(BaseBlock::Unreadable(why)) => {
                return Err(deny(
                    format!(
                        "The Terraform file on `{base}` cannot be read as TfPilot blocks: {why}"
                    ),
                    "Fix the markers in that file, then apply again.",
                ));
            }
            None => {
                return Err(deny(
                    format!("The file on `{base}` could not be read."),
                    "Try again in a moment.",
                ));
            }
        }
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

    fn destroy(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
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
    fn cleanup_effects(&mut self) -> Result<(), Denial> {
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

    fn cleanup(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
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

    fn cancel(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
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

    // ---- events -----------------------------------------------------------------------------

    fn pr_closed(&mut self, number: u64, merged: bool, head_sha: &str, merge_sha: Option<&str>) {
        let Some(r) = self.request.clone() else {
            return;
        };
        if r.pull_request.as_ref().map(|p| p.number) != Some(number) {
            return;
        }
        let p = self.prefix().to_owned();
        let issue = r.issue_number;
        // A pull request closed before can be reopened and merged on GitHub: then it is merged.
        if !(PR_STAGES.contains(&r.status) || (merged && r.status == RequestStatus::PrClosed)) {
            return;
        }
        if merged {
            let now = self.facts.now;
            let login = self.actor.login.clone();
            let req = self.req();
            if let Some(pr) = req.pull_request.as_mut() {
                pr.merged = true;
                pr.head_sha = head_sha.to_owned();
                pr.merge_commit_sha = merge_sha.map(str::to_owned);
            }
            req.status = RequestStatus::Merged;
            req.record(now, login, "merged", merge_sha.map(short_sha));
            let plan_ok = r.run(RunKind::Plan).is_some_and(|run| {
                run.succeeded()
                    && run.revision == r.revision
                    && run.head_sha.as_deref() == Some(head_sha)
            });
            let approved = r.approvals.iter().any(|a| a.head_sha == head_sha);
            self.comment(
                EffectKey::merged(number),
                issue,
                say::merged(
                    &EffectKey::merged(number),
                    number,
                    plan_ok,
                    approved,
                    self.policy.is_prod(&self.env()) || self.policy.approvers_required,
                    &self.env(),
                    &p,
                ),
            );
        } else {
            self.set_status(RequestStatus::PrClosed, "pr_closed", None);
            self.comment(
                EffectKey::pr_closed(number, r.version),
                issue,
                say::pr_closed(&EffectKey::pr_closed(number, r.version), number, &p),
            );
        }
    }

    fn run(&mut self, run: &RunUpdate) {
        let Some(r) = self.request.clone() else {
            return;
        };
        // Anyone who can push a workflow can give a run any title, so the title alone never
        // maps a run: once GitHub said which run a dispatch started, only that run id counts;
        // before, the dispatch id must be a word of the title, and the run must be what TfPilot
        // dispatched (its workflow file, `workflow_dispatch`, on the ref it dispatched).
        let found = r.runs.iter().find(|(_, rec)| match rec.run_id {
            Some(id) => id == run.run_id,
            None => rec
                .dispatch_id
                .as_deref()
                .is_some_and(|d| run.title.split_whitespace().any(|w| w == d)),
        });
        let Some((&kind, record)) = found else {
            // Not a run this request is waiting for (an older revision's, or not TfPilot's).
            return;
        };
        if !dispatched_by_tfpilot(&r, kind, run) {
            return;
        }
        let mut record = record.clone();
        if record.conclusion.is_some() {
            return;
        }
        record.run_id = Some(run.run_id);
        record.url = Some(run.url.clone());
        record.head_sha = Some(run.head_sha.clone());
        let p = self.prefix().to_owned();
        let issue = r.issue_number;
        let env = self.env();
        let conclusion = match run.phase {
            RunPhase::InProgress => {
                record.status = Some(RunStatus::InProgress);
                self.req().runs.insert(kind, record);
                return;
            }
            RunPhase::Completed(c) => c,
        };
        record.status = Some(RunStatus::Completed);
        record.conclusion = Some(RunOutcome::from(conclusion));
        self.req().runs.insert(kind, record.clone());
        let key = EffectKey::run(run.run_id);
        let url = run.url.clone();
        match (kind, conclusion) {
            (RunKind::Plan, Conclusion::Success) => {
                if r.status == RequestStatus::Planning {
                    self.set_status(RequestStatus::Planned, "plan_finished", Some(url.clone()));
                }
                self.push(
                    EffectKey::post_plan(run.run_id),
                    Effect::PostPlan {
                        run_id: run.run_id,
                        run_url: url,
                    },
                );
            }
            (RunKind::Plan, c) => {
                if r.status == RequestStatus::Planning {
                    let status = if c == Conclusion::Cancelled {
                        RequestStatus::PrOpen
                    } else {
                        RequestStatus::PlanFailed
                    };
                    self.set_status(status, "plan_finished", Some(c.as_str().into()));
                }
                self.comment(
                    key.clone(),
                    issue,
                    say::run_ended(&key, kind, c, &url, &env, &p),
                );
            }
            (RunKind::Apply, c) => {
                if r.status == RequestStatus::Applying {
                    let status = match c {
                        Conclusion::Success => RequestStatus::Applied,
                        Conclusion::Failure => RequestStatus::ApplyFailed,
                        Conclusion::Cancelled => RequestStatus::Merged,
                    };
                    self.set_status(status, "apply_finished", Some(c.as_str().into()));
                }
                self.comment(
                    key.clone(),
                    issue,
                    say::run_ended(&key, kind, c, &url, &env, &p),
                );
            }
            (RunKind::Destroy, c) => {
                if r.status != RequestStatus::Destroying {
                    return;
                }
                self.comment(
                    key.clone(),
                    issue,
                    say::run_ended(&key, kind, c, &url, &env, &p),
                );
                if c == Conclusion::Success {
                    self.set_status(RequestStatus::Destroyed, "destroy_finished", None);
                    if let Err(denial) = self.cleanup_effects() {
                        self.comment(
                            EffectKey::cleanup_failed(run.run_id),
                            issue,
                            say::denial(&EffectKey::cleanup_failed(run.run_id), &denial),
                        );
                    }
                } else {
                    self.set_status(
                        RequestStatus::DestroyFailed,
                        "destroy_finished",
                        Some(c.as_str().into()),
                    );
                }
            }
            (RunKind::Cleanup, _) => {}
        }
    }

    fn effect_failed(&mut self, key: &EffectKey, effect: &Effect, reason: &str) {
        let Some(r) = self.request.clone() else {
            return;
        };
        let p = self.prefix().to_owned();
        let issue = r.issue_number;
        let failed_key = EffectKey::failed(key);
        let (what, remedy) = match effect {
            Effect::CommitBlock {
                change: BlockChange::Upsert { .. },
                ..
            }
            | Effect::OpenPr {
                purpose: PrPurpose::Request,
                ..
            } => {
                if r.pull_request.is_none() {
                    self.set_status(RequestStatus::Ready, "submit_failed", Some(reason.into()));
                    (
                        "open the pull request",
                        format!("Fix the problem, then `{p} submit` again."),
                    )
                } else {
                    self.set_status(
                        RequestStatus::PrOpen,
                        "revision_failed",
                        Some(reason.into()),
                    );
                    (
                        "update the pull request",
                        "Fix the problem, then change the value again.".to_owned(),
                    )
                }
            }
            Effect::CommitBlock {
                change: BlockChange::Remove,
                ..
            }
            | Effect::OpenPr {
                purpose: PrPurpose::Cleanup,
                ..
            } => (
                "open the cleanup pull request",
                format!(
                    "The resources are destroyed. Fix the problem, then `{p} cleanup` to try again."
                ),
            ),
            Effect::Dispatch { kind, .. } => {
                if let Some(run) = self.req().runs.get_mut(kind) {
                    run.status = Some(RunStatus::NotStarted);
                    run.conclusion = Some(RunOutcome::NotStarted);
                }
                let status = match (kind, r.status) {
                    (RunKind::Plan, RequestStatus::Planning) => Some(RequestStatus::PrOpen),
                    (RunKind::Apply, _) => Some(RequestStatus::ApplyFailed),
                    (RunKind::Destroy, _) => Some(RequestStatus::DestroyFailed),
                    _ => None,
                };
                if let Some(status) = status {
                    self.set_status(status, "dispatch_failed", Some(reason.into()));
                }
                (
                    "start the workflow",
                    format!(
                        "Check the workflow file on the branch, then `{p} {}` again.",
                        kind.as_str()
                    ),
                )
            }
            Effect::Merge { .. } => (
                "merge the pull request",
                "Look at the pull request on GitHub; once it can be merged, try again.".into(),
            ),
            Effect::ClosePr { .. } => {
                self.push(EffectKey::archive(), Effect::Archive);
                (
                    "close the pull request",
                    "Close it by hand; the request is cancelled.".into(),
                )
            }
            Effect::PostPlan { .. } => (
                "post the plan",
                "The plan itself succeeded: read it in the workflow run.".into(),
            ),
            Effect::Archive => ("archive the request", "Nothing to do.".into()),
            Effect::Comment { .. } | Effect::MinimizeComments { .. } => return,
        };
        let text = say::effect_failed(&failed_key, what, reason, &remedy);
        // The archive (if any) stays last.
        let archive = self
            .effects
            .iter()
            .position(|e| e.effect == Effect::Archive);
        self.comment(failed_key, issue, text);
        if let Some(i) = archive {
            let a = self.effects.remove(i);
            self.effects.push(a);
        }
    }
}

// ---- helpers -----------------------------------------------------------------------------------

/// The key (and marker) of TfPilot's answer to a comment.
pub fn reply_key(at: CommentAt) -> EffectKey {
    EffectKey::reply(at.comment_id)
}

/// The prefix of the plan comments of one revision (see `comments::plan::PlanComment`).
pub fn plan_key_prefix(id: RequestId, revision: u64) -> EffectKey {
    EffectKey::plan_prefix(id, revision)
}

/// The conversation a request holds.
pub fn conversation_of(r: &Request, spec: &ModuleSpec) -> Conversation {
    let (mut conv, _) = Conversation::from_values(spec, &r.inputs);
    conv.pending = r.questions.clone();
    conv
}

fn store_conversation(r: &mut Request, conv: &Conversation, reply: &Reply) {
    r.inputs = conv.values.clone();
    r.questions = conv.pending.clone();
    match (reply.config(), reply.block()) {
        (Some(config), Some(block)) => {
            let mut map: BTreeMap<String, serde_json::Value> = BTreeMap::new();
            for (k, v) in config.inputs.iter().chain(config.computed.iter()) {
                map.insert(k.clone(), serde_json::to_value(v).unwrap_or_default());
            }
            r.config = Some(map);
            r.block = Some(block.to_owned());
            if r.status == RequestStatus::Collecting {
                r.status = RequestStatus::Ready;
            }
        }
        _ => {
            if r.status == RequestStatus::Ready {
                r.status = RequestStatus::Collecting;
            }
            if r.pull_request.is_none() {
                r.config = None;
                r.block = None;
            }
        }
    }
}

/// Whether `login` wrote inputs of `r`: opened it, or changed its inputs since.
fn is_author(r: &Request, login: &str) -> bool {
    r.requester.eq_ignore_ascii_case(login)
        || r.timeline.iter().any(|e| {
            matches!(e.event.as_str(), "inputs_changed" | "revised")
                && e.actor.eq_ignore_ascii_case(login)
        })
}

fn require_listed(
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

fn mention_list(logins: &[&String]) -> String {
    let names: Vec<String> = logins.iter().map(|l| format!("@{l}")).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("one of {}, {last}", rest.join(", ")),
    }
}

fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn permission_word(p: Permission) -> &'static str {
    match p {
        Permission::NotRead | Permission::None => "no",
        Permission::Read => "read",
        Permission::Triage => "triage",
        Permission::Write => "write",
        Permission::Maintain => "maintain",
        Permission::Admin => "admin",
    }
}

/// Whether `run` is a run TfPilot's dispatch of `kind` would start: `workflow_dispatch` of the
/// request's workflow file, on the request branch (a plan before the merge) or the base branch.
fn dispatched_by_tfpilot(r: &Request, kind: RunKind, run: &RunUpdate) -> bool {
    let Some(file) = r.workflows.get(&kind) else {
        return false;
    };
    let base = r.base_branch.as_deref().unwrap_or("main");
    let on_its_ref = run.head_branch == base
        || (kind == RunKind::Plan && run.head_branch == request_branch(r.id));
    run.event == "workflow_dispatch"
        && run.workflow_path == format!(".github/workflows/{file}")
        && on_its_ref
}

/// The last commit TfPilot made on `branch` of `r`. A request stored before TfPilot kept
/// [`Request::branch_heads`] has its own last commit on the request branch as its pull request's
/// head (every TfPilot commit updated it).
pub fn tfpilot_head<'r>(r: &'r Request, branch: &str) -> Option<&'r String> {
    r.branch_heads.get(branch).or_else(|| {
        (r.branch_heads.is_empty() && branch == request_branch(r.id))
            .then(|| r.pull_request.as_ref().map(|pr| &pr.head_sha))
            .flatten()
    })
}

/// Whether the commit of the request's current revision was refused (the executor records a
/// failed effect with an `error`): the branch still holds the revision before.
fn revision_uncommitted(r: &Request) -> bool {
    r.effects
        .get(&EffectKey::commit(r.revision))
        .is_some_and(|e| e.result.is_failure())
}

fn run_active(r: &Request, kind: RunKind) -> bool {
    r.run(kind).is_some_and(RunRecord::is_active)
}

fn running(r: &Request, kind: RunKind) -> Denial {
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

/// The first 8 characters of a request id.
#[cfg(test)]
mod tests;

fn deny(reason: impl Into<String>, remedy: impl Into<String>) -> Denial {
    Denial::new(reason, remedy)
}
