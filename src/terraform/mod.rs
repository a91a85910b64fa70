//! Everything that turns a validated module config into Terraform text, and reads Terraform
//! back: rendering ([`render`], aligned by our own [`fmt`] pass), the bounded-block editor
//! ([`blocks`]), the `variables.tf` reader ([`variables`]), the drift check ([`drift`]) and plans as
//! workflows produce them ([`plan`]).
//!
//! All of it is pure text processing with no I/O, except [`drift::check_modules_dir`] and the
//! CLI glue in [`cli`].

pub mod blocks;
pub mod cli;
pub mod drift;
pub mod drifted;
pub mod fmt;
pub mod plan;
pub mod registry_cli;
pub mod render;
pub mod variables;

pub use blocks::{
    BlockError, BoundedBlock, begin_marker, end_marker, find_block, insert_block, parse_blocks,
    remove_block, replace_block, upsert_block,
};
pub use render::{RenderError, module_address, module_name, module_source, render_block};
