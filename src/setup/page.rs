//! The HTML of `tfpilot setup`: the form, the review page that posts the manifest to GitHub, the
//! result. Plain HTML that works without JavaScript; every value put in the page is escaped.

use serde_json::Value;

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1f2328; }}
h1 {{ font-size: 1.6rem; }}
label {{ display: block; margin-top: 1rem; font-weight: 600; }}
input[type=text], input[type=url] {{ width: 100%; padding: .4rem; font-size: 1rem; box-sizing: border-box; }}
.hint {{ color: #59636e; font-size: .9rem; }}
button {{ margin-top: 1.5rem; padding: .6rem 1.2rem; font-size: 1rem; background: #1f883d; color: #fff; border: 0; border-radius: 6px; cursor: pointer; }}
code, pre {{ background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; }}
.error {{ color: #d1242f; font-weight: 600; }}
table {{ border-collapse: collapse; }} td {{ padding: .15rem .8rem .15rem 0; }}
</style>
</head>
<body>
{body}
</body>
</html>
"#,
        title = escape(title),
    )
}

/// What the manifest asks for, as a table of permissions and a list of events.
fn grants(manifest: &Value) -> String {
    let mut rows = String::new();
    if let Some(perms) = manifest["default_permissions"].as_object() {
        for (name, level) in perms {
            rows.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                escape(name),
                escape(level.as_str().unwrap_or_default())
            ));
        }
    }
    let events: Vec<String> = manifest["default_events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .map(|e| format!("<code>{}</code>", escape(e)))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "<h2>What will be created</h2>\
         <p>A private GitHub App owned by you or your organization, with these permissions on \
         the repositories you install it on (nothing else):</p><table>{rows}</table>\
         <p>Webhook events: {}.</p>\
         <p>GitHub hands back the App's id, private key and webhook secret once; this page \
         writes them to <code>.env</code> (readable by you only).</p>",
        events.join(", ")
    )
}

/// The first page: what will be created, and the form.
pub fn form(manifest: &Value, github_url: &str, env_file: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p class="error" id="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let name = manifest["name"].as_str().unwrap_or("TfPilot");
    let body = format!(
        r#"<h1>Set up TfPilot</h1>
<p>This creates TfPilot's GitHub App on <code>{github}</code> from its manifest, then saves its
credentials to <code>{env_file}</code> for <code>tfpilot serve</code>.</p>
{grants}
{error}
<form method="post" action="/setup" id="setup">
<label for="name">App name</label>
<input type="text" id="name" name="name" value="{name}" required maxlength="34">
<div class="hint">Unique on GitHub; the App's comments are signed <code>&lt;slug&gt;[bot]</code>.</div>
<label for="webhook_url">Webhook URL</label>
<input type="url" id="webhook_url" name="webhook_url" placeholder="https://tfpilot.example.com/webhooks/github" required>
<div class="hint">Where GitHub will send events: your deployment's <code>/webhooks/github</code>.</div>
<label for="organization">Organization (leave empty for your personal account)</label>
<input type="text" id="organization" name="organization" placeholder="acme">
<button type="submit" id="next">Review</button>
</form>"#,
        github = escape(github_url),
        env_file = escape(env_file),
        grants = grants(manifest),
        name = escape(name),
    );
    layout("Set up TfPilot", &body)
}

/// The review page: the manifest as it will be posted, and the button that posts it to GitHub.
pub fn review(manifest: &Value, action: &str, owner: &str) -> String {
    let pretty = serde_json::to_string_pretty(manifest).unwrap_or_default();
    let compact = manifest.to_string();
    let body = format!(
        r#"<h1>Create the App on GitHub</h1>
<p>GitHub will ask you to confirm, then send you back here.</p>
<p>Owner: <strong>{owner}</strong></p>
{grants}
<details><summary>The manifest</summary><pre>{pretty}</pre></details>
<form method="post" action="{action}" id="create">
<input type="hidden" name="manifest" value="{compact}">
<button type="submit" id="submit">Create the App on GitHub</button>
</form>"#,
        owner = escape(owner),
        grants = grants(manifest),
        pretty = escape(&pretty),
        action = escape(action),
        compact = escape(&compact),
    );
    layout("Create the App on GitHub", &body)
}

/// The end: the App exists, its credentials are saved; install it.
pub fn done(app_name: &str, install_url: &str, env_file: &str) -> String {
    let body = format!(
        r#"<h1>The App <code>{name}</code> is ready</h1>
<p id="saved">Its id, private key and webhook secret are saved in <code>{env_file}</code>.</p>
<ol>
<li><a id="install" href="{install}">Install the App</a> on your infra repositories.</li>
<li>Run <code>tfpilot doctor</code> to check the configuration end to end.</li>
<li>Run <code>tfpilot serve</code>.</li>
</ol>
<p class="hint">This page's server has stopped; you can close the tab.</p>"#,
        name = escape(app_name),
        env_file = escape(env_file),
        install = escape(install_url),
    );
    layout("TfPilot is set up", &body)
}

/// Something went wrong; `message` says what to do.
pub fn failed(message: &str) -> String {
    let body = format!(
        r#"<h1>Setup did not finish</h1><p class="error" id="error">{}</p><p><a href="/setup">Start again</a></p>"#,
        escape(message)
    );
    layout("Setup did not finish", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_become_markup() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        let manifest = serde_json::json!({"name": "x\"><script>", "default_permissions": {}});
        let page = form(&manifest, "https://github.com", ".env", Some("<b>"));
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
    }
}
