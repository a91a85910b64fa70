//! The `tfpilot` binary: parses arguments and calls the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tfpilot",
    version,
    about = "Terraform self-service through GitHub comments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the bounded Terraform block for a module type and a set of values.
    Render(tfpilot::terraform::cli::RenderArgs),
    /// Work with the module catalogue.
    Registry {
        #[command(subcommand)]
        command: tfpilot::registry::cli::RegistryCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let code = match &cli.command {
        Command::Render(args) => tfpilot::terraform::cli::run_render(args, &mut out, &mut err),
        Command::Registry { command } => {
            tfpilot::registry::cli::run_registry(command, &mut out, &mut err)
        }
    };
    ExitCode::from(code)
}
