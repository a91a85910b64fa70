//! Secrets kept out of the environment: on AWS Lambda the webhook secret, the App's private key
//! and the OpenAI key come from SSM Parameter Store (`SecureString`, decrypted with KMS), named
//! by `TFPILOT_WEBHOOK_SECRET_PARAMETER`, `TFPILOT_GITHUB_PRIVATE_KEY_PARAMETER`,
//! `OPENAI_API_KEY_PARAMETER` (and `TFPILOT_METRICS_TOKEN_PARAMETER`,
//! `TFPILOT_SLACK_WEBHOOK_URL_PARAMETER`, `TFPILOT_SLACK_WEBHOOK_ROUTES_PARAMETER`). They are read once at start, in one `GetParameters` call, and
//! handed to [`crate::config::Config::from_vars`] as if they were the plain variables, so
//! everything after the start is the same on every host. Values are never logged.

use std::collections::BTreeMap;

use crate::config::{ConfigError, ConfigProblem};

/// Each secret variable and the variable naming the SSM parameter that may hold it instead.
pub const PARAMETER_VARIABLES: [(&str, &str); 6] = [
    ("TFPILOT_WEBHOOK_SECRET", "TFPILOT_WEBHOOK_SECRET_PARAMETER"),
    (
        "TFPILOT_GITHUB_PRIVATE_KEY",
        "TFPILOT_GITHUB_PRIVATE_KEY_PARAMETER",
    ),
    ("OPENAI_API_KEY", "OPENAI_API_KEY_PARAMETER"),
    ("TFPILOT_METRICS_TOKEN", "TFPILOT_METRICS_TOKEN_PARAMETER"),
    (
        "TFPILOT_SLACK_WEBHOOK_URL",
        "TFPILOT_SLACK_WEBHOOK_URL_PARAMETER",
    ),
    (
        "TFPILOT_SLACK_WEBHOOK_ROUTES",
        "TFPILOT_SLACK_WEBHOOK_ROUTES_PARAMETER",
    ),
];

/// The `…_PARAMETER` variable of a secret variable.
pub fn parameter_variable(secret: &str) -> &'static str {
    PARAMETER_VARIABLES
        .iter()
        .find(|(s, _)| *s == secret)
        .map(|(_, p)| *p)
        .unwrap_or("TFPILOT_WEBHOOK_SECRET_PARAMETER")
}

/// Which parameters to read: secret variable → parameter name. Setting both a secret and its
/// parameter is a problem (which one would win is not obvious), as is a name SSM refuses.
pub fn wanted(
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<&'static str, String>, ConfigError> {
    let mut wanted = BTreeMap::new();
    let mut problems = Vec::new();
    for (secret, parameter) in PARAMETER_VARIABLES {
        let Some(name) = var(parameter)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        if var(secret).is_some_and(|v| !v.is_empty()) {
            problems.push(ConfigProblem {
                variable: parameter,
                reason: format!("is set together with {secret}; set one of them"),
            });
        } else if !is_parameter_name(&name) {
            problems.push(ConfigProblem {
                variable: parameter,
                reason: format!(
                    "`{name}` is not an SSM parameter name (`/path/name` or `name`: letters, digits, `_.-/`), nor a parameter ARN"
                ),
            });
        } else {
            wanted.insert(secret, name);
        }
    }
    if problems.is_empty() {
        Ok(wanted)
    } else {
        Err(ConfigError { problems })
    }
}

fn is_parameter_name(name: &str) -> bool {
    let plain = (1..=2048).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    plain
        || (name.starts_with("arn:")
            && name.contains(":parameter/")
            && !name.contains(char::is_whitespace))
}

/// Reads `wanted` (secret variable → parameter name) from SSM Parameter Store with decryption.
/// A parameter that is missing or cannot be read is a problem naming its `…_PARAMETER` variable
/// (never the value); the AWS error is kept for the operator.
pub async fn read(
    client: &aws_sdk_ssm::Client,
    wanted: &BTreeMap<&'static str, String>,
) -> Result<BTreeMap<&'static str, String>, ConfigError> {
    if wanted.is_empty() {
        return Ok(BTreeMap::new());
    }
    let parameter_of = parameter_variable;
    let names: Vec<String> = wanted.values().cloned().collect();
    let answer = client
        .get_parameters()
        .set_names(Some(names))
        .with_decryption(true)
        .send()
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            let reason = format!(
                "cannot be read from SSM Parameter Store: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            );
            return Err(ConfigError {
                problems: wanted
                    .keys()
                    .map(|secret| ConfigProblem {
                        variable: parameter_of(secret),
                        reason: reason.clone(),
                    })
                    .collect(),
            });
        }
    };
    let found: BTreeMap<String, String> = answer
        .parameters()
        .iter()
        .filter_map(|p| Some((p.name()?.to_owned(), p.value()?.to_owned())))
        .chain(
            // A parameter asked for by ARN comes back under its ARN.
            answer
                .parameters()
                .iter()
                .filter_map(|p| Some((p.arn()?.to_owned(), p.value()?.to_owned()))),
        )
        .collect();
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (secret, name) in wanted {
        match found.get(name).filter(|v| !v.is_empty()) {
            Some(value) => {
                values.insert(*secret, value.clone());
            }
            None => problems.push(ConfigProblem {
                variable: parameter_of(secret),
                reason: format!(
                    "names `{name}`, which SSM Parameter Store does not have (or it is empty)"
                ),
            }),
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(ConfigError { problems })
    }
}

/// The SSM client from the SDK's environment (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn ssm_client_from_env() -> aws_sdk_ssm::Client {
    let shared = crate::store::aws_http::aws_config_loader().load().await;
    aws_sdk_ssm::Client::new(&shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn parameters_are_wanted_only_where_named() {
        let v = vars(&[
            (
                "TFPILOT_WEBHOOK_SECRET_PARAMETER",
                "/tfpilot/webhook-secret",
            ),
            ("TFPILOT_GITHUB_PRIVATE_KEY", "-----BEGIN…"),
        ]);
        let w = wanted(&v).unwrap();
        assert_eq!(
            w.into_iter().collect::<Vec<_>>(),
            [(
                "TFPILOT_WEBHOOK_SECRET",
                "/tfpilot/webhook-secret".to_owned()
            )]
        );
        assert!(wanted(&vars(&[])).unwrap().is_empty());
    }

    #[test]
    fn a_secret_and_its_parameter_together_or_a_bad_name_are_problems() {
        let v = vars(&[
            ("OPENAI_API_KEY", "sk-x"),
            ("OPENAI_API_KEY_PARAMETER", "/tfpilot/openai"),
            ("TFPILOT_GITHUB_PRIVATE_KEY_PARAMETER", "has space"),
        ]);
        let err = wanted(&v).unwrap_err();
        let vars: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            vars,
            [
                "TFPILOT_GITHUB_PRIVATE_KEY_PARAMETER",
                "OPENAI_API_KEY_PARAMETER"
            ]
        );
        assert!(err.problems[1].reason.contains("set one of them"));
        assert!(!err.to_string().contains("sk-x"), "no value in messages");
    }

    #[test]
    fn parameter_names_and_arns() {
        assert!(is_parameter_name("/tfpilot/prod/webhook-secret"));
        assert!(is_parameter_name("tfpilot.key_1"));
        assert!(is_parameter_name(
            "arn:aws:ssm:eu-west-1:123456789012:parameter/tfpilot/key"
        ));
        assert!(!is_parameter_name(""));
        assert!(!is_parameter_name("a b"));
    }
}
