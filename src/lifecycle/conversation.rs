//! Commands and conversation turns: the command dispatcher, `new`, `show`, `set`, `unset`,
//! plain-words turns, and the commit and dispatch every change ends in.

use std::collections::BTreeMap;

use super::decider::{Decider, PR_STAGES};
use super::guards::revision_uncommitted;
use super::{CommentAt, conversation_of, deny, plan_key_prefix, reply_key};
use crate::assist::Extraction;
use crate::command::{self, Command, StatusFilters};
use crate::comments;
use crate::comments::lifecycle::{self as say, short};
use crate::conversation::{self, Conversation, Reply};
use crate::domain::{
    BlockChange, CheckStep, Denial, Effect, EffectKey, Request, RequestStatus, RunKind, RunRecord,
    RunStatus, request_branch,
};
use crate::registry::ModuleSpec;
use crate::settings::Settings;

impl<'a> Decider<'a> {
    /// A `/tfpilot` command: `help`, `status` and `new` need no request; every other command
    /// is for the thread's request, from someone who may write, and not after `cancel`.
    pub(super) fn command(
        &mut self,
        at: CommentAt,
        command: &Command,
        extraction: Option<&Extraction>,
    ) -> Result<(), Denial> {
        match command {
            Command::Help => {
                self.help(at);
                Ok(())
            }
            Command::Status { filters } => {
                self.status(at, filters);
                Ok(())
            }
            Command::Modules { module } => self.modules(at, module.as_deref()),
            Command::Drift { environment } => self.drift_check(at, environment.as_deref()),
            Command::New {
                module,
                environment,
                project,
                values,
                ..
            } => self.new_request(
                at,
                module,
                environment.as_deref(),
                project.as_deref(),
                values,
                extraction,
            ),
            _ => {
                let r = self.command_request(at, command)?;
                self.request_command(at, command, &r)
            }
        }
    }

    fn help(&mut self, at: CommentAt) {
        let text = comments::conversation::help(self.prefix(), self.facts.registry, &reply_key(at));
        self.reply(at, text);
    }

    fn modules(&mut self, at: CommentAt, module: Option<&str>) -> Result<(), Denial> {
        let registry = self.facts.registry;
        let text = match module {
            None => comments::catalogue::modules(self.prefix(), registry, &reply_key(at)),
            Some(m) => {
                // The parser resolved the type against the embedded catalogue; this
                // installation's may differ.
                let spec = registry.lookup(m).map_err(|e| {
                    deny(
                        command::ParseError::UnknownModule(e).to_string(),
                        format!("`{} modules` lists the module types.", self.prefix()),
                    )
                })?;
                comments::catalogue::module_inputs(self.prefix(), spec, &reply_key(at))
            }
        };
        self.reply(at, text);
        Ok(())
    }

    fn status(&mut self, at: CommentAt, filters: &StatusFilters) {
        let text = match (&self.request, filters.is_empty()) {
            (Some(r), true) => say::status(&reply_key(at), r, self.prefix()),
            _ => say::status_list(
                &reply_key(at),
                self.facts.listing.as_deref().unwrap_or_default(),
                &comments::conversation::describe_filters(filters),
            ),
        };
        self.reply(at, text);
    }

    /// The request a command is for, once the guards every command on a request shares pass.
    fn command_request(&self, at: CommentAt, command: &Command) -> Result<Request, Denial> {
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
        Ok(r)
    }

    fn request_command(
        &mut self,
        at: CommentAt,
        command: &Command,
        r: &Request,
    ) -> Result<(), Denial> {
        match command {
            Command::Show => self.show(at, r),
            Command::Set { values } => self.set(at, r, values),
            Command::Unset { keys } => self.unset(at, r, keys),
            Command::Submit => self.submit(at, r),
            Command::Plan => self.plan(at, r),
            Command::Approve => self.approve(at, r),
            Command::Merge => self.merge(at, r),
            Command::Apply => self.apply(at, r),
            Command::Destroy => self.destroy(at, r),
            Command::Cleanup => self.cleanup(at, r),
            Command::Cancel => self.cancel(at, r),
            Command::Help
            | Command::Status { .. }
            | Command::Modules { .. }
            | Command::Drift { .. }
            | Command::New { .. } => Ok(()),
        }
    }

