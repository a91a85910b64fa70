//! The rules a typed value must pass: bounds, patterns, allowed values, safe text, tags.

use super::*;

/// Checks a normalized value against the input's rules. Also used on catalogue defaults.
pub(crate) fn check_value(input: &InputSpec, value: &InputValue) -> Result<(), String> {
    if value.input_type() != input.input_type {
        return Err(format!(
            "expected a {}, got a {}",
            input.input_type,
            value.input_type()
        ));
    }
    match value {
        InputValue::Bool(_) => Ok(()),
        InputValue::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if input.integer && f.fract() != 0.0 {
                return Err(format!("`{n}` must be a whole number"));
            }
            let unit = input
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            if let Some(min) = input.min
                && f < min
            {
                return Err(format!("`{n}` is below the minimum of {min}{unit}"));
            }
            if let Some(max) = input.max
                && f > max
            {
                return Err(format!("`{n}` is above the maximum of {max}{unit}"));
            }
            check_allowed(input, value)
        }
        InputValue::String(s) => {
            check_text(s)?;
            let len = s.chars().count();
            if let Some(min) = input.min_length
                && len < min
            {
                return Err(format!(
                    "`{}` is too short (at least {min} characters)",
                    display_safe(s)
                ));
            }
            if let Some(max) = input.max_length
                && len > max
            {
                return Err(format!(
                    "`{}` is too long (at most {max} characters)",
                    display_safe(s)
                ));
            }
            check_pattern(input.pattern.as_ref(), s)?;
            check_allowed(input, value)
        }
        InputValue::List(items) => {
            for item in items {
                check_text(item)?;
                check_pattern(input.pattern.as_ref(), item)?;
                if !input.allowed_values.is_empty() {
                    check_allowed(input, &InputValue::String(item.clone()))?;
                }
            }
            Ok(())
        }
        InputValue::Map(map) => {
            for (k, v) in map {
                if k.is_empty() {
                    return Err("map keys must not be empty".into());
                }
                check_text(k).map_err(|e| format!("key `{}`: {e}", display_safe(k)))?;
                check_text(v).map_err(|e| format!("value of `{}`: {e}", display_safe(k)))?;
                if let Some(re) = &input.key_pattern
                    && !re.is_match(k)
                {
                    return Err(format!(
                        "key `{}` is not allowed (expected {})",
                        display_safe(k),
                        pattern_hint(re)
                    ));
                }
                check_pattern(input.pattern.as_ref(), v)
                    .map_err(|e| format!("value of `{}`: {e}", display_safe(k)))?;
            }
            Ok(())
        }
    }
}

/// Characters that could change how the generated file reads: control characters (newlines,
/// tabs, escapes), line and paragraph separators, and bidirectional controls and marks that can
/// make reviewed code look different from what it is. TfPilot's marker text is refused too.
pub(crate) fn check_text(s: &str) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| is_deceptive(*c)) {
        return Err(format!(
            "contains the character {}, which is not allowed (no newlines, tabs, control or text-direction characters)",
            c.escape_unicode()
        ));
    }
    let lower = s.to_ascii_lowercase();
    if lower.contains("tfpilot:begin:") || lower.contains("tfpilot:end:") {
        return Err("must not contain TfPilot's block marker text".into());
    }
    Ok(())
}

/// A character that changes how the text around it is laid out: a control character (line
/// breaks, NEL), a line or paragraph separator, or a bidirectional control or mark (the Trojan
/// Source set: embeddings, overrides, isolates, and the LRM, RLM and ALM marks).
pub(crate) fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

pub(super) fn pattern_hint(re: &Regex) -> String {
    let p = re.as_str();
    let inner = p
        .strip_prefix("^(?:")
        .and_then(|p| p.strip_suffix(")$"))
        .unwrap_or(p);
    format!("a value matching `{inner}`")
}

pub(super) fn check_pattern(re: Option<&Regex>, s: &str) -> Result<(), String> {
    match re {
        Some(re) if !re.is_match(s) => Err(format!(
            "`{}` is not allowed (expected {})",
            display_safe(s),
            pattern_hint(re)
        )),
        _ => Ok(()),
    }
}

pub(super) fn check_allowed(input: &InputSpec, value: &InputValue) -> Result<(), String> {
    if input.allowed_values.is_empty() || input.allowed_values.contains(value) {
        return Ok(());
    }
    let allowed: Vec<String> = input
        .allowed_values
        .iter()
        .map(|a| format!("`{a}`"))
        .collect();
    Err(format!(
        "`{}` is not one of {}",
        display_safe(&value.to_plain_string()),
        allowed.join(", ")
    ))
}

/// AWS tag rules, plus: the standard tags are TfPilot's.
pub(super) fn check_tags(value: &InputValue, ctx: Option<&ConfigContext>) -> Result<(), String> {
    let InputValue::Map(tags) = value else {
        return Ok(());
    };
    let allowed = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    };
    let mut problems = Vec::new();
    let standard: Vec<&str> = match ctx {
        Some(ctx) => standard_tags(ctx).iter().map(|(k, _)| *k).collect(),
        None => vec!["ManagedBy", "TfPilotRequestId", "Project", "Environment"],
    };
    if tags.len() > 50 - standard.len() {
        problems.push(format!(
            "at most {} tags can be added (AWS allows 50, TfPilot sets {})",
            50 - standard.len(),
            standard.len()
        ));
    }
    for (k, v) in tags {
        if standard.iter().any(|s| s.eq_ignore_ascii_case(k)) {
            problems.push(format!("tag `{k}` is set by TfPilot and cannot be changed"));
        } else if k.chars().count() > 128 {
            problems.push(format!(
                "tag key `{}` is longer than 128 characters",
                display_safe(k)
            ));
        } else if k.to_ascii_lowercase().starts_with("aws:") {
            problems.push(format!(
                "tag key `{}` uses the reserved `aws:` prefix",
                display_safe(k)
            ));
        } else if !allowed(k) {
            problems.push(format!(
                "tag key `{}` may only hold letters, digits, spaces and `_.:/=+-@`",
                display_safe(k)
            ));
        }
        if v.chars().count() > 256 {
            problems.push(format!(
                "the value of tag `{}` is longer than 256 characters",
                display_safe(k)
            ));
        } else if !allowed(v) {
            problems.push(format!(
                "the value of tag `{}` may only hold letters, digits, spaces and `_.:/=+-@`",
                display_safe(k)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
