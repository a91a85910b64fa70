//! Guardrails: write permission, the prod allow-lists, the approvers and four eyes; denials.

use super::*;

// ---- write permission ---------------------------------------------------------------------------

#[test]
fn every_mutating_command_needs_write_permission() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let commands = [
        (Command::Submit, RequestStatus::Ready),
        (Command::Plan, RequestStatus::Planned),
        (Command::Approve, RequestStatus::Planned),
        (Command::Merge, RequestStatus::Approved),
        (Command::Apply, RequestStatus::Merged),
        (Command::Destroy, RequestStatus::Applied),
        (Command::Cleanup, RequestStatus::Destroyed),
        (Command::Cancel, RequestStatus::Ready),
        (
            Command::Set {
                values: BTreeMap::from([("versioning".into(), "on".into())]),
            },
            RequestStatus::Ready,
        ),
        (
            Command::Unset {
                keys: vec!["versioning".into()],
            },
            RequestStatus::Ready,
        ),
    ];
    for (command, status) in commands {
        for permission in [Permission::None, Permission::Read, Permission::Triage] {
            let r = request("dev", status);
            let name = command.name();
            let text = denied(
                &r,
                &cmd(command.clone()),
                &actor("mallory", permission),
                &policy(),
                &f,
            );
            assert!(
                text.contains(&format!("`{name}` needs write access")),
                "{name} as {permission:?}: {text}"
            );
            assert!(text.contains("Ask a maintainer for write access"), "{text}");
        }
    }
    // `new` too, and a conversation turn that changes inputs.
    let text = match run(
        None,
        &new_cmd("dev", None),
        &actor("mallory", Permission::Read),
        &policy(),
        &f,
    ) {
        Err(d) => d.to_string(),
        Ok(_) => panic!("a reader opened a request"),
    };
    assert!(
        text.contains("opening a request needs write access"),
        "{text}"
    );
    let r = request("dev", RequestStatus::Collecting);
    let turn = Input::Turn {
        at: at(5),
        extraction: Extraction::empty(ExtractorKind::Rules),
    };
    let text = denied(
        &r,
        &turn,
        &actor("mallory", Permission::Read),
        &policy(),
        &f,
    );
    assert!(
        text.contains("changing the inputs needs write access"),
        "{text}"
    );
}

#[test]
fn read_only_commands_need_no_permission() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let r = request("prod", RequestStatus::Planned);
    for c in [
        Command::Help,
        Command::Show,
        Command::Status {
            filters: Default::default(),
        },
    ] {
        let d = run(
            Some(&r),
            &cmd(c),
            &actor("guest", Permission::None),
            &policy(),
            &f,
        )
        .unwrap();
        assert_eq!(kinds(&d), ["comment"]);
        assert_eq!(d.request.as_ref(), Some(&r), "nothing changes");
    }
}

// ---- prod allow-lists ---------------------------------------------------------------------------

