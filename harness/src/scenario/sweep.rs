//! Fault sweeps: replay steps once per seam call they make, with that call failing, on a fresh
//! guest each time, and check what was left behind.

use agent_fakes::Op;

use super::check::run_checks;
use super::expect::{errno, op};
use super::format::{FaultSweep, Step, parse_steps};
use super::runner::Runner;
use super::trace::TraceEntry;
use super::vm::GuestVm;
use crate::vmm::config::VmConfig;

async fn run_steps(
    runner: &mut Runner<'_>,
    steps: &[Step],
    vm_config: &VmConfig,
    lenient: bool,
) -> Result<(), String> {
    for (i, step) in steps.iter().enumerate() {
        let mut entry = TraceEntry::default();
        if let Err(e) = runner.step(step, &mut entry, vm_config).await {
            if !lenient {
                return Err(format!("setup step {} ({}): {e}", i + 1, step.describe()));
            }
            runner.notes.push(format!("{}: {e}", step.describe()));
        }
    }
    Ok(())
}

async fn fresh<'a>(
    vm_config: &VmConfig,
    normalize: &'a [String],
    setup: &[Step],
) -> Result<Runner<'a>, String> {
    let vm = GuestVm::boot(vm_config).await?;
    let mut runner = Runner::new(vm, normalize, false);
    run_steps(&mut runner, setup, vm_config, false).await?;
    runner.set_lenient(true);
    runner.notes.clear();
    Ok(runner)
}

/// Runs the sweep; one line per fault point, or every point whose checks failed.
pub(super) async fn sweep(
    s: &FaultSweep,
    vm_config: &VmConfig,
    normalize: &[String],
) -> Result<Vec<String>, String> {
    let setup = parse_steps(&s.setup).map_err(|e| format!("setup: {e}"))?;
    let steps = parse_steps(&s.steps)?;
    let after = parse_steps(&s.after).map_err(|e| format!("after: {e}"))?;
    if steps
        .iter()
        .chain(&setup)
        .any(|s| matches!(s, Step::FaultSweep(_)))
    {
        return Err("fault sweeps do not nest".into());
    }
    let errno = errno(s.errno.as_deref().unwrap_or("EIO"))?;
    let ops: Vec<Op> = s.ops.iter().map(|o| op(o)).collect::<Result<_, _>>()?;

    let mut dry = fresh(vm_config, normalize, &setup).await?;
    let before = dry.vm.fake.faults.counts();
    run_steps(&mut dry, &steps, vm_config, true).await?;
    let _ = dry.settle().await;
    let points: Vec<_> = dry
        .vm
        .fake
        .faults
        .points_since(&before)
        .into_iter()
        .filter(|p| ops.is_empty() || ops.contains(&p.op))
        .collect();
    dry.finish().await;
    if points.is_empty() {
        return Err("the swept steps make no seam calls".into());
    }

    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for point in points {
        let mut runner = fresh(vm_config, normalize, &setup).await?;
        runner.vm.fake.baseline();
        runner.vm.fake.faults.fail_nth(point.op, point.nth, errno);
        run_steps(&mut runner, &steps, vm_config, true).await?;
        if let Err(e) = runner.settle().await {
            runner.notes.push(format!("settle: {e}"));
        }
        let fired = runner.vm.fake.faults.pending() == 0;
        runner.vm.fake.faults.clear();
        if !after.is_empty() {
            runner.notes.push("then".into());
            run_steps(&mut runner, &after, vm_config, true).await?;
        }
        let checked = run_checks(&runner.vm, &s.check);
        let notes = runner.notes.join("; ");
        runner.finish().await;
        let head = format!(
            "{point} fails {errno:?}{}",
            if fired { "" } else { " (never reached)" }
        );
        match checked {
            Ok(n) => lines.push(format!("{head}: {notes}; {n} check(s) held")),
            Err(e) => failures.push(format!(
                "{head}: {notes}\n    {}",
                e.replace('\n', "\n    ")
            )),
        }
    }
    if failures.is_empty() {
        Ok(lines)
    } else {
        Err(format!(
            "{} fault point(s) failed their checks:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ))
    }
}
