//! TfPilot's integration tests: one binary, one module per area.

mod architecture;
mod browser;
mod conversation;
mod deploy;
mod e2e;
mod exactly_once;
mod github;
mod iam;
mod inbox;
mod infra_repo;
mod kill9;
mod lambda;
mod plan;
mod registry;
mod render;
mod repo_check;
mod serve;
mod setup;
mod slack;
mod store;
mod support;
mod two_instances;
mod webhook;
mod webhook_schema;
mod worker;
