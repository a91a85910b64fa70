//! Answers that are not a decision's effects: a denial, the generic answer once a delivery is
//! given up, and the chat log kept beside a conversation.

use std::collections::BTreeSet;

use serde_json::Value;
use time::OffsetDateTime;

use super::Executor;
use super::facts::Scope;
use crate::comments::lifecycle as say;
use crate::domain::{ChatRole, ChatTurn, EffectKey, EffectResult};
use crate::ids::{InstallationId, RepoName, RequestId};
use crate::inbox::Delivery;
use crate::lifecycle::{self, CommentAt, Denial};
use crate::store::CommentRecord;
use crate::webhook::Event;
use crate::webhook::events::IssueCommentAction;

impl Executor {
    pub(super) async fn answer_denial(
        &self,
        scope: &Scope,
        at: CommentAt,
        denial: &Denial,
    ) -> anyhow::Result<()> {
        let key = lifecycle::reply_key(at);
        self.answer_once(scope, at, &key, &say::denial(&key, denial))
            .await
    }

    /// Answers a comment whose decision stores nothing (a denial, a parse error). The answer is
    /// recorded with the comment first (create-only, see [`RequestStore::record_comment`](crate::store::RequestStore::record_comment)): a
    /// comment seen for the first time cannot have been answered, so its answer is posted without
    /// paging through the thread; a comment seen before (a redelivery, a replay) gets its first
    /// answer, posted only if it is not on the thread already.
    pub(super) async fn answer_once(
        &self,
        scope: &Scope,
        at: CommentAt,
        key: &EffectKey,
        body: &str,
    ) -> anyhow::Result<()> {
        let record = CommentRecord {
            request: None,
            answer: Some(body.to_owned()),
            at: OffsetDateTime::now_utc(),
        };
        match self
            .store
            .record_comment(&scope.repo, at.comment_id, &record)
            .await?
        {
            None => {
                scope.gh.comment(at.thread, body).await?;
            }
            Some(first) => {
                let body = first.answer.unwrap_or_else(|| body.to_owned());
                self.post_once(scope, at.thread, key, &body).await?;
            }
        }
        Ok(())
    }

    /// The generic answer once a delivery is given up.
    pub(super) async fn answer_given_up(
        &self,
        delivery: &Delivery,
        event: &Event,
    ) -> anyhow::Result<()> {
        if let Event::IssueComment(e) = event
            && (e.comment.user.as_ref().is_some_and(|u| self.is_own(u))
                || e.action != IssueCommentAction::Created)
        {
            return Ok(());
        }
        let Some((repo, installation, thread)) = self.given_up_thread(event).await else {
            return Ok(());
        };
        let (Some(scope), Some(thread)) = (self.scope(repo, installation, None), thread) else {
            return Ok(());
        };
        let key = EffectKey::given_up(&delivery.id);
        self.post_once(
            &scope,
            thread,
            &key,
            &say::internal_error(&key, delivery.id.as_str()),
        )
        .await?;
        Ok(())
    }

    /// The repository, installation and thread (when one is known) an event is about.
    async fn given_up_thread<'e>(
        &self,
        event: &'e Event,
    ) -> Option<(&'e RepoName, Option<InstallationId>, Option<u64>)> {
        Some(match event {
            Event::IssueComment(e) => (
                &e.repository.full_name,
                e.installation.as_ref().map(|i| i.id),
                Some(e.issue.number),
            ),
            Event::PullRequest(e) => (
                &e.repository.full_name,
                e.installation.as_ref().map(|i| i.id),
                self.store
                    .find_by_thread(&e.repository.full_name, e.number)
                    .await
                    .ok()
                    .flatten()
                    .map(|r| r.issue_number),
            ),
            Event::WorkflowRun(e) => {
                let id = e
                    .workflow_run
                    .display_title
                    .as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .find_map(|w| w.parse::<RequestId>().ok());
                let thread = match id {
                    Some(id) => self
                        .store
                        .get(id)
                        .await
                        .ok()
                        .flatten()
                        .filter(|r| super::same_repo(&r.repo, &e.repository.full_name))
                        .map(|r| r.issue_number),
                    None => None,
                };
                (
                    &e.repository.full_name,
                    e.installation.as_ref().map(|i| i.id),
                    thread,
                )
            }
            Event::CheckRun(e) => {
                let request = match e
                    .check_run
                    .external_id
                    .as_deref()
                    .and_then(super::checks::request_of_external_id)
                {
                    Some(id) => self.store.get(id).await.ok().flatten(),
                    None => None,
                };
                let thread = request
                    .filter(|r| super::same_repo(&r.repo, &e.repository.full_name))
                    .map(|r| r.pull_request.as_ref().map_or(r.issue_number, |p| p.number));
                (
                    &e.repository.full_name,
                    e.installation.as_ref().map(|i| i.id),
                    thread,
                )
            }
            _ => return None,
        })
    }

    /// Appends a person's turn and TfPilot's answer to the chat log (best effort: the
    /// conversation state itself is in the request). Idempotent: each turn carries the id of
    /// its GitHub comment (the person's comment, TfPilot's answer), and a turn already in the log
    /// with that role and comment id is not appended again (a redelivery, a retry after a lost
    /// answer).
    pub(super) async fn chat(
        &self,
        id: RequestId,
        login: &str,
        text: &str,
        extracted: Option<Value>,
        at: CommentAt,
    ) {
        let now = OffsetDateTime::now_utc();
        let logged: BTreeSet<(bool, u64)> = match self.store.chat(id).await {
            Ok(turns) => turns
                .iter()
                .filter_map(|t| Some((t.role == ChatRole::User, t.comment_id?)))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the chat log; not appending to it");
                return;
            }
        };
        if !logged.contains(&(true, at.comment_id)) {
            let user = ChatTurn {
                at: now,
                author: login.to_owned(),
                role: ChatRole::User,
                text: text.to_owned(),
                extracted,
                comment_id: Some(at.comment_id),
            };
            if let Err(e) = self.store.append_chat(id, &user).await {
                tracing::warn!(error = %e, "cannot append to the chat log");
            }
        }
        let reply = match self.store.get(id).await {
            Ok(Some(r)) => {
                r.effects
                    .get(&lifecycle::reply_key(at))
                    .and_then(|rec| match &rec.result {
                        EffectResult::Comment {
                            id,
                            body: Some(body),
                            ..
                        } => Some((*id, body.clone())),
                        _ => None,
                    })
            }
            _ => None,
        };
        if let Some((reply_id, reply)) = reply
            && !logged.contains(&(false, reply_id))
        {
            let turn = ChatTurn {
                at: now,
                author: self.bot_login.clone(),
                role: ChatRole::Assistant,
                text: reply,
                extracted: None,
                comment_id: Some(reply_id),
            };
            if let Err(e) = self.store.append_chat(id, &turn).await {
                tracing::warn!(error = %e, "cannot append to the chat log");
            }
        }
    }
}
