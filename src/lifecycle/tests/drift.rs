//! Drift check findings: recorded and reported once, reported gone once, only for applied
//! requests.

use super::*;
use crate::domain::NoticeEvent;
use crate::lifecycle::DriftUpdate;

fn update(run_id: u64, changes: &[&str]) -> Input {
    Input::Drift(DriftUpdate {
        run_id,
        url: format!("https://github.com/acme/core-terraform/actions/runs/{run_id}"),
        changes: changes.iter().map(|c| (*c).to_owned()).collect(),
        excerpt: "  # module.tfpilot_x.terraform_data.bucket will be updated in-place\n  ~ input = \"a\" -> \"b\"\n".into(),
    })
}

fn decide_drift(r: &Request, input: &Input) -> Decision {
    let registry = Registry::embedded();
    let f = facts(registry);
    run(
        Some(r),
        input,
        &actor("github-actions", Permission::None),
        &policy(),
        &f,
    )
    .unwrap()
}

#[test]
fn drift_is_recorded_reported_once_and_reported_gone_once() {
    let r = request("dev", RequestStatus::Applied);
    let change = "module.tfpilot_x.terraform_data.bucket (update)";
    let d = decide_drift(&r, &update(90, &[change]));
    assert_eq!(kinds(&d), ["comment", "notify"]);
    let text = comment_text(&d.effects, 0);
    assert!(text.starts_with("<!-- tfpilot:drift:90 -->"), "{text}");
    assert!(text.contains(&format!("- `{change}`")), "{text}");
    assert!(text.contains("```diff"), "{text}");
    assert!(
        text.contains("**Last change through TfPilot:** revision"),
        "{text}"
    );
    assert_eq!(notices(&d)[0].event, NoticeEvent::DriftFound);
    let drifted = d.request.unwrap();
    assert_eq!(
        drifted.status,
        RequestStatus::Applied,
        "a flag, not a state"
    );
    assert_eq!(drifted.drift.as_ref().unwrap().changes, [change]);

    // The same drift the next night: nothing new to say.
    let d = decide_drift(&drifted, &update(91, &[change]));
    assert!(d.effects.is_empty(), "{:?}", kinds(&d));
    assert_eq!(d.request.as_ref().unwrap().drift, drifted.drift);

    // Gone: said once, then silence.
    let d = decide_drift(&drifted, &update(92, &[]));
    assert_eq!(kinds(&d), ["comment"]);
    assert!(comment_text(&d.effects, 0).contains("no drift"));
    let clean = d.request.unwrap();
    assert_eq!(clean.drift, None);
    let d = decide_drift(&clean, &update(93, &[]));
    assert!(d.effects.is_empty());
}

#[test]
fn only_applied_requests_drift() {
    for status in [
        RequestStatus::Planned,
        RequestStatus::Merged,
        RequestStatus::Destroyed,
    ] {
        let r = request("dev", status);
        let d = decide_drift(&r, &update(90, &["module.tfpilot_x.a (update)"]));
        assert!(d.effects.is_empty(), "{status}");
        assert_eq!(d.request.unwrap().drift, None, "{status}");
    }
}

#[test]
fn status_shows_the_drift() {
    let r = request("dev", RequestStatus::Applied);
    let drifted = decide_drift(&r, &update(90, &["module.tfpilot_x.a (update)"]))
        .request
        .unwrap();
    let text = crate::comments::lifecycle::status(&"reply:1".parse().unwrap(), &drifted, PREFIX);
    assert!(
        text.contains("| drift | ⚠️ 1 resource(s) changed outside TfPilot ([drift check](https://github.com/acme/core-terraform/actions/runs/90)) |"),
        "{text}"
    );
}

#[test]
fn drift_starts_the_check_of_known_environments_for_writers() {
    let registry = Registry::embedded();
    let f = facts(registry);
    let d = run(
        None,
        &cmd(Command::Drift { environment: None }),
        &writer("carol"),
        &policy(),
        &f,
    )
    .unwrap();
    assert!(d.request.is_none(), "nothing stored");
    assert_eq!(kinds(&d), ["drift_check", "comment"]);
    let Effect::DriftCheck {
        environments,
        dispatch_id,
    } = &d.effects[0].effect
    else {
        panic!("a drift check")
    };
    assert_eq!(environments, &["dev", "prod", "production"]);
    assert_eq!(dispatch_id, "drift-i12-c100");
    assert!(comment_text(&d.effects, 1).contains("Drift check started for `dev`, `prod`"));

    let only = run(
        None,
        &cmd(Command::Drift {
            environment: Some("prod".into()),
        }),
        &writer("carol"),
        &policy(),
        &f,
    )
    .unwrap();
    assert!(
        matches!(&only.effects[0].effect, Effect::DriftCheck { environments, .. } if environments == &["prod"])
    );

    let unknown = run(
        None,
        &cmd(Command::Drift {
            environment: Some("qa".into()),
        }),
        &writer("carol"),
        &policy(),
        &f,
    )
    .unwrap_err();
    assert!(
        unknown.reason.contains("`qa` is not an environment"),
        "{unknown}"
    );
    let reader = run(
        None,
        &cmd(Command::Drift { environment: None }),
        &actor("rita", Permission::Read),
        &policy(),
        &f,
    )
    .unwrap_err();
    assert!(reader.reason.contains("read access"), "{reader}");
}

#[test]
fn a_drifted_request_is_planned_and_applied_again_an_undrifted_one_is_not() {
    let registry = Registry::embedded();
    let f = merged_facts(registry);
    let applied = merged("dev", RequestStatus::Applied);
    let denied_plan = denied(
        &applied,
        &cmd(Command::Plan),
        &writer("carol"),
        &policy(),
        &f,
    );
    assert!(denied_plan.contains("`applied`"), "{denied_plan}");
    let denied_apply = denied(
        &applied,
        &cmd(Command::Apply),
        &writer("carol"),
        &policy(),
        &f,
    );
    assert!(denied_apply.contains("already applied"), "{denied_apply}");

    let drifted = decide_drift(&applied, &update(90, &["module.tfpilot_x.a (update)"]))
        .request
        .unwrap();
    let d = run(
        Some(&drifted),
        &cmd(Command::Plan),
        &writer("carol"),
        &policy(),
        &f,
    )
    .unwrap();
    assert_eq!(kinds(&d), ["dispatch", "comment"]);
    assert_eq!(d.request.as_ref().unwrap().status, RequestStatus::Applied);
}
