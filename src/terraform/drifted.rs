//! What a drift check (`terraform plan -detailed-exitcode` on the base branch) found, per
//! request: the changed resources under `module.tfpilot_<id>`, and that module's part of the
//! plan text. Resources outside TfPilot's modules are not any request's.

use std::collections::BTreeMap;

use super::plan::{Action, PlanSummary};
use crate::ids::RequestId;

/// The changed resources of each request's module, as `"<address> (<action>)"`, in plan order.
pub fn changes_by_request(summary: &PlanSummary) -> BTreeMap<RequestId, Vec<String>> {
    let mut out: BTreeMap<RequestId, Vec<String>> = BTreeMap::new();
    for change in &summary.changes {
        if matches!(change.action, Action::Read | Action::NoOp) {
            continue;
        }
        if let Some(id) = request_of(&change.address) {
            out.entry(id)
                .or_default()
                .push(format!("{} ({})", change.address, change.action));
        }
    }
    out
}

/// The request whose module holds `address` (`module.tfpilot_<id>.…`).
pub fn request_of(address: &str) -> Option<RequestId> {
    let rest = address.strip_prefix("module.tfpilot_")?;
    let id = rest.split(['.', '[']).next()?;
    id.parse().ok()
}

/// The part of `terraform show` text about request `id`'s resources: each `# module.tfpilot_<id>…`
/// resource block, up to the next resource or the plan's summary.
pub fn excerpt(plan_text: &str, id: RequestId) -> String {
    let wanted = format!("# module.tfpilot_{id}.");
    let mut out = String::new();
    let mut inside = false;
    for line in plan_text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("# ") {
            inside = trimmed.starts_with(&wanted);
        } else if trimmed.starts_with("Plan:") || trimmed.starts_with("Changes to Outputs") {
            inside = false;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b7c5b8e-7a0e-4a5e-9a4e-1f2f3a4b5c6d";

    #[test]
    fn changes_are_grouped_by_the_request_whose_module_holds_them() {
        let json = format!(
            r#"{{"format_version":"1.2","resource_changes":[
            {{"address":"module.tfpilot_{ID}.terraform_data.bucket","change":{{"actions":["update"]}}}},
            {{"address":"module.tfpilot_{ID}.terraform_data.versioning[0]","change":{{"actions":["delete","create"]}}}},
            {{"address":"module.tfpilot_{ID}.terraform_data.tags","change":{{"actions":["no-op"]}}}},
            {{"address":"aws_s3_bucket.hand_written","change":{{"actions":["update"]}}}}
            ]}}"#
        );
        let summary = PlanSummary::from_json(json.as_bytes()).unwrap();
        let by = changes_by_request(&summary);
        let id: RequestId = ID.parse().unwrap();
        assert_eq!(by.len(), 1, "hand-written resources are nobody's");
        assert_eq!(
            by[&id],
            [
                format!("module.tfpilot_{ID}.terraform_data.bucket (update)"),
                format!("module.tfpilot_{ID}.terraform_data.versioning[0] (replace)"),
            ]
        );
        assert_eq!(request_of("module.tfpilot_nope.x"), None);
    }

    #[test]
    fn the_excerpt_holds_only_the_requests_resources() {
        let text = format!(
            "Terraform will perform the following actions:\n\n  # module.tfpilot_{ID}.terraform_data.bucket will be updated in-place\n  ~ resource \"terraform_data\" \"bucket\" {{\n      ~ input = \"a\" -> \"b\"\n    }}\n\n  # module.other.x will be updated in-place\n  ~ resource \"x\" \"y\" {{}}\n\nPlan: 0 to add, 2 to change, 0 to destroy.\n"
        );
        let got = excerpt(&text, ID.parse().unwrap());
        assert!(got.contains("~ input = \"a\" -> \"b\""), "{got}");
        assert!(!got.contains("module.other"), "{got}");
        assert!(!got.contains("Plan:"), "{got}");
    }
}