/// actor × env × command → allowed, or the denial's words.
#[test]
fn prod_allow_lists_guard_approve_merge_apply_cleanup_and_destroy() {
    let registry = Registry::embedded();
    let cases: &[(&str, &str, Command, RequestStatus, Option<&str>)] = &[
        // (actor, env, command, status, expected denial or None = allowed)
        (
            "dave",
            "dev",
            Command::Approve,
            RequestStatus::Planned,
            None,
        ),
        (
            "dave",
            "prod",
            Command::Approve,
            RequestStatus::Planned,
            Some(
                "Only members of the prod allow-list can approve in `prod`. Ask one of @alice, @bob.",
            ),
        ),
        (
            "bob",
            "prod",
            Command::Approve,
            RequestStatus::Planned,
            None,
        ),
        (
            "dave",
            "production",
            Command::Approve,
            RequestStatus::Planned,
            Some("can approve in `production`"),
        ),
        ("dave", "dev", Command::Merge, RequestStatus::Approved, None),
        (
            "dave",
            "prod",
            Command::Merge,
            RequestStatus::Approved,
            Some("Only members of the prod allow-list can merge in `prod`."),
        ),
        (
            "alice",
            "prod",
            Command::Merge,
            RequestStatus::Approved,
            None,
        ),
        ("dave", "dev", Command::Apply, RequestStatus::Merged, None),
        (
            "dave",
            "prod",
            Command::Apply,
            RequestStatus::Merged,
            Some(
                "Only members of the prod allow-list can apply in `prod`. Ask one of @alice, @bob.",
            ),
        ),
        ("BOB", "prod", Command::Apply, RequestStatus::Merged, None),
        (
            "dave",
            "prod",
            Command::Cleanup,
            RequestStatus::Destroyed,
            Some("can clean up in `prod`"),
        ),
        (
            "bob",
            "prod",
            Command::Cleanup,
            RequestStatus::Destroyed,
            None,
        ),
        (
            "dave",
            "dev",
            Command::Destroy,
            RequestStatus::Applied,
            None,
        ),
        (
            "bob",
            "prod",
            Command::Destroy,
            RequestStatus::Applied,
            Some("Only members of the prod-destroy allow-list can destroy in `prod`. Ask @alice."),
        ),
        (
            "alice",
            "prod",
            Command::Destroy,
            RequestStatus::Applied,
            None,
        ),
    ];
    for (login, env, command, status, expected) in cases {
        let mut r = if *status == RequestStatus::Merged
            || *status == RequestStatus::Applied
            || *status == RequestStatus::Destroyed
        {
            merged(env, *status)
        } else {
            request(env, *status)
        };
        if matches!(command, Command::Merge | Command::Apply) {
            r.approvals.push(Approval {
                plan: None,
                login: "alice".into(),
                at: now(),
                head_sha: "head1".into(),
            });
        }
        let f = if r.pull_request.as_ref().is_some_and(|p| p.merged) {
            merged_facts(registry)
        } else {
            facts(registry)
        };
        let result = decide(
            Some(&r),
            &cmd(command.clone()),
            &writer(login),
            &policy(),
            &f,
        );
        match (expected, result) {
            (None, Ok(_)) => {}
            (None, Err(d)) => panic!("{login} {env} {}: denied: {d}", command.name()),
            (Some(words), Ok(_)) => panic!(
                "{login} {env} {}: allowed, expected {words}",
                command.name()
            ),
            (Some(words), Err(d)) => assert!(
                d.to_string().contains(words),
                "{login} {env} {}: {d}",
                command.name()
            ),
        }
    }
}

#[test]
fn an_empty_prod_allow_list_denies_everyone_and_says_so() {
    let registry = Registry::embedded();
    let f = merged_facts(registry);
    let mut p = policy();
    p.prod_allowed_users.clear();
    let r = merged("prod", RequestStatus::Merged);
    let text = denied(&r, &cmd(Command::Apply), &writer("alice"), &p, &f);
    assert!(
        text.contains("The list is empty (TFPILOT_PROD_ALLOWED_USERS"),
        "{text}"
    );
    assert!(text.contains("nobody can"), "{text}");
}

#[test]
fn approvers_when_set_are_needed_in_every_environment() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut p = policy();
    p.approvers = vec!["erin".into()];
    p.approvers_required = true;
    let r = request("dev", RequestStatus::Planned);
    let text = denied(&r, &cmd(Command::Approve), &writer("dave"), &p, &f);
    assert!(
        text.contains("Only approvers can approve requests here. Ask @erin."),
        "{text}"
    );
    let d = run(Some(&r), &cmd(Command::Approve), &writer("erin"), &p, &f).unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Approved);
}

