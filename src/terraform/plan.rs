//! Terraform plans as TfPilot reads them: the summary counted from `terraform show -json`, the
//! values Terraform marks sensitive, masking of those (and of configured patterns) in the plan text,
//! and the plan text rewritten so GitHub's `diff` highlighting colours it.
//!
//! Pure functions over the workflow's artifacts; nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// What a plan will do, counted the way `terraform plan` counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanSummary {
    pub import: usize,
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub forget: usize,
    /// Data sources read during apply (not part of Terraform's "Plan:" line).
    pub read: usize,
    /// Whether any root output changes.
    pub outputs_change: bool,
    /// Every resource that is not a no-op, in plan order.
    pub changes: Vec<ResourceChange>,
}

/// One resource's planned action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    pub address: String,
    pub action: Action,
    pub importing: bool,
}

/// The action Terraform plans for one resource (from `change.actions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Create,
    Update,
    Delete,
    /// Delete then create, or create then delete.
    Replace,
    Read,
    Forget,
    NoOp,
}

impl Action {
    fn from_actions(actions: &[String]) -> Result<Self, PlanError> {
        let words: Vec<&str> = actions.iter().map(String::as_str).collect();
        Ok(match words.as_slice() {
            ["no-op"] => Action::NoOp,
            ["create"] => Action::Create,
            ["read"] => Action::Read,
            ["update"] => Action::Update,
            ["delete"] => Action::Delete,
            ["forget"] => Action::Forget,
            ["delete", "create"] | ["create", "delete"] => Action::Replace,
            // Terraform 1.7+: `removed` with `lifecycle { destroy = false }` on a replaced object.
            ["create", "forget"] | ["forget", "create"] => Action::Replace,
            _ => return Err(PlanError::UnknownActions(actions.join(","))),
        })
    }

    /// Whether this action removes an existing object.
    pub fn is_destructive(self) -> bool {
        matches!(self, Action::Delete | Action::Replace)
    }

    fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "destroy",
            Action::Replace => "replace",
            Action::Read => "read",
            Action::Forget => "forget",
            Action::NoOp => "no-op",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the plan JSON could not be read: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the plan JSON has format version {0}; TfPilot reads format 1.x")]
    UnsupportedFormat(String),
    #[error("the plan JSON lists actions TfPilot does not know: [{0}]")]
    UnknownActions(String),
}

/// `plan.json` as TfPilot reads it, in one pass over the bytes: values and masks stay raw
/// JSON borrowed from the input (nothing of a large plan is copied), and what TfPilot does not
/// read (`configuration`, `root_module` resources) is skipped without being built.
#[derive(Deserialize)]
struct PlanDoc<'a> {
    format_version: String,
    #[serde(default, borrow)]
    resource_changes: Vec<ResourceChangeDoc<'a>>,
    #[serde(default, borrow)]
    output_changes: Option<&'a RawValue>,
    #[serde(default, borrow)]
    planned_values: Option<ValuesDoc<'a>>,
    #[serde(default, borrow)]
    prior_state: Option<ValuesDoc<'a>>,
}

#[derive(Deserialize)]
struct ResourceChangeDoc<'a> {
    address: String,
    #[serde(borrow)]
    change: ChangeDoc<'a>,
}

#[derive(Deserialize)]
struct ChangeDoc<'a> {
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    importing: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    before: Option<&'a RawValue>,
    #[serde(default, borrow)]
    after: Option<&'a RawValue>,
    #[serde(default, borrow)]
    after_unknown: Option<&'a RawValue>,
    #[serde(default, borrow)]
    before_sensitive: Option<&'a RawValue>,
    #[serde(default, borrow)]
    after_sensitive: Option<&'a RawValue>,
}

/// `planned_values` (outputs at the top) or `prior_state` (outputs under `values`).
#[derive(Deserialize)]
struct ValuesDoc<'a> {
    #[serde(default, borrow)]
    outputs: BTreeMap<String, OutputDoc<'a>>,
    #[serde(default, borrow)]
    values: Option<Box<ValuesDoc<'a>>>,
}

#[derive(Deserialize)]
struct OutputDoc<'a> {
    #[serde(default)]
    sensitive: bool,
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
}

