//! `harness run --vmm qemu`: the scenarios marked `real_vm: true`, each on a fresh real guest.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agent_harness::scenario::{RealOptions, RealOutcome, run_real, suite};

/// Runs the real-VM scenarios of `paths`: a line per scenario (with its skipped steps, the
/// boot-to-Check time and the exec latency), then `N passed, M failed`.
pub fn run_real_scenarios(paths: &[PathBuf], options: &RealOptions) -> ExitCode {
    if !options.agent.is_file() {
        eprintln!(
            "error: --agent {}: no such file (cargo build --release -p kata-agent)",
            options.agent.display()
        );
        return ExitCode::FAILURE;
    }
    let mut files = Vec::new();
    for path in paths {
        match suite::scenario_files(path) {
            Ok(found) => files.extend(found),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    let (mut passed, mut failed, mut not_real) = (0, 0, 0);
    for file in &files {
        let name = suite::name_of(file);
        let scenario = match suite::load(file) {
            Ok(s) => s,
            Err(e) => {
                println!("FAIL {name}: {e}");
                failed += 1;
                continue;
            }
        };
        if !scenario.real_vm {
            not_real += 1;
            continue;
        }
        let t0 = std::time::Instant::now();
        let outcome = runtime.block_on(run_real(&scenario, options));
        let line = summary(&outcome, t0.elapsed());
        match &outcome.error {
            None => {
                passed += 1;
                println!("ok   {name} ({line})");
            }
            Some(e) => {
                failed += 1;
                println!(
                    "FAIL {name} ({line})\n  {}",
                    e.to_string().replace('\n', "\n  ")
                );
                println!("  guest logs: {}", outcome.workdir.display());
            }
        }
        for skipped in &outcome.skipped {
            println!("  skipped {skipped}");
        }
    }
    println!(
        "{passed} passed, {failed} failed ({} ms; {not_real} scenario(s) not marked real_vm)",
        started.elapsed().as_millis()
    );
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn summary(outcome: &RealOutcome, total: Duration) -> String {
    let mut parts = vec![format!("{} ms", total.as_millis())];
    if let Some(boot) = outcome.boot_to_check {
        parts.push(format!("boot to first Check {} ms", boot.as_millis()));
    }
    if !outcome.exec_latencies.is_empty() {
        let sum: Duration = outcome.exec_latencies.iter().sum();
        let n = u32::try_from(outcome.exec_latencies.len()).unwrap_or(u32::MAX);
        parts.push(format!("exec {} ms avg", (sum / n).as_millis()));
    }
    match outcome.powered_off {
        Some(true) => parts.push("powered off after DestroySandbox".into()),
        Some(false) => parts.push("still running 5 s after DestroySandbox".into()),
        None => {}
    }
    parts.push(format!(
        "{} step(s) run, {} skipped",
        outcome.ran,
        outcome.skipped.len()
    ));
    parts.join(", ")
}