#[test]
fn the_requester_cannot_approve_their_own_prod_request() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut p = policy();
    p.prod_allowed_users.push("carol".into());
    let r = request("prod", RequestStatus::Planned);
    let text = denied(&r, &cmd(Command::Approve), &writer("carol"), &p, &f);
    assert!(
        text.contains(
            "You opened this request, and a `prod` request needs approval from someone else."
        ),
        "{text}"
    );
    assert!(text.contains("Ask one of @alice, @bob."), "{text}");
    // In dev, the requester may approve.
    let r = request("dev", RequestStatus::Planned);
    assert!(run(Some(&r), &cmd(Command::Approve), &writer("carol"), &p, &f).is_ok());
}

/// Four eyes in prod: whoever wrote the inputs (not only the requester) cannot approve them —
/// else anyone on the allow-list could `set` their own values on someone's request and approve
/// that revision themselves.
#[test]
fn whoever_changed_the_inputs_cannot_approve_a_prod_request() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let mut r = request("prod", RequestStatus::Planned);
    r.record(now(), "Alice", "revised", Some("revision 2".into()));
    let text = denied(&r, &cmd(Command::Approve), &writer("alice"), &policy(), &f);
    assert!(
        text.contains(
            "You changed the inputs of this request, and a `prod` request needs approval from someone who did not write it."
        ),
        "{text}"
    );
    assert!(text.contains("Ask @bob."), "{text}");
    let d = run(
        Some(&r),
        &cmd(Command::Approve),
        &writer("bob"),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Approved);
    // A conversation turn before the submit counts too.
    let mut r = request("prod", RequestStatus::Planned);
    r.record(now(), "bob", "inputs_changed", None);
    let text = denied(&r, &cmd(Command::Approve), &writer("bob"), &policy(), &f);
    assert!(text.contains("You changed the inputs"), "{text}");
    assert!(text.contains("Ask @alice."), "{text}");
}

/// GitHub's merge button needs only write access: a prod change merged without a TfPilot
/// approval (or approved for another commit) is not applied until someone on the allow-list
/// who did not write it approves the merged change.
#[test]
fn a_prod_change_merged_without_an_approval_is_not_applied() {
    let registry = Registry::embedded();
    let f = merged_facts(registry);
    let mut p = policy();
    p.prod_allowed_users.push("carol".into());
    let r = merged("prod", RequestStatus::Merged);
    for login in ["bob", "carol"] {
        let text = denied(&r, &cmd(Command::Apply), &writer(login), &p, &f);
        assert!(
            text.contains("was merged without a TfPilot approval of the merged commit"),
            "{text}"
        );
        assert!(
            text.contains("Ask one of @alice, @bob to `/tfpilot approve` it, then apply."),
            "{text}"
        );
    }
    // An approval of another commit does not count.
    let mut stale = r.clone();
    stale.approvals.push(Approval {
        plan: None,
        login: "alice".into(),
        at: now(),
        head_sha: "old".into(),
    });
    let text = denied(&stale, &cmd(Command::Apply), &writer("bob"), &p, &f);
    assert!(text.contains("without a TfPilot approval"), "{text}");
    // The requester cannot approve the merged change either…
    let text = denied(&r, &cmd(Command::Approve), &writer("carol"), &p, &f);
    assert!(text.contains("You opened this request"), "{text}");
    // …someone else on the list can, and then it is applied.
    let d = run(Some(&r), &cmd(Command::Approve), &writer("alice"), &p, &f).unwrap();
    assert_eq!(kinds(&d), ["comment"]);
    let approved = d.request.unwrap();
    assert_eq!(approved.status, RequestStatus::Merged);
    assert_eq!(approved.approvals.len(), 1);
    assert_eq!(approved.approvals[0].head_sha, "head1");
    let text = comment_text(&d.effects, 0);
    assert!(text.contains("Approved for `prod` by @alice"), "{text}");
    assert!(text.contains("Next: `/tfpilot apply`"), "{text}");
    let d = run(
        Some(&approved),
        &cmd(Command::Apply),
        &writer("carol"),
        &p,
        &f,
    )
    .unwrap();
    assert_eq!(d.request.unwrap().status, RequestStatus::Applying);
    // With approvers configured, the same holds in every environment.
    let mut p = policy();
    p.approvers = vec!["erin".into()];
    p.approvers_required = true;
    let r = merged("dev", RequestStatus::Merged);
    let text = denied(&r, &cmd(Command::Apply), &writer("dave"), &p, &f);
    assert!(
        text.contains("Ask @erin to `/tfpilot approve` it"),
        "{text}"
    );
    let d = run(Some(&r), &cmd(Command::Approve), &writer("erin"), &p, &f).unwrap();
    let approved = d.request.unwrap();
    assert!(
        run(
            Some(&approved),
            &cmd(Command::Apply),
            &writer("dave"),
            &p,
            &f
        )
        .is_ok()
    );
    // Without approvers, a dev change merged with the button is applied as it is.
    assert!(
        run(
            Some(&r),
            &cmd(Command::Apply),
            &writer("dave"),
            &policy(),
            &f
        )
        .is_ok()
    );
}

