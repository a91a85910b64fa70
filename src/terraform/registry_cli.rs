//! `tfpilot registry check`: the drift check, meant for an infra repo's CI.

use std::io::Write;
use std::path::PathBuf;

use super::drift::check_modules_dir;
use crate::registry::Registry;

/// `tfpilot registry …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RegistryCommand {
    /// Compare the catalogue with each modules/<type>/variables.tf; exit 1 on drift.
    Check(CheckArgs),
}

/// Arguments of `tfpilot registry check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The infra repo's modules directory (holding <type>/variables.tf).
    #[arg(long, value_name = "DIR")]
    pub modules: PathBuf,
    /// Read the catalogue from this directory instead of the built-in one.
    #[arg(long, value_name = "DIR")]
    pub registry: Option<PathBuf>,
}

/// Runs a `tfpilot registry` subcommand. Exit code: 0 no drift, 1 drift, 2 errors.
pub fn run_registry(command: &RegistryCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match command {
        RegistryCommand::Check(args) => run_check(args, out, err),
    }
}

fn run_check(args: &CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let loaded;
    let registry = match &args.registry {
        Some(dir) => match Registry::load_dir(dir) {
            Ok(r) => {
                loaded = r;
                &loaded
            }
            Err(e) => {
                let _ = writeln!(err, "{e}");
                return 2;
            }
        },
        None => Registry::embedded(),
    };
    if !args.modules.is_dir() {
        let _ = writeln!(err, "{} is not a directory", args.modules.display());
        return 2;
    }
    let report = check_modules_dir(registry, &args.modules);
    let _ = write!(out, "{report}");
    if report.has_drift() {
        let _ = writeln!(
            err,
            "drift found: the registry and the modules disagree (see above)"
        );
        1
    } else {
        0
    }
}
