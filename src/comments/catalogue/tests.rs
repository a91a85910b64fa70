use super::*;

fn key() -> EffectKey {
    "reply:9".parse().unwrap()
}

#[test]
fn modules_lists_every_type_with_its_description() {
    let registry = Registry::embedded();
    let text = modules("/tfpilot", registry, &key());
    insta::assert_snapshot!("modules_list", text);
    for m in registry.modules() {
        assert!(text.contains(&format!("| `{}` |", m.module_type)), "{text}");
    }
}

#[test]
fn module_inputs_show_required_defaults_allowed_values_and_units() {
    let registry = Registry::embedded();
    for m in registry.modules() {
        let text = module_inputs("/tfpilot", m, &key());
        assert!(text.starts_with("<!-- tfpilot:reply:9 -->"), "{text}");
        for input in &m.inputs {
            assert!(text.contains(&format!("| `{}` |", input.name)), "{text}");
        }
        insta::assert_snapshot!(format!("module_inputs_{}", m.module_type), text);
    }
}

#[test]
fn allowed_values_bounds_and_units_read_as_words() {
    let registry = Registry::embedded();
    let s3 = registry.get("s3-bucket").unwrap();
    let expiry = s3
        .inputs
        .iter()
        .find(|i| i.name == "expiration_days")
        .unwrap();
    assert_eq!(allowed(expiry), "1–3650 days; whole numbers");
    let versioning = s3
        .inputs
        .iter()
        .find(|i| i.name == "versioning_enabled")
        .unwrap();
    assert_eq!(allowed(versioning), "any");
}