#[test]
fn commands_without_a_request_say_how_to_open_one() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let err = run(None, &cmd(Command::Apply), &writer("carol"), &policy(), &f).unwrap_err();
    assert!(
        err.to_string()
            .contains("There is no TfPilot request on this issue"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("`/tfpilot new <module> env=<env>`"),
        "{err}"
    );
}

#[test]
fn every_denial_has_a_reason_and_a_remedy() {
    // Every status × every command: allowed, or denied with two non-empty sentences.
    let registry = Registry::embedded();
    let f = merged_facts(registry);
    let commands = [
        Command::Submit,
        Command::Plan,
        Command::Approve,
        Command::Merge,
        Command::Apply,
        Command::Destroy,
        Command::Cleanup,
        Command::Cancel,
        Command::Show,
    ];
    for status in RequestStatus::ALL {
        for c in &commands {
            let r = merged("dev", status);
            if let Err(d) = decide(Some(&r), &cmd(c.clone()), &writer("alice"), &policy(), &f) {
                assert!(
                    !d.reason.trim().is_empty() && !d.remedy.trim().is_empty(),
                    "{status} {}: {d:?}",
                    c.name()
                );
                assert!(
                    d.reason.ends_with(['.', ')']),
                    "{status} {}: {}",
                    c.name(),
                    d.reason
                );
            }
        }
    }
}

/// Four-eyes counts only real changes: a plain comment while inputs are collected ("thanks")
/// or a `set` to the value already there changes nothing, so it does not bar its writer from
/// approving in prod; a turn that changes a value does.
#[test]
fn only_a_real_change_of_the_inputs_bars_its_writer_from_approving() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let ready = request("prod", RequestStatus::Ready);
    let timeline_after = |input: &Input| {
        run(Some(&ready), input, &writer("bob"), &policy(), &f)
            .expect("a writer's turn is decided")
            .request
            .expect("the request")
            .timeline
    };
    let approve_after = |timeline| {
        let mut planned = request("prod", RequestStatus::Planned);
        planned.timeline = timeline;
        run(
            Some(&planned),
            &cmd(Command::Approve),
            &writer("bob"),
            &policy(),
            &f,
        )
    };
    let thanks = Input::Turn {
        at: at(5),
        extraction: Extraction::empty(ExtractorKind::Rules),
    };
    let same = cmd(Command::Set {
        values: BTreeMap::from([("name".into(), "invoices".into())]),
    });
    for (what, input) in [
        ("a plain comment", &thanks),
        ("a set to the same value", &same),
    ] {
        let d = approve_after(timeline_after(input))
            .unwrap_or_else(|d| panic!("{what} barred bob from approving: {d}"));
        assert_eq!(d.request.unwrap().status, RequestStatus::Approved, "{what}");
    }
    let changed = cmd(Command::Set {
        values: BTreeMap::from([("name".into(), "receipts".into())]),
    });
    let text = approve_after(timeline_after(&changed))
        .map(|_| ())
        .expect_err("a real change bars its writer")
        .to_string();
    assert!(text.contains("You changed the inputs"), "{text}");
}
