//! The requests dashboard: one issue per infra repository that TfPilot keeps (like Renovate's
//! Dependency Dashboard), listing the open requests grouped by what they wait for and the last
//! finished ones. Rendered from the stored requests alone, so the same requests always give the
//! same body (an unchanged body is not written again).

use time::OffsetDateTime;

use super::lifecycle::short;
use super::{GITHUB_MAX_COMMENT_CHARS, marker};
use crate::domain::{Request, RequestStatus};
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
fn group_of(r: &Request) -> Option<usize> {
    if r.status == RequestStatus::Applied {
        return r.drift.is_some().then_some(GROUPS.len() - 1);
    }
    GROUPS
        .iter()
        .position(|(_, statuses)| statuses.contains(&r.status))
}

/// The dashboard's body for `requests` (live and archived, of one repository) at `now`. `prefix`
/// is the command prefix (`/tfpilot`).
pub fn render(requests: &[Request], now: OffsetDateTime, prefix: &str) -> String {
    let mut out = format!(
        "{}\n## {TITLE}\n\nEvery TfPilot request of this repository, kept up to date by TfPilot. \
         Edits by hand are put back; `dashboard: false` in `.tfpilot.yml` turns it off. \
         Open a request with `{prefix} new <type>` on a new issue (`{prefix} modules` lists the types).\n",
        marker(MARKER_KEY)
    );
    let mut open: Vec<Vec<&Request>> = vec![Vec::new(); GROUPS.len()];
    for r in requests {
        if let Some(g) = group_of(r) {
            open[g].push(r);
        }
    }
    let finished = last_finished(requests);
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
        table(&mut out, &rows, now, waiting_since, "Waiting");
    }
    if !finished.is_empty() {
        out.push_str(&format!(
            "\n### Last {} finished\n\n",
            finished.len().min(FINISHED_SHOWN)
        ));
        table(&mut out, &finished, now, finished_at, "Finished");
    }
    cut_to_fit(out)
}

/// The last [`FINISHED_SHOWN`] finished requests, newest first.
fn last_finished(requests: &[Request]) -> Vec<&Request> {
    let mut finished: Vec<&Request> = requests.iter().filter(|r| group_of(r).is_none()).collect();
    finished.sort_by_key(|r| std::cmp::Reverse((finished_at(r), r.id)));
    finished.truncate(FINISHED_SHOWN);
    finished
}

/// The archived requests among those the dashboard lists as finished: the ones to read again
/// (by id) for the next render, instead of the whole history.
pub fn finished_archived(requests: &[Request]) -> Vec<RequestId> {
    last_finished(requests)
        .into_iter()
        .filter(|r| r.archived_at.is_some())
        .map(|r| r.id)
        .collect()
}

/// One table of requests; `when` gives the time the last column counts from.
fn table(
    out: &mut String,
    rows: &[&Request],
    now: OffsetDateTime,
    when: impl Fn(&Request) -> OffsetDateTime,
    column: &str,
) {
    out.push_str(&format!(
        "| Request | Module | Environment | Requester | Status | {column} | Links |\n|---|---|---|---|---|---|---|\n"
    ));
    for r in rows.iter().take(ROWS_PER_GROUP) {
        let mut links = vec![format!("#{}", r.issue_number)];
        if let Some(pr) = &r.pull_request {
            links.push(format!("PR #{}", pr.number));
        }
        if let Some(url) = r
            .runs
            .values()
            .filter_map(|run| run.url.as_deref().map(|u| (run.dispatched_at, u)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, u)| u)
        {
            links.push(format!("[last run]({url})"));
        }
        if let Some(drift) = &r.drift {
            links.push(format!("[drift check]({})", drift.url));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | `{}` | {} | {} |\n",
            short(r.id),
            r.module_type,
            r.environment.as_deref().unwrap_or("—"),
            r.requester,
            r.status.as_str(),
            age(when(r), now),
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

/// Since when a request waits where it is: since its drift was found, else its last change (the
/// time of its last timeline entry), else its creation.
fn waiting_since(r: &Request) -> OffsetDateTime {
    if let Some(drift) = &r.drift {
        return drift.found_at;
    }
    r.timeline.last().map_or(r.created_at, |t| t.at)
}

fn finished_at(r: &Request) -> OffsetDateTime {
    r.archived_at.unwrap_or_else(|| waiting_since(r))
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
