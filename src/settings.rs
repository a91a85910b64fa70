//! Per-repository settings: `.tfpilot.yml` on the infra repo's default branch.
//!
//! Parsed strictly (`deny_unknown_fields`: a misspelt key is an error naming the line, never
//! silently ignored). A repository without the file gets the defaults: project = repository
//! name, base branch = default branch, environments `dev` and `prod`, the standard workflow files.
//!
//! Security: the allow-lists of the environment (`TFPILOT_PROD_ALLOWED_USERS`, …) are
//! authoritative. A repository's lists can only narrow them ([`Settings::narrow`]), never add
//! anyone, so write access to an infra repo never grants prod rights.

pub mod repo_check;
pub mod review;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::policy::{MAX_APPROVALS, Memberships, teams_in};
use crate::domain::{Policy, RunKind, is_name};
use crate::ids::RepoName;

/// Where the file lives in the repository.
pub const SETTINGS_FILE: &str = ".tfpilot.yml";

/// The file as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSettingsFile {
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub base_branch: Option<String>,
    #[serde(default)]
    pub environments: Option<Vec<String>>,
    #[serde(default)]
    pub prod_allowed_users: Option<Vec<String>>,
    #[serde(default)]
    pub prod_destroy_allowed_users: Option<Vec<String>>,
    #[serde(default)]
    pub approvers: Option<Vec<String>>,
    /// Distinct approvals per environment (`prod: 2`); can only raise the environment's.
    #[serde(default)]
    pub approvals_required: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    pub workflows: WorkflowFiles,
    #[serde(default)]
    pub notifications: Notifications,
    /// Whether TfPilot keeps a requests dashboard issue in the repository (default: yes).
    #[serde(default)]
    pub dashboard: Option<bool>,
}

/// Where the team's chat hears about requests (`notifications:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Environment → the Slack webhook route for it: a name from `TFPILOT_SLACK_WEBHOOK_ROUTES`
    /// (webhook URLs are secrets and stay out of the repository), or `off`. Environments not
    /// listed use `TFPILOT_SLACK_WEBHOOK_URL`.
    #[serde(default)]
    pub slack: BTreeMap<String, String>,
}

pub use crate::slack::{SLACK_OFF, is_route_name};

impl Notifications {
    /// The route for `environment`: `None` for the default webhook.
    pub fn slack_route(&self, environment: &str) -> Option<String> {
        self.slack.get(environment).cloned()
    }
}

/// The workflow file of each kind (under `.github/workflows/`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFiles {
    #[serde(default = "default_plan")]
    pub plan: String,
    #[serde(default = "default_apply")]
    pub apply: String,
    #[serde(default = "default_destroy")]
    pub destroy: String,
    #[serde(default = "default_cleanup")]
    pub cleanup: String,
}

fn default_plan() -> String {
    "plan.yml".into()
}
fn default_apply() -> String {
    "apply.yml".into()
}
fn default_destroy() -> String {
    "destroy.yml".into()
}
fn default_cleanup() -> String {
    "cleanup.yml".into()
}

impl Default for WorkflowFiles {
    fn default() -> Self {
        Self {
            plan: default_plan(),
            apply: default_apply(),
            destroy: default_destroy(),
            cleanup: default_cleanup(),
        }
    }
}

impl WorkflowFiles {
    /// The files by kind, as a request stores them.
    pub fn by_kind(&self) -> BTreeMap<RunKind, String> {
        BTreeMap::from([
            (RunKind::Plan, self.plan.clone()),
            (RunKind::Apply, self.apply.clone()),
            (RunKind::Destroy, self.destroy.clone()),
            (RunKind::Cleanup, self.cleanup.clone()),
        ])
    }
}

/// The settings in force for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub project: String,
    pub base_branch: String,
    pub environments: Vec<String>,
    pub prod_allowed_users: Option<Vec<String>>,
    pub prod_destroy_allowed_users: Option<Vec<String>>,
    pub approvers: Option<Vec<String>>,
    pub approvals_required: BTreeMap<String, u32>,
    pub workflows: WorkflowFiles,
    pub notifications: Notifications,
    /// Whether the repository has a requests dashboard issue.
    pub dashboard: bool,
}

/// Why `.tfpilot.yml` cannot be used; `Display` is written for the person who edits the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{SETTINGS_FILE}` on `{branch}` cannot be used: {reason}")]
pub struct SettingsError {
    pub branch: String,
    pub reason: String,
}

