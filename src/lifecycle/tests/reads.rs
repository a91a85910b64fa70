//! `reads` asks for every fact a decision looks at: for every command (and a conversation turn)
//! × every status × every role × dev and prod, deciding with the facts `reads` did not ask for
//! left empty (and the permission unread) gives the same outcome as with them filled in.

use super::*;

/// `f` with what `needs` leaves out emptied.
fn only<'a>(f: &Facts<'a>, needs: Needs, settings: bool) -> Facts<'a> {
    let mut f = f.clone();
    if !settings {
        f.settings = None;
    }
    if !needs.pr {
        f.pr = None;
    }
    if !needs.base_head {
        f.base_head = None;
    }
    if !needs.base_block {
        f.base_block = None;
    }
    if !needs.listing {
        f.listing = None;
    }
    f
}

/// Other values of every fact, so a read of an unasked one cannot hide behind the usual values.
fn other_facts<'a>(registry: &'a Registry, r: Option<&Request>) -> Facts<'a> {
    let mut f = full_facts(registry, r);
    f.pr = Some(PrFacts {
        open: true,
        merged: false,
        head_sha: "other".into(),
        merge_sha: None,
        mergeable: Some(false),
    });
    f.base_block = Some(BaseBlock::Different);
    f.base_head = Some("other".into());
    f.listing = Some(Vec::new());
    f
}

#[test]
fn a_decision_reads_only_the_facts_reads_asks_for() {
    let registry = Registry::embedded();
    let mut checked = 0;
    for env in ["dev", "prod"] {
        let turn = Input::Turn {
            at: at(100),
            extraction: Extraction::empty(ExtractorKind::Rules),
        };
        let inputs: Vec<(&str, Input)> = every_command(env)
            .into_iter()
            .map(|(name, c)| (name, cmd(c)))
            .chain([("turn", turn)])
            .collect();
        let requests: Vec<Option<Request>> = std::iter::once(None)
            .chain(
                RequestStatus::ALL
                    .into_iter()
                    .map(|s| Some(representative(env, s))),
            )
            .collect();
        for r in &requests {
            for (name, input) in &inputs {
                let needs = reads(input, r.as_ref());
                for role in roles() {
                    let settings =
                        needs.settings || (needs.settings_in_prod && role.policy.is_prod(env));
                    let mut unread = role.actor.clone();
                    if !needs.permission {
                        unread.permission = Permission::NotRead;
                    }
                    for f in [
                        full_facts(registry, r.as_ref()),
                        other_facts(registry, r.as_ref()),
                    ] {
                        let all = decide(r.as_ref(), input, &role.actor, &role.policy, &f);
                        let asked = decide(
                            r.as_ref(),
                            input,
                            &unread,
                            &role.policy,
                            &only(&f, needs, settings),
                        );
                        assert_eq!(
                            all,
                            asked,
                            "{name} on {:?} by {} in {env}: {needs:?}",
                            r.as_ref().map(|r| r.status),
                            role.name
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * 17 * 17 * 8 * 2);
}

#[test]
fn reads_asks_for_what_the_executor_reads_today() {
    let dev = representative("dev", RequestStatus::Planned);
    let none = Needs::default();
    let needs = |c: Command, r: Option<&Request>| reads(&cmd(c), r);
    assert_eq!(needs(Command::Help, Some(&dev)), none);
    assert_eq!(needs(Command::Show, Some(&dev)), none);
    assert_eq!(
        needs(
            Command::Status {
                filters: Default::default()
            },
            Some(&dev)
        ),
        none
    );
    assert_eq!(
        needs(
            Command::Status {
                filters: Default::default()
            },
            None
        ),
        Needs {
            listing: true,
            ..none
        }
    );
    let write = Needs {
        permission: true,
        ..none
    };
    assert_eq!(
        reads(&new_cmd("dev", None), None),
        Needs {
            settings: true,
            ..write
        }
    );
    for c in [Command::Submit, Command::Plan, Command::Cancel] {
        assert_eq!(needs(c, Some(&dev)), write);
    }
    for c in [Command::Destroy, Command::Cleanup] {
        assert_eq!(
            needs(c, Some(&dev)),
            Needs {
                settings_in_prod: true,
                memberships: true,
                ..write
            }
        );
    }
    // The guarded commands read team memberships (when a list names a team).
    let with_pr = Needs {
        pr: true,
        base_head: true,
        memberships: true,
        ..write
    };
    assert_eq!(
        needs(Command::Merge, Some(&dev)),
        Needs {
            settings_in_prod: true,
            ..with_pr
        }
    );
    assert_eq!(
        needs(Command::Approve, Some(&dev)),
        Needs {
            settings: true,
            ..with_pr
        }
    );
    assert_eq!(
        needs(Command::Apply, Some(&dev)),
        Needs {
            settings: true,
            base_block: true,
            ..with_pr
        }
    );
    let turn = Input::Turn {
        at: at(100),
        extraction: Extraction::empty(ExtractorKind::Rules),
    };
    let ready = representative("dev", RequestStatus::Ready);
    assert_eq!(reads(&turn, Some(&ready)), write);
    assert_eq!(reads(&turn, Some(&dev)), none);
    assert_eq!(reads(&turn, None), none);
}
