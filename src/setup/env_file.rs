//! The `.env` file `tfpilot setup` writes: the App's credentials as the environment variables
//! `serve` reads (`config::read_env_file` reads it back). Created with mode 0600, never over an
//! existing file unless asked.

use std::io::Write as _;
use std::path::Path;

use secrecy::ExposeSecret;

use crate::config::{DEFAULT_GITHUB_API_URL, DEFAULT_GITHUB_URL};
use crate::github::manifest::NewApp;

/// Why the env file was not written.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("{0} exists already (run `tfpilot setup --force` to replace it)")]
    Exists(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A value in double quotes, as dotenv files take it: newlines as `\n`, and `\`, `"` and `$`
/// escaped (so a value is never expanded).
fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\\' | '"' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The env file's text for a new App (the GitHub URLs only when they are not GitHub.com's).
pub fn render_env_file(app: &NewApp, api_url: &str, github_url: &str) -> String {
    let mut text = format!(
        "# Written by `tfpilot setup` for the GitHub App `{slug}` ({url}).\n\
         # Keep it secret: it holds the App's private key and webhook secret.\n\
         TFPILOT_GITHUB_APP_ID={id}\n\
         TFPILOT_GITHUB_APP_SLUG={slug}\n\
         TFPILOT_GITHUB_PRIVATE_KEY={pem}\n",
        slug = app.slug,
        url = app.html_url,
        id = app.id,
        pem = quoted(app.pem.expose_secret()),
    );
    if let Some(secret) = &app.webhook_secret {
        text.push_str(&format!(
            "TFPILOT_WEBHOOK_SECRET={}\n",
            quoted(secret.expose_secret())
        ));
    }
    if api_url.trim_end_matches('/') != DEFAULT_GITHUB_API_URL {
        text.push_str(&format!("TFPILOT_GITHUB_API_URL={}\n", quoted(api_url)));
    }
    if github_url.trim_end_matches('/') != DEFAULT_GITHUB_URL {
        text.push_str(&format!("TFPILOT_GITHUB_URL={}\n", quoted(github_url)));
    }
    text
}

/// Writes `text` to `path` readable by its owner only (0600). Without `force` an existing file
/// is an error; with it the file is replaced whole (a new file renamed over the old one).
pub fn write_env_file(path: &Path, text: &str, force: bool) -> Result<(), EnvFileError> {
    let io = |source| EnvFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let target = if force {
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        path.with_file_name(name)
    } else {
        path.to_owned()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = match options.open(&target) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(EnvFileError::Exists(path.display().to_string()));
        }
        Err(e) => return Err(io(e)),
    };
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    if force {
        std::fs::rename(&target, path).map_err(|e| {
            let _ = std::fs::remove_file(&target);
            io(e)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn app() -> NewApp {
        NewApp {
            id: 77,
            slug: "tfpilot-acme".into(),
            name: "TfPilot acme".into(),
            html_url: "https://github.com/apps/tfpilot-acme".into(),
            owner: Some("acme".into()),
            pem: SecretString::from(
                "-----BEGIN RSA PRIVATE KEY-----\nAB+/c=\n-----END RSA PRIVATE KEY-----\n",
            ),
            webhook_secret: Some(SecretString::from("s3cr\"et$HOME\\x")),
            client_id: "Iv1.x".into(),
        }
    }

    #[test]
    fn the_file_reads_back_as_the_same_values() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join(".env");
        let text = render_env_file(&app(), "http://127.0.0.1:9/api/v3", "http://127.0.0.1:9");
        write_env_file(&path, &text, false).expect("written");
        let vars = crate::config::read_env_file(&path).expect("reads back");
        assert_eq!(vars["TFPILOT_GITHUB_APP_ID"], "77");
        assert_eq!(vars["TFPILOT_GITHUB_APP_SLUG"], "tfpilot-acme");
        assert_eq!(
            vars["TFPILOT_GITHUB_PRIVATE_KEY"],
            "-----BEGIN RSA PRIVATE KEY-----\nAB+/c=\n-----END RSA PRIVATE KEY-----\n"
        );
        assert_eq!(vars["TFPILOT_WEBHOOK_SECRET"], "s3cr\"et$HOME\\x");
        assert_eq!(vars["TFPILOT_GITHUB_API_URL"], "http://127.0.0.1:9/api/v3");
        assert_eq!(vars["TFPILOT_GITHUB_URL"], "http://127.0.0.1:9");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_existing_file_is_replaced_only_when_forced() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join(".env");
        std::fs::write(&path, "KEEP=1\n").expect("seed");
        let err = write_env_file(&path, "NEW=1\n", false).expect_err("refused");
        assert!(matches!(err, EnvFileError::Exists(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "KEEP=1\n");
        write_env_file(&path, "NEW=1\n", true).expect("forced");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "NEW=1\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = std::fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(leftovers, 1);
    }

    #[test]
    fn github_com_urls_are_not_written() {
        let text = render_env_file(&app(), "https://api.github.com", "https://github.com/");
        assert!(!text.contains("TFPILOT_GITHUB_API_URL"), "{text}");
        assert!(!text.contains("TFPILOT_GITHUB_URL"), "{text}");
    }
}