impl Settings {
    /// The defaults for a repository without `.tfpilot.yml`.
    pub fn defaults(repo: &RepoName, default_branch: &str) -> Settings {
        Settings {
            project: default_project(repo),
            base_branch: default_branch.to_owned(),
            environments: vec!["dev".into(), "prod".into()],
            prod_allowed_users: None,
            prod_destroy_allowed_users: None,
            approvers: None,
            approvals_required: BTreeMap::new(),
            workflows: WorkflowFiles::default(),
            notifications: Notifications::default(),
            dashboard: true,
        }
    }

    /// Reads the file's text (`None`: no file) as found on `default_branch`.
    pub fn from_file(
        repo: &RepoName,
        default_branch: &str,
        text: Option<&str>,
    ) -> Result<Settings, SettingsError> {
        let defaults = Settings::defaults(repo, default_branch);
        let Some(text) = text else {
            return Ok(defaults);
        };
        let error = |reason: String| SettingsError {
            branch: default_branch.to_owned(),
            reason,
        };
        let file: RepoSettingsFile = if text.trim().is_empty() {
            RepoSettingsFile::default()
        } else {
            serde_norway::from_str(text).map_err(|e| error(e.to_string()))?
        };
        let project = file.project.unwrap_or(defaults.project);
        if !is_name(&project) {
            return Err(error(format!(
                "`project: {project}` is not a project name (lowercase letters, digits and hyphens, starting with a letter, at most 32)"
            )));
        }
        let environments = file.environments.unwrap_or(defaults.environments);
        if environments.is_empty() {
            return Err(error("`environments` lists no environment".into()));
        }
        if let Some(bad) = environments.iter().find(|e| !is_name(e)) {
            return Err(error(format!(
                "`{bad}` in `environments` is not an environment name (lowercase letters, digits and hyphens, starting with a letter)"
            )));
        }
        let base_branch = file.base_branch.unwrap_or(defaults.base_branch);
        if base_branch.trim().is_empty() || base_branch.contains("..") {
            return Err(error(format!(
                "`base_branch: {base_branch}` is not a branch"
            )));
        }
        for (kind, file) in file.workflows.by_kind() {
            let ok = !file.is_empty()
                && !file.contains('/')
                && !file.starts_with('.')
                && (file.ends_with(".yml") || file.ends_with(".yaml"));
            if !ok {
                return Err(error(format!(
                    "`workflows.{}: {file}` must be a file name in .github/workflows (e.g. `{}.yml`)",
                    RunKind::as_str(kind),
                    RunKind::as_str(kind)
                )));
            }
        }
        let approvals_required = file.approvals_required.unwrap_or_default();
        if let Some((env, n)) = approvals_required
            .iter()
            .find(|(env, n)| !is_name(env) || **n > MAX_APPROVALS)
        {
            return Err(error(format!(
                "`approvals_required: {{{env}: {n}}}` must name an environment and at most {MAX_APPROVALS} approvals"
            )));
        }
        for (env, route) in &file.notifications.slack {
            // The value is not echoed: someone may have pasted a webhook URL (a secret) here.
            if !environments.contains(env) {
                return Err(error(format!(
                    "`notifications.slack.{env}` names an environment not in `environments`"
                )));
            }
            if !is_route_name(route) {
                return Err(error(format!(
                    "`notifications.slack.{env}` must be a route name from TFPILOT_SLACK_WEBHOOK_ROUTES (letters, digits, `-` and `_`) or `{SLACK_OFF}`; webhook URLs are secrets and do not belong in the repository"
                )));
            }
        }
        Ok(Settings {
            project,
            base_branch,
            environments,
            approvals_required,
            prod_allowed_users: file.prod_allowed_users.map(clean_logins),
            prod_destroy_allowed_users: file.prod_destroy_allowed_users.map(clean_logins),
            approvers: file.approvers.map(clean_logins),
            workflows: file.workflows,
            notifications: file.notifications,
            dashboard: file.dashboard.unwrap_or(true),
        })
    }

    /// These settings as they apply to the person `login` with account id `id`: their
    /// `id:<number>` entries become their login (see `Policy::for_actor`).
    pub fn for_actor(&self, login: &str, id: Option<u64>) -> Settings {
        let resolve = |list: &Option<Vec<String>>| {
            list.as_ref()
                .map(|l| crate::domain::policy::resolve_id(l, login, id))
        };
        Settings {
            prod_allowed_users: resolve(&self.prod_allowed_users),
            prod_destroy_allowed_users: resolve(&self.prod_destroy_allowed_users),
            approvers: resolve(&self.approvers),
            ..self.clone()
        }
    }

