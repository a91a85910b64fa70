//! Reads the `variable` blocks of a module's `variables.tf` (with hcl-rs): name, type, default.

use hcl::{Expression, ObjectKey};
use serde_json::Value;

/// One `variable "name" { … }` declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableDecl {
    pub name: String,
    /// The type expression as written, without spaces (`string`, `list(string)`); `None` when
    /// the variable has no `type`.
    pub type_expr: Option<String>,
    /// The default, if the variable has one. `Some(Default::Literal(Value::Null))` is
    /// `default = null` (optional, "not set").
    pub default: Option<Default>,
    pub description: Option<String>,
}

/// A variable's default value.
#[derive(Debug, Clone, PartialEq)]
pub enum Default {
    /// A literal value (null, bool, number, string, list, object).
    Literal(Value),
    /// An expression that is not a literal (a function call, a reference), as written.
    Expression(String),
}

impl VariableDecl {
    /// A variable without a default must be set by every caller.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

/// `variables.tf` could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not valid HCL: {0}")]
pub struct VariablesError(#[from] hcl::Error);

/// The variables declared in `text`, in file order (other blocks are ignored).
pub fn parse_variables(text: &str) -> Result<Vec<VariableDecl>, VariablesError> {
    let body = hcl::parse(text)?;
    let mut out = Vec::new();
    for block in body.blocks().filter(|b| b.identifier() == "variable") {
        let Some(label) = block.labels().first() else {
            continue;
        };
        let mut decl = VariableDecl {
            name: label.as_str().to_owned(),
            type_expr: None,
            default: None,
            description: None,
        };
        for attr in block.body().attributes() {
            match attr.key() {
                "type" => decl.type_expr = Some(type_text(attr.expr())),
                "default" => {
                    decl.default = Some(match literal(attr.expr()) {
                        Some(v) => Default::Literal(v),
                        None => Default::Expression(expression_text(attr.expr())),
                    })
                }
                "description" => {
                    if let Expression::String(s) = attr.expr() {
                        decl.description = Some(s.clone());
                    }
                }
                _ => {}
            }
        }
        out.push(decl);
    }
    Ok(out)
}

fn expression_text(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_else(|_| format!("{expr:?}"))
}

/// Type expressions compared without whitespace; the legacy quoted form `"string"` counts as
/// `string`.
fn type_text(expr: &Expression) -> String {
    match expr {
        Expression::String(s) => s.clone(),
        other => expression_text(other)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    }
}

/// The value of a literal expression, `None` for anything that needs evaluation.
fn literal(expr: &Expression) -> Option<Value> {
    Some(match expr {
        Expression::Null => Value::Null,
        Expression::Bool(b) => Value::Bool(*b),
        Expression::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                serde_json::Number::from_f64(n.as_f64()?).map(Value::Number)?
            }
        }
        Expression::String(s) => Value::String(s.clone()),
        Expression::Array(items) => Value::Array(items.iter().map(literal).collect::<Option<_>>()?),
        Expression::Object(obj) => {
            let mut map = serde_json::Map::new();
            for (k, v) in obj {
                let key = match k {
                    ObjectKey::Identifier(i) => i.as_str().to_owned(),
                    ObjectKey::Expression(Expression::String(s)) => s.clone(),
                    _ => return None,
                };
                map.insert(key, literal(v)?);
            }
            Value::Object(map)
        }
        Expression::Parenthesis(inner) => literal(inner)?,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_types_and_defaults() {
        let text = r#"
variable "bucket_name" {
  type        = string
  description = "The bucket name."
}

variable "tags" {
  type    = map( string )
  default = {}
}

variable "expiration_days" {
  type    = number
  default = null
}

variable "legacy" {
  type    = "string"
  default = "x"
}

variable "computed" {
  default = max(1, 2)
}

variable "list" {
  type    = list(string)
  default = ["a", { "k" = 1.5 }]
}

output "x" {
  value = 1
}
"#;
        let vars = parse_variables(text).unwrap();
        let names: Vec<_> = vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bucket_name",
                "tags",
                "expiration_days",
                "legacy",
                "computed",
                "list"
            ]
        );
        assert!(vars[0].is_required());
        assert_eq!(vars[0].type_expr.as_deref(), Some("string"));
        assert_eq!(vars[0].description.as_deref(), Some("The bucket name."));
        assert_eq!(vars[1].type_expr.as_deref(), Some("map(string)"));
        assert_eq!(
            vars[1].default,
            Some(Default::Literal(serde_json::json!({})))
        );
        assert_eq!(vars[2].default, Some(Default::Literal(Value::Null)));
        assert!(!vars[2].is_required());
        assert_eq!(vars[3].type_expr.as_deref(), Some("string"));
        assert_eq!(vars[4].type_expr, None);
        assert!(matches!(vars[4].default, Some(Default::Expression(ref e)) if e.contains("max")));
        assert_eq!(
            vars[5].default,
            Some(Default::Literal(serde_json::json!(["a", {"k": 1.5}])))
        );
    }

    #[test]
    fn invalid_hcl_is_an_error() {
        assert!(parse_variables("variable \"x\" {").is_err());
    }
}
