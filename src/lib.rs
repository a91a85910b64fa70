//! TfPilot: Terraform self-service through GitHub comments.
//!
//! See `../shared/ARCHITECTURE.md` for the map; each module's own docs say what it owns.

pub mod config;
pub mod ids;
pub mod inbox;
pub mod lambda;
pub mod metrics;
pub mod server;
pub mod telemetry;
pub mod webhook;
pub mod worker;