/// What TfPilot takes from `plan.json`: the summary and every value it marks sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanReport {
    pub summary: PlanSummary,
    /// The sensitive values (resource attributes, outputs) as they would appear in text.
    pub sensitive: BTreeSet<String>,
    /// A digest of the resource changes (each resource's address, actions and before/after
    /// values, and the output changes): two plans with the same digest change the same
    /// resources in the same way, so an approval of one holds for the other. Hex SHA-256.
    pub digest: String,
}

impl PlanReport {
    /// Reads `terraform show -json <planfile>` output once.
    pub fn from_json(json: &[u8]) -> Result<Self, PlanError> {
        let plan: PlanDoc<'_> = serde_json::from_slice(json)?;
        if !plan.format_version.starts_with("1.") {
            return Err(PlanError::UnsupportedFormat(plan.format_version));
        }
        let outputs: BTreeMap<String, ChangeDoc<'_>> = match plan.output_changes {
            Some(raw) => serde_json::from_str(raw.get())?,
            None => BTreeMap::new(),
        };
        let mut sensitive = BTreeSet::new();
        for rc in &plan.resource_changes {
            rc.change.collect_sensitive(&mut sensitive)?;
        }
        for oc in outputs.values() {
            oc.collect_sensitive(&mut sensitive)?;
        }
        let digest = digest(&plan)?;
        for section in [&plan.planned_values, &plan.prior_state]
            .into_iter()
            .flatten()
        {
            let outputs = section
                .outputs
                .values()
                .chain(section.values.iter().flat_map(|v| v.outputs.values()));
            for o in outputs {
                if let (true, Some(v)) = (o.sensitive, o.value) {
                    collect_masked(
                        &serde_json::from_str(v.get())?,
                        &Value::Bool(true),
                        &mut sensitive,
                    );
                }
            }
        }
        let summary = PlanSummary::from_doc(&plan, &outputs)?;
        Ok(Self {
            summary,
            sensitive,
            digest,
        })
    }
}

impl ChangeDoc<'_> {
    /// The leaves of `before`/`after` their masks mark; a value is parsed only when its mask
    /// marks something.
    fn collect_sensitive(&self, out: &mut BTreeSet<String>) -> Result<(), PlanError> {
        for (value, mask) in [
            (self.before, self.before_sensitive),
            (self.after, self.after_sensitive),
        ] {
            let (Some(value), Some(mask)) = (value, mask) else {
                continue;
            };
            if matches!(mask.get().trim(), "false" | "{}" | "[]" | "null") {
                continue;
            }
            let mask: Value = serde_json::from_str(mask.get())?;
            let value: Value = serde_json::from_str(value.get())?;
            collect_masked(&value, &mask, out);
        }
        Ok(())
    }
}

impl PlanSummary {
    /// Counts the changes in `terraform show -json <planfile>` output.
    pub fn from_json(json: &[u8]) -> Result<Self, PlanError> {
        Ok(PlanReport::from_json(json)?.summary)
    }

    fn from_doc(
        plan: &PlanDoc<'_>,
        outputs: &BTreeMap<String, ChangeDoc<'_>>,
    ) -> Result<Self, PlanError> {
        let mut summary = PlanSummary::default();
        for rc in &plan.resource_changes {
            let action = Action::from_actions(&rc.change.actions)?;
            let importing = rc.change.importing.is_some();
            if importing {
                summary.import += 1;
            }
            match action {
                Action::Create => summary.add += 1,
                Action::Update => summary.change += 1,
                Action::Delete => summary.destroy += 1,
                Action::Replace => {
                    summary.add += 1;
                    summary.destroy += 1;
                }
                Action::Read => summary.read += 1,
                Action::Forget => summary.forget += 1,
                Action::NoOp => {}
            }
            if action != Action::NoOp || importing {
                summary.changes.push(ResourceChange {
                    address: rc.address.clone(),
                    action,
                    importing,
                });
            }
        }
        summary.outputs_change = outputs
            .values()
            .any(|oc| oc.actions.iter().any(|w| w != "no-op"));
        Ok(summary)
    }

