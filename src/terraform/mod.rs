//! Terraform as TfPilot writes and reads it.

pub mod plan;
