//! The GraphQL query TfPilot reads several facts with in one call: a repository's branch head
//! (`ref(qualifiedName:)` → `target` → `oid`), a file at that commit (`... on Commit { file(path:)
//! { object { ... on Blob { text isTruncated isBinary byteSize } } } }`) and a pull request's
//! state (`pullRequest(number:) { number url state merged headRefName headRefOid baseRefName
//! mergeCommit { oid } mergeable }`), with
//! aliases, variables and inline fragments as GitHub's schema types them; also the repository's
//! `id` (its node id, which `createRef` takes). A missing repository or
//! pull request is GitHub's `NOT_FOUND` error next to `null` data; a missing ref or file is `null`.

use graphql_parser::query::{
    Definition, Field, OperationDefinition, Selection, SelectionSet, TypeCondition,
};
use serde_json::{Map, Value, json};

use crate::auth::Grant;
use crate::graphql::{resolve, to_json};
use crate::model::Model;

/// The answer to a `query` document, or `None` when the document is not a query.
pub(crate) fn run(
    model: &Model,
    grant: &Grant,
    document: &str,
    variables: &Value,
) -> Option<Value> {
    let doc = graphql_parser::parse_query::<String>(document).ok()?;
    let selection_set = doc.definitions.into_iter().find_map(|d| match d {
        Definition::Operation(OperationDefinition::Query(q)) => Some(q.selection_set),
        Definition::Operation(OperationDefinition::SelectionSet(s)) => Some(s),
        _ => None,
    })?;
    let mut q = Query {
        model,
        grant,
        variables,
        errors: Vec::new(),
    };
    let mut data = Map::new();
    for field in fields(&selection_set, "Query") {
        let value = match field.name.as_str() {
            "repository" => q.repository(field),
            other => {
                q.error(
                    field,
                    "undefinedField",
                    format!("Field '{other}' doesn't exist on type 'Query'"),
                );
                Value::Null
            }
        };
        data.insert(key(field), value);
    }
    let mut answer = json!({ "data": data });
    if !q.errors.is_empty() {
        answer["errors"] = Value::Array(q.errors);
    }
    Some(answer)
}

struct Query<'a> {
    model: &'a Model,
    grant: &'a Grant,
    variables: &'a Value,
    errors: Vec<Value>,
}

/// The fields selected on an object of type `on`: its own, and those of inline fragments whose
/// type condition it meets (`GitObject` and `Node` are interfaces every object here meets).
fn fields<'s, 'd>(set: &'s SelectionSet<'d, String>, on: &str) -> Vec<&'s Field<'d, String>> {
    let mut out = Vec::new();
    for s in &set.items {
        match s {
            Selection::Field(f) => out.push(f),
            Selection::InlineFragment(frag) => {
                let applies = match &frag.type_condition {
                    None => true,
                    Some(TypeCondition::On(t)) => t == on || t == "GitObject" || t == "Node",
                };
                if applies {
                    out.extend(fields(&frag.selection_set, on));
                }
            }
            Selection::FragmentSpread(_) => {}
        }
    }
    out
}

fn key(field: &Field<'_, String>) -> String {
    field.alias.clone().unwrap_or_else(|| field.name.clone())
}