    /// Whether applying this plan would change anything at all.
    pub fn has_changes(&self) -> bool {
        self.import + self.add + self.change + self.destroy + self.forget > 0 || self.outputs_change
    }

    /// The resources this plan destroys or replaces.
    pub fn destructive(&self) -> impl Iterator<Item = &ResourceChange> {
        self.changes.iter().filter(|c| c.action.is_destructive())
    }

    /// Terraform's own summary line, e.g. "Plan: 1 to add, 0 to change, 0 to destroy."
    pub fn line(&self) -> String {
        if self.import + self.add + self.change + self.destroy + self.forget == 0 {
            return if self.outputs_change {
                "Changes to Outputs only; no infrastructure changes.".to_owned()
            } else {
                "No changes. Your infrastructure matches the configuration.".to_owned()
            };
        }
        let mut line = String::from("Plan: ");
        if self.import > 0 {
            line.push_str(&format!("{} to import, ", self.import));
        }
        line.push_str(&format!(
            "{} to add, {} to change, {} to destroy",
            self.add, self.change, self.destroy
        ));
        if self.forget > 0 {
            line.push_str(&format!(", {} to forget", self.forget));
        }
        line.push('.');
        line
    }
}

/// A digest of the plan's resource changes (each resource's address, actions and before/after
/// values, and the output changes): two plans with the same digest change the same resources
/// in the same way, so an approval of one holds for the other. Hex SHA-256.
pub fn changes_digest(json: &[u8]) -> Result<String, PlanError> {
    Ok(PlanReport::from_json(json)?.digest)
}

/// [`PlanReport::digest`]: each resource change canonical (values parsed one resource at a time,
/// keys sorted), sorted, then the output changes.
fn digest(plan: &PlanDoc<'_>) -> Result<String, PlanError> {
    use sha2::Digest as _;
    let value = |raw: Option<&RawValue>| -> Result<Value, PlanError> {
        Ok(match raw {
            Some(raw) => serde_json::from_str(raw.get())?,
            None => Value::Null,
        })
    };
    let mut lines = Vec::with_capacity(plan.resource_changes.len() + 1);
    for rc in &plan.resource_changes {
        let c = &rc.change;
        lines.push(
            serde_json::json!([
                rc.address,
                c.actions,
                value(c.before)?,
                value(c.after)?,
                value(c.after_unknown)?,
            ])
            .to_string(),
        );
    }
    lines.sort();
    if plan.output_changes.is_some() {
        lines.push(value(plan.output_changes)?.to_string());
    }
    let mut hasher = sha2::Sha256::new();
    for line in lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every value the plan marks sensitive (resource attributes, outputs), as the strings they would
/// appear as in text. Numbers and booleans are included in their JSON form.
pub fn sensitive_values(json: &[u8]) -> Result<BTreeSet<String>, PlanError> {
    Ok(PlanReport::from_json(json)?.sensitive)
}

/// Walks `value` alongside Terraform's sensitivity mask (`true`, or an object/array of masks
/// shaped like the value) and collects the leaves the mask marks.
fn collect_masked(value: &Value, mask: &Value, out: &mut BTreeSet<String>) {
    match mask {
        Value::Bool(true) => collect_leaves(value, out),
        Value::Object(m) => {
            if let Value::Object(v) = value {
                for (k, sub_mask) in m {
                    if let Some(sub) = v.get(k) {
                        collect_masked(sub, sub_mask, out);
                    }
                }
            }
        }
        Value::Array(m) => {
            if let Value::Array(v) = value {
                for (sub, sub_mask) in v.iter().zip(m) {
                    collect_masked(sub, sub_mask, out);
                }
            }
        }
        _ => {}
    }
}

fn collect_leaves(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) if !s.is_empty() => {
            out.insert(s.clone());
        }
        Value::Number(n) => {
            out.insert(n.to_string());
        }
        Value::Array(items) => items.iter().for_each(|i| collect_leaves(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_leaves(i, out)),
        _ => {}
    }
}

/// The text that replaces anything masked.
pub const MASK: &str = "(sensitive value)";

