//! The GraphQL mutations TfPilot uses (its queries are in `graphql_query`): `createRef`,
//! `createCommitOnBranch` (with `expectedHeadOid` as the optimistic lock) and `minimizeComment`.
//! The document is parsed with `graphql-parser`; each mutation's `input` argument may be a
//! variable or an inline object. A document may hold several mutations: as GraphQL's spec says,
//! they run one after the other, and one that fails is `null` in `data` with its error in
//! `errors` (its `path` names it) while the next ones still run. Inputs that do not fit their
//! types refuse the whole document before any mutation runs. Errors come back the way GitHub
//! sends them: HTTP 200 with an `errors` array carrying a `type`.

use base64::Engine;
use graphql_parser::query::{Definition, OperationDefinition, Selection, Value as GqlValue};
use serde_json::{Value, json};

use crate::auth::Grant;
use crate::model::Model;

/// The root fields of the (first) operation, in order, each with its `input` argument: the
/// mutations, or the query's fields.
pub(crate) fn operation_fields(query: &str) -> Result<Vec<(String, Option<Value>)>, String> {
    let doc =
        graphql_parser::parse_query::<String>(query).map_err(|e| format!("Parse error: {e}"))?;
    let selection_set = doc
        .definitions
        .into_iter()
        .find_map(|d| match d {
            Definition::Operation(OperationDefinition::Mutation(m)) => Some(m.selection_set),
            Definition::Operation(OperationDefinition::Query(q)) => Some(q.selection_set),
            Definition::Operation(OperationDefinition::SelectionSet(s)) => Some(s),
            _ => None,
        })
        .ok_or_else(|| "No operation in the document".to_owned())?;
    let fields: Vec<(String, Option<Value>)> = selection_set
        .items
        .into_iter()
        .filter_map(|s| match s {
            Selection::Field(f) => Some(f),
            _ => None,
        })
        .map(|field| {
            let input = field
                .arguments
                .into_iter()
                .find(|(name, _)| name == "input")
                .map(|(_, v)| to_json(v));
            (field.name, input)
        })
        .collect();
    if fields.is_empty() {
        return Err("No field selected".to_owned());
    }
    Ok(fields)
}

/// Converts an argument value; variables become `{"$var": name}` for [`resolve`] to replace.
pub(crate) fn to_json(v: GqlValue<'_, String>) -> Value {
    match v {
        GqlValue::Variable(name) => json!({ "$var": name }),
        GqlValue::Int(i) => json!(i.as_i64()),
        GqlValue::Float(f) => json!(f),
        GqlValue::String(s) => json!(s),
        GqlValue::Boolean(b) => json!(b),
        GqlValue::Null => Value::Null,
        GqlValue::Enum(e) => json!(e),
        GqlValue::List(items) => Value::Array(items.into_iter().map(to_json).collect()),
        GqlValue::Object(fields) => {
            Value::Object(fields.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
    }
}

/// Replaces `{"$var": name}` placeholders with the request's variables.
pub(crate) fn resolve(v: Value, variables: &Value) -> Value {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("$var")
                && map.len() == 1
            {
                return variables.get(name).cloned().unwrap_or(Value::Null);
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, resolve(v, variables)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| resolve(v, variables)).collect())
        }
        other => other,
    }
}

/// The answer when the token may not write `permission` in `repo`: `FORBIDDEN`, or `NOT_FOUND`
/// with `unknown` (GitHub does not tell a repository it hides from one that is not there).
fn refused(
    model: &Model,
    grant: &Grant,
    repo: &str,
    permission: &str,
    field: &str,
    unknown: String,
) -> Option<Value> {
    let e = crate::auth::check_grant(model, grant, repo, Some((permission, true))).err()?;
    Some(if e.status == 403 {
        error(field, "FORBIDDEN", e.message)
    } else {
        error(field, "NOT_FOUND", unknown)
    })
}

fn error(field: &str, kind: &str, message: impl Into<String>) -> Value {
    json!({
        "data": { field: null },
        "errors": [{ "type": kind, "path": [field], "locations": [{"line": 1, "column": 1}], "message": message.into() }]
    })
}

/// One mutation of a document: its name, the variable its `input` came from (if one did), and
/// that input with the variables resolved.
pub(crate) struct MutationField {
    pub name: String,
    pub variable: Option<String>,
    pub input: Value,
}