    /// The teams the file's lists name (lowercase `org/slug`, each once).
    pub fn teams(&self) -> Vec<String> {
        let lists = [
            &self.prod_allowed_users,
            &self.prod_destroy_allowed_users,
            &self.approvers,
        ];
        teams_in(lists.into_iter().flatten().map(Vec::as_slice))
    }

    /// These settings with the members found of each team named in their lists.
    pub fn with_members(&self, members: &Memberships) -> Settings {
        let expand = |list: &Option<Vec<String>>| list.as_ref().map(|l| members.expand(l));
        Settings {
            prod_allowed_users: expand(&self.prod_allowed_users),
            prod_destroy_allowed_users: expand(&self.prod_destroy_allowed_users),
            approvers: expand(&self.approvers),
            ..self.clone()
        }
    }

    /// The policy in force for this repository: `policy` (from the environment) with each list
    /// narrowed to the logins this repository also names, and each quorum raised to the
    /// repository's where it asks for more. A repository can only take people out and ask for
    /// more approvals. Teams are compared as entries: expand both sides with the same
    /// [`Memberships`] first, so a member named on one side and found in a team on the other
    /// is kept.
    pub fn narrow(&self, policy: &Policy) -> Policy {
        let narrow = |base: &[String], repo: &Option<Vec<String>>| -> Vec<String> {
            match repo {
                None => base.to_vec(),
                Some(repo) => base
                    .iter()
                    .filter(|l| repo.iter().any(|r| r.eq_ignore_ascii_case(l)))
                    .cloned()
                    .collect(),
            }
        };
        Policy {
            prod_environments: policy.prod_environments.clone(),
            prod_allowed_users: narrow(&policy.prod_allowed_users, &self.prod_allowed_users),
            destroy_prod_allowed_users: narrow(
                &policy.destroy_prod_allowed_users,
                &self.prod_destroy_allowed_users,
            ),
            // No approver list in the environment means "anyone with write access": a
            // repository list then narrows that to the people it names.
            approvers: match (&policy.approvers[..], &self.approvers) {
                ([], Some(repo)) => repo.clone(),
                (base, repo) => narrow(base, repo),
            },
            approvers_required: policy.approvers_required || self.approvers.is_some(),
            approvals_required: {
                let mut q = policy.approvals_required.clone();
                for (env, n) in &self.approvals_required {
                    let current = policy.approvals_needed(env);
                    if *n > current {
                        q.insert(env.clone(), *n);
                    }
                }
                q
            },
        }
    }
}

