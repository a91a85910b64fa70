//! The two GraphQL mutations TfPilot uses (its one query is in `graphql_query`): `createCommitOnBranch` (with `expectedHeadOid` as the
//! optimistic lock) and `minimizeComment`. The document is parsed with `graphql-parser`; the
//! mutation's `input` argument may be a variable or an inline object. Errors come back the way
//! GitHub sends them: HTTP 200 with an `errors` array carrying a `type`.

use base64::Engine;
use graphql_parser::query::{Definition, OperationDefinition, Selection, Value as GqlValue};
use serde_json::{Value, json};

use crate::auth::Grant;
use crate::model::Model;

/// The first field of the (first) operation: the mutation or query being asked for.
pub(crate) fn operation_field(query: &str) -> Result<(String, Option<Value>), String> {
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
    let field = selection_set
        .items
        .into_iter()
        .find_map(|s| match s {
            Selection::Field(f) => Some(f),
            _ => None,
        })
        .ok_or_else(|| "No field selected".to_owned())?;
    let input = field
        .arguments
        .into_iter()
        .find(|(name, _)| name == "input")
        .map(|(_, v)| to_json(v));
    Ok((field.name, input))
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

fn error(field: &str, kind: &str, message: impl Into<String>) -> Value {
    json!({
        "data": { field: null },
        "errors": [{ "type": kind, "path": [field], "locations": [{"line": 1, "column": 1}], "message": message.into() }]
    })
}

pub(crate) fn execute(model: &mut Model, grant: &Grant, field: &str, input: Value) -> Value {
    match field {
        "createCommitOnBranch" => create_commit_on_branch(model, grant, input),
        "minimizeComment" => minimize_comment(model, grant, input),
        other => {
            json!({ "errors": [{ "message": format!("Field '{other}' doesn't exist on type 'Mutation'") }] })
        }
    }
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
    if let Err(e) = crate::auth::check_grant(model, grant, &repo_name, Some(("contents", true))) {
        if e.status == 403 {
            return error(F, "FORBIDDEN", e.message);
        }
        return error(
            F,
            "NOT_FOUND",
            format!("Could not resolve to a Repository with the name '{repo_name}'."),
        );
    }
    let Some(branch) = input.pointer("/branch/branchName").and_then(Value::as_str) else {
        return error(F, "INVALID", "branch.branchName is required");
    };
    let branch = branch
        .strip_prefix("refs/heads/")
        .unwrap_or(branch)
        .to_owned();
    let Some(expected) = input.get("expectedHeadOid").and_then(Value::as_str) else {
        return json!({ "errors": [{ "message": "Variable $input of type CreateCommitOnBranchInput! was provided invalid value for expectedHeadOid (Expected value to not be null)" }] });
    };
    let Some(headline) = input.pointer("/message/headline").and_then(Value::as_str) else {
        return json!({ "errors": [{ "message": "Variable $input of type CreateCommitOnBranchInput! was provided invalid value for message.headline (Expected value to not be null)" }] });
    };
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
    let sha = model.store_commit(vec![head], tree, message, &author);
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
    if !CLASSIFIERS.contains(&classifier.as_str()) {
        return json!({ "errors": [{ "message": format!("Argument 'classifier' on InputObject 'MinimizeCommentInput' has an invalid value ({classifier}). Expected type 'ReportedContentClassifiers!'.") }] });
    }
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
    if let Err(e) = crate::auth::check_grant(model, grant, &repo, Some(("issues", true))) {
        if e.status == 403 {
            return error(F, "FORBIDDEN", e.message);
        }
        return error(
            F,
            "NOT_FOUND",
            format!("Could not resolve to a node with the global id of '{subject}'"),
        );
    }
    if let Some(c) = model.comments.get_mut(&id) {
        c.minimized = Some(classifier.clone());
    }
    json!({ "data": { F: { "minimizedComment": { "isMinimized": true, "minimizedReason": classifier.to_lowercase() } } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mutation_and_its_input_from_a_variable_or_inline() {
        let (field, input) = operation_field(
            "mutation Commit($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid url } } }",
        )
        .unwrap();
        assert_eq!(field, "createCommitOnBranch");
        let vars = json!({"input": {"expectedHeadOid": "abc"}});
        assert_eq!(
            resolve(input.unwrap(), &vars),
            json!({"expectedHeadOid": "abc"})
        );

        let (field, input) = operation_field(
            r#"mutation { minimizeComment(input: {subjectId: $id, classifier: OUTDATED}) { clientMutationId } }"#,
        )
        .unwrap();
        assert_eq!(field, "minimizeComment");
        let vars = json!({"id": "IC_1"});
        assert_eq!(
            resolve(input.unwrap(), &vars),
            json!({"subjectId": "IC_1", "classifier": "OUTDATED"})
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        assert!(operation_field("mutation { createCommitOnBranch(input: ").is_err());
    }
}
