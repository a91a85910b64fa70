//! The requests dashboard: one issue per infra repository that TfPilot keeps (like Renovate's
//! Dependency Dashboard), listing the open requests grouped by what they wait for and the last
//! finished ones. Rendered from the rows the dashboard's record keeps ([`DashboardRow`]), so the
//! same rows always give the same body (an unchanged body is not written again).

use time::OffsetDateTime;

use super::lifecycle::short;
use super::{GITHUB_MAX_COMMENT_CHARS, marker};
use crate::domain::{DashboardRow, RequestStatus};
use crate::ids::RequestId;

/// The dashboard issue's title.
pub const TITLE: &str = "TfPilot requests dashboard";

/// The effect key in the body's hidden marker.
pub const MARKER_KEY: &str = "dashboard";

/// How many finished requests the dashboard lists.
pub const FINISHED_SHOWN: usize = 20;

/// Rows shown per group; the rest are counted.
const ROWS_PER_GROUP: usize = 100;

/// The groups of open requests, in the order shown, with the statuses each holds (a drifted
/// applied request is shown under "Drifted", see [`group_of`]).
const GROUPS: [(&str, &[RequestStatus]); 7] = [
    (
        "Waiting for inputs",
        &[RequestStatus::Collecting, RequestStatus::Ready],
    ),
    (
        "Planned, waiting for approval",
        &[
            RequestStatus::PrOpen,
            RequestStatus::Planning,
            RequestStatus::Planned,
        ],
    ),
    (
        "Approved, waiting for merge or apply",
        &[RequestStatus::Approved, RequestStatus::Merged],
    ),
    (
        "Applying or destroying",
        &[RequestStatus::Applying, RequestStatus::Destroying],
    ),
    (
        "Failed",
        &[
            RequestStatus::PlanFailed,
            RequestStatus::ApplyFailed,
            RequestStatus::DestroyFailed,
        ],
    ),
    (
        "Pull request closed (reopen it, or cancel the request)",
        &[RequestStatus::PrClosed],
    ),
    ("Drifted", &[]),
];

/// Where a request is shown: the index of its group in [`GROUPS`], or `None` when it is
/// finished (applied without drift, destroyed, cancelled).
fn group_of(r: &DashboardRow) -> Option<usize> {
    if r.status == RequestStatus::Applied {
        return r.drift_url.is_some().then_some(GROUPS.len() - 1);
    }
    GROUPS
        .iter()
        .position(|(_, statuses)| statuses.contains(&r.status))
}

/// The dashboard's body for `requests` (live and archived, of one repository) at `now`. `prefix`
/// is the command prefix (`/tfpilot`).
pub fn render<'a>(
    requests: impl IntoIterator<Item = &'a DashboardRow>,
    now: OffsetDateTime,
    prefix: &str,
) -> String {
    let requests: Vec<&DashboardRow> = requests.into_iter().collect();
    let mut out = format!(
        "{}\n## {TITLE}\n\nEvery TfPilot request of this repository, kept up to date by TfPilot. \
         Edits by hand are put back; `dashboard: false` in `.tfpilot.yml` turns it off. \
         Open a request with `{prefix} new <type>` on a new issue (`{prefix} modules` lists the types).\n",
        marker(MARKER_KEY)
    );
    let mut open: Vec<Vec<&DashboardRow>> = vec![Vec::new(); GROUPS.len()];
    for r in &requests {
        if let Some(g) = group_of(r) {
            open[g].push(r);
        }
    }
    let finished = last_finished(&requests);
    let open_count: usize = open.iter().map(Vec::len).sum();
    if open_count == 0 {
        out.push_str("\nNo open requests.\n");
    }
    for ((title, _), mut rows) in GROUPS.iter().zip(open) {
        if rows.is_empty() {
            continue;
        }
        // Oldest first: what has waited longest is on top.
        rows.sort_by_key(|r| (r.created_at, r.id));
        out.push_str(&format!("\n### {title} ({})\n\n", rows.len()));
        table(&mut out, &rows, now, "Waiting");
    }
    if !finished.is_empty() {
        out.push_str(&format!(
            "\n### Last {} finished\n\n",
            finished.len().min(FINISHED_SHOWN)
        ));
        table(&mut out, &finished, now, "Finished");
    }
    cut_to_fit(out)
}

