//! The performance regression gate.
//!
//! Reads the results of the last bench run (criterion estimates, the scale bench's summary),
//! counts the instructions of one uevent under callgrind, measures the release `kata-agent`
//! binary (stripped size, start to first Check, idle RSS), and compares everything with the
//! committed baseline (`benches/baseline.json`):
//!
//! - wall times as ratios of a bench to its floor measured in the same run (stable on noisy
//!   machines where absolute times are not), each within a tolerance of its baseline ratio;
//! - the scale bench's wall time per exec with 100 containers over that with 1;
//! - instruction counts (machine-load independent) within a tolerance of their baseline;
//! - binary size, idle RSS and start time against absolute budgets: RSS both with the binary's
//!   pages dropped from the page cache first (cold, as at a guest's boot) and with the binary
//!   read just before (warm); start warm (cold start is the disk's time, printed).
//!
//! Absolute times (real-Linux exec, round trip, hotplug) are printed next to their targets
//! for information. Exits 1 when a figure is worse than its limit, 2 when it cannot measure.
//! `benches/gate.sh` runs the benches and then this.
//!
//! Usage: `gate [--binary PATH]`; results are read from `$CARGO_TARGET_DIR` (default: the
//! target directory this executable was built in). Results older than `$GATE_SINCE` (unix
//! seconds, set by gate.sh) count as missing.

mod agent;
mod callgrind;
mod results;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent_benches::stats::target_dir;
use anyhow::Context;
use serde::Deserialize;

use agent::Cache;
use results::Results;

#[derive(Deserialize)]
struct Baseline {
    /// `bench` over `floor`, each a criterion id (`group/function`).
    ratios: Vec<RatioCheck>,
    /// The scale bench: wall time per exec, 100 containers over 1.
    scale: Tolerated,
    /// Instructions per operation under callgrind.
    instructions: Vec<InstructionCheck>,
    /// Absolute times shown for information, with their targets.
    reported: Vec<Reported>,
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
    /// A fixed ceiling instead of `baseline` + `tolerance` (the real exec's 3x its floor).
    #[serde(default)]
    limit: Option<f64>,
    /// Measured only as root (real containers): reported as skipped otherwise.
    #[serde(default)]
    needs_root: bool,
    /// Measured only where cgroup2 holds a controller (the v2 exec): skipped otherwise.
    #[serde(default)]
    needs_cgroup2: bool,
}

#[derive(Deserialize)]
struct Tolerated {
    baseline: f64,
    tolerance: f64,
}

#[derive(Deserialize)]
struct InstructionCheck {
    /// What is counted.
    name: String,
    /// A binary of this package, run as `<binary> N`: the work of N operations.
    binary: String,
    /// Operations per run: the cost is (Ir(N) - Ir(0)) / N.
    operations: u64,
    baseline: f64,
    tolerance: f64,
}

#[derive(Deserialize)]
struct Reported {
    bench: String,
    /// What the number is compared with, in words (`aim 3.5 ms, Kata 11.8 ms`).
    target: String,
}

#[derive(Deserialize)]
struct Budgets {
    binary_bytes: u64,
    idle_rss_kib: u64,
    /// The start-time limit: Kata's figure, so that noise on a shared machine does not fail
    /// the gate while a real regression does.
    start_ms: f64,
    /// What the agent aims at, reported.
    start_aim_ms: f64,
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
    let target = target_dir();
    let binary = binary_arg()?.unwrap_or_else(|| target.join("release/kata-agent"));
    let baseline = load_baseline()?;
    let results = Results::new(target.join("criterion"));
    let mut ok = check_ratios(&baseline.ratios, &results)?;
    ok &= check_scale(&baseline.scale, &results)?;
    ok &= check_instructions(&baseline.instructions, &target)?;
    print_reported(&baseline.reported, &results)?;
    ok &= check_binary(&binary, &baseline.budgets)?;
    println!("gate: {}", if ok { "passed" } else { "FAILED" });
    Ok(ok)
}

/// The `--binary PATH` argument, if given.
fn binary_arg() -> anyhow::Result<Option<PathBuf>> {
    let mut args = std::env::args().skip(1);
    let mut binary = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--binary" => binary = args.next().map(PathBuf::from),
            other => anyhow::bail!("unknown argument {other:?} (usage: gate [--binary PATH])"),
        }
    }
    Ok(binary)
}

/// The committed `benches/baseline.json`.
fn load_baseline() -> anyhow::Result<Baseline> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("baseline.json")).context("baseline.json")?;
    serde_json::from_str(&text).context("parsing baseline.json")
}

