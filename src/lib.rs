//! TfPilot: Terraform self-service through GitHub comments.
//!
//! See `ARCHITECTURE.md` at the repository root for the map; each module's own docs say what it
//! owns.

pub mod app;
pub mod assist;
pub mod command;
pub mod comments;
pub mod config;
pub mod conversation;
pub mod doctor;
pub mod domain;
pub mod executor;
pub mod github;
pub mod ids;
pub mod inbox;
pub mod lambda;
pub mod lifecycle;
pub mod metrics;
pub mod registry;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod setup;
pub mod slack;
pub mod store;
pub mod telemetry;
pub mod terraform;
pub mod webhook;
pub mod worker;