impl Query<'_> {
    fn arg(&self, field: &Field<'_, String>, name: &str) -> Value {
        field
            .arguments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| resolve(to_json(v.clone()), self.variables))
            .unwrap_or(Value::Null)
    }

    fn error(&mut self, field: &Field<'_, String>, kind: &str, message: String) {
        self.errors.push(json!({
            "type": kind,
            "path": [key(field)],
            "locations": [{ "line": field.position.line, "column": field.position.column }],
            "message": message,
        }));
    }

    fn repository(&mut self, field: &Field<'_, String>) -> Value {
        let owner = self.arg(field, "owner");
        let name = self.arg(field, "name");
        let full = format!(
            "{}/{}",
            owner.as_str().unwrap_or_default(),
            name.as_str().unwrap_or_default()
        );
        let readable =
            crate::auth::check_grant(self.model, self.grant, &full, Some(("contents", false)));
        let Ok(repo) = self.model.repo(&full).and_then(|r| readable.map(|()| r)) else {
            self.error(
                field,
                "NOT_FOUND",
                format!("Could not resolve to a Repository with the name '{full}'."),
            );
            return Value::Null;
        };
        let mut out = Map::new();
        for f in fields(&field.selection_set, "Repository") {
            let value = match f.name.as_str() {
                "nameWithOwner" => json!(full),
                "id" => json!(crate::model::repo_node_id(repo)),
                "ref" => {
                    let qualified = self.arg(f, "qualifiedName");
                    let branch = qualified
                        .as_str()
                        .unwrap_or_default()
                        .trim_start_matches("refs/heads/");
                    match repo.branches.get(branch) {
                        Some(sha) => self.reference(f, branch, sha),
                        None => Value::Null,
                    }
                }
                "pullRequest" => {
                    let number = self.arg(f, "number").as_u64().unwrap_or_default();
                    let pull = crate::payloads::pull(self.model, repo, number);
                    if pull.is_null() {
                        self.error(
                            f,
                            "NOT_FOUND",
                            format!(
                                "Could not resolve to a PullRequest with the number of {number}."
                            ),
                        );
                        Value::Null
                    } else {
                        pull_request(f, &pull)
                    }
                }
                other => self.undefined(f, other, "Repository"),
            };
            out.insert(key(f), value);
        }
        Value::Object(out)
    }

    fn reference(&mut self, field: &Field<'_, String>, branch: &str, sha: &str) -> Value {
        let mut out = Map::new();
        for f in fields(&field.selection_set, "Ref") {
            let value = match f.name.as_str() {
                "name" => json!(branch),
                "prefix" => json!("refs/heads/"),
                "target" => self.commit(f, sha),
                other => self.undefined(f, other, "Ref"),
            };
            out.insert(key(f), value);
        }
        Value::Object(out)
    }

    fn commit(&mut self, field: &Field<'_, String>, sha: &str) -> Value {
        let mut out = Map::new();
        for f in fields(&field.selection_set, "Commit") {
            let value = match f.name.as_str() {
                "__typename" => json!("Commit"),
                "oid" => json!(sha),
                "file" => {
                    let path = self.arg(f, "path");
                    let path = path.as_str().unwrap_or_default().trim_matches('/');
                    match self.model.tree_at(sha).get(path) {
                        Some(text) => tree_entry(f, path, text),
                        None => Value::Null,
                    }
                }
                other => self.undefined(f, other, "Commit"),
            };
            out.insert(key(f), value);
        }
        Value::Object(out)
    }

    fn undefined(&mut self, field: &Field<'_, String>, name: &str, on: &str) -> Value {
        self.error(
            field,
            "undefinedField",
            format!(
                "Field '{name}' doesn't exist on type '{on}' (or the simulator does not serve it)"
            ),
        );
        Value::Null
    }
}

fn tree_entry(field: &Field<'_, String>, path: &str, text: &str) -> Value {
    let mut out = Map::new();
    for f in fields(&field.selection_set, "TreeEntry") {
        let value = match f.name.as_str() {
            "path" => json!(path),
            "name" => json!(path.rsplit('/').next().unwrap_or(path)),
            "object" => {
                let mut blob = Map::new();
                for b in fields(&f.selection_set, "Blob") {
                    let v = match b.name.as_str() {
                        "__typename" => json!("Blob"),
                        "oid" => json!(crate::model::blob_sha(text)),
                        "text" => json!(text),
                        "isTruncated" => json!(false),
                        "isBinary" => json!(false),
                        "byteSize" => json!(text.len()),
                        _ => Value::Null,
                    };
                    blob.insert(key(b), v);
                }
                Value::Object(blob)
            }
            _ => Value::Null,
        };
        out.insert(key(f), value);
    }
    Value::Object(out)
}

/// A pull request's GraphQL fields, from its REST representation.
fn pull_request(field: &Field<'_, String>, rest: &Value) -> Value {
    let mut out = Map::new();
    for f in fields(&field.selection_set, "PullRequest") {
        let merged = rest["merged"].as_bool().unwrap_or(false);
        let value = match f.name.as_str() {
            "number" => rest["number"].clone(),
            "state" => json!(match (rest["state"].as_str(), merged) {
                (_, true) => "MERGED",
                (Some("open"), _) => "OPEN",
                _ => "CLOSED",
            }),
            "merged" => json!(merged),
            "headRefOid" => rest["head"]["sha"].clone(),
            "url" => rest["html_url"].clone(),
            "headRefName" => rest["head"]["ref"].clone(),
            "baseRefName" => rest["base"]["ref"].clone(),
            "mergeCommit" => match rest["merge_commit_sha"].as_str() {
                Some(oid) if merged => json!({ "oid": oid }),
                _ => Value::Null,
            },
            "mergeable" => json!(match rest["mergeable"].as_bool() {
                Some(true) => "MERGEABLE",
                Some(false) => "CONFLICTING",
                None => "UNKNOWN",
            }),
            _ => Value::Null,
        };
        out.insert(key(f), value);
    }
    Value::Object(out)
}
