//! The performance regression gate.
//!
//! Reads the criterion results of the last `cargo bench` run and the release `kata-agent`
//! binary, measures the binary's start time and idle RSS, and compares everything with the
//! committed baseline (`benches/baseline.json`): ratios of a bench to its floor measured in the
//! same run (stable on noisy machines), and absolute budgets for size, RSS and start time.
//! Exits non-zero when a figure is worse than its tolerance. `benches/gate.sh` runs it all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

#[derive(Deserialize)]
struct Baseline {
    /// `bench` over `floor`, each a criterion id (`group/function`).
    ratios: Vec<RatioCheck>,
    budgets: Budgets,
}

#[derive(Deserialize)]
struct RatioCheck {
    bench: String,
    floor: String,
    /// The ratio measured when the baseline was taken.
    baseline: f64,
    /// How much worse than `baseline` is tolerated, as a fraction (0.5 = +50 %).
    tolerance: f64,
}

#[derive(Deserialize)]
struct Budgets {
    binary_bytes: u64,
    idle_rss_kib: u64,
    start_ms: f64,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gate: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let root = workspace_root();
    let baseline: Baseline = serde_json::from_str(
        &std::fs::read_to_string(root.join("benches/baseline.json")).context("baseline.json")?,
    )
    .context("parsing baseline.json")?;
    let criterion = root.join("target/criterion");
    let binary = root.join("target/release/kata-agent");
    let mut ok = true;

    for check in &baseline.ratios {
        let bench = median_ns(&criterion, &check.bench)?;
        let floor = median_ns(&criterion, &check.floor)?;
        let ratio = bench / floor;
        let limit = check.baseline * (1.0 + check.tolerance);
        ok &= report(
            &format!("{} / {}", check.bench, check.floor),
            format!("{ratio:.2} ({bench:.0} ns / {floor:.0} ns)"),
            format!("<= {limit:.2} (baseline {:.2})", check.baseline),
            ratio <= limit,
        );
    }

    let size = std::fs::metadata(&binary)
        .with_context(|| format!("{} (run cargo build --release first)", binary.display()))?
        .len();
    ok &= report(
        "kata-agent stripped size",
        format!("{:.2} MiB", size as f64 / 1048576.0),
        format!(
            "<= {:.2} MiB",
            baseline.budgets.binary_bytes as f64 / 1048576.0
        ),
        size <= baseline.budgets.binary_bytes,
    );

    let (start, rss_kib) = start_and_rss(&binary)?;
    let start_ms = start.as_secs_f64() * 1000.0;
    ok &= report(
        "kata-agent start to first Check",
        format!("{start_ms:.2} ms"),
        format!("<= {:.2} ms", baseline.budgets.start_ms),
        start_ms <= baseline.budgets.start_ms,
    );
    ok &= report(
        "kata-agent idle RSS",
        format!("{:.2} MiB", rss_kib as f64 / 1024.0),
        format!(
            "<= {:.2} MiB",
            baseline.budgets.idle_rss_kib as f64 / 1024.0
        ),
        rss_kib <= baseline.budgets.idle_rss_kib,
    );
    println!("gate: {}", if ok { "passed" } else { "FAILED" });
    Ok(ok)
}

fn report(what: &str, got: String, limit: String, pass: bool) -> bool {
    let mark = if pass { "ok  " } else { "FAIL" };
    println!("{mark} {what}: {got} (limit {limit})");
    pass
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// The median time of criterion bench `id` (`group/function`) from its last run, ns.
fn median_ns(criterion: &Path, id: &str) -> anyhow::Result<f64> {
    let path = criterion.join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{} (run the benches first)", path.display()))?;
    let estimates: Estimates = serde_json::from_str(&text).context("criterion estimates")?;
    Ok(estimates.median.point_estimate)
}

/// Starts the agent on a private unix socket five times: the median time from spawn to the
/// first answered Check, and the median RSS after 200 ms idle.
fn start_and_rss(binary: &Path) -> anyhow::Result<(Duration, u64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for run in 0..5 {
        let sock = dir.path().join(format!("agent{run}.sock"));
        let addr = format!("unix://{}", sock.display());
        let began = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .env("KATA_AGENT_SERVER_ADDR", &addr)
            .env("KATA_AGENT_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let answered = rt.block_on(first_check(&addr, &sock));
        let started = began.elapsed();
        std::thread::sleep(Duration::from_millis(200));
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
        let _ = child.kill();
        let _ = child.wait();
        answered?;
        starts.push(started);
        rss.push(vm_rss_kib(&status?).context("VmRSS")?);
    }
    starts.sort();
    rss.sort();
    Ok((starts[2], rss[2]))
}

async fn first_check(addr: &str, sock: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if sock.exists()
            && let Ok(client) = agent_harness::AgentClient::connect(addr).await
        {
            let req = agent_protos::health::CheckRequest::new();
            let ctx = ttrpc::context::with_timeout(5_000_000_000);
            client.health.check(ctx, &req).await.context("Check")?;
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the agent did not answer within 10 s");
        }
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
}

fn vm_rss_kib(status: &str) -> Option<u64> {
    let fields: BTreeMap<&str, &str> = status.lines().filter_map(|l| l.split_once(':')).collect();
    fields
        .get("VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
