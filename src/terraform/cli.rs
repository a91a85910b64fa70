//! `tfpilot render`: prints the bounded block (or, with `--json`, the normalized config) for a
//! module type and a set of values — the same code path a request takes, without GitHub.

use std::io::Write;
use std::path::PathBuf;

use crate::ids::RequestId;
use crate::registry::{ConfigContext, Registry, build_module_config, config::raw_from_pairs};

use super::render::{module_address, render_block};

/// Arguments of `tfpilot render`.
#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// The module type (s3-bucket, sqs-queue, ecs-service, iam-role-app) or one of its aliases.
    #[arg(long, value_name = "TYPE")]
    pub module: String,
    /// The environment (the directory under envs/).
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// The project, the first part of every derived name.
    #[arg(long, value_name = "PROJECT")]
    pub project: String,
    /// An input value; repeat for more (`--set name=invoices --set versioning=on --set tags.Team=x`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The request id to render for (default: a new random id).
    #[arg(long, value_name = "UUID")]
    pub request_id: Option<RequestId>,
    /// Print the normalized config, the target file and the block as JSON.
    #[arg(long)]
    pub json: bool,
    /// Read the catalogue from this directory instead of the built-in one.
    #[arg(long, value_name = "DIR")]
    pub registry: Option<PathBuf>,
}

/// Runs `tfpilot render`. Exit code: 0 rendered, 1 invalid inputs (all listed on stderr),
/// 2 usage errors (unknown module type, malformed `--set`, unreadable catalogue).
pub fn run_render(args: &RenderArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match render(args, out) {
        Ok(()) => 0,
        Err((code, message)) => {
            let _ = writeln!(err, "{message}");
            code
        }
    }
}

fn render(args: &RenderArgs, out: &mut dyn Write) -> Result<(), (u8, String)> {
    let loaded;
    let registry = match &args.registry {
        Some(dir) => {
            loaded = Registry::load_dir(dir).map_err(|e| (2, e.to_string()))?;
            &loaded
        }
        None => Registry::embedded(),
    };
    let spec = registry
        .lookup(&args.module)
        .map_err(|e| (2, e.to_string()))?;
    let mut pairs = Vec::new();
    for set in &args.set {
        let (k, v) = set
            .split_once('=')
            .ok_or_else(|| (2, format!("--set `{set}`: expected KEY=VALUE")))?;
        pairs.push((k.trim().to_owned(), v.to_owned()));
    }
    let raw = raw_from_pairs(pairs);
    let ctx = ConfigContext {
        request_id: args.request_id.unwrap_or_else(RequestId::new_random),
        project: args.project.clone(),
        environment: args.environment.clone(),
    };
    let config = build_module_config(spec, &raw, &ctx).map_err(|e| (1, e.to_string()))?;
    let block = render_block(ctx.request_id, spec, &config).map_err(|e| (1, e.to_string()))?;
    if args.json {
        let json = serde_json::json!({
            "request_id": ctx.request_id,
            "module": module_address(&ctx.request_id),
            "target_file": format!("envs/{}/{}", ctx.environment, spec.target_file),
            "config": config,
            "block": block,
        });
        serde_json::to_string_pretty(&json)
            .map_err(|e| (1, e.to_string()))
            .and_then(|s| writeln!(out, "{s}").map_err(|e| (1, e.to_string())))
    } else {
        write!(out, "{block}").map_err(|e| (1, e.to_string()))
    }
}
