//! The answers to `modules` (the catalogue's module types) and `modules <type>` (one type's
//! inputs): what someone reads before opening a request.

use std::fmt::Write as _;

use super::conversation::{cell, code, with_marker};
use crate::domain::EffectKey;
use crate::registry::{InputSpec, ModuleSpec, Registry};

/// The answer to `modules`: every module type with its description.
pub fn modules(prefix: &str, registry: &Registry, marker_key: &EffectKey) -> String {
    let mut out =
        String::from("### Module types\n\n| type | what it is | aliases |\n| --- | --- | --- |\n");
    for m in registry.modules() {
        let aliases: Vec<String> = m.aliases.iter().map(|a| format!("`{}`", cell(a))).collect();
        let _ = writeln!(
            out,
            "| `{}` | **{}**: {} | {} |",
            m.module_type,
            cell(&m.display_name),
            cell(&m.description),
            aliases.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\nComment `{prefix} modules <type>` for a type's inputs, and `{prefix} new <type> env=<env>` to open a request."
    );
    with_marker(marker_key, &out)
}

/// The answer to `modules <type>`: the inputs of one module type.
pub fn module_inputs(prefix: &str, spec: &ModuleSpec, marker_key: &EffectKey) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### `{}`: {}\n\n{}\n",
        spec.module_type,
        cell(&spec.display_name),
        spec.description
    );
    let _ = writeln!(
        out,
        "| input | type | required | default | allowed values | what it is |\n| --- | --- | --- | --- | --- | --- |"
    );
    for input in &spec.inputs {
        let default = match &input.default {
            Some(v) => code(v.clone()),
            None => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            input.name,
            input.input_type,
            if input.required { "yes" } else { "no" },
            default,
            allowed(input),
            cell(&input.description)
        );
    }
    if !spec.computed.is_empty() {
        let computed: Vec<String> = spec
            .computed
            .iter()
            .map(|c| format!("`{}` ({})", c.name, cell(&c.description)))
            .collect();
        let _ = writeln!(out, "\n**Set by TfPilot:** {}", computed.join("; "));
    }
    let required: Vec<String> = spec
        .inputs
        .iter()
        .filter(|i| i.required)
        .map(|i| format!("{}=…", i.name))
        .collect();
    let example = if required.is_empty() {
        String::new()
    } else {
        format!(" {}", required.join(" "))
    };
    let _ = writeln!(
        out,
        "\nOpen one with `{prefix} new {} env=<env>{example}`; aliases of an input work as keys too.",
        spec.module_type
    );
    with_marker(marker_key, &out)
}

/// What an input accepts besides its type: allowed values, bounds (with the unit), lengths,
/// the pattern.
fn allowed(input: &InputSpec) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !input.allowed_values.is_empty() {
        let values: Vec<String> = input.allowed_values.iter().cloned().map(code).collect();
        parts.push(values.join(", "));
    }
    let unit = input
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    match (input.min, input.max) {
        (Some(min), Some(max)) => parts.push(format!("{min}–{max}{unit}")),
        (Some(min), None) => parts.push(format!("at least {min}{unit}")),
        (None, Some(max)) => parts.push(format!("at most {max}{unit}")),
        (None, None) if !unit.is_empty() => parts.push(format!("in{unit}")),
        (None, None) => {}
    }
    if input.integer && (input.min.is_some() || input.max.is_some()) {
        parts.push("whole numbers".to_owned());
    }
    match (input.min_length, input.max_length) {
        (Some(min), Some(max)) => parts.push(format!("{min}–{max} characters")),
        (Some(min), None) => parts.push(format!("at least {min} characters")),
        (None, Some(max)) => parts.push(format!("at most {max} characters")),
        (None, None) => {}
    }
    if let Some(p) = &input.pattern {
        // The catalogue's pattern, without the anchors TfPilot adds when it compiles it.
        let p = p.as_str();
        let p = p
            .strip_prefix("^(?:")
            .and_then(|p| p.strip_suffix(")$"))
            .unwrap_or(p);
        parts.push(format!("matching `{}`", cell(p)));
    }
    if parts.is_empty() {
        "any".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests;
