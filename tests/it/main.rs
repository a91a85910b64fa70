//! TfPilot's integration tests: one binary, one module per area.

mod deploy;
mod inbox;
mod lambda;
mod serve;
mod support;
mod webhook;
mod worker;
