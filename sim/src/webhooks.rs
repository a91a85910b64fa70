//! Webhooks: payloads for `issue_comment`, `pull_request` and `workflow_run`, signed with
//! HMAC-SHA256 (`X-Hub-Signature-256`) and delivered one at a time, in the order they happened.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};

use crate::model::{Delivery, Model};
use crate::{PendingGuard, Shared, payloads};

pub(crate) struct Queued {
    index: usize,
    done: oneshot::Sender<()>,
    _pending: PendingGuard,
}

/// `sha256=<hex>` over the exact body bytes, as GitHub sends in `X-Hub-Signature-256`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Records a delivery and queues it; the receiver fires once it has been answered.
pub(crate) fn enqueue(
    shared: &Arc<Shared>,
    model: &mut Model,
    event: &str,
    payload: Value,
) -> oneshot::Receiver<()> {
    let (done, rx) = oneshot::channel();
    let action = payload
        .get("action")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let dropped = model.take_drop(event, action.as_deref());
    model.deliveries.push(Delivery {
        guid: uuid::Uuid::new_v4().to_string(),
        event: event.to_owned(),
        action,
        payload,
        status: None,
        error: dropped.then(|| "lost: dropped by the simulator".to_owned()),
        dropped,
    });
    if dropped {
        return closed();
    }
    let queued = Queued {
        index: model.deliveries.len() - 1,
        done,
        _pending: shared.track(),
    };
    // The receiver lives as long as the simulator; if it is gone there is nobody to deliver to.
    let _ = shared.deliveries.send(queued);
    rx
}

pub(crate) async fn deliver_in_order(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "simulator cannot build its webhook client");
            return;
        }
    };
    while let Some(queued) = rx.recv().await {
        let (target, delivery) = {
            let model = shared.lock();
            (
                model.webhook.clone(),
                model.deliveries.get(queued.index).cloned(),
            )
        };
        if let (Some(target), Some(delivery)) = (target, delivery) {
            let body = serde_json::to_vec(&delivery.payload).unwrap_or_default();
            let result = client
                .post(&target.url)
                .header("content-type", "application/json")
                .header("user-agent", "GitHub-Hookshot/tfpilot-sim")
                .header("x-github-event", &delivery.event)
                .header("x-github-delivery", &delivery.guid)
                .header("x-github-hook-installation-target-type", "integration")
                .header("x-hub-signature-256", signature(&target.secret, &body))
                .body(body)
                .send()
                .await;
            let mut model = shared.lock();
            if let Some(d) = model.deliveries.get_mut(queued.index) {
                match result {
                    Ok(resp) => d.status = Some(resp.status().as_u16()),
                    Err(e) => d.error = Some(e.to_string()),
                }
            }
        }
        let _ = queued.done.send(());
    }
}

pub(crate) fn envelope(model: &Model, repo: &str, sender: &str, action: &str) -> Value {
    let mut v = json!({ "action": action });
    if let Some(r) = model.repos.get(repo) {
        v["repository"] = payloads::repository(model, r);
        if let Some((id, _)) = model.installations.iter().find(|(_, o)| **o == r.owner) {
            v["installation"] = payloads::installation(*id);
        }
    }
    v["sender"] = payloads::user(model, sender);
    v
}

/// `issue_comment.created` for a comment that was just written.
pub(crate) fn comment_created(
    shared: &Arc<Shared>,
    model: &mut Model,
    comment_id: u64,
) -> oneshot::Receiver<()> {
    let Some(c) = model.comments.get(&comment_id).cloned() else {
        return closed();
    };
    let mut v = envelope(model, &c.repo, &c.author, "created");
    if let Some(r) = model.repos.get(&c.repo) {
        v["issue"] = payloads::issue(model, r, c.issue);
    }
    v["comment"] = payloads::comment(model, &c);
    enqueue(shared, model, "issue_comment", v)
}

/// `issues.<action>` (`opened`, `edited` with its `changes`, `closed`, `reopened`).
pub(crate) fn issues_event(
    shared: &Arc<Shared>,
    model: &mut Model,
    repo: &str,
    number: u64,
    action: &str,
    sender: &str,
    changes: Option<Value>,
) -> oneshot::Receiver<()> {
    let mut v = envelope(model, repo, sender, action);
    if let Some(r) = model.repos.get(repo) {
        v["issue"] = payloads::issue(model, r, number);
    }
    if let Some(changes) = changes {
        v["changes"] = changes;
    }
    enqueue(shared, model, "issues", v)
}

/// `pull_request.<action>` (`opened`, `closed`, …).
pub(crate) fn pull_request_event(
    shared: &Arc<Shared>,
    model: &mut Model,
    repo: &str,
    number: u64,
    action: &str,
    sender: &str,
) -> oneshot::Receiver<()> {
    let mut v = envelope(model, repo, sender, action);
    v["number"] = json!(number);
    if let Some(r) = model.repos.get(repo) {
        v["pull_request"] = payloads::pull(model, r, number);
    }
    enqueue(shared, model, "pull_request", v)
}

/// `workflow_run.<action>` (`requested`, `in_progress`, `completed`).
pub(crate) fn workflow_run_event(
    shared: &Arc<Shared>,
    model: &mut Model,
    run_id: u64,
    action: &str,
) -> oneshot::Receiver<()> {
    let Some(run) = model.runs.get(&run_id).cloned() else {
        return closed();
    };
    let mut v = envelope(model, &run.repo, &run.actor, action);
    v["workflow_run"] = payloads::workflow_run(model, &run);
    v["workflow"] = payloads::workflow(model, &run);
    enqueue(shared, model, "workflow_run", v)
}

impl Model {
    /// Whether a webhook of `event`/`action` is to be lost (and counts it against its rule).
    fn take_drop(&mut self, event: &str, action: Option<&str>) -> bool {
        let Some(rule) = self.drops.iter_mut().find(|r| {
            r.remaining > 0
                && r.event == event
                && r.action.as_deref().is_none_or(|a| Some(a) == action)
        }) else {
            return false;
        };
        rule.remaining -= 1;
        true
    }
}

fn closed() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(());
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_githubs_documented_example() {
        // From GitHub's "Validating webhook deliveries" docs.
        assert_eq!(
            signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
