//! `.tfpilot.yml` reviewed where it changes: every problem of a changed file at once, for the
//! `tfpilot/config` check run of the pull request that changes it — unknown keys (with a
//! did-you-mean), values TfPilot refuses, list entries the environment's lists do not allow (a
//! repository can only narrow them, so such an entry is ignored), quorums lower than the
//! environment's. The people and teams it names are returned for the executor to look up.

use serde_norway::{Mapping, Value};

use super::Settings;
use crate::domain::Policy;
use crate::domain::policy::{ID_PREFIX, is_team};
use crate::ids::RepoName;

const KEYS: [&str; 10] = [
    "project",
    "base_branch",
    "environments",
    "prod_allowed_users",
    "prod_destroy_allowed_users",
    "approvers",
    "approvals_required",
    "workflows",
    "notifications",
    "dashboard",
];
const WORKFLOW_KEYS: [&str; 4] = ["plan", "apply", "destroy", "cleanup"];
const NOTIFICATION_KEYS: [&str; 1] = ["slack"];

/// What the review found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    /// Every problem, each a sentence for the person who edits the file.
    pub problems: Vec<String>,
    /// The logins the lists name (to be looked up: each must be a GitHub user).
    pub people: Vec<String>,
    /// The teams the lists name (`org/slug`; each must exist).
    pub teams: Vec<String>,
}

/// Reviews `text`, the changed `.tfpilot.yml` of a pull request into `base_branch`, against the
/// environment's `policy`.
pub fn review(text: &str, repo: &RepoName, base_branch: &str, policy: &Policy) -> Review {
    let mut out = Review::default();
    let value: Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            out.problems.push(format!("It is not valid YAML: {e}."));
            return out;
        }
    };
    let mut map = match value {
        Value::Null => Mapping::new(),
        Value::Mapping(m) => m,
        _ => {
            out.problems
                .push("It must be a mapping of settings (`key: value` lines).".into());
            return out;
        }
    };
    unknown_keys(&mut map, &KEYS, "", &mut out.problems);
    if let Some(Value::Mapping(w)) = map.get_mut("workflows") {
        unknown_keys(w, &WORKFLOW_KEYS, "workflows.", &mut out.problems);
    }
    if let Some(Value::Mapping(n)) = map.get_mut("notifications") {
        unknown_keys(n, &NOTIFICATION_KEYS, "notifications.", &mut out.problems);
    }
    let cleaned = serde_norway::to_string(&Value::Mapping(map)).unwrap_or_default();
    let settings = match Settings::from_file(repo, base_branch, Some(&cleaned)) {
        Ok(s) => s,
        Err(e) => {
            out.problems.push(format!("{}.", e.reason));
            return out;
        }
    };
    let lists = [
        (
            "prod_allowed_users",
            &settings.prod_allowed_users,
            &policy.prod_allowed_users,
            "TFPILOT_PROD_ALLOWED_USERS",
        ),
        (
            "prod_destroy_allowed_users",
            &settings.prod_destroy_allowed_users,
            &policy.destroy_prod_allowed_users,
            "TFPILOT_DESTROY_PROD_ALLOWED_USERS",
        ),
        (
            "approvers",
            &settings.approvers,
            &policy.approvers,
            "TFPILOT_APPROVERS",
        ),
    ];
    for (key, repo_list, env_list, variable) in lists {
        let Some(repo_list) = repo_list else {
            continue;
        };
        for entry in repo_list {
            if is_team(entry) {
                push_once(&mut out.teams, entry);
            } else if !entry.starts_with(ID_PREFIX) {
                push_once(&mut out.people, entry);
            }
        }
        // No approvers in the environment means anyone with write access: any list narrows it.
        if key == "approvers" && env_list.is_empty() {
            continue;
        }
        // A person may be in a team the environment names: membership is not known here.
        let env_has_team = env_list.iter().any(|e| is_team(e));
        for entry in repo_list {
            let allowed = env_list.iter().any(|e| e.eq_ignore_ascii_case(entry));
            if allowed || (env_has_team && !is_team(entry)) {
                continue;
            }
            out.problems.push(format!(
                "`{key}` names `{entry}`, whom {variable} does not name: a repository can only narrow the list, so TfPilot ignores the entry."
            ));
        }
    }
    for (env, n) in &settings.approvals_required {
        if !settings.environments.iter().any(|e| e == env) {
            out.problems.push(format!(
                "`approvals_required` names `{env}`, which is not in `environments`."
            ));
        }
        let floor = policy.approvals_needed(env);
        if *n < floor {
            out.problems.push(format!(
                "`approvals_required: {{{env}: {n}}}` is lower than the {floor} the environment (TFPILOT_APPROVALS_REQUIRED) needs; a repository can only ask for more."
            ));
        }
    }
    out
}

