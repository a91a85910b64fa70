//! Renders one request's module block: built as an hcl-rs structure (never by pasting strings),
//! printed by hcl-rs, aligned by [`super::fmt`], and wrapped in the request's markers.
//!
//! User values can only ever become HCL string, number or bool literals: quotes and backslashes
//! are escaped, every `${` and `%{` is written `$${` and `%%{`, map keys that are not plain
//! identifiers are quoted, and text with control or direction-changing characters or marker text
//! is refused (by validation, and again here for configs that come from storage).
//!
//! String literals are escaped here ([`quoted_literal`]) rather than by hcl-rs: hcl-rs 0.20's
//! `escape_markers` skips the character after a `$` or `%`, so `%${x}` (after an earlier `${`)
//! came out as a live interpolation. The escaped text goes into the hcl-rs structure as a quoted
//! template, which hcl-rs prints verbatim.

use hcl::expr::TemplateExpr;
use hcl::{Block, Body, Expression, Identifier, ObjectKey};

use super::blocks::{begin_marker, end_marker};
use super::fmt::{self, FmtError};
use crate::ids::RequestId;
use crate::registry::{InputValue, ModuleConfig, ModuleSpec};

/// Why a block could not be rendered. These are defects or tampered configs, not user typos
/// (those are caught by [`crate::registry::build_module_config`]).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the config is for module type `{config}`, not `{spec}`")]
    ModuleTypeMismatch { spec: String, config: String },
    #[error("the config belongs to request {config}, not {requested}")]
    RequestIdMismatch {
        requested: RequestId,
        config: RequestId,
    },
    #[error("`{argument}` cannot be written: {reason}")]
    UnsafeValue { argument: String, reason: String },
    #[error("HCL output failed: {0}")]
    Hcl(#[from] hcl::Error),
    #[error("formatting failed: {0}")]
    Format(#[from] FmtError),
}

/// The Terraform module name of a request: `tfpilot_<id>` (hyphens are valid in identifiers).
pub fn module_name(id: &RequestId) -> String {
    format!("tfpilot_{id}")
}

/// The module source as seen from `envs/<env>/`.
pub fn module_source(module_type: &str) -> String {
    format!("../../modules/{module_type}")
}

/// The module address used for targeted plans and destroys: `module.tfpilot_<id>`.
pub fn module_address(id: &RequestId) -> String {
    format!("module.{}", module_name(id))
}

/// The full bounded block for a request (markers included, trailing newline), byte-identical to
/// what `terraform fmt` makes of it.
pub fn render_block(
    request_id: RequestId,
    spec: &ModuleSpec,
    config: &ModuleConfig,
) -> Result<String, RenderError> {
    if spec.module_type != config.module_type {
        return Err(RenderError::ModuleTypeMismatch {
            spec: spec.module_type.clone(),
            config: config.module_type.clone(),
        });
    }
    if config.context.request_id != request_id {
        return Err(RenderError::RequestIdMismatch {
            requested: request_id,
            config: config.context.request_id,
        });
    }
    render_module_block(request_id, &spec.module_type, &config.arguments(spec))
}

/// Renders a module block from arguments in the given order (lower level than
/// [`render_block`]; the formatter tests feed it generated values).
pub fn render_module_block(
    request_id: RequestId,
    module_type: &str,
    arguments: &[(&str, &InputValue)],
) -> Result<String, RenderError> {
    let mut block = Block::builder("module")
        .add_label(module_name(&request_id))
        .add_attribute(("source", module_source(module_type)));
    for (name, value) in arguments {
        let key = Identifier::new(*name).map_err(|_| RenderError::UnsafeValue {
            argument: (*name).to_owned(),
            reason: "it is not a valid Terraform argument name".into(),
        })?;
        if *name == "source" {
            return Err(RenderError::UnsafeValue {
                argument: "source".into(),
                reason: "it is reserved for the module source".into(),
            });
        }
        let expr = expression(value).map_err(|reason| RenderError::UnsafeValue {
            argument: (*name).to_owned(),
            reason,
        })?;
        block = block.add_attribute((key, expr));
    }
    let body = Body::builder().add_block(block.build()).build();
    let printed = hcl::format::to_string(&body)?;
    let formatted = fmt::format(&printed)?;
    Ok(format!(
        "{}\n{formatted}{}\n",
        begin_marker(&request_id),
        end_marker(&request_id)
    ))
}

fn expression(value: &InputValue) -> Result<Expression, String> {
    Ok(match value {
        InputValue::Bool(b) => Expression::Bool(*b),
        InputValue::Number(n) => Expression::Number(number(n)?),
        InputValue::String(s) => string(s)?,
        InputValue::List(items) => {
            Expression::Array(items.iter().map(|i| string(i)).collect::<Result<_, _>>()?)
        }
        InputValue::Map(map) => {
            let mut object = hcl::Object::new();
            // BTreeMap order: the same map always renders the same bytes.
            for (k, v) in map {
                object.insert(object_key(k)?, string(v)?);
            }
            Expression::Object(object)
        }
    })
}

fn number(n: &serde_json::Number) -> Result<hcl::Number, String> {
    if let Some(i) = n.as_i64() {
        Ok(hcl::Number::from(i))
    } else if let Some(u) = n.as_u64() {
        Ok(hcl::Number::from(u))
    } else {
        n.as_f64()
            .and_then(hcl::Number::from_f64)
            .ok_or_else(|| format!("`{n}` is not a finite number"))
    }
}

/// A map key is written bare only when it is a plain ASCII identifier that HCL cannot read as
/// anything else; every other key is a quoted (escaped) string.
fn object_key(key: &str) -> Result<ObjectKey, String> {
    let text = safe_text(key)?;
    let plain = text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            text.as_str(),
            "true" | "false" | "null" | "for" | "if" | "in"
        );
    if plain && let Ok(ident) = Identifier::new(text.as_str()) {
        return Ok(ObjectKey::Identifier(ident));
    }
    Ok(ObjectKey::Expression(string(&text)?))
}

