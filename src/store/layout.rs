//! Where each record lives, the same on every backend (keys are relative to the bucket or the
//! data directory).

use crate::ids::{RepoName, RequestId};

/// Live requests: `requests/<id>.json`.
pub const REQUESTS: &str = "requests/";
/// Archived requests: `history/<id>.json`.
pub const HISTORY: &str = "history/";
/// Webhook deliveries waiting for (or finished by) the worker: `inbox/<delivery>.json`.
pub const INBOX: &str = "inbox/";

pub fn request_key(id: RequestId) -> String {
    format!("{REQUESTS}{id}.json")
}

pub fn history_key(id: RequestId) -> String {
    format!("{HISTORY}{id}.json")
}

/// The index object naming the request that owns an issue or pull request thread. GitHub names
/// are case-insensitive (`Acme/Infra` is `acme/infra`), so the key is lowercased: one thread, one key.
pub fn thread_key(repo: &RepoName, number: u64) -> String {
    format!(
        "index/threads/{}/{}/{number}.json",
        repo.owner().to_ascii_lowercase(),
        repo.name().to_ascii_lowercase()
    )
}

/// The create-only record that a comment was decided (see
/// [`RequestStore::record_comment`](super::RequestStore::record_comment)); lowercased like
/// [`thread_key`].
pub fn comment_key(repo: &RepoName, comment_id: u64) -> String {
    format!(
        "index/comments/{}/{}/{comment_id}.json",
        repo.owner().to_ascii_lowercase(),
        repo.name().to_ascii_lowercase()
    )
}

/// The requests dashboard record of a repository; lowercased like [`thread_key`].
pub fn dashboard_key(repo: &RepoName) -> String {
    format!(
        "index/dashboards/{}/{}.json",
        repo.owner().to_ascii_lowercase(),
        repo.name().to_ascii_lowercase()
    )
}

/// The lifecycle event log of a request (in the requests bucket).
pub fn events_log(id: RequestId) -> String {
    format!("events/{id}")
}

/// The chat log of a request (in the chat-log bucket; `chat/` on fs).
pub fn chat_log(id: RequestId) -> String {
    format!("chat/{id}")
}

/// The request id a `requests/` or `history/` key names, if it is one.
pub fn request_id_of(prefix: &str, key: &str) -> Option<RequestId> {
    key.strip_prefix(prefix)?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::objects::check_key;

    #[test]
    fn keys_are_valid_and_reversible() {
        let id = RequestId::new_random();
        let repo: RepoName = "acme/core.terraform_x".parse().unwrap();
        for key in [
            request_key(id),
            history_key(id),
            comment_key(&repo, 1234),
            thread_key(&repo, 42),
            events_log(id),
            chat_log(id),
        ] {
            assert!(check_key(&key).is_ok(), "{key}");
        }
        assert_eq!(request_id_of(REQUESTS, &request_key(id)), Some(id));
        assert_eq!(request_id_of(HISTORY, &history_key(id)), Some(id));
        assert_eq!(request_id_of(REQUESTS, &history_key(id)), None);
        assert_eq!(request_id_of(REQUESTS, "requests/notes.json"), None);
        assert_eq!(
            thread_key(&repo, 42),
            "index/threads/acme/core.terraform_x/42.json"
        );
        let shouting: RepoName = "ACME/Core.Terraform_X".parse().unwrap();
        assert_eq!(thread_key(&shouting, 42), thread_key(&repo, 42));
    }
}
