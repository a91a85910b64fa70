//! The `tfpilot` command line: parses arguments and calls the library.

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Audit {
            request_id,
            store,
            chat_bucket,
        } => {
            let mut out = std::io::stdout().lock();
            tfpilot::store::run_audit(&store, chat_bucket.as_deref(), &request_id, &mut out).await
        }
    }
}
