//! `harness run --vmm qemu`: the scenarios marked `real_vm: true`, each on a fresh real guest
//! and on the fake VMM, with the parity report of the two traces.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agent_harness::scenario::parity::{self, Parity};
use agent_harness::scenario::{RealOptions, RealOutcome, Scenario, run, run_real, suite};

/// Runs the real-VM scenarios of `paths`: a line per scenario (with its skipped steps, the
/// boot-to-Check time, the agent's start and the exec latency), its parity with the fake VMM,
/// then `N passed, M failed` and the parity totals. A scenario passes when it passes on the
/// real guest and its traces show no difference.
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
    let (mut passed, mut failed, mut not_real, mut differences) = (0, 0, 0, 0);
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
        let (ok, n) = run_one(&runtime, &name, &scenario, options);
        differences += n;
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("parity: {differences} difference(s) between the fake VMM and the real guest");
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

/// One scenario on the real guest, then on the fake VMM, then the parity report; whether both
/// passed with no difference, and how many differences there were.
fn run_one(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    scenario: &Scenario,
    options: &RealOptions,
) -> (bool, usize) {
    let t0 = std::time::Instant::now();
    let outcome = runtime.block_on(run_real(scenario, options));
    let line = summary(&outcome, t0.elapsed());
    match &outcome.error {
        None => println!("ok   {name} ({line})"),
        Some(e) => {
            println!(
                "FAIL {name} ({line})\n  {}",
                e.to_string().replace('\n', "\n  ")
            );
            println!("  guest logs: {}", outcome.workdir.display());
        }
    }
    if let Some(start) = &outcome.agent_start {
        if let Some(steps) = &start.steps {
            println!("  agent start steps: {steps}");
        }
        if let Some(steps) = &start.deferred_steps {
            println!("  agent deferred steps: {steps}");
        }
    }
    for skipped in &outcome.skipped {
        println!("  skipped {skipped}");
    }
    let fake = run(scenario);
    if let Some(e) = &fake.error {
        println!("  fake VMM: FAIL {e}");
    }
    let parity = parity::compare(&fake.trace, &outcome.trace, &outcome.skipped);
    print_parity(&parity);
    let n = parity.differences.len();
    (outcome.error.is_none() && fake.error.is_none() && n == 0, n)
}

fn print_parity(parity: &Parity) {
    let n = parity.differences.len();
    let mut head = format!(
        "  parity with the fake VMM: {n} difference{} ({} step(s) compared",
        if n == 1 { "" } else { "s" },
        parity.compared
    );
    if !parity.not_compared.is_empty() {
        head.push_str(&format!(
            "; not compared, skipped on the real guest: {}",
            parity.not_compared.join(", ")
        ));
    }
    println!("{head})");
    for d in &parity.differences {
        println!("    {d}");
    }
}

fn summary(outcome: &RealOutcome, total: Duration) -> String {
    let mut parts = vec![format!("{} ms", total.as_millis())];
    if let Some(boot) = outcome.boot_to_check {
        parts.push(format!("boot to first Check {} ms", boot.as_millis()));
    }
    if let Some(start) = &outcome.agent_start {
        parts.push(format!("agent as PID 1: {}", start.summary()));
    }
    if !outcome.exec_latencies.is_empty() {
        let sum: Duration = outcome.exec_latencies.iter().sum();
        let n = u32::try_from(outcome.exec_latencies.len()).unwrap_or(u32::MAX);
        let max = outcome
            .exec_latencies
            .iter()
            .max()
            .copied()
            .unwrap_or_default();
        parts.push(format!(
            "exec {} ms avg, {} ms max over {n}",
            (sum / n).as_millis(),
            max.as_millis()
        ));
    }
    match outcome.powered_off {
        Some(true) => parts.push("powered off after DestroySandbox".into()),
        Some(false) => parts.push("still running 5 s after DestroySandbox".into()),
        None => {}
    }
    parts.push(format!(
        "{} step(s) run, {} skipped",
        outcome.ran(),
        outcome.skipped.len()
    ));
    parts.join(", ")
}
