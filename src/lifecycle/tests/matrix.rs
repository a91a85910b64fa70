//! The whole guardrail matrix: every role × every command × the environments `dev`, `prod`,
//! `Prod` (production names are compared without case) and `live` (an extra production name
//! from `TFPILOT_PROD_ENVIRONMENTS`) × every status (and no request). Not a snapshot: each
//! decision is checked against the rules themselves, and every denial must say why and what
//! would allow it.

use super::*;

/// The environments walked, and whether each is production.
const ENVIRONMENTS: [(&str, bool); 4] = [
    ("dev", false),
    ("prod", true),
    ("Prod", true),
    ("live", true),
];

/// A request in `status` in `env` (built as in prod, then moved: the builder's settings list
/// `dev` and `prod` only).
fn representative_in(env: &str, status: RequestStatus) -> Request {
    let mut r = representative("prod", status);
    r.environment = Some(env.to_owned());
    r
}

fn listed(list: &[String], login: &str) -> bool {
    list.iter().any(|l| l.eq_ignore_ascii_case(login))
}

/// What a decision amounts to, whatever the environment is called: allowed or denied (the next
/// status and the effects may differ: names derived from the environment's name differ, and a
/// changed name is a new revision).
fn shape(d: &Result<Decision, Denial>) -> &'static str {
    match d {
        Ok(_) => "allowed",
        Err(_) => "denied",
    }
}

#[test]
fn every_role_command_environment_and_status_is_decided_by_the_guardrails() {
    let registry = Registry::embedded();
    let mut roles = roles();
    for role in &mut roles {
        role.policy.prod_environments.push("live".into());
    }
    let statuses: Vec<Option<RequestStatus>> = std::iter::once(None)
        .chain(RequestStatus::ALL.into_iter().map(Some))
        .collect();
    let mut decided = 0;
    let mut allowed_in_dev_only: Vec<String> = Vec::new();
    for status in &statuses {
        let mut by_env: BTreeMap<(String, &str), &str> = BTreeMap::new();
        for (env, prod) in ENVIRONMENTS {
            let r = status.map(|s| representative_in(env, s));
            let mut f = full_facts(registry, r.as_ref());
            if let Some(s) = f.settings.as_mut() {
                s.environments
                    .extend(["Prod".to_owned(), "live".to_owned()]);
            }
            for (name, command) in every_command(env) {
                for role in &roles {
                    assert_eq!(
                        role.policy.is_prod(env),
                        prod,
                        "`{env}` is production: {prod}"
                    );
                    let d = decide(
                        r.as_ref(),
                        &cmd(command.clone()),
                        &role.actor,
                        &role.policy,
                        &f,
                    );
                    decided += 1;
                    if command.is_mutating() && !role.actor.permission.can_write() {
                        // The executor decides these before reading any fact (no settings, no
                        // pull request, no assistant): the same denial must come out.
                        let bare = Facts {
                            settings: None,
                            pr: None,
                            base_block: None,
                            base_head: None,
                            listing: None,
                            ..f.clone()
                        };
                        let without = decide(
                            r.as_ref(),
                            &cmd(command.clone()),
                            &role.actor,
                            &role.policy,
                            &bare,
                        );
                        assert_eq!(
                            without.as_ref().err(),
                            d.as_ref().err(),
                            "{status:?} | {name} | {} | {env}: decided differently without facts",
                            role.name
                        );
                    }
                    let case = format!("{status:?} | {name} | {} | {env}", role.name);
                    let login = role.actor.login.as_str();
                    match &d {
                        Err(denial) => {
                            assert!(
                                !denial.reason.trim().is_empty(),
                                "{case}: a denial without a reason"
                            );
                            assert!(
                                !denial.remedy.trim().is_empty(),
                                "{case}: a denial without a remedy: {}",
                                denial.reason
                            );
                            assert_ne!(denial.reason.trim(), denial.remedy.trim(), "{case}");
                        }
                        Ok(_) => {
                            assert!(
                                !command.is_mutating() || role.actor.permission.can_write(),
                                "{case}: a mutating command allowed without write access"
                            );
                            let guarded = matches!(
                                command,
                                Command::Approve
                                    | Command::Merge
                                    | Command::Apply
                                    | Command::Cleanup
                            );
                            if prod && guarded {
                                assert!(
                                    listed(&role.policy.prod_allowed_users, login),
                                    "{case}: allowed to someone not on the prod allow-list"
                                );
                            }
                            if prod && matches!(command, Command::Destroy) {
                                assert!(
                                    listed(&role.policy.destroy_prod_allowed_users, login),
                                    "{case}: destroy allowed to someone not on the prod-destroy list"
                                );
                            }
                            if matches!(command, Command::Approve) {
                                assert!(
                                    !role.policy.approvers_required
                                        || listed(&role.policy.approvers, login),
                                    "{case}: approved by someone who is not an approver"
                                );
                                if prod {
                                    let requester = r.as_ref().map(|r| r.requester.as_str());
                                    assert_ne!(
                                        requester.map(str::to_ascii_lowercase),
                                        Some(login.to_ascii_lowercase()),
                                        "{case}: the requester approved their own prod request"
                                    );
                                }
                            }
                        }
                    }
                    by_env.insert((format!("{name} | {}", role.name), env), shape(&d));
                }
            }
        }
        // `live` is decided exactly as `prod`, and `Prod` never more loosely (environment names
        // are lowercase at the front door, so a `Prod` request's derived names may not validate
        // and a change can be refused for that); where `dev` differs it is a prod guardrail.
        for ((case, env), outcome) in &by_env {
            let prod = &by_env[&(case.clone(), "prod")];
            if *env == "live" || (*env == "Prod" && *outcome == "allowed") {
                assert_eq!(
                    outcome, prod,
                    "{status:?} | {case} | {env} is not decided as prod"
                );
            }
            if *env == "dev" && outcome != prod && *outcome == "allowed" {
                allowed_in_dev_only.push(format!("{status:?} | {case}"));
            }
        }
    }
    assert_eq!(
        decided,
        statuses.len() * ENVIRONMENTS.len() * every_command("dev").len() * roles.len()
    );
    // The prod guardrails bite: an unlisted writer merges, applies and cleans up in dev only.
    for case in [
        "Some(Approved) | merge | write",
        "Some(Merged) | apply | write",
        "Some(Applied) | destroy | prod-listed",
        "Some(Destroyed) | cleanup | write",
    ] {
        assert!(
            allowed_in_dev_only.iter().any(|c| c == case),
            "{case} should be allowed in dev and denied in prod: {allowed_in_dev_only:#?}"
        );
    }
}