impl MutationField {
    /// The field `name` with its `input` argument as parsed (`None`: no input) and `variables`.
    pub(crate) fn new(name: String, input: Option<Value>, variables: &Value) -> Self {
        let input = input.unwrap_or(Value::Null);
        let variable = input.get("$var").and_then(Value::as_str).map(str::to_owned);
        Self {
            name,
            variable,
            input: resolve(input, variables),
        }
    }
}

/// Runs a mutation document's `fields` in order and merges their answers; inputs that do not fit
/// their types refuse the document before anything runs.
pub(crate) fn execute(model: &mut Model, grant: &Grant, fields: Vec<MutationField>) -> Value {
    let invalid: Vec<Value> = fields
        .iter()
        .filter_map(invalid_input)
        .map(|message| json!({ "message": message }))
        .collect();
    if !invalid.is_empty() {
        return json!({ "errors": invalid });
    }
    let mut data = serde_json::Map::new();
    let mut errors = Vec::new();
    for MutationField { name, input, .. } in fields {
        let mut answer = match name.as_str() {
            "createRef" => create_ref(model, grant, input),
            "createCommitOnBranch" => create_commit_on_branch(model, grant, input),
            "minimizeComment" => minimize_comment(model, grant, input),
            _ => unreachable!("invalid_input refuses every other field"),
        };
        if let Some(Value::Object(d)) = answer.get_mut("data").map(Value::take) {
            data.extend(d);
        }
        if let Some(Value::Array(e)) = answer.get_mut("errors").map(Value::take) {
            errors.extend(e);
        }
    }
    let mut answer = json!({ "data": data });
    if !errors.is_empty() {
        answer["errors"] = Value::Array(errors);
    }
    answer
}

/// Why a field's input does not fit its type (GitHub's message), if it does not.
fn invalid_input(field: &MutationField) -> Option<String> {
    let input = &field.input;
    let missing = |ty: &str, path: &str| {
        let pointer = format!("/{}", path.replace('.', "/"));
        input.pointer(&pointer).is_none_or(Value::is_null).then(|| match &field.variable {
            Some(var) => format!("Variable ${var} of type {ty}! was provided invalid value for {path} (Expected value to not be null)"),
            None => format!("Argument 'input' on Field '{}' has an invalid value. Expected type '{ty}!'.", field.name),
        })
    };
    match field.name.as_str() {
        "createRef" => ["repositoryId", "name", "oid"]
            .into_iter()
            .find_map(|p| missing("CreateRefInput", p)),
        "createCommitOnBranch" => ["expectedHeadOid", "message.headline"]
            .into_iter()
            .find_map(|p| missing("CreateCommitOnBranchInput", p)),
        "minimizeComment" => {
            let classifier = input
                .get("classifier")
                .and_then(Value::as_str)
                .unwrap_or_default();
            (!CLASSIFIERS.contains(&classifier)).then(|| format!("Argument 'classifier' on InputObject 'MinimizeCommentInput' has an invalid value ({classifier}). Expected type 'ReportedContentClassifiers!'."))
        }
        other => Some(format!("Field '{other}' doesn't exist on type 'Mutation'")),
    }
}

/// `createRef` for a branch: `name` is `refs/heads/…`, `oid` a commit of the repository.
fn create_ref(model: &mut Model, grant: &Grant, input: Value) -> Value {
    const F: &str = "createRef";
    let id = input["repositoryId"].as_str().unwrap_or_default();
    let Some(repo_name) = model
        .repos
        .values()
        .find(|r| crate::model::repo_node_id(r) == id)
        .map(|r| r.full_name())
    else {
        return error(
            F,
            "NOT_FOUND",
            format!("Could not resolve to a node with the global id of '{id}'"),
        );
    };
    let unknown = format!("Could not resolve to a node with the global id of '{id}'");
    if let Some(refused) = refused(model, grant, &repo_name, "contents", F, unknown) {
        return refused;
    }
    let name = input["name"].as_str().unwrap_or_default();
    let Some(branch) = name.strip_prefix("refs/heads/") else {
        return error(
            F,
            "UNPROCESSABLE",
            format!("the simulator creates branches only (refs/heads/…), not {name}"),
        );
    };
    if !crate::model::valid_branch_name(branch) {
        return error(
            F,
            "UNPROCESSABLE",
            format!("'{name}' is not a valid ref name."),
        );
    }
    let oid = input["oid"].as_str().unwrap_or_default();
    if !model.in_repo(&repo_name, oid) {
        return error(
            F,
            "UNPROCESSABLE",
            format!("Could not resolve to a commit with the oid of '{oid}'"),
        );
    }
    let Ok(repo) = model.repo_mut(&repo_name) else {
        return error(F, "NOT_FOUND", format!("no repository {repo_name}"));
    };
    if repo.branches.contains_key(branch) {
        return error(
            F,
            "UNPROCESSABLE",
            format!("A ref named \"{name}\" already exists in the repository."),
        );
    }
    repo.branches.insert(branch.to_owned(), oid.to_owned());
    json!({ "data": { F: { "ref": { "name": branch, "prefix": "refs/heads/", "target": { "oid": oid } } } } })
}