/// Each bench over its floor, within its limit (the root-only ones skipped when not root, the
/// cgroup2 ones where cgroup2 has no controller).
fn check_ratios(checks: &[RatioCheck], results: &Results) -> anyhow::Result<bool> {
    let mut ok = true;
    let root = nix::unistd::geteuid().is_root();
    for check in checks {
        let what = format!("{} / {}", check.bench, check.floor);
        if check.needs_root && !root {
            println!("skip {what}: not measured (needs root)");
            continue;
        }
        if check.needs_cgroup2
            && let Some(why) = agent_benches::cgroup2::unavailable()
        {
            println!("skip {what}: not measured ({why})");
            continue;
        }
        let bench = results.median_ns(&check.bench)?;
        let floor = results.median_ns(&check.floor)?;
        let ratio = bench / floor;
        let limit = check
            .limit
            .unwrap_or(check.baseline * (1.0 + check.tolerance));
        ok &= report(
            &what,
            format!("{ratio:.2} ({} / {})", time(bench), time(floor)),
            format!("<= {limit:.2}, baseline {:.2}", check.baseline),
            ratio <= limit,
        );
    }
    Ok(ok)
}

/// The scale bench: time per exec with 100 containers over that with 1.
fn check_scale(baseline: &Tolerated, results: &Results) -> anyhow::Result<bool> {
    let scale = results.scale()?;
    let (one, hundred) = (scale.one_container, scale.hundred_containers);
    let ratio = hundred.per_op_us / one.per_op_us;
    let limit = baseline.baseline * (1.0 + baseline.tolerance);
    Ok(report(
        "scale: time per exec, 100 containers / 1",
        format!(
            "{ratio:.2} (p50 {:.0} / {:.0} µs, p99 {:.0} / {:.0} µs)",
            hundred.p50_us, one.p50_us, hundred.p99_us, one.p99_us
        ),
        format!("<= {limit:.2}, baseline {:.2}", baseline.baseline),
        ratio <= limit,
    ))
}

/// Instructions per operation under callgrind, each within its tolerance.
fn check_instructions(checks: &[InstructionCheck], target: &Path) -> anyhow::Result<bool> {
    let mut ok = true;
    for check in checks {
        let program = target.join("release").join(&check.binary);
        let per_op = callgrind::instructions_per_op(&program, check.operations)?;
        let limit = check.baseline * (1.0 + check.tolerance);
        ok &= report(
            &format!("{} (callgrind)", check.name),
            format!("{per_op:.0} instructions"),
            format!("<= {limit:.0}, baseline {:.0}", check.baseline),
            per_op <= limit,
        );
    }
    Ok(ok)
}

/// The absolute times shown for information, next to their targets.
fn print_reported(items: &[Reported], results: &Results) -> anyhow::Result<()> {
    for item in items {
        match results.median_ns_if_present(&item.bench)? {
            Some(ns) => println!("info {}: {} ({})", item.bench, time(ns), item.target),
            None => println!("info {}: not measured in this run", item.bench),
        }
    }
    Ok(())
}

/// The release binary against its budgets: stripped size, start to first Check, idle RSS.
fn check_binary(binary: &Path, budgets: &Budgets) -> anyhow::Result<bool> {
    let size = std::fs::metadata(binary)
        .with_context(|| format!("{} (run cargo build --release first)", binary.display()))?
        .len();
    let mut ok = report(
        "kata-agent stripped size",
        format!("{:.2} MiB", mib(size)),
        format!("<= {:.2} MiB", mib(budgets.binary_bytes)),
        size <= budgets.binary_bytes,
    );
    let cold = agent::start_and_rss(binary, Cache::Cold)?;
    let warm = agent::start_and_rss(binary, Cache::Warm)?;
    ok &= report(
        "kata-agent start to first Check, warm (median of 7)",
        format!(
            "{:.2} ms (cold {:.2} ms; aim {:.1} ms)",
            warm.start_ms, cold.start_ms, budgets.start_aim_ms
        ),
        format!("<= {:.2} ms", budgets.start_ms),
        warm.start_ms <= budgets.start_ms,
    );
    for (state, m) in [("cold", &cold), ("warm", &warm)] {
        ok &= report(
            &format!("kata-agent idle RSS 200 ms after the first Check, {state} (median of 7)"),
            format!(
                "{:.2} MiB ({:.2} file, {:.2} anon)",
                m.rss_kib as f64 / 1024.0,
                m.rss_file_kib as f64 / 1024.0,
                m.rss_anon_kib as f64 / 1024.0
            ),
            format!("<= {:.2} MiB", budgets.idle_rss_kib as f64 / 1024.0),
            m.rss_kib <= budgets.idle_rss_kib,
        );
    }
    Ok(ok)
}

fn report(what: &str, got: String, limit: String, pass: bool) -> bool {
    let mark = if pass { "ok  " } else { "FAIL" };
    println!("{mark} {what}: {got} (limit {limit})");
    pass
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// `ns` in the unit that suits it.
fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
