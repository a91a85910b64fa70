//! The decision table: every status (and no request) × every command × every role × dev and
//! prod, decided with a representative request and facts, one line each, kept as a snapshot so
//! a change to any guardrail or transition shows up as a reviewed diff.

use super::*;

/// The words of a denial's reason shown in the table.
const REASON_WORDS: usize = 12;

fn outcome(result: &Result<Decision, Denial>) -> String {
    match result {
        Ok(d) => {
            let status = d
                .request
                .as_ref()
                .map_or_else(|| "no request".to_owned(), |r| r.status.to_string());
            format!("allowed -> {status} [effects: {}]", kinds(d).join(", "))
        }
        Err(denial) => {
            let words: Vec<&str> = denial.reason.split_whitespace().collect();
            let more = if words.len() > REASON_WORDS {
                " …"
            } else {
                ""
            };
            format!(
                "denied: {}{more}",
                words[..words.len().min(REASON_WORDS)].join(" ")
            )
        }
    }
}

fn table() -> String {
    let registry = Registry::embedded();
    let roles = roles();
    let mut out = String::from(
        "# status | command | role | env | outcome\n\
         # roles: none/read/write/admin = GitHub permission only; prod-listed = bob (write, prod \
         allow-list); destroy-listed = alice (write, both prod lists); approver = erin (write, \
         approvers required and erin the only one, prod allow-list); requester = carol (write, \
         opened the request, both prod lists)\n",
    );
    let statuses = std::iter::once(None).chain(RequestStatus::ALL.into_iter().map(Some));
    for status in statuses {
        for env in ["dev", "prod"] {
            let r = status.map(|s| representative(env, s));
            let f = full_facts(registry, r.as_ref());
            for (name, command) in every_command(env) {
                for role in &roles {
                    let d = decide(
                        r.as_ref(),
                        &cmd(command.clone()),
                        &role.actor,
                        &role.policy,
                        &f,
                    );
                    let status = status.map_or_else(|| "-".to_owned(), |s| s.to_string());
                    out.push_str(&format!(
                        "{status} | {name} | {} | {env} | {}\n",
                        role.name,
                        outcome(&d)
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn decision_table() {
    insta::assert_snapshot!("decision_table", table());
}
