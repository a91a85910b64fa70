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
    /// Print everything the store knows about one request (request, timeline, runs, chat,
    /// lifecycle events) as one JSON document.
    Audit {
        /// The request id (a lowercase UUID).
        request_id: String,
        /// The store: fs://<dir> or s3://<bucket>.
        #[arg(long, env = "TFPILOT_STORE", default_value = "fs://./data")]
        store: String,
        /// The chat-log bucket (S3 stores only).
        #[arg(long, env = "TFPILOT_CHAT_LOGS_BUCKET")]
        chat_bucket: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match &cli.command {
        Command::Render(args) => ExitCode::from(tfpilot::terraform::cli::run_render(
            args, &mut out, &mut err,
        )),
        Command::Registry { command } => ExitCode::from(tfpilot::registry::cli::run_registry(
            command, &mut out, &mut err,
        )),
        Command::Audit {
            request_id,
            store,
            chat_bucket,
        } => {
            let result = tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    rt.block_on(tfpilot::store::run_audit(
                        store,
                        chat_bucket.as_deref(),
                        request_id,
                        &mut out,
                    ))
                });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    use std::io::Write as _;
                    let _ = writeln!(err, "error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
