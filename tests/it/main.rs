//! TfPilot's integration tests: one binary, one module per area.

mod conversation;
mod github;
mod infra_repo;
mod plan;
mod registry;
mod render;
mod store;
mod support;
