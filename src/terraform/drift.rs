//! The drift check: does each module's `variables.tf` declare exactly the variables the
//! catalogue sets, with the same types, required-ness and defaults?
//!
//! [`check_module`] is pure (catalogue entry + file text → findings); [`check_modules_dir`]
//! reads `modules/<type>/variables.tf` for every catalogue entry.

use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::variables::{Default, VariableDecl, parse_variables};
use crate::registry::{ModuleSpec, Registry};

/// One difference between the catalogue and a module.
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    /// `modules/<type>/variables.tf` does not exist or cannot be read.
    MissingVariablesFile { path: String, reason: String },
    /// `variables.tf` is not valid HCL.
    Unparsable { path: String, reason: String },
    /// The module declares a variable the catalogue does not set.
    NotInRegistry { variable: String, required: bool },
    /// The catalogue sets a variable the module does not declare.
    NotInModule { variable: String },
    /// Required in one, optional in the other.
    Required {
        variable: String,
        registry_required: bool,
    },
    /// Both optional, with different defaults.
    Default {
        variable: String,
        registry: String,
        module: String,
    },
    /// Different types (`registry` is the Terraform type the catalogue's type stands for).
    Type {
        variable: String,
        registry: String,
        module: String,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::MissingVariablesFile { path, reason } => {
                write!(f, "cannot read {path}: {reason}")
            }
            Drift::Unparsable { path, reason } => write!(f, "{path} is {reason}"),
            Drift::NotInRegistry { variable, required } => write!(
                f,
                "the module declares {} variable `{variable}`, which the registry does not set",
                if *required { "required" } else { "optional" }
            ),
            Drift::NotInModule { variable } => write!(
                f,
                "the registry sets `{variable}`, which the module does not declare"
            ),
            Drift::Required {
                variable,
                registry_required,
            } => {
                if *registry_required {
                    write!(
                        f,
                        "`{variable}` is required in the registry but has a default in the module"
                    )
                } else {
                    write!(
                        f,
                        "`{variable}` is optional in the registry but required (no default) in the module"
                    )
                }
            }
            Drift::Default {
                variable,
                registry,
                module,
            } => write!(
                f,
                "`{variable}` defaults to {registry} in the registry but to {module} in the module"
            ),
            Drift::Type {
                variable,
                registry,
                module,
            } => write!(
                f,
                "`{variable}` is `{registry}` in the registry but `{module}` in the module"
            ),
        }
    }
}

/// The findings for one module type.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleDrift {
    pub module_type: String,
    pub findings: Vec<Drift>,
}

/// The findings for a whole `modules/` directory.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReport {
    pub modules: Vec<ModuleDrift>,
    /// Directories under `modules/` that are not in the catalogue (not drift: hand-written
    /// modules are allowed; listed for information).
    pub other_modules: Vec<String>,
}

impl DriftReport {
    pub fn has_drift(&self) -> bool {
        self.modules.iter().any(|m| !m.findings.is_empty())
    }
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.modules {
            if m.findings.is_empty() {
                writeln!(f, "{}: ok", m.module_type)?;
            } else {
                let n = m.findings.len();
                writeln!(
                    f,
                    "{}: {n} problem{}",
                    m.module_type,
                    if n == 1 { "" } else { "s" }
                )?;
                for finding in &m.findings {
                    writeln!(f, "  - {finding}")?;
                }
            }
        }
        for other in &self.other_modules {
            writeln!(f, "{other}: not in the registry (not checked)")?;
        }
        Ok(())
    }
}

/// Compares one catalogue entry with the text of its module's `variables.tf`.
pub fn check_module(spec: &ModuleSpec, variables_tf: &str, path: &str) -> Vec<Drift> {
    let decls = match parse_variables(variables_tf) {
        Ok(d) => d,
        Err(e) => {
            return vec![Drift::Unparsable {
                path: path.to_owned(),
                reason: e.to_string(),
            }];
        }
    };
    let find = |name: &str| decls.iter().find(|d| d.name == name);
    let mut findings = Vec::new();

    for c in &spec.computed {
        match find(&c.name) {
            None => findings.push(Drift::NotInModule {
                variable: c.name.clone(),
            }),
            Some(decl) => check_type(decl, "string", &mut findings),
        }
    }
    for input in spec.inputs.iter().filter(|i| i.module_variable) {
        let Some(decl) = find(&input.name) else {
            findings.push(Drift::NotInModule {
                variable: input.name.clone(),
            });
            continue;
        };
        check_type(decl, input.input_type.terraform_type(), &mut findings);
        match (input.required, &decl.default) {
            (true, None) => {}
            (true, Some(_)) | (false, None) => findings.push(Drift::Required {
                variable: input.name.clone(),
                registry_required: input.required,
            }),
            (false, Some(module_default)) => {
                let registry = input
                    .default
                    .as_ref()
                    .and_then(|d| serde_json::to_value(d).ok())
                    .unwrap_or(Value::Null);
                let same = matches!(module_default, Default::Literal(m) if json_eq(m, &registry));
                if !same {
                    findings.push(Drift::Default {
                        variable: input.name.clone(),
                        registry: show_default(&registry),
                        module: match module_default {
                            Default::Literal(v) => show_default(v),
                            Default::Expression(e) => format!("the expression `{e}`"),
                        },
                    });
                }
            }
        }
    }
    let set: Vec<&str> = spec.module_variables().collect();
    for decl in &decls {
        if !set.contains(&decl.name.as_str()) {
            findings.push(Drift::NotInRegistry {
                variable: decl.name.clone(),
                required: decl.is_required(),
            });
        }
    }
    findings
}