fn safe_text(s: &str) -> Result<String, String> {
    crate::registry::config::check_text(s)?;
    Ok(s.to_owned())
}

/// A string literal that Terraform reads back as exactly `s`.
fn string(s: &str) -> Result<Expression, String> {
    let text = safe_text(s)?;
    Ok(Expression::TemplateExpr(Box::new(
        TemplateExpr::QuotedString(quoted_literal(&text)),
    )))
}

/// The body of a quoted HCL string (without the quotes) whose value is `s`: `"` and `\` are
/// escaped, and a `$` or `%` right before a `{` is doubled, so no `${` or `%{` can start an
/// interpolation or a directive. Control characters are refused before this point; they are
/// escaped anyway so the function is total.
pub fn quoted_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' => {
                out.push(c);
                if chars.peek() == Some(&'{') {
                    out.push(c);
                }
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::registry::{ConfigContext, Registry, build_module_config, config::raw_from_pairs};

    fn id() -> RequestId {
        "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b".parse().unwrap()
    }

    fn ctx() -> ConfigContext {
        ConfigContext {
            request_id: id(),
            project: "core".into(),
            environment: "dev".into(),
        }
    }

    #[test]
    fn renders_an_s3_bucket_block() {
        let spec = Registry::embedded().get("s3-bucket").unwrap();
        let raw = raw_from_pairs([
            ("name", "invoices"),
            ("versioning", "yes"),
            ("expiration_days", "30"),
            ("tags.Team", "payments"),
            ("tags.cost center", "42"),
        ]);
        let config = build_module_config(spec, &raw, &ctx()).unwrap();
        let block = render_block(id(), spec, &config).unwrap();
        insta::assert_snapshot!(block, @r#"
        # --- tfpilot:begin:3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b ---
        module "tfpilot_3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b" {
          source             = "../../modules/s3-bucket"
          bucket_name        = "core-dev-invoices"
          versioning_enabled = true
          expiration_days    = 30
          force_destroy      = false
          tags = {
            Environment      = "dev"
            ManagedBy        = "tfpilot"
            Project          = "core"
            Team             = "payments"
            TfPilotRequestId = "3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b"
            "cost center"    = "42"
          }
        }
        # --- tfpilot:end:3f2a4c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b ---
        "#);
        // Deterministic: the same request renders the same bytes.
        assert_eq!(render_block(id(), spec, &config).unwrap(), block);
    }

    #[test]
    fn user_text_never_becomes_hcl_syntax() {
        let hostile = InputValue::String(
            "\"} resource \"x\" \"y\" { a = \"${file(\"/etc/passwd\")}%{if true}\\".into(),
        );
        let mut map = BTreeMap::new();
        map.insert("for".to_owned(), "x".to_owned());
        map.insert("a\"b".to_owned(), "${x}".to_owned());
        map.insert("null".to_owned(), "y".to_owned());
        let map = InputValue::Map(map);
        let out = render_module_block(id(), "x", &[("v", &hostile), ("m", &map)]).unwrap();
        assert!(out.contains(r#"v      = "\"} resource \"x\" \"y\" { a = \"$${file(\"/etc/passwd\")}%%{if true}\\""#), "{out}");
        assert!(out.contains(r#""a\"b" = "$${x}""#), "{out}");
        assert!(out.contains(r#""for"  = "x""#), "{out}");
        assert!(out.contains(r#""null" = "y""#), "{out}");
        // The result parses back to exactly the values that went in.
        let body = hcl::parse(&out).unwrap();
        let module = body.blocks().next().unwrap();
        let v = module.body().attributes().find(|a| a.key() == "v").unwrap();
        assert_eq!(
            v.expr(),
            &Expression::String(
                "\"} resource \"x\" \"y\" { a = \"${file(\"/etc/passwd\")}%{if true}\\".into()
            )
        );
    }

    #[test]
    fn template_sequences_are_escaped_wherever_they_are() {
        for (given, want) in [
            ("${x}", "$${x}"),
            ("%{if}", "%%{if}"),
            ("$${x}", "$$${x}"),
            ("%%{x}", "%%%{x}"),
            // hcl-rs 0.20 left the second of these live: `%${` after an earlier `${`.
            ("a${b}%${var.secret}", "a$${b}%$${var.secret}"),
            ("${a}$%{b}", "$${a}$%%{b}"),
            ("$ % {", "$ % {"),
            ("\"\\", "\\\"\\\\"),
            ("日本$", "日本$"),
        ] {
            assert_eq!(quoted_literal(given), want, "{given}");
        }
    }

    #[test]
    fn refuses_values_that_cannot_be_written_safely() {
        for bad in [
            "a\nb",
            "tab\there",
            "bell\u{7}",
            "rtl\u{202e}x",
            "# --- tfpilot:end:x ---",
        ] {
            let v = InputValue::String(bad.into());
            let err = render_module_block(id(), "x", &[("v", &v)]).unwrap_err();
            assert!(
                matches!(err, RenderError::UnsafeValue { ref argument, .. } if argument == "v"),
                "{bad:?}: {err}"
            );
        }
        let v = InputValue::Bool(true);
        assert!(render_module_block(id(), "x", &[("not an ident", &v)]).is_err());
        assert!(render_module_block(id(), "x", &[("source", &v)]).is_err());
    }

    #[test]
    fn checks_that_config_and_request_agree() {
        let spec = Registry::embedded().get("s3-bucket").unwrap();
        let other = Registry::embedded().get("sqs-queue").unwrap();
        let config = build_module_config(spec, &raw_from_pairs([("name", "x1")]), &ctx()).unwrap();
        assert!(matches!(
            render_block(id(), other, &config),
            Err(RenderError::ModuleTypeMismatch { .. })
        ));
        assert!(matches!(
            render_block(RequestId::new_random(), spec, &config),
            Err(RenderError::RequestIdMismatch { .. })
        ));
    }
}
