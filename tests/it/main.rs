//! TfPilot's integration tests: one binary, one module per area.

mod github;
mod plan;
mod store;
mod support;
