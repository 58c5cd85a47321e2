//! `harness`: drive a kata-agent from the host side.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use agent_harness::scenario::{RealOptions, record, run, suite};
use agent_harness::{AgentClient, call_json};
use clap::{Parser, Subcommand};

#[path = "harness/real.rs"]
mod real;

#[derive(Parser, Debug)]
#[command(
    name = "harness",
    version,
    about = "VMM test harness and client for kata-agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Calls one RPC of a running agent, like kata-agent-ctl.
    Call {
        /// Agent address: unix:///path, unix://@name or vsock://CID:PORT.
        #[arg(long)]
        addr: String,
        /// Treat --addr as a VMM hybrid-vsock socket and connect to this guest port.
        #[arg(long, value_name = "PORT")]
        hybrid_vsock_port: Option<u32>,
        /// Call timeout (Go/humantime duration; 0 waits forever).
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: Duration,
        /// RPC name, e.g. Check, Version, CreateSandbox.
        method: String,
        /// Request as JSON (proto3 JSON mapping; proto field names accepted); default `{}`.
        #[arg(default_value = "")]
        json: String,
    },
    /// Lists every RPC the client knows, with its request type.
    Methods,
    /// Runs scenario files (a file, or every *.yaml of a directory) against an in-process
    /// agent inside the fake VMM and compares each trace with its snapshot.
    Run {
        /// Scenario files or directories.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// Print each scenario's trace.
        #[arg(long)]
        trace: bool,
        /// `fake` (the in-process fake VMM), or `qemu`: the scenarios marked `real_vm: true`
        /// on a real guest kernel under QEMU.
        #[arg(long, value_enum, default_value_t = Vmm::Fake)]
        vmm: Vmm,
        /// qemu: the agent binary put in the guest.
        #[arg(long, default_value = "target/release/kata-agent")]
        agent: PathBuf,
        /// qemu: the kernel cache and the guests' working folders.
        #[arg(long, default_value = "target/qemu-cache")]
        cache: PathBuf,
    },
    /// Turns real uevents into a scenario skeleton of `raw_uevent` steps, printed on stdout.
    Record {
        /// Read a uevent log (`UEVENT | ACTION@DEVPATH | KEY=VALUE | ...` lines) instead of the kernel.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// From the kernel: stop after this many uevents.
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// From the kernel: stop after this long without a uevent.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        idle: Duration,
        /// Leave out uevents of these subsystems (e.g. module, drivers).
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
    },
}

/// Which VMM runs the scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Vmm {
    /// The fake VMM around an in-process agent on the fakes.
    Fake,
    /// A real guest under QEMU (TCG), the release agent as PID 1.
    Qemu,
}

fn parse_duration(text: &str) -> Result<Duration, humantime::DurationError> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            paths,
            trace,
            vmm: Vmm::Fake,
            ..
        } => run_scenarios(&paths, trace),
        Command::Run {
            paths,
            agent,
            cache,
            vmm: Vmm::Qemu,
            ..
        } => real::run_real_scenarios(&paths, &RealOptions { agent, cache }),
        Command::Record {
            from,
            count,
            idle,
            skip,
        } => record_uevents(from.as_deref(), count, idle, &skip),
        command => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(client_command(command)),
            Err(e) => fail(&e),
        },
    }
}

/// Runs every scenario of `paths`: a progress line each, then `N passed, M failed`.
fn run_scenarios(paths: &[PathBuf], show_trace: bool) -> ExitCode {
    let started = std::time::Instant::now();
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
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let name = suite::name_of(file);
        let t0 = std::time::Instant::now();
        let scenario = match suite::load(file) {
            Ok(s) => s,
            Err(e) => {
                println!("FAIL {name}: {e}");
                failed += 1;
                continue;
            }
        };
        let outcome = run(&scenario);
        let text = outcome.trace.to_yaml();
        let ms = t0.elapsed().as_millis();
        let verdict = match (&outcome.error, suite::compare(file, &text)) {
            (Some(e), _) => Err(e.to_string()),
            (None, suite::SnapshotStatus::Differs(diff)) => {
                Err(format!("trace differs from its snapshot at {diff}"))
            }
            (None, suite::SnapshotStatus::Missing) => Ok(" (no snapshot yet)"),
            (None, suite::SnapshotStatus::Matches) => Ok(""),
        };
        match verdict {
            Ok(note) => {
                passed += 1;
                println!("ok   {name} ({ms} ms){note}");
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {name} ({ms} ms)\n  {}", e.replace('\n', "\n  "));
            }
        }
        if show_trace {
            println!("{text}");
        }
    }
    println!(
        "{passed} passed, {failed} failed ({} ms)",
        started.elapsed().as_millis()
    );
    if failed == 0 && !files.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints a scenario skeleton replaying a uevent log, or uevents read from the kernel.
fn record_uevents(from: Option<&Path>, count: usize, idle: Duration, skip: &[String]) -> ExitCode {
    let (source, lines) = match from {
        Some(file) => match std::fs::read_to_string(file) {
            Ok(text) => (
                file.display().to_string(),
                text.lines().map(str::to_owned).collect(),
            ),
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        },
        None => match listen(count, idle) {
            Ok(lines) => ("the kernel".to_owned(), lines),
            Err(e) => return fail(&e),
        },
    };
    match record::skeleton(&source, &lines, skip) {
        Ok((yaml, n)) => {
            eprintln!("{n} uevent(s)");
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads up to `count` kernel uevents, stopping after `idle` without one.
fn listen(count: usize, idle: Duration) -> std::io::Result<Vec<String>> {
    use kata_agent::host::UeventSource;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let source = kata_agent::linux::NetlinkUevents::new()?;
        eprintln!(
            "listening for kernel uevents (stops after {count} or {} idle)",
            humantime::format_duration(idle)
        );
        let mut lines = Vec::new();
        while lines.len() < count {
            match tokio::time::timeout(idle, source.recv()).await {
                Err(_) => break,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Ok(Ok(raw)) => {
                    if let Some(line) = record::datagram_line(&raw) {
                        eprintln!("{line}");
                        lines.push(line);
                    }
                }
            }
        }
        Ok(lines)
    })
}

async fn client_command(command: Command) -> ExitCode {
    match command {
        Command::Run { .. } | Command::Record { .. } => ExitCode::FAILURE,
        Command::Methods => {
            for m in agent_protos::methods() {
                println!("{}/{} ({})", m.service, m.name, m.request.full_name());
            }
            ExitCode::SUCCESS
        }
        Command::Call {
            addr,
            hybrid_vsock_port,
            timeout,
            method,
            json,
        } => {
            let client = match hybrid_vsock_port {
                Some(port) => AgentClient::connect_hybrid_vsock(&addr, port).await,
                None => AgentClient::connect(&addr).await,
            };
            let client = match client {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            match call_json(&client, &method, &json, timeout).await {
                Ok(answer) => {
                    println!("{answer}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    }
}

fn fail(err: &dyn std::error::Error) -> ExitCode {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    eprintln!("error: {text}");
    ExitCode::FAILURE
}