fn create_commit_on_branch(model: &mut Model, grant: &Grant, input: Value) -> Value {
    const F: &str = "createCommitOnBranch";
    let Some(repo_name) = input
        .pointer("/branch/repositoryNameWithOwner")
        .and_then(Value::as_str)
    else {
        return error(
            F,
            "INVALID",
            "branch.repositoryNameWithOwner is required (branch.id is not supported by the simulator)",
        );
    };
    let repo_name = repo_name.to_owned();
    let unknown = format!("Could not resolve to a Repository with the name '{repo_name}'.");
    if let Some(refused) = refused(model, grant, &repo_name, "contents", F, unknown) {
        return refused;
    }
    let Some(branch) = input.pointer("/branch/branchName").and_then(Value::as_str) else {
        return error(F, "INVALID", "branch.branchName is required");
    };
    let branch = branch
        .strip_prefix("refs/heads/")
        .unwrap_or(branch)
        .to_owned();
    // (`invalid_input` refused a document without these.)
    let expected = input["expectedHeadOid"].as_str().unwrap_or_default();
    let headline = input
        .pointer("/message/headline")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(head) = model
        .repos
        .get(&repo_name)
        .and_then(|r| r.branches.get(&branch))
        .cloned()
    else {
        return error(
            F,
            "NOT_FOUND",
            format!("A ref named \"refs/heads/{branch}\" does not exist in {repo_name}."),
        );
    };
    if head != expected {
        return error(
            F,
            "STALE_DATA",
            format!(
                "Expected branch to point to \"{expected}\" but it did not. Pull and try again. (expectedHeadOid is stale: the head of {branch} is {head})"
            ),
        );
    }
    let mut tree = model.tree_at(&head);
    if let Some(deletions) = input
        .pointer("/fileChanges/deletions")
        .and_then(Value::as_array)
    {
        for d in deletions {
            if let Some(path) = d.get("path").and_then(Value::as_str) {
                tree.remove(path);
            }
        }
    }
    if let Some(additions) = input
        .pointer("/fileChanges/additions")
        .and_then(Value::as_array)
    {
        for a in additions {
            let (Some(path), Some(contents)) = (
                a.get("path").and_then(Value::as_str),
                a.get("contents").and_then(Value::as_str),
            ) else {
                return error(F, "INVALID", "every addition needs path and contents");
            };
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(contents) else {
                return error(
                    F,
                    "INVALID",
                    format!("contents of {path} is not valid Base64"),
                );
            };
            let Ok(text) = String::from_utf8(bytes) else {
                return error(
                    F,
                    "INVALID",
                    format!("the simulator only stores text files; {path} is not UTF-8"),
                );
            };
            tree.insert(path.to_owned(), text);
        }
    }
    let mut message = headline.to_owned();
    if let Some(body) = input.pointer("/message/body").and_then(Value::as_str)
        && !body.is_empty()
    {
        message.push_str("\n\n");
        message.push_str(body);
    }
    let author = model.bot_login();
    let sha = model.store_commit(&repo_name, vec![head], tree, message, &author);
    if let Some(repo) = model.repos.get_mut(&repo_name) {
        repo.branches.insert(branch, sha.clone());
    }
    let url = format!("{}/{repo_name}/commit/{sha}", model.base_url);
    json!({ "data": { F: { "commit": { "oid": sha, "url": url } } } })
}

