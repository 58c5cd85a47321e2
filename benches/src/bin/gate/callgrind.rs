//! Instruction counts under `valgrind --tool=callgrind`: deterministic where wall time on a
//! shared machine is not.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// The instructions `program N` executes, as callgrind counts them (`Collected : <Ir>`).
fn instructions(program: &Path, n: u64) -> anyhow::Result<u64> {
    let out_file = tempfile::NamedTempFile::new()?;
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!(
            "--callgrind-out-file={}",
            out_file.path().display()
        ))
        .arg(program)
        .arg(n.to_string())
        .output()
        .context("running valgrind (apt-get install valgrind)")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "callgrind {} {n} failed ({}): {stderr}",
            program.display(),
            output.status
        );
    }
    stderr
        .lines()
        .find_map(|line| {
            let (_, count) = line.split_once("Collected :")?;
            count.trim().parse().ok()
        })
        .with_context(|| format!("no 'Collected :' line in callgrind's output: {stderr}"))
}

/// Instructions per operation of `program`: (Ir(ops) - Ir(0)) / ops, so start-up and set-up
/// cancel out.
pub fn instructions_per_op(program: &Path, ops: u64) -> anyhow::Result<f64> {
    if !program.exists() {
        bail!(
            "{} not found (cargo build --release -p agent-benches --bin {})",
            program.display(),
            program
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
    }
    let base = instructions(program, 0)?;
    let loaded = instructions(program, ops)?;
    Ok(loaded.saturating_sub(base) as f64 / ops.max(1) as f64)
}
