//! The `tfpilot` binary: parses the command line, reads the configuration, and calls the
//! library. To add a subcommand: one `Command` variant and one match arm calling a library
//! function.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tfpilot::lambda::LambdaFunction;
use tfpilot::{app, telemetry};

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
        #[command(flatten)]
        env: EnvFileArg,
    },
    /// Create TfPilot's GitHub App through GitHub's manifest flow: serves a page on PORT
    /// (path /setup), then saves the App's id, key and webhook secret to the env file.
    Setup {
        /// Address the page listens on (only this machine by default).
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        host: IpAddr,
        /// Replace the env file if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        env: EnvFileArg,
    },
    /// Check the configuration end to end (GitHub App, installations, repositories, store,
    /// chat logs, assistant): one line per check; exit 1 on any failure.
    Doctor {
        #[command(flatten)]
        env: EnvFileArg,
    },
    /// Run as an AWS Lambda function (the default when AWS_LAMBDA_RUNTIME_API is set).
    Lambda {
        /// Which function: the webhook (Function URL) or the worker (S3 inbox events).
        #[arg(value_enum, env = LAMBDA_FUNCTION_VAR, default_value = "webhook")]
        function: LambdaFunction,
    },
    /// Print the bounded Terraform block for a module type and a set of values.
    Render(tfpilot::terraform::cli::RenderArgs),
    /// Work with the module catalogue (e.g. `registry check --modules <dir>` for drift).
    Registry {
        #[command(subcommand)]
        command: tfpilot::terraform::registry_cli::RegistryCommand,
    },
    /// Check an infra repo (e.g. `repo check <dir>`: its workflows keep TfPilot's guardrails).
    Repo {
        #[command(subcommand)]
        command: tfpilot::settings::repo_check::RepoCommand,
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

/// The env file `setup` writes and `serve`/`doctor` read (the environment wins over it).
#[derive(Debug, Clone, clap::Args)]
struct EnvFileArg {
    /// The env file (read when present; variables set in the environment win).
    #[arg(long = "env-file", default_value = ".env")]
    path: PathBuf,
}

/// Selects the Lambda function when none is given on the command line (set in template.yaml).
const LAMBDA_FUNCTION_VAR: &str = "TFPILOT_LAMBDA_FUNCTION";

fn main() -> ExitCode {
    limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tfpilot: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(Cli::parse()));
    // Not dropped: dropping a runtime waits for its blocking threads, and one may still be
    // waiting on the network (the start-up check against a GitHub that does not answer), which
    // would hold the exit for as long; shutting it down instead makes such a thread's timers
    // panic. Everything that must be durable was made so before `run` returned (`serve` stops
    // within its grace), so the process ends here as after a crash at worst.
    std::mem::forget(runtime);
    code
}

async fn run(cli: Cli) -> ExitCode {
    let command = match cli.command {
        Some(command) => command,
        None if telemetry::on_lambda() => {
            let function = match std::env::var(LAMBDA_FUNCTION_VAR) {
                Err(_) => LambdaFunction::Webhook,
                Ok(v) => match LambdaFunction::from_str(&v, true) {
                    Ok(f) => f,
                    Err(_) => {
                        let problem = tfpilot::config::ConfigProblem {
                            variable: LAMBDA_FUNCTION_VAR,
                            reason: format!("must be `webhook` or `worker`, got `{v}`"),
                        };
                        let error = tfpilot::config::ConfigError {
                            problems: vec![problem],
                        };
                        app::refuse_start(&error, true).await;
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

    // Offline tools: they need no service configuration.
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match &command {
        Command::Render(args) => {
            return ExitCode::from(tfpilot::terraform::cli::run_render(
                args, &mut out, &mut err,
            ));
        }
        Command::Registry { command } => {
            return ExitCode::from(tfpilot::terraform::registry_cli::run_registry(
                command, &mut out, &mut err,
            ));
        }
        Command::Repo { command } => {
            return ExitCode::from(tfpilot::settings::repo_check::run_repo(
                command, &mut out, &mut err,
            ));
        }
        Command::Audit {
            request_id,
            store,
            chat_bucket,
        } => {
            let result =
                tfpilot::store::run_audit(store, chat_bucket.as_deref(), request_id, &mut out)
                    .await;
            return match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tfpilot: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Serve { .. }
        | Command::Lambda { .. }
        | Command::Setup { .. }
        | Command::Doctor { .. } => {}
    }
    drop((out, err));

    let env_file = match &command {
        Command::Serve { env, .. } | Command::Setup { env, .. } | Command::Doctor { env } => {
            Some(env.path.clone())
        }
        _ => None,
    };
    // `setup` writes the env file: it reads only the environment.
    let read_env_file = match &command {
        Command::Setup { .. } => None,
        _ => env_file.as_deref(),
    };
    let config = match app::load_config_with(read_env_file).await {
        Ok(config) => config,
        Err(e) => {
            app::refuse_start(&e, matches!(command, Command::Lambda { .. })).await;
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);

    let result = match command {
        Command::Serve { host, .. } => app::serve(config, app::ServeOptions { host }).await,
        Command::Lambda { function } => app::lambda(config, function).await,
        Command::Setup { host, force, env } => {
            app::setup(&config, host, env.path, force).await.map(|_| ())
        }
        Command::Doctor { .. } => {
            let report = tfpilot::doctor::run(&config, tfpilot::doctor::Depth::Full).await;
            for check in &report.checks {
                println!("{check}");
            }
            if report.failed() {
                return ExitCode::FAILURE;
            }
            Ok(())
        }
        Command::Render(_)
        | Command::Registry { .. }
        | Command::Repo { .. }
        | Command::Audit { .. } => Ok(()),
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

/// glibc's malloc gives threads that allocate at once arenas of their own (up to 8 per core) and
/// keeps what each one frees for that arena: under a burst of webhooks `serve`'s peak RSS was
/// 68–74 MiB with the default and 40–49 MiB with two arenas, at the same throughput
/// (`benches/serve-load.sh`, 2 cores). A limit the environment sets (`MALLOC_ARENA_MAX`, or
/// `GLIBC_TUNABLES` naming `arena_max`) is left as it is.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() && !tunables.contains("arena_max") {
            // SAFETY: `mallopt` only sets a parameter of the allocator, and no other thread
            // exists yet. It returns 0 if the value is refused, which changes nothing.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
    }
}
