//! TfPilot's integration tests: one binary, one module per area.

mod plan;
mod support;
