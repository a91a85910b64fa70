//! What the App reads about itself, for `tfpilot doctor`: `GET /app` (the key signs a JWT GitHub
//! accepts, and the App's slug), its installations, and each installation's repositories.

use http::Method;
use secrecy::SecretString;
use serde::Deserialize;

use super::GitHubApp;
use super::error::{GitHubError, Result};
use super::transport::{Auth, Call};
use crate::ids::{InstallationId, RepoName};

/// The App as GitHub knows it (`GET /app`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    pub id: u64,
    pub slug: String,
    pub name: String,
    /// The App's page (`https://github.com/apps/<slug>`); installing is at `…/installations/new`.
    pub html_url: String,
}

/// GitHub's `integration` object, as far as TfPilot reads it (also the start of the manifest
/// conversion's answer).
#[derive(Deserialize)]
pub(super) struct AppJson {
    id: u64,
    slug: Option<String>,
    name: String,
    html_url: String,
}

impl From<AppJson> for AppInfo {
    fn from(a: AppJson) -> Self {
        AppInfo {
            id: a.id,
            slug: a.slug.unwrap_or_default(),
            name: a.name,
            html_url: a.html_url,
        }
    }
}

/// One installation of the App: the account it is installed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub id: InstallationId,
    /// The user or organization login (`None` for an enterprise installation).
    pub account: Option<String>,
    /// When set, GitHub delivers nothing for this installation and refuses its tokens.
    pub suspended: bool,
}

/// A repository an installation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRepo {
    pub name: RepoName,
    pub default_branch: String,
}

/// GitHub's largest page.
const PER_PAGE: u32 = 100;
/// Pages read at most of one list (10,000 items): a doctor, not an inventory.
const MAX_PAGES: usize = 100;

impl GitHubApp {
    /// `GET /app` with the App's JWT: succeeds only when GitHub accepts the key for this App id.
    pub async fn app_info(&self) -> Result<AppInfo> {
        let what = "read the App (GET /app)";
        let call = Call::new("get_app", what, Method::GET, "/app", Auth::App);
        let a: AppJson = self.transport.send(call).await?.json(what)?;
        Ok(a.into())
    }

    /// Every installation of the App (`GET /app/installations`, all pages).
    pub async fn installations(&self) -> Result<Vec<Installation>> {
        #[derive(Deserialize)]
        struct Account {
            login: Option<String>,
        }
        #[derive(Deserialize)]
        struct Item {
            id: u64,
            account: Option<Account>,
            suspended_at: Option<String>,
        }
        let what = "list the App's installations";
        let mut uri = format!("/app/installations?per_page={PER_PAGE}");
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let call = Call::new("list_installations", what, Method::GET, uri, Auth::App);
            let response = self.transport.send(call).await?;
            let items: Vec<Item> = response.json(what)?;
            out.extend(items.into_iter().map(|i| Installation {
                id: InstallationId(i.id),
                account: i.account.and_then(|a| a.login),
                suspended: i.suspended_at.is_some(),
            }));
            match self.transport.next_page(&response) {
                Some(next) => uri = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// The repositories `installation` covers (`GET /installation/repositories`, all pages),
    /// with a token that may only read metadata.
    pub async fn installation_repositories(
        &self,
        installation: InstallationId,
    ) -> Result<Vec<InstalledRepo>> {
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        #[derive(Deserialize)]
        struct Repo {
            full_name: String,
            default_branch: Option<String>,
        }
        #[derive(Deserialize)]
        struct Page {
            repositories: Vec<Repo>,
        }
        let what = format!("request a metadata token for installation {installation}");
        let call = Call::access_token(
            installation,
            what.clone(),
            serde_json::json!({ "permissions": { "metadata": "read" } }),
        );
        let token: Token = self.transport.send(call).await?.json(&what)?;
        let token = SecretString::from(token.token);

        let what = format!("list the repositories of installation {installation}");
        let mut uri = format!("/installation/repositories?per_page={PER_PAGE}");
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let call = Call::new(
                "list_installation_repos",
                what.clone(),
                Method::GET,
                uri,
                Auth::Bearer(token.clone()),
            );
            let response = self.transport.send(call).await?;
            let page: Page = response.json(&what)?;
            for r in page.repositories {
                let name = r.full_name.parse().map_err(|_| GitHubError::Unexpected {
                    operation: what.clone(),
                    message: format!("{:?} is not a repository name", r.full_name),
                })?;
                out.push(InstalledRepo {
                    name,
                    default_branch: r.default_branch.unwrap_or_else(|| "main".into()),
                });
            }
            match self.transport.next_page(&response) {
                Some(next) => uri = next,
                None => break,
            }
        }
        Ok(out)
    }
}