fn push_once(list: &mut Vec<String>, entry: &str) {
    if !list.iter().any(|l| l.eq_ignore_ascii_case(entry)) {
        list.push(entry.to_owned());
    }
}

/// Removes the keys of `map` that are not `known`, saying each (with the closest known key).
fn unknown_keys(map: &mut Mapping, known: &[&str], prefix: &str, problems: &mut Vec<String>) {
    let unknown: Vec<Value> = map
        .keys()
        .filter(|k| k.as_str().is_none_or(|k| !known.contains(&k)))
        .cloned()
        .collect();
    for key in unknown {
        let name = key
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{key:?}"));
        let hint = closest(&name, known)
            .map(|k| format!(" (did you mean `{prefix}{k}`?)"))
            .unwrap_or_default();
        problems.push(format!("Unknown key `{prefix}{name}`{hint}."));
        map.remove(&key);
    }
}

/// The known key closest to `given`, when it is a likely typo of it.
fn closest<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&given, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn policy() -> Policy {
        Policy {
            prod_environments: vec!["prod".into()],
            prod_allowed_users: vec!["alice".into(), "bob".into()],
            destroy_prod_allowed_users: vec!["alice".into()],
            approvers: Vec::new(),
            approvers_required: false,
            approvals_required: BTreeMap::from([("prod".into(), 2)]),
        }
    }

    fn repo() -> RepoName {
        "acme/core-terraform".parse().unwrap()
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let text = "project: core\nprod_alowed_users: [mallory]\nprod_destroy_allowed_users: [alice, mallory]\nworkflows:\n  plna: plan.yml\napprovals_required: {prod: 1, qa: 2}\napprovers: ['@acme/platform', dana]\n";
        let r = review(text, &repo(), "main", &policy());
        assert_eq!(
            r.problems,
            [
                "Unknown key `prod_alowed_users` (did you mean `prod_allowed_users`?).",
                "Unknown key `workflows.plna` (did you mean `workflows.plan`?).",
                "`prod_destroy_allowed_users` names `mallory`, whom TFPILOT_DESTROY_PROD_ALLOWED_USERS does not name: a repository can only narrow the list, so TfPilot ignores the entry.",
                "`approvals_required: {prod: 1}` is lower than the 2 the environment (TFPILOT_APPROVALS_REQUIRED) needs; a repository can only ask for more.",
                "`approvals_required` names `qa`, which is not in `environments`.",
            ]
        );
        assert_eq!(r.people, ["alice", "mallory", "dana"]);
        assert_eq!(r.teams, ["acme/platform"]);
    }

    #[test]
    fn a_valid_file_has_no_problem_and_a_broken_one_says_why() {
        let ok = include_str!("../../examples/infra-repo/.tfpilot.yml");
        assert_eq!(
            review(ok, &repo(), "main", &policy()).problems,
            Vec::<String>::new()
        );
        let r = review("environments: [Dev]\n", &repo(), "main", &policy());
        assert!(r.problems[0].contains("not an environment name"), "{r:?}");
        let r = review("project: [\n", &repo(), "main", &policy());
        assert!(r.problems[0].starts_with("It is not valid YAML"), "{r:?}");
    }

    #[test]
    fn notification_routes_are_known_keys_and_their_typos_are_named() {
        let r = review(
            "notifications:\n  slack:\n    prod: platform-alerts\n",
            &repo(),
            "main",
            &policy(),
        );
        assert_eq!(r.problems, Vec::<String>::new());
        let r = review(
            "notifications:\n  slak:\n    prod: platform-alerts\n",
            &repo(),
            "main",
            &policy(),
        );
        assert_eq!(
            r.problems,
            ["Unknown key `notifications.slak` (did you mean `notifications.slack`?)."]
        );
    }
}
