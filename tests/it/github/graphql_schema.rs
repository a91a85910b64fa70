//! Every GraphQL document TfPilot sends, checked against GitHub's published schema
//! (`@octokit/graphql-schema`), not against the simulator: each field exists on the type it is
//! selected on, each argument exists on its field, each fragment's type exists, each variable's
//! type exists, and selections on objects are not empty.

use std::collections::{BTreeMap, BTreeSet};

use graphql_parser::query::{
    Definition, OperationDefinition, Selection, SelectionSet, Type as QueryType, TypeCondition,
};
use graphql_parser::schema::{Definition as SchemaDefinition, Type, TypeDefinition};
use tfpilot::github::GRAPHQL_DOCUMENTS;

use crate::support;

/// A field's arguments and the name of its type (lists and non-nulls unwrapped).
struct FieldInfo {
    arguments: BTreeSet<String>,
    type_name: String,
}

/// Object and interface types with their fields, and every type name.
struct Schema {
    fields: BTreeMap<String, BTreeMap<String, FieldInfo>>,
    types: BTreeSet<String>,
}

fn base<'a>(t: &'a Type<'a, String>) -> &'a str {
    match t {
        Type::NamedType(n) => n,
        Type::ListType(inner) | Type::NonNullType(inner) => base(inner),
    }
}

fn query_base<'a>(t: &'a QueryType<'a, String>) -> &'a str {
    match t {
        QueryType::NamedType(n) => n,
        QueryType::ListType(inner) | QueryType::NonNullType(inner) => query_base(inner),
    }
}

fn schema() -> Schema {
    let path = support::npm_fixtures().join("@octokit/graphql-schema/schema.graphql");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let doc = graphql_parser::parse_schema::<String>(&text).expect("GitHub's schema parses");
    let mut schema = Schema {
        fields: BTreeMap::new(),
        types: ["String", "Int", "Boolean", "ID", "Float"]
            .map(str::to_owned)
            .into(),
    };
    for d in &doc.definitions {
        let SchemaDefinition::TypeDefinition(t) = d else {
            continue;
        };
        let (name, fields) = match t {
            TypeDefinition::Object(o) => (&o.name, Some(&o.fields)),
            TypeDefinition::Interface(i) => (&i.name, Some(&i.fields)),
            TypeDefinition::Scalar(s) => (&s.name, None),
            TypeDefinition::Union(u) => (&u.name, None),
            TypeDefinition::Enum(e) => (&e.name, None),
            TypeDefinition::InputObject(i) => (&i.name, None),
        };
        schema.types.insert(name.clone());
        if let Some(fields) = fields {
            let map = fields
                .iter()
                .map(|f| {
                    let info = FieldInfo {
                        arguments: f.arguments.iter().map(|a| a.name.clone()).collect(),
                        type_name: base(&f.field_type).to_owned(),
                    };
                    (f.name.clone(), info)
                })
                .collect();
            schema.fields.insert(name.clone(), map);
        }
    }
    schema
}

fn check(
    schema: &Schema,
    on: &str,
    set: &SelectionSet<'_, String>,
    path: &str,
    problems: &mut Vec<String>,
) {
    for s in &set.items {
        match s {
            Selection::Field(f) => {
                if f.name == "__typename" {
                    continue;
                }
                let at = format!("{path}.{}", f.name);
                let Some(info) = schema.fields.get(on).and_then(|fields| fields.get(&f.name))
                else {
                    problems.push(format!("{at}: no field `{}` on `{on}`", f.name));
                    continue;
                };
                for (arg, _) in &f.arguments {
                    if !info.arguments.contains(arg) {
                        problems.push(format!("{at}: `{}` takes no argument `{arg}`", f.name));
                    }
                }
                let has_fields = schema.fields.contains_key(&info.type_name);
                if has_fields && f.selection_set.items.is_empty() {
                    problems.push(format!("{at}: `{}` needs a selection", info.type_name));
                }
                if !f.selection_set.items.is_empty() {
                    check(schema, &info.type_name, &f.selection_set, &at, problems);
                }
            }
            Selection::InlineFragment(frag) => {
                let target = match &frag.type_condition {
                    Some(TypeCondition::On(t)) => t.as_str(),
                    None => on,
                };
                if !schema.types.contains(target) {
                    problems.push(format!("{path}: fragment on unknown type `{target}`"));
                    continue;
                }
                check(
                    schema,
                    target,
                    &frag.selection_set,
                    &format!("{path}(on {target})"),
                    problems,
                );
            }
            Selection::FragmentSpread(spread) => {
                problems.push(format!(
                    "{path}: fragment spread `{}` is not checked",
                    spread.fragment_name
                ));
            }
        }
    }
}

#[test]
fn every_graphql_document_tfpilot_sends_fits_githubs_schema() {
    let schema = schema();
    assert!(
        schema.fields.contains_key("Repository") && schema.fields.contains_key("Mutation"),
        "the schema was read"
    );
    let mut problems = Vec::new();
    for document in GRAPHQL_DOCUMENTS {
        let doc = graphql_parser::parse_query::<String>(document)
            .unwrap_or_else(|e| panic!("{document}\ndoes not parse: {e}"));
        for d in &doc.definitions {
            let (root, name, variables, set) = match d {
                Definition::Operation(OperationDefinition::Query(q)) => (
                    "Query",
                    q.name.clone(),
                    &q.variable_definitions,
                    &q.selection_set,
                ),
                Definition::Operation(OperationDefinition::Mutation(m)) => (
                    "Mutation",
                    m.name.clone(),
                    &m.variable_definitions,
                    &m.selection_set,
                ),
                other => panic!("unexpected definition in {document}: {other:?}"),
            };
            let name = name.unwrap_or_default();
            for v in variables {
                let t = query_base(&v.var_type);
                if !schema.types.contains(t) {
                    problems.push(format!(
                        "{name}: variable ${} has unknown type `{t}`",
                        v.name
                    ));
                }
            }
            check(&schema, root, set, &name, &mut problems);
        }
    }
    assert!(
        problems.is_empty(),
        "GraphQL documents that do not fit GitHub's schema:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_schema_check_catches_a_field_github_does_not_have() {
    let schema = schema();
    let doc = graphql_parser::parse_query::<String>(
        "query { repository(owner: \"o\", name: \"n\", colour: 1) { ref(qualifiedName: \"x\") { target { ... on Commit { fileContents } } } } }",
    )
    .expect("parses");
    let Definition::Operation(OperationDefinition::Query(q)) = &doc.definitions[0] else {
        panic!("a query");
    };
    let mut problems = Vec::new();
    check(&schema, "Query", &q.selection_set, "q", &mut problems);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("no argument `colour`"), "{problems:?}");
    assert!(
        problems[1].contains("no field `fileContents` on `Commit`"),
        "{problems:?}"
    );
}