/// The last [`FINISHED_SHOWN`] finished requests, newest first.
fn last_finished<'a>(requests: &[&'a DashboardRow]) -> Vec<&'a DashboardRow> {
    let mut finished: Vec<&DashboardRow> = requests
        .iter()
        .copied()
        .filter(|r| group_of(r).is_none())
        .collect();
    finished.sort_by_key(|r| std::cmp::Reverse((r.since, r.id)));
    finished.truncate(FINISHED_SHOWN);
    finished
}

/// The rows worth keeping: every open request and the last [`FINISHED_SHOWN`] finished ones.
pub fn kept(rows: &std::collections::BTreeMap<RequestId, DashboardRow>) -> Vec<RequestId> {
    let all: Vec<&DashboardRow> = rows.values().collect();
    let finished = last_finished(&all);
    all.iter()
        .filter(|r| group_of(r).is_some() || finished.iter().any(|f| f.id == r.id))
        .map(|r| r.id)
        .collect()
}

/// The body a dashboard is closed with when its repository turns it off.
pub fn turned_off() -> String {
    format!(
        "{}\n## {TITLE}\n\nTurned off by `dashboard: false` in `.tfpilot.yml`: TfPilot no longer keeps this \
         issue. Remove the setting and TfPilot opens it again with the next change.\n",
        marker(MARKER_KEY)
    )
}

/// One table of requests; `when` gives the time the last column counts from.
fn table(out: &mut String, rows: &[&DashboardRow], now: OffsetDateTime, column: &str) {
    out.push_str(&format!(
        "| Request | Module | Environment | Requester | Status | {column} | Links |\n|---|---|---|---|---|---|---|\n"
    ));
    for r in rows.iter().take(ROWS_PER_GROUP) {
        let mut links = vec![format!("#{}", r.issue_number)];
        if let Some(pr) = r.pull_request {
            links.push(format!("PR #{pr}"));
        }
        if let Some(url) = &r.last_run_url {
            links.push(format!("[last run]({url})"));
        }
        if let Some(url) = &r.drift_url {
            links.push(format!("[drift check]({url})"));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | `{}` | {} | {} |\n",
            short(r.id),
            r.module_type,
            r.environment.as_deref().unwrap_or("—"),
            r.requester,
            r.status.as_str(),
            age(r.since, now),
            links.join(" · ")
        ));
    }
    if rows.len() > ROWS_PER_GROUP {
        out.push_str(&format!(
            "\n…and {} more (`status` on an issue lists them all).\n",
            rows.len() - ROWS_PER_GROUP
        ));
    }
}

/// A coarse age, so the body changes at most hourly with time alone: `<1 h`, `5 h`, `3 d`.
pub fn age(since: OffsetDateTime, now: OffsetDateTime) -> String {
    let hours = (now - since).whole_hours();
    match hours {
        h if h < 1 => "<1 h".into(),
        h if h < 48 => format!("{h} h"),
        h => format!("{} d", h / 24),
    }
}

/// GitHub refuses issue bodies over 65,536 characters: the end is cut at a line, with a note.
fn cut_to_fit(body: String) -> String {
    const NOTE: &str = "\n…the rest does not fit in an issue.\n";
    if body.chars().count() <= GITHUB_MAX_COMMENT_CHARS {
        return body;
    }
    let budget = GITHUB_MAX_COMMENT_CHARS - NOTE.chars().count();
    let (mut out, mut chars) = (String::new(), 0);
    for line in body.split_inclusive('\n') {
        let n = line.chars().count();
        if chars + n > budget {
            break;
        }
        out.push_str(line);
        chars += n;
    }
    out.push_str(NOTE);
    out
}

#[cfg(test)]
mod tests;
