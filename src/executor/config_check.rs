//! `tfpilot/config`: a pull request that changes `.tfpilot.yml` gets a check run listing every
//! problem of the new file (`settings::review`), and whether each person and team it names
//! exists on GitHub. Nothing is decided: the file takes effect only once merged, and is read
//! again then.

use super::Executor;
use super::facts::Scope;
use crate::comments::check::{self as words, CONFIG_CHECK};
use crate::github::{CheckConclusion, CheckOutput, CheckRunWrite, CheckState};
use crate::settings::{SETTINGS_FILE, review};
use crate::webhook::events::PullRequestEvent;

impl Executor {
    /// Checks the pull request's `.tfpilot.yml` when it differs from its base's. TfPilot's own
    /// pull requests (`request/…`, `cleanup/…` branches) never change it and are not read.
    pub(super) async fn check_settings_change(
        &self,
        scope: &Scope,
        e: &PullRequestEvent,
    ) -> anyhow::Result<()> {
        let pr = &e.pull_request;
        if ["request/", "cleanup/"]
            .iter()
            .any(|p| pr.head.ref_name.starts_with(p))
        {
            return Ok(());
        }
        let new = scope.gh.get_file(&pr.head.sha, SETTINGS_FILE).await?;
        let old = scope.gh.get_file(&pr.base.sha, SETTINGS_FILE).await?;
        let text = |f: &Option<crate::github::FileContent>| f.as_ref().map(|f| f.text.clone());
        if text(&new) == text(&old) {
            return Ok(());
        }
        let mut found = review::review(
            &text(&new).unwrap_or_default(),
            &scope.repo,
            &pr.base.ref_name,
            &self.policy,
        );
        for login in &found.people {
            if !scope.gh.user_exists(login).await? {
                found
                    .problems
                    .push(format!("`{login}` is not a GitHub user."));
            }
        }
        for team in &found.teams {
            if !scope.gh.team_exists(team).await? {
                found.problems.push(format!(
                    "`@{team}` is not a team TfPilot can see (it does not exist, or the App is not installed in its organization)."
                ));
            }
        }
        let t = words::config_checked(&found.problems);
        let write = CheckRunWrite {
            name: CONFIG_CHECK.to_owned(),
            state: CheckState::Completed(if found.problems.is_empty() {
                CheckConclusion::Success
            } else {
                CheckConclusion::Failure
            }),
            details_url: None,
            external_id: format!("config/{}", pr.head.sha),
            output: Some(CheckOutput {
                title: t.title,
                summary: t.summary,
                text: None,
            }),
            actions: None,
        };
        // A redelivery updates the check run it made instead of making a second.
        match scope
            .gh
            .find_check_run(&pr.head.sha, CONFIG_CHECK, &write.external_id)
            .await?
        {
            Some(id) => scope.gh.update_check_run(id, &write).await?,
            None => {
                scope.gh.create_check_run(&pr.head.sha, &write).await?;
            }
        }
        Ok(())
    }
}
