//! Memory of posting one large plan: `cargo bench --bench plan_memory`.
//!
//! Writes a `plan` artifact (a zip with `plan.json` and `plan.txt` of about 19 MiB each, many
//! resources with sensitive attributes) and runs, in a fresh child process each, the way TfPilot
//! turns it into comments (`executor::plan_from_archive` + `comments::plan::plan_comments`) and,
//! for comparison, the earlier way (the whole `plan.json` parsed into a `serde_json::Value` besides
//! the typed summary, the whole `plan.txt` masked and rendered). Each child reports its peak
//! resident memory (`VmHWM`) and its time; a 256 MB Lambda must hold the first with room to spare.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use tfpilot::comments::plan::{PlanComment, PlanCommentLimits, plan_comments};
use tfpilot::executor::plan_from_archive;
use tfpilot::github::ArtifactArchive;
use tfpilot::ids::RequestId;
use tfpilot::terraform::plan::{Masker, PlanSummary};

const TARGET_BYTES: usize = 19 * 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, path] = args.as_slice()
        && (mode == "--child" || mode == "--child-earlier")
    {
        child(mode == "--child", path);
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let zip_path = dir.path().join("plan.zip");
    let (json_len, text_len, zip_len) = write_artifact(&zip_path);
    println!(
        "plan artifact: plan.json {:.1} MiB, plan.txt {:.1} MiB, zip {:.1} MiB",
        mib(json_len),
        mib(text_len),
        mib(zip_len)
    );
    let me = std::env::current_exe().expect("the bench binary");
    for (mode, what) in [
        ("--child", "TfPilot (plan_from_archive)"),
        ("--child-earlier", "earlier (two parses, whole text)"),
    ] {
        let out = Command::new(&me)
            .args([mode, zip_path.to_str().expect("a UTF-8 path")])
            .output()
            .expect("run the child");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{what:<36} {}", String::from_utf8_lossy(&out.stdout));
    }
}

fn mib(n: usize) -> f64 {
    n as f64 / (1024.0 * 1024.0)
}

fn status_kib(key: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One child run: read the zip as a download would (bytes in memory), turn it into comments.
fn child(current: bool, path: &str) {
    let bytes = std::fs::read(path).expect("the artifact");
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let masker = Masker::new::<&str>(&[]).expect("default patterns");
    let limits = PlanCommentLimits::default();
    let id = RequestId::new_random();
    let run_url = "https://github.com/acme/infra/actions/runs/1";
    let (summary_line, comments, chars) = if current {
        let plan = plan_from_archive(ArtifactArchive::new(bytes), &masker, limits.text_budget())
            .expect("the plan");
        let bodies = plan_comments(
            &comment(id, &plan.summary, &plan.text, plan.lines_cut, run_url),
            limits,
        );
        (
            plan.summary.line(),
            bodies.len(),
            bodies.iter().map(String::len).sum::<usize>(),
        )
    } else {
        let archive = ArtifactArchive::new(bytes);
        let json = archive.file("plan.json", 64 << 20).expect("plan.json");
        let text = String::from_utf8_lossy(&archive.file("plan.txt", 64 << 20).expect("plan.txt"))
            .into_owned();
        let summary = PlanSummary::from_json(&json).expect("summary");
        let whole: serde_json::Value = serde_json::from_slice(&json).expect("json");
        let sensitive = tfpilot::terraform::plan::sensitive_values(&json).expect("sensitive");
        let masked = masker.mask(&text, &sensitive);
        let bodies = plan_comments(&comment(id, &summary, &masked, 0, run_url), limits);
        std::hint::black_box(&whole);
        (
            summary.line(),
            bodies.len(),
            bodies.iter().map(String::len).sum::<usize>(),
        )
    };
    let took = started.elapsed();
    println!(
        "peak RSS {:.1} MiB (at start {:.1} MiB), {:.0} ms; {comments} comments, {chars} chars; {summary_line}",
        status_kib("VmHWM:") as f64 / 1024.0,
        before as f64 / 1024.0,
        took.as_secs_f64() * 1000.0
    );
}

fn comment<'a>(
    id: RequestId,
    summary: &'a PlanSummary,
    text: &'a str,
    lines_cut: usize,
    run_url: &'a str,
) -> PlanComment<'a> {
    PlanComment {
        request_id: id,
        revision: 1,
        environment: "dev",
        run_id: 1,
        run_url,
        pr_url: None,
        summary,
        plan_text: text,
        lines_cut,
    }
}

/// A plan of many resources, each with 20 attributes of which one is sensitive, as
/// `terraform show -json` and `terraform show` print them; zipped like an Actions artifact.
fn write_artifact(path: &std::path::Path) -> (usize, usize, usize) {
    let mut json = String::from(r#"{"format_version":"1.2","resource_changes":["#);
    let mut text = String::from("Terraform will perform the following actions:\n\n");
    let mut n = 0usize;
    while json.len() < TARGET_BYTES && text.len() < TARGET_BYTES {
        let address = format!("module.tfpilot_x.terraform_data.r{n}");
        let mut after = serde_json::Map::new();
        let _ = writeln_text(
            &mut text,
            &format!("  # {address} will be created\n  + resource \"terraform_data\" \"r{n}\" {{"),
        );
        for a in 0..20 {
            let value = format!("value-{n}-{a}-{}", "x".repeat(60));
            after.insert(
                format!("attr_{a}"),
                serde_json::Value::String(value.clone()),
            );
            let shown = if a == 7 {
                "(sensitive value)".to_owned()
            } else {
                format!("{value:?}")
            };
            let _ = writeln_text(&mut text, &format!("      + attr_{a} = {shown}"));
        }
        let _ = writeln_text(&mut text, "    }\n");
        let change = serde_json::json!({
            "address": address,
            "mode": "managed",
            "type": "terraform_data",
            "name": format!("r{n}"),
            "change": {
                "actions": ["create"],
                "before": null,
                "after": after,
                "after_unknown": {},
                "before_sensitive": false,
                "after_sensitive": { "attr_7": true },
            }
        });
        if n > 0 {
            json.push(',');
        }
        json.push_str(&change.to_string());
        n += 1;
    }
    json.push_str("]}");
    text.push_str(&format!("Plan: {n} to add, 0 to change, 0 to destroy.\n"));
    let file = std::fs::File::create(path).expect("create the zip");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in [("plan.json", &json), ("plan.txt", &text)] {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(body.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finish");
    let zip_len = std::fs::metadata(path)
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    (json.len(), text.len(), zip_len)
}

fn writeln_text(out: &mut String, line: &str) -> std::fmt::Result {
    use std::fmt::Write as _;
    writeln!(out, "{line}")
}