/// The four-eyes rule in the matrix's terms: in every production name (however the list spells
/// it) the requester cannot approve even when listed, and someone else listed can.
#[test]
fn in_every_production_name_the_requester_cannot_approve() {
    let registry = Registry::embedded();
    let mut p = policy();
    p.prod_environments.push("live".into());
    p.prod_allowed_users.push("carol".into());
    for (env, prod) in ENVIRONMENTS {
        let r = representative_in(env, RequestStatus::Planned);
        let f = full_facts(registry, Some(&r));
        let own = decide(Some(&r), &cmd(Command::Approve), &writer("carol"), &p, &f);
        // However the production names are written in the configuration.
        let upper = Policy {
            prod_environments: p
                .prod_environments
                .iter()
                .map(|e| e.to_uppercase())
                .collect(),
            ..p.clone()
        };
        assert_eq!(upper.is_prod(env), prod, "{env}");
        assert_eq!(
            shape(&decide(
                Some(&r),
                &cmd(Command::Approve),
                &writer("carol"),
                &upper,
                &f
            )),
            shape(&own),
            "{env}"
        );
        let other = decide(Some(&r), &cmd(Command::Approve), &writer("bob"), &p, &f);
        assert!(other.is_ok(), "{env}: {other:?}");
        if prod {
            let denial = own.map(|_| ()).expect_err(env);
            assert!(denial.reason.contains("You"), "{env}: {}", denial.reason);
            assert!(denial.remedy.contains("@"), "{env}: {}", denial.remedy);
        } else {
            assert!(own.is_ok(), "{env}: {own:?}");
        }
    }
}
