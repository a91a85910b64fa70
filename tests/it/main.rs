//! TfPilot's integration tests: one binary, one module per area.

mod infra_repo;
mod registry;
mod render;
mod support;