    fn show(&mut self, at: CommentAt, r: &Request) -> Result<(), Denial> {
        let spec = self.spec(r)?;
        let conv = conversation_of(r, spec);
        let reply = conversation::show(&conv, spec, &self.ctx(r));
        let text = comments::conversation::conversation_reply(&reply, &reply_key(at));
        self.reply(at, text);
        Ok(())
    }

    fn set(
        &mut self,
        at: CommentAt,
        r: &Request,
        values: &BTreeMap<String, String>,
    ) -> Result<(), Denial> {
        let spec = self.spec(r)?;
        let values = command::resolve_values(spec, values)
            .map_err(|e| deny(e.to_string(), "Use the input names `show` lists."))?;
        let (conv, reply) =
            conversation::apply_set(&conversation_of(r, spec), spec, &values, &self.ctx(r));
        self.change_inputs(at, r, conv, reply)
    }

    fn unset(&mut self, at: CommentAt, r: &Request, keys: &[String]) -> Result<(), Denial> {
        let spec = self.spec(r)?;
        let keys = command::resolve_keys(spec, keys)
            .map_err(|e| deny(e.to_string(), "Use the input names `show` lists."))?;
        let (conv, reply) =
            conversation::apply_unset(&conversation_of(r, spec), spec, &keys, &self.ctx(r));
        self.change_inputs(at, r, conv, reply)
    }

    pub(super) fn new_request(
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
        let (settings, spec, environment) = self.new_target(module, environment, project)?;
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
        r.notify_route = settings.notifications.slack_route(environment);
        r.record(self.facts.now, &self.actor.login, "created", None);
        let ctx = self.ctx(&r);
        let (conv, reply) = conversation::start(spec, values, extraction, &ctx);
        store_conversation(&mut r, &conv, &reply);
        let text = comments::conversation::conversation_reply(&reply, &reply_key(at));
        self.request = Some(r);
        self.reply(at, text);
        Ok(())
    }

    /// The settings, module and environment a `new` request is opened with, checked.
    fn new_target<'e>(
        &self,
        module: &str,
        environment: Option<&'e str>,
        project: Option<&str>,
    ) -> Result<(&'a Settings, &'a ModuleSpec, &'e str), Denial> {
        let p = self.prefix();
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
        Ok((settings, spec, environment))
    }

    /// A conversation turn: plain words, read by the assistant.
    pub(super) fn turn(&mut self, at: CommentAt, extraction: &Extraction) -> Result<(), Denial> {
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
    pub(super) fn change_inputs(
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
                // Only a change of a value makes its writer an author (four eyes): a "thanks",
                // a question or a `set` to the value already there changes nothing.
                let changed = conv.values != r.inputs;
                let req = self.req();
                store_conversation(req, &conv, &reply);
                if changed {
                    req.record(now, login, "inputs_changed", None);
                }
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
                // The approvals stay with the commit they were given on: the new revision's
                // plan keeps them only if it makes the same resource changes.
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

    pub(super) fn commit_block(&mut self, block: String) -> Result<(), Denial> {
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
    pub(super) fn dispatch(&mut self, kind: RunKind) -> Result<(), Denial> {
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
        let on_request_branch = git_ref == request_branch(r.id);
        // An apply works on the merge commit that was approved, and its workflow checks that.
        let expected_sha = match kind {
            RunKind::Apply => Some(self.merge_commit(&r)?),
            _ => None,
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
                dispatch_id: dispatch_id.clone(),
                expected_sha,
            },
        );
        if kind == RunKind::Plan && on_request_branch {
            // The pull request's head gets its `tfpilot/plan` check run (branch protection
            // can require it).
            self.push(
                EffectKey::check_started(&dispatch_id),
                Effect::Check {
                    step: CheckStep::PlanStarted { dispatch_id },
                },
            );
        }
        Ok(())
    }
}

pub(super) fn store_conversation(r: &mut Request, conv: &Conversation, reply: &Reply) {
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

pub(super) fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
