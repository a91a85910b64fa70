use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::domain::{DashboardRow, DriftRecord, PullRequestRef, Request};
use crate::ids::RequestId;

const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

fn render(requests: &[Request], now: OffsetDateTime, prefix: &str) -> String {
    let rows: Vec<DashboardRow> = requests.iter().map(DashboardRow::of).collect();
    super::render(&rows, now, prefix)
}

fn id(n: u128) -> RequestId {
    format!("{n:08x}-7a0e-4a5e-9a4e-1f2f3a4b5c6d")
        .parse()
        .unwrap()
}

fn request(n: u128, status: RequestStatus, env: &str, hours_ago: i64) -> Request {
    let mut r = Request::new(
        id(n),
        "acme/infra".parse().unwrap(),
        10 + n as u64,
        "alice",
        "s3-bucket",
        NOW - Duration::hours(hours_ago),
    );
    r.environment = Some(env.into());
    r.status = status;
    r
}

#[test]
fn open_requests_are_grouped_by_what_they_wait_for_and_finished_ones_follow() {
    let mut planned = request(2, RequestStatus::Planned, "prod", 30);
    planned.pull_request = Some(PullRequestRef {
        number: 41,
        url: "https://github.com/acme/infra/pull/41".into(),
        head_sha: "abc".into(),
        merged: false,
        merge_commit_sha: None,
    });
    let mut drifted = request(4, RequestStatus::Applied, "dev", 24 * 9);
    drifted.drift = Some(DriftRecord {
        run_id: 7,
        url: "https://github.com/acme/infra/actions/runs/7".into(),
        found_at: NOW,
        changes: vec!["module.x.terraform_data.bucket (update)".into()],
    });
    let mut cancelled = request(5, RequestStatus::Cancelled, "dev", 3);
    cancelled.archived_at = Some(NOW - Duration::hours(2));
    let requests = [
        request(1, RequestStatus::Collecting, "dev", 0),
        planned,
        request(3, RequestStatus::ApplyFailed, "prod", 5),
        drifted,
        cancelled,
        request(6, RequestStatus::Applied, "dev", 50),
    ];
    let body = render(&requests, NOW, "/tfpilot");
    insta::assert_snapshot!(body);
    assert!(body.starts_with("<!-- tfpilot:dashboard -->\n"));
}

#[test]
fn only_the_last_twenty_finished_requests_are_listed_newest_first() {
    let requests: Vec<Request> = (1..=25)
        .map(|n| request(n, RequestStatus::Applied, "dev", 100 - n as i64))
        .collect();
    let body = render(&requests, NOW, "/tfpilot");
    assert!(body.contains("No open requests."));
    assert!(body.contains("### Last 20 finished"));
    let rows: Vec<&str> = body.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), 20);
    assert!(rows[0].contains(&short(id(25))), "{}", rows[0]);
    assert!(!body.contains(&short(id(5))));
}

#[test]
fn the_same_requests_give_the_same_body_and_ages_change_at_most_hourly() {
    let requests = [request(1, RequestStatus::Planned, "dev", 3)];
    let a = render(&requests, NOW, "/tfpilot");
    assert_eq!(
        a,
        render(&requests, NOW + Duration::minutes(59), "/tfpilot")
    );
    assert_ne!(
        a,
        render(&requests, NOW + Duration::minutes(61), "/tfpilot")
    );
    assert_eq!(age(NOW, NOW + Duration::minutes(30)), "<1 h");
    assert_eq!(age(NOW, NOW + Duration::hours(47)), "47 h");
    assert_eq!(age(NOW, NOW + Duration::hours(72)), "3 d");
}

#[test]
fn a_huge_dashboard_is_cut_to_what_github_accepts() {
    let requests: Vec<Request> = (1..=2000)
        .map(|n| request(n, RequestStatus::Planned, "dev", 1))
        .chain((2001..=4000).map(|n| request(n, RequestStatus::PlanFailed, "dev", 1)))
        .chain((4001..=6000).map(|n| request(n, RequestStatus::Collecting, "dev", 1)))
        .chain((6001..=8000).map(|n| request(n, RequestStatus::Approved, "dev", 1)))
        .chain((8001..=10000).map(|n| request(n, RequestStatus::Applying, "dev", 1)))
        .collect();
    let body = render(&requests, NOW, "/tfpilot");
    assert!(body.chars().count() <= GITHUB_MAX_COMMENT_CHARS);
    assert!(body.contains("…and 1900 more"));
}

#[test]
fn the_record_keeps_the_open_rows_and_the_last_twenty_finished() {
    let rows: std::collections::BTreeMap<RequestId, DashboardRow> = (1..=30)
        .map(|n| {
            let status = if n <= 5 {
                RequestStatus::Planned
            } else {
                RequestStatus::Cancelled
            };
            let row = DashboardRow::of(&request(n, status, "dev", 100 - n as i64));
            (row.id, row)
        })
        .collect();
    let kept = kept(&rows);
    assert_eq!(kept.len(), 25, "5 open and 20 finished");
    for n in 1..=5 {
        assert!(kept.contains(&id(n)), "open {n} kept");
    }
    for n in 6..=10 {
        assert!(!kept.contains(&id(n)), "the oldest finished {n} dropped");
    }
}