/// Shorter sensitive values are masked only where they stand as a whole quoted string, so a
/// sensitive `"1"` does not garble every `1` in the plan.
const MIN_BARE_MASK_LEN: usize = 6;

/// Patterns masked in every plan by default: AWS access key ids, GitHub tokens, PEM private keys.
pub const DEFAULT_MASK_PATTERNS: &[&str] = &[
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
];

/// Masks secrets in text before it is posted: literal values (the plan's sensitive values) and
/// regular expressions (the defaults plus configured ones).
#[derive(Debug, Clone)]
pub struct Masker {
    patterns: Vec<Regex>,
}

#[derive(Debug, thiserror::Error)]
#[error("mask pattern `{pattern}` is not a valid regular expression: {source}")]
pub struct MaskPatternError {
    pattern: String,
    source: regex::Error,
}

impl Masker {
    /// The default patterns plus `extra` (e.g. from configuration).
    pub fn new<S: AsRef<str>>(extra: &[S]) -> Result<Self, MaskPatternError> {
        let patterns = DEFAULT_MASK_PATTERNS
            .iter()
            .copied()
            .chain(extra.iter().map(AsRef::as_ref))
            .map(|p| {
                Regex::new(p).map_err(|source| MaskPatternError {
                    pattern: p.to_owned(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Replaces every sensitive literal and every pattern match in `text` with [`MASK`].
    pub fn mask(&self, text: &str, sensitive: &BTreeSet<String>) -> String {
        self.mask_owned(text.to_owned(), sensitive)
    }

    /// [`Masker::mask`] on a text it owns: when nothing is to be masked, the text itself comes
    /// back (no copy of a large plan).
    pub fn mask_owned(&self, text: String, sensitive: &BTreeSet<String>) -> String {
        let mut needles: Vec<String> = Vec::new();
        for value in sensitive {
            // Terraform prints strings quoted with JSON-like escapes.
            let quoted = serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""));
            needles.push(quoted);
            if value.chars().count() >= MIN_BARE_MASK_LEN {
                needles.push(value.clone());
            }
            // A multi-line string is shown as an indented heredoc: mask it line by line.
            if value.contains('\n') {
                needles.extend(
                    value
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.chars().count() >= MIN_BARE_MASK_LEN)
                        .map(str::to_owned),
                );
            }
        }
        let mut out = if needles.is_empty() {
            text
        } else {
            match AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&needles)
            {
                Ok(ac) => {
                    let replacements: Vec<String> = needles
                        .iter()
                        .map(|n| {
                            if n.starts_with('"') {
                                format!("\"{MASK}\"")
                            } else {
                                MASK.to_owned()
                            }
                        })
                        .collect();
                    ac.replace_all(&text, &replacements)
                }
                // Building only fails for pathological sizes; refuse to leak: mask everything.
                Err(_) => return MASK.to_owned(),
            }
        };
        for re in &self.patterns {
            if re.is_match(&out) {
                out = re.replace_all(&out, MASK).into_owned();
            }
        }
        out
    }
}

/// Bytes kept before the shown end of a long plan when it is cut: anything masked by a pattern
/// (a PEM private key is a few KiB) that reaches into the shown end starts within them, so it is
/// still masked whole.
pub const CUT_MARGIN: usize = 64 * 1024;

/// Cuts `text` to at most `keep` bytes (plus [`CUT_MARGIN`] and the longest sensitive value) from
/// its end, at a line start, and says how many lines were cut. The big text is dropped, not
/// copied: what a long plan costs to post is its end.
pub fn keep_end(mut text: String, keep: usize, sensitive: &BTreeSet<String>) -> (String, usize) {
    let longest = sensitive.iter().map(String::len).max().unwrap_or(0);
    let keep = keep
        .saturating_add(CUT_MARGIN)
        .saturating_add(longest.saturating_mul(2));
    if text.len() <= keep {
        return (text, 0);
    }
    let from = text.len() - keep;
    let cut = match text.as_bytes()[from..].iter().position(|b| *b == b'\n') {
        Some(i) => from + i + 1,
        None => text.len(),
    };
    let lines = text.as_bytes()[..cut]
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    let tail = text.split_off(cut);
    drop(text);
    (tail, lines)
}

/// Rewrites `terraform show -no-color` output so the change symbols stand at the start of the line,
/// where GitHub's `diff` highlighting looks: `  + resource` → `+   resource`. `~` (update in
/// place) becomes `!`, which the diff grammar colours as a change; `-/+` and `+/-` keep their
/// first character in front.
pub fn to_github_diff(plan_text: &str) -> String {
    let mut out = String::with_capacity(plan_text.len() + 16);
    for line in plan_text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b.strip_suffix('\r').unwrap_or(b), "\n"),
            None => (line, ""),
        };
        let trimmed = body.trim_start_matches(' ');
        let indent = body.len() - trimmed.len();
        let symbol = ["-/+ ", "+/- ", "+ ", "- ", "~ "]
            .into_iter()
            .find(|s| trimmed.starts_with(s) || trimmed == s.trim_end());
        match symbol {
            Some(sym) => {
                let sym = sym.trim_end();
                let lead = if sym == "~" { "!" } else { &sym[..1] };
                let rest = &trimmed[sym.len()..];
                out.push_str(lead);
                out.push_str(&" ".repeat(indent));
                out.push_str(&sym[1..]);
                out.push_str(rest);
            }
            None => {
                out.push(' ');
                out.push_str(body);
            }
        }
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_with(changes: &[(&str, &[&str])]) -> Vec<u8> {
        let rcs: Vec<Value> = changes
            .iter()
            .map(|(addr, actions)| {
                serde_json::json!({
                    "address": addr,
                    "change": { "actions": actions, "before": null, "after": {} }
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "format_version": "1.2",
            "resource_changes": rcs,
        }))
        .unwrap()
    }

    #[test]
    fn the_digest_changes_with_the_changes_only() {
        let a = plan_with(&[("a.one", &["create"]), ("a.two", &["update"])]);
        let b = plan_with(&[("a.two", &["update"]), ("a.one", &["create"])]);
        let c = plan_with(&[("a.one", &["create"]), ("a.two", &["delete"])]);
        let d = plan_with(&[("a.one", &["create"])]);
        let digest = |j: &[u8]| changes_digest(j).unwrap();
        assert_eq!(digest(&a), digest(&b), "order does not matter");
        assert_ne!(digest(&a), digest(&c));
        assert_ne!(digest(&a), digest(&d));
        let mut v: Value = serde_json::from_slice(&a).unwrap();
        v["resource_changes"][0]["change"]["after"] = serde_json::json!({"tags": {"team": "x"}});
        assert_ne!(
            digest(&a),
            digest(&serde_json::to_vec(&v).unwrap()),
            "values count"
        );
        assert_eq!(digest(&a).len(), 64);
    }

    #[test]
    fn counts_like_terraform() {
        let json = plan_with(&[
            ("a.one", &["create"]),
            ("a.two", &["update"]),
            ("a.three", &["delete", "create"]),
            ("a.four", &["create", "delete"]),
            ("a.five", &["delete"]),
            ("data.x.y", &["read"]),
            ("a.six", &["no-op"]),
            ("a.seven", &["forget"]),
        ]);
        let s = PlanSummary::from_json(&json).unwrap();
        assert_eq!(
            (s.add, s.change, s.destroy, s.read, s.forget),
            (3, 1, 3, 1, 1)
        );
        assert_eq!(
            s.line(),
            "Plan: 3 to add, 1 to change, 3 to destroy, 1 to forget."
        );
        let destructive: Vec<_> = s.destructive().map(|c| c.address.as_str()).collect();
        assert_eq!(destructive, ["a.three", "a.four", "a.five"]);
        assert_eq!(s.changes.len(), 7, "no-op resources are not listed");
    }

    #[test]
    fn imports_are_counted_from_the_importing_field() {
        let json = serde_json::to_vec(&serde_json::json!({
            "format_version": "1.2",
            "resource_changes": [
                {"address": "a.b", "change": {"actions": ["no-op"], "importing": {"id": "x"}}}
            ]
        }))
        .unwrap();
        let s = PlanSummary::from_json(&json).unwrap();
        assert_eq!(
            s.line(),
            "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy."
        );
        assert!(s.has_changes());
    }

    #[test]
    fn an_empty_plan_says_no_changes() {
        let s = PlanSummary::from_json(&plan_with(&[])).unwrap();
        assert!(!s.has_changes());
        assert!(s.line().starts_with("No changes."));
    }

    #[test]
    fn unknown_actions_and_formats_are_errors_not_guesses() {
        let err = PlanSummary::from_json(&plan_with(&[("a.b", &["explode"])])).unwrap_err();
        assert!(err.to_string().contains("explode"), "{err}");
        let v2 = br#"{"format_version":"2.0","resource_changes":[]}"#;
        assert!(matches!(
            PlanSummary::from_json(v2),
            Err(PlanError::UnsupportedFormat(_))
        ));
        assert!(PlanSummary::from_json(b"not json").is_err());
    }

    #[test]
    fn sensitive_values_follow_terraforms_masks() {
        let json = serde_json::to_vec(&serde_json::json!({
            "format_version": "1.2",
            "resource_changes": [{
                "address": "a.b",
                "change": {
                    "actions": ["update"],
                    "before": {"password": "old-secret-value", "name": "public"},
                    "after": {"password": "new-secret-value", "name": "public", "tags": ["t1", "key-123456"]},
                    "before_sensitive": {"password": true},
                    "after_sensitive": {"password": true, "tags": [false, true]}
                }
            }],
            "output_changes": {
                "token": {"actions": ["create"], "before": null, "after": "output-secret",
                          "before_sensitive": false, "after_sensitive": true}
            },
            "planned_values": {"outputs": {"token": {"sensitive": true, "value": "output-secret"}}}
        }))
        .unwrap();
        let values = sensitive_values(&json).unwrap();
        let expected: BTreeSet<String> = [
            "old-secret-value",
            "new-secret-value",
            "key-123456",
            "output-secret",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(values, expected);
    }

    #[test]
    fn masking_replaces_literals_and_patterns() {
        let masker = Masker::new(&["internal-[0-9]+"]).unwrap();
        let sensitive: BTreeSet<String> = ["hunter2-long", "ab"]
            .into_iter()
            .map(String::from)
            .collect();
        let text = "password = \"hunter2-long\"\nnote = \"x hunter2-long y\"\nshort = \"ab\"\nabc = lab\nkey = AKIAABCDEFGHIJKLMNOP\nhost = internal-42\n";
        let masked = masker.mask(text, &sensitive);
        assert!(!masked.contains("hunter2"), "{masked}");
        assert!(!masked.contains("AKIAABCDEFGHIJKLMNOP"), "{masked}");
        assert!(!masked.contains("internal-42"), "{masked}");
        assert!(masked.contains("short = \"(sensitive value)\""), "{masked}");
        assert!(
            masked.contains("abc = lab"),
            "short values are masked only when quoted: {masked}"
        );
    }

    /// Terraform shows a multi-line string as an indented heredoc, so the value never stands in
    /// the text as one piece: each of its lines must be masked where it appears.
    #[test]
    fn multi_line_sensitive_values_are_masked_line_by_line() {
        let masker = Masker::new::<&str>(&[]).unwrap();
        let secret = "client_secret=Zq8vK2mW9xLp\nsigning_key=Hf3nR7tY1uQe\nok\n";
        let sensitive: BTreeSet<String> = [secret.to_owned()].into();
        let text = "  + resource \"terraform_data\" \"x\" {\n      + input = <<-EOT\n            client_secret=Zq8vK2mW9xLp\n            signing_key=Hf3nR7tY1uQe\n            ok\n        EOT\n    }\n";
        let masked = masker.mask(text, &sensitive);
        assert!(!masked.contains("Zq8vK2mW9xLp"), "{masked}");
        assert!(!masked.contains("Hf3nR7tY1uQe"), "{masked}");
        assert!(
            masked.contains("            ok\n"),
            "short lines stay, like short values: {masked}"
        );
    }

    #[test]
    fn invalid_mask_patterns_are_reported() {
        let err = Masker::new(&["(unclosed"]).unwrap_err();
        assert!(err.to_string().contains("(unclosed"), "{err}");
    }

    #[test]
    fn diff_moves_symbols_to_the_line_start() {
        let text = "  # a.b will be created\n  + resource \"x\" \"y\" {\n      + id = (known after apply)\n      - old = 1 -> null\n      ~ tags = {}\n    }\n-/+ resource \"r\" {\nPlan: 1 to add, 0 to change, 0 to destroy.";
        let diff = to_github_diff(text);
        let lines: Vec<&str> = diff.lines().collect();
        assert_eq!(lines[0], "   # a.b will be created");
        assert_eq!(lines[1], "+   resource \"x\" \"y\" {");
        assert_eq!(lines[2], "+       id = (known after apply)");
        assert_eq!(lines[3], "-       old = 1 -> null");
        assert_eq!(lines[4], "!       tags = {}");
        assert_eq!(lines[5], "     }");
        assert_eq!(lines[6], "-/+ resource \"r\" {");
        assert!(!diff.ends_with('\n'), "no newline is added at the end");
    }

    #[test]
    fn a_long_plan_keeps_its_end_from_a_line_start_and_counts_the_lines_cut() {
        let text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        let total = text.len();
        let (end, cut) = keep_end(text, 1000, &BTreeSet::new());
        assert!(end.len() <= 1000 + CUT_MARGIN, "{}", end.len());
        assert!(end.len() >= CUT_MARGIN, "{}", end.len());
        assert!(
            end.starts_with("line "),
            "cut at a line start: {:?}",
            &end[..20]
        );
        assert!(end.ends_with("line 199999\n"));
        assert_eq!(
            cut + end.lines().count(),
            200_000,
            "every line is cut or kept"
        );
        assert!(total > end.len());

        let short = "a\nb\n".to_owned();
        assert_eq!(keep_end(short.clone(), 1000, &BTreeSet::new()), (short, 0));
    }

    #[test]
    fn a_long_sensitive_value_widens_what_is_kept_before_masking() {
        // Longer than the margin: kept whole only because the cut widens for it, so the masker
        // can still find it (a value cut in two would not match).
        let secret = "s".repeat(2 * CUT_MARGIN);
        let sensitive = BTreeSet::from([secret.clone()]);
        let text = format!(
            "{}  + password = {secret:?}\nPlan: 1 to add.\n",
            "x\n".repeat(200_000)
        );
        let (end, cut) = keep_end(text, 1000, &sensitive);
        assert!(cut > 0, "the plan was cut");
        assert!(
            end.contains(&format!("{secret:?}")),
            "the whole value is kept"
        );
        assert!(end.ends_with("Plan: 1 to add.\n"));
    }

    #[test]
    fn one_parse_finds_the_summary_and_the_sensitive_values_of_changes_outputs_and_state() {
        let json = br#"{"format_version":"1.2",
            "resource_changes":[{"address":"a.b","change":{"actions":["update"],
                "before":{"pw":"old-secret","n":1},"after":{"pw":"new-secret","n":2},
                "before_sensitive":{"pw":true},"after_sensitive":{"pw":true}}},
              {"address":"c.d","change":{"actions":["no-op"],"before":{"x":"plain"},"after":{"x":"plain"},
                "before_sensitive":false,"after_sensitive":{}}}],
            "output_changes":{"o":{"actions":["create"],"before":null,"after":"out-secret","after_sensitive":true}},
            "planned_values":{"outputs":{"p":{"sensitive":true,"value":"planned-secret"}},"root_module":{}},
            "prior_state":{"values":{"outputs":{"q":{"sensitive":true,"value":["state-secret"]}}}},
            "configuration":{"huge":[1,2,3]}}"#;
        let report = PlanReport::from_json(json).unwrap();
        assert_eq!(report.summary.change, 1);
        assert!(report.summary.outputs_change);
        assert_eq!(
            report.sensitive,
            [
                "new-secret",
                "old-secret",
                "out-secret",
                "planned-secret",
                "state-secret"
            ]
            .map(str::to_owned)
            .into()
        );
        assert!(matches!(
            PlanReport::from_json(br#"{"format_version":"2.0"}"#),
            Err(PlanError::UnsupportedFormat(_))
        ));
    }
}