/// GitHub's `ReportedContentClassifiers` (its GraphQL schema, `@octokit/graphql-schema`).
const CLASSIFIERS: [&str; 6] = [
    "SPAM",
    "ABUSE",
    "OFF_TOPIC",
    "OUTDATED",
    "DUPLICATE",
    "RESOLVED",
];

fn minimize_comment(model: &mut Model, grant: &Grant, input: Value) -> Value {
    const F: &str = "minimizeComment";
    let subject = input
        .get("subjectId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let classifier = input
        .get("classifier")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let found = model
        .comments
        .values()
        .find(|c| c.node_id == subject)
        .map(|c| (c.id, c.repo.clone()));
    let Some((id, repo)) = found else {
        return error(
            F,
            "NOT_FOUND",
            format!("Could not resolve to a node with the global id of '{subject}'"),
        );
    };
    let unknown = format!("Could not resolve to a node with the global id of '{subject}'");
    if let Some(refused) = refused(model, grant, &repo, "issues", F, unknown) {
        return refused;
    }
    if let Some(c) = model.comments.get_mut(&id) {
        c.minimized = Some(classifier.clone());
    }
    json!({ "data": { F: { "minimizedComment": { "isMinimized": true, "minimizedReason": classifier.to_lowercase() } } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(query: &str) -> (String, Option<Value>) {
        let mut fields = operation_fields(query).unwrap();
        assert_eq!(fields.len(), 1, "{query}");
        fields.remove(0)
    }

    #[test]
    fn finds_the_mutation_and_its_input_from_a_variable_or_inline() {
        let (field, input) = only(
            "mutation Commit($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid url } } }",
        );
        assert_eq!(field, "createCommitOnBranch");
        let vars = json!({"input": {"expectedHeadOid": "abc"}});
        assert_eq!(
            resolve(input.unwrap(), &vars),
            json!({"expectedHeadOid": "abc"})
        );

        let (field, input) = only(
            r#"mutation { minimizeComment(input: {subjectId: $id, classifier: OUTDATED}) { clientMutationId } }"#,
        );
        assert_eq!(field, "minimizeComment");
        let vars = json!({"id": "IC_1"});
        assert_eq!(
            resolve(input.unwrap(), &vars),
            json!({"subjectId": "IC_1", "classifier": "OUTDATED"})
        );
    }

    #[test]
    fn every_mutation_of_a_document_is_found_in_order() {
        let fields = operation_fields(
            "mutation M($r: CreateRefInput!, $c: CreateCommitOnBranchInput!) { createRef(input: $r) { ref { name } } createCommitOnBranch(input: $c) { commit { oid } } }",
        )
        .unwrap();
        let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["createRef", "createCommitOnBranch"]);
    }

    #[test]
    fn inputs_that_do_not_fit_and_unknown_mutations_are_named_as_github_names_them() {
        let field = |name: &str, input: Value| {
            MutationField::new(
                name.to_owned(),
                Some(json!({"$var": "ref"})),
                &json!({ "ref": input }),
            )
        };
        for (f, says) in [
            (
                field(
                    "createRef",
                    json!({"repositoryId": "R_1", "name": "refs/heads/x"}),
                ),
                "$ref of type CreateRefInput! was provided invalid value for oid",
            ),
            (
                field(
                    "createCommitOnBranch",
                    json!({"expectedHeadOid": "abc", "message": {}}),
                ),
                "message.headline",
            ),
            (
                field(
                    "minimizeComment",
                    json!({"subjectId": "IC_1", "classifier": "LOUD"}),
                ),
                "LOUD",
            ),
            (
                field("deleteRepository", json!({})),
                "doesn't exist on type 'Mutation'",
            ),
            (
                MutationField::new("createRef".into(), None, &Value::Null),
                "Argument 'input' on Field 'createRef'",
            ),
        ] {
            let message = invalid_input(&f).unwrap_or_default();
            assert!(message.contains(says), "{}: {message}", f.name);
        }
        let fits = field(
            "createRef",
            json!({"repositoryId": "R_1", "name": "refs/heads/x", "oid": "abc"}),
        );
        assert_eq!(invalid_input(&fits), None);
    }

    #[test]
    fn malformed_documents_are_refused() {
        assert!(operation_fields("mutation { createCommitOnBranch(input: ").is_err());
        assert!(
            operation_fields("mutation { ...F }").is_err(),
            "no field selected"
        );
    }
}
