//! Turning what a person typed (`yes`, `30 days`, `a, b`, `Team=x`) into a typed value.

use super::*;

/// Text as Terraform will see it: trimmed and in Unicode NFC (Terraform normalizes every string
/// to NFC, so `é` written as `e` + combining accent would otherwise differ from what we store and
/// could make two distinct-looking map keys collide at plan time).
pub(super) fn normalize_text(s: &str) -> String {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
        .normalize(s.trim())
        .into_owned()
}

pub(super) fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(normalize_text(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a true/false value",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Turns a raw value into the input's type, accepting the obvious spellings.
pub(super) fn coerce(input: &InputSpec, raw: &Value) -> Result<InputValue, String> {
    let value = match input.input_type {
        InputType::String => match scalar_to_string(raw) {
            Some(s) => InputValue::String(canonical_allowed(input, s)),
            None => return Err(format!("expected text, got {}", kind_of(raw))),
        },
        InputType::Bool => InputValue::Bool(coerce_bool(raw)?),
        InputType::Number => InputValue::Number(coerce_number(input, raw)?),
        InputType::List => InputValue::List(
            coerce_list(raw)?
                .into_iter()
                .map(|s| canonical_allowed(input, s))
                .collect(),
        ),
        InputType::Map => InputValue::Map(coerce_map(raw)?),
    };
    Ok(value)
}

/// Allowed values are matched without regard to case and stored in the catalogue's spelling.
pub(super) fn canonical_allowed(input: &InputSpec, s: String) -> String {
    input
        .allowed_values
        .iter()
        .find_map(|a| match a {
            InputValue::String(a) if a.eq_ignore_ascii_case(&s) => Some(a.clone()),
            _ => None,
        })
        .unwrap_or(s)
}

pub(super) fn coerce_bool(raw: &Value) -> Result<bool, String> {
    match raw {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" | "1" | "enabled" | "enable" => Ok(true),
            "false" | "no" | "n" | "off" | "0" | "disabled" | "disable" => Ok(false),
            _ => Err(format!(
                "`{}` is not true or false (yes/no and on/off work too)",
                display_safe(s)
            )),
        },
        other => Err(format!("expected true or false, got {}", kind_of(other))),
    }
}

pub(super) fn coerce_number(input: &InputSpec, raw: &Value) -> Result<serde_json::Number, String> {
    let (n, shown) = match raw {
        Value::Number(n) => (n.as_f64().unwrap_or(f64::NAN), n.to_string()),
        Value::String(s) => (
            parse_number_with_unit(s, input.unit.as_deref())?,
            s.trim().to_owned(),
        ),
        other => return Err(format!("expected a number, got {}", kind_of(other))),
    };
    if !n.is_finite() {
        return Err(format!("`{}` is not a number", display_safe(&shown)));
    }
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        // Whole numbers are stored as integers so `30` renders as `30`, not `30.0`.
        Ok(serde_json::Number::from(n as i64))
    } else if input.integer {
        Err(format!("`{}` must be a whole number", display_safe(&shown)))
    } else {
        serde_json::Number::from_f64(n)
            .ok_or_else(|| format!("`{}` is not a number", display_safe(&shown)))
    }
}

/// `30`, `30 days`, `1 day`, `-2.5`; a unit word must be the input's own unit.
pub(super) fn parse_number_with_unit(s: &str, unit: Option<&str>) -> Result<f64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(t.len());
    let (num, rest) = t.split_at(split);
    let rest = rest.trim();
    let unit_ok = rest.is_empty()
        || unit.is_some_and(|u| {
            rest.eq_ignore_ascii_case(u)
                || u.strip_suffix('s')
                    .is_some_and(|singular| rest.eq_ignore_ascii_case(singular))
        });
    let parsed = num.parse::<f64>().ok().filter(|n| n.is_finite());
    match (parsed, unit_ok) {
        (Some(n), true) => Ok(n),
        (Some(_), false) => Err(match unit {
            Some(u) => format!("`{}`: give the number in {u}", display_safe(t)),
            None => format!("`{}` is not a plain number", display_safe(t)),
        }),
        (None, _) => Err(format!("`{}` is not a number", display_safe(t))),
    }
}

pub(super) fn coerce_list(raw: &Value) -> Result<Vec<String>, String> {
    let items: Vec<Value> = match raw {
        Value::Array(items) => items.clone(),
        Value::String(s) if s.trim_start().starts_with('[') => {
            serde_json::from_str(s).map_err(|_| {
                format!(
                    "`{}` is not a list; write a,b,c or a JSON list",
                    display_safe(s)
                )
            })?
        }
        Value::String(s) => {
            return Ok(s
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .collect());
        }
        other => vec![other.clone()],
    };
    items
        .iter()
        .map(|i| {
            scalar_to_string(i)
                .ok_or_else(|| format!("list items must be text, got {}", kind_of(i)))
        })
        .collect()
}

pub(super) fn coerce_map(raw: &Value) -> Result<BTreeMap<String, String>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    match raw {
        Value::String(s) if !s.trim_start().starts_with('{') => {
            for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((k, v)) = pair.split_once('=').or_else(|| pair.split_once(':')) else {
                    return Err(format!("`{}` is not a key=value pair", display_safe(pair)));
                };
                pairs.push((normalize_text(k), normalize_text(v)));
            }
        }
        Value::String(_) | Value::Object(_) => {
            let object: serde_json::Map<String, Value> = match raw {
                Value::Object(o) => o.clone(),
                _ => serde_json::from_str(raw.as_str().unwrap_or_default()).map_err(|_| {
                    format!(
                        "`{}` is not a map; write key=value,key2=value2 or a JSON object",
                        display_safe(raw.as_str().unwrap_or_default())
                    )
                })?,
            };
            for (k, v) in &object {
                let v = scalar_to_string(v).ok_or_else(|| {
                    format!(
                        "the value of `{}` must be text, got {}",
                        display_safe(k),
                        kind_of(v)
                    )
                })?;
                pairs.push((normalize_text(k), v));
            }
        }
        other => {
            return Err(format!(
                "expected a map of key=value pairs, got {}",
                kind_of(other)
            ));
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in pairs {
        if let Some(previous) = out.insert(k.clone(), v.clone())
            && previous != v
        {
            // Also catches keys that only differ in Unicode normalization, which Terraform
            // would see as one key.
            return Err(format!(
                "key `{}` is given twice with different values",
                display_safe(&k)
            ));
        }
    }
    Ok(out)
}
