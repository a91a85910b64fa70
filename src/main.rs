//! The `tfpilot` binary: parses the command line, reads the configuration, and calls the
//! library. To add a subcommand: one `Command` variant and one match arm calling a library
//! function.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tfpilot::config::Config;
use tfpilot::lambda::LambdaFunction;
use tfpilot::{lambda, server, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "tfpilot",
    version,
    about = "TfPilot: Terraform self-service through GitHub comments",
    long_about = "TfPilot: Terraform self-service through GitHub comments.\n\n\
        Settings come from environment variables (see README.md). Without a subcommand, \
        TfPilot runs as an AWS Lambda function when AWS_LAMBDA_RUNTIME_API is set."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the webhook service and its worker on PORT (default 3000).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
        host: IpAddr,
    },
    /// Run as an AWS Lambda function (the default when AWS_LAMBDA_RUNTIME_API is set).
    Lambda {
        /// Which function: the webhook (Function URL) or the worker (S3 inbox events).
        #[arg(value_enum, env = LAMBDA_FUNCTION_VAR, default_value = "webhook")]
        function: LambdaFunction,
    },
}

/// Selects the Lambda function when none is given on the command line (set in template.yaml).
const LAMBDA_FUNCTION_VAR: &str = "TFPILOT_LAMBDA_FUNCTION";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Some(command) => command,
        None if telemetry::on_lambda() => {
            let function = match std::env::var(LAMBDA_FUNCTION_VAR) {
                Err(_) => LambdaFunction::Webhook,
                Ok(v) => match LambdaFunction::from_str(&v, true) {
                    Ok(f) => f,
                    Err(_) => {
                        eprintln!(
                            "tfpilot: {LAMBDA_FUNCTION_VAR} must be `webhook` or `worker`, got `{v}`"
                        );
                        return ExitCode::from(2);
                    }
                },
            };
            Command::Lambda { function }
        }
        None => {
            eprintln!(
                "tfpilot: no command given. Run `tfpilot serve` to start the service, or `tfpilot --help`."
            );
            return ExitCode::from(2);
        }
    };

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tfpilot: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);

    let result = match command {
        Command::Serve { host } => server::serve(config, server::ServeOptions { host }).await,
        Command::Lambda { function } => lambda::run(config, function).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tfpilot: {e:#}");
            ExitCode::FAILURE
        }
    }
}
