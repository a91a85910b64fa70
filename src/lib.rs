//! TfPilot: Terraform self-service through GitHub comments.
//!
//! See `../shared/ARCHITECTURE.md` for the map; each module's own docs say what it owns.

pub mod assist;
pub mod command;
pub mod comments;
pub mod conversation;
pub mod github;
pub mod ids;
pub mod registry;
pub mod store;
pub mod terraform;