/// Checks every catalogue entry against `modules_dir/<type>/variables.tf`.
pub fn check_modules_dir(registry: &Registry, modules_dir: &Path) -> DriftReport {
    let mut modules = Vec::new();
    for spec in registry.modules() {
        let path = modules_dir.join(&spec.module_type).join("variables.tf");
        let shown = path.display().to_string();
        let findings = match std::fs::read_to_string(&path) {
            Ok(text) => check_module(spec, &text, &shown),
            Err(e) => vec![Drift::MissingVariablesFile {
                path: shown,
                reason: e.to_string(),
            }],
        };
        modules.push(ModuleDrift {
            module_type: spec.module_type.clone(),
            findings,
        });
    }
    let mut other_modules: Vec<String> = std::fs::read_dir(modules_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| registry.modules().all(|m| &m.module_type != name))
        .collect();
    other_modules.sort();
    DriftReport {
        modules,
        other_modules,
    }
}

fn check_type(decl: &VariableDecl, want: &str, findings: &mut Vec<Drift>) {
    let module = decl.type_expr.as_deref().unwrap_or("any");
    if module != want {
        findings.push(Drift::Type {
            variable: decl.name.clone(),
            registry: want.to_owned(),
            module: module.to_owned(),
        });
    }
}

/// JSON equality where `30` equals `30.0`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn show_default(v: &Value) -> String {
    match v {
        Value::Null => "null (not set)".to_owned(),
        other => format!("`{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3_VARS: &str = r#"
variable "bucket_name" {
  type = string
}
variable "versioning_enabled" {
  type    = bool
  default = false
}
variable "expiration_days" {
  type    = number
  default = null
}
variable "force_destroy" {
  type    = bool
  default = false
}
variable "tags" {
  type    = map(string)
  default = {}
}
"#;

    fn s3() -> &'static ModuleSpec {
        Registry::embedded().get("s3-bucket").unwrap()
    }

    #[test]
    fn a_matching_module_has_no_drift() {
        assert_eq!(check_module(s3(), S3_VARS, "v.tf"), vec![]);
    }

    #[test]
    fn every_kind_of_drift_is_reported() {
        let drifted = S3_VARS
            .replace(
                "variable \"force_destroy\"",
                "variable \"force_destroy_all\"",
            )
            .replace(
                "type    = bool\n  default = false\n}\nvariable \"expiration",
                "type    = string\n  default = false\n}\nvariable \"expiration",
            )
            .replace("default = null", "default = 7")
            .replace(
                "variable \"bucket_name\" {\n  type = string\n}",
                "variable \"bucket_name\" {\n  type    = string\n  default = \"x\"\n}",
            )
            .replace("default = {}", "default = { a = \"b\" }");
        let findings = check_module(s3(), &drifted, "v.tf");
        assert_eq!(findings.len(), 5, "{findings:#?}");
        assert!(findings.contains(&Drift::Type {
            variable: "versioning_enabled".into(),
            registry: "bool".into(),
            module: "string".into()
        }));
        assert!(findings.contains(&Drift::Default {
            variable: "expiration_days".into(),
            registry: "null (not set)".into(),
            module: "`7`".into()
        }));
        assert!(findings.contains(&Drift::NotInModule {
            variable: "force_destroy".into()
        }));
        assert!(findings.contains(&Drift::NotInRegistry {
            variable: "force_destroy_all".into(),
            required: false
        }));
        assert!(findings.contains(&Drift::Default {
            variable: "tags".into(),
            registry: "`{}`".into(),
            module: "`{\"a\":\"b\"}`".into()
        }));
        // A computed value with a default is fine (TfPilot always sets it).
        assert!(
            !findings
                .iter()
                .any(|f| f.to_string().contains("bucket_name"))
        );
    }

    #[test]
    fn required_mismatches_both_ways() {
        let optional_made_required = S3_VARS.replace(
            "type    = bool\n  default = false\n}\nvariable \"expiration",
            "type    = bool\n}\nvariable \"expiration",
        );
        let findings = check_module(s3(), &optional_made_required, "v.tf");
        assert_eq!(
            findings,
            vec![Drift::Required {
                variable: "versioning_enabled".into(),
                registry_required: false
            }]
        );
        assert!(
            findings[0]
                .to_string()
                .contains("optional in the registry but required")
        );
        let unparsable = check_module(s3(), "variable {", "modules/s3-bucket/variables.tf");
        assert!(
            matches!(&unparsable[..], [Drift::Unparsable { path, .. }] if path.contains("s3-bucket"))
        );
    }
}