fn clean_logins(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|l| l.trim().trim_start_matches('@').to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `core-terraform` → `core-terraform`; anything that is not a valid name is reduced to one.
fn default_project(repo: &RepoName) -> String {
    let mut out: String = repo
        .name()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out = out.trim_matches('-').chars().take(32).collect();
    let out = out.trim_end_matches('-').to_owned();
    if out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out
    } else {
        format!("p{}", out.chars().take(31).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> RepoName {
        "acme/core-terraform".parse().unwrap()
    }

    #[test]
    fn a_missing_file_gives_the_defaults() {
        let s = Settings::from_file(&repo(), "main", None).unwrap();
        assert_eq!(s.project, "core-terraform");
        assert_eq!(s.base_branch, "main");
        assert_eq!(s.environments, ["dev", "prod"]);
        assert_eq!(s.workflows.plan, "plan.yml");
        assert!(s.prod_allowed_users.is_none());
    }

    #[test]
    fn the_example_file_is_read() {
        let text = include_str!("../examples/infra-repo/.tfpilot.yml");
        let s = Settings::from_file(&repo(), "main", Some(text)).unwrap();
        assert_eq!(s.project, "core");
        assert_eq!(
            s.prod_allowed_users,
            Some(vec!["alice".into(), "bob".into()])
        );
        assert_eq!(s.prod_destroy_allowed_users, Some(vec!["alice".into()]));
        assert_eq!(s.workflows.by_kind()[&RunKind::Apply], "apply.yml");
        assert_eq!(
            s.notifications.slack_route("prod").as_deref(),
            Some("prod-alerts")
        );
        assert_eq!(s.notifications.slack_route("dev"), None);
    }

    #[test]
    fn slack_routes_name_known_environments_and_never_hold_a_url() {
        let read = |text: &str| Settings::from_file(&repo(), "main", Some(text));
        let s = read("notifications:\n  slack:\n    dev: off\n").unwrap();
        assert_eq!(s.notifications.slack_route("dev").as_deref(), Some("off"));
        let err = read("notifications:\n  slack:\n    qa: team\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`notifications.slack.qa` names an environment not in `environments`"),
            "{err}"
        );
        let err = read(
            "notifications:\n  slack:\n    prod: https://hooks.slack.com/services/T/B/hunter2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be a route name"), "{err}");
        assert!(!err.contains("hunter2"), "the value is not echoed: {err}");
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_its_line() {
        let err = Settings::from_file(
            &repo(),
            "main",
            Some("project: core\nprod_alowed_users: [mallory]\n"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("prod_alowed_users"), "{text}");
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains(".tfpilot.yml"), "{text}");
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for (text, expected) in [
            ("project: Core Infra\n", "not a project name"),
            ("environments: []\n", "no environment"),
            ("environments: [Dev]\n", "not an environment name"),
            ("workflows:\n  plan: ../evil.yml\n", "workflows.plan"),
        ] {
            let err = Settings::from_file(&repo(), "main", Some(text)).unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }

    fn policy(prod: &[&str], destroy: &[&str], approvers: &[&str]) -> Policy {
        let v = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Policy {
            prod_environments: vec!["prod".into(), "production".into()],
            prod_allowed_users: v(prod),
            destroy_prod_allowed_users: v(destroy),
            approvers: v(approvers),
            approvers_required: !approvers.is_empty(),
            approvals_required: BTreeMap::new(),
        }
    }

    #[test]
    fn a_repository_can_raise_a_quorum_but_never_lower_it() {
        let s = Settings::from_file(
            &repo(),
            "main",
            Some("approvals_required: {prod: 3, dev: 0, staging: 2}\n"),
        )
        .unwrap();
        let mut env = policy(&["alice"], &[], &[]);
        env.approvals_required = BTreeMap::from([("prod".into(), 2), ("dev".into(), 1)]);
        let p = s.narrow(&env);
        assert_eq!(p.approvals_needed("prod"), 3);
        assert_eq!(p.approvals_needed("dev"), 1, "not lowered");
        assert_eq!(p.approvals_needed("staging"), 2);
        let err = Settings::from_file(&repo(), "main", Some("approvals_required: {prod: 99}\n"))
            .unwrap_err();
        assert!(err.to_string().contains("at most 10"), "{err}");
    }

    #[test]
    fn teams_narrow_by_their_members_on_both_sides() {
        let s = Settings::from_file(
            &repo(),
            "main",
            Some("prod_allowed_users: ['@acme/platform', carol]\n"),
        )
        .unwrap();
        assert_eq!(s.teams(), ["acme/platform"]);
        let env = policy(&["alice", "bob", "@acme/platform"], &[], &[]);
        let env = Policy {
            prod_allowed_users: vec!["alice".into(), "bob".into(), "acme/platform".into()],
            ..env
        };
        let mut m = Memberships::default();
        m.add("acme/platform", "bob");
        let p = s.with_members(&m).narrow(&env.with_members(&m));
        assert_eq!(p.prod_allowed_users, ["bob", "acme/platform"]);
    }

    #[test]
    fn a_repository_can_narrow_the_allow_lists_but_never_widen_them() {
        let env = policy(&["alice", "Bob", "carol"], &["alice"], &[]);
        let file = "prod_allowed_users: [bob, mallory]\nprod_destroy_allowed_users: [mallory]\n";
        let s = Settings::from_file(&repo(), "main", Some(file)).unwrap();
        let p = s.narrow(&env);
        assert_eq!(p.prod_allowed_users, ["Bob"], "mallory is not added");
        assert!(
            p.destroy_prod_allowed_users.is_empty(),
            "nobody may destroy"
        );
        // An empty environment list stays empty whatever the repository says.
        let empty = policy(&[], &[], &[]);
        assert!(s.narrow(&empty).prod_allowed_users.is_empty());
        // Without lists in the file, the environment's lists are in force unchanged.
        let plain = Settings::from_file(&repo(), "main", None).unwrap();
        assert_eq!(plain.narrow(&env), env);
    }

    #[test]
    fn a_repository_approver_list_narrows_everyone_with_write_access() {
        let s = Settings::from_file(&repo(), "main", Some("approvers: [dana]\n")).unwrap();
        let p = s.narrow(&policy(&["alice"], &[], &[]));
        assert_eq!(p.approvers, ["dana"]);
        assert!(p.approvers_required);
        let p = s.narrow(&policy(&["alice"], &[], &["erin"]));
        assert!(
            p.approvers.is_empty() && p.approvers_required,
            "dana is not added"
        );
    }
}
