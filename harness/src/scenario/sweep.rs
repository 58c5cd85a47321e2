//! Fault sweeps: replay steps once per seam call they make, with that call failing, on a fresh
//! guest each time, and check what was left behind.

use agent_fakes::{FaultPoint, Op};
use nix::errno::Errno;

use super::check::run_checks;
use super::error::{FormatError, ScenarioError};
use super::expect::{errno, op};
use super::fake::FakeBackend;
use super::format::{Checks, FaultSweep, Step, parse_steps};
use super::runner::Runner;
use super::trace::TraceEntry;
use super::vm::GuestVm;
use crate::vmm::config::VmConfig;

type SweepRunner<'a> = Runner<'a, FakeBackend>;

async fn run_steps(
    runner: &mut SweepRunner<'_>,
    steps: &[Step],
    lenient: bool,
) -> Result<(), ScenarioError> {
    for (i, step) in steps.iter().enumerate() {
        let mut entry = TraceEntry::default();
        if let Err(e) = runner.step(step, &mut entry).await {
            if !lenient {
                return Err(ScenarioError::Invalid(format!(
                    "setup step {} ({}): {e}",
                    i + 1,
                    step.describe()
                )));
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
) -> Result<SweepRunner<'a>, ScenarioError> {
    let vm = GuestVm::boot(vm_config).await?;
    let mut runner = Runner::new(FakeBackend::new(vm, vm_config, normalize), normalize, false);
    run_steps(&mut runner, setup, false).await?;
    runner.set_lenient(true);
    runner.notes.clear();
    Ok(runner)
}

/// Runs the sweep; one line per fault point, or every point whose checks failed.
pub(super) async fn sweep(
    s: &FaultSweep,
    vm_config: &VmConfig,
    normalize: &[String],
) -> Result<Vec<String>, ScenarioError> {
    let list = |list, error| FormatError::List {
        list,
        error: Box::new(error),
    };
    let setup = parse_steps(&s.setup).map_err(|e| list("setup", e))?;
    let steps = parse_steps(&s.steps)?;
    let after = parse_steps(&s.after).map_err(|e| list("after", e))?;
    if steps
        .iter()
        .chain(&setup)
        .chain(&after)
        .any(|s| matches!(s, Step::FaultSweep(_)))
    {
        return Err(ScenarioError::Invalid("fault sweeps do not nest".into()));
    }
    let errno = errno(s.errno.as_deref().unwrap_or("EIO"))?;
    let ops: Vec<Op> = s.ops.iter().map(|o| op(o)).collect::<Result<_, _>>()?;

    let mut dry = fresh(vm_config, normalize, &setup).await?;
    let before = dry.backend.vm.fake.faults.counts();
    run_steps(&mut dry, &steps, true).await?;
    let _ = dry.backend.settle().await;
    let points: Vec<_> = dry
        .backend
        .vm
        .fake
        .faults
        .points_since(&before)
        .into_iter()
        .filter(|p| ops.is_empty() || ops.contains(&p.op))
        .collect();
    dry.finish().await;
    if points.is_empty() {
        return Err(ScenarioError::Invalid(
            "the swept steps make no seam calls".into(),
        ));
    }

    let swept = Swept {
        vm_config,
        normalize,
        setup: &setup,
        steps: &steps,
        after: &after,
        check: &s.check,
        errno,
    };
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    for point in points {
        match swept.point(&point).await? {
            PointLine::Held(line) => lines.push(line),
            PointLine::Failed(failure) => failures.push(failure),
        }
    }
    if failures.is_empty() {
        Ok(lines)
    } else {
        Err(ScenarioError::Checks(format!(
            "{} fault point(s) failed their checks:\n  {}",
            failures.len(),
            failures.join("\n  ")
        )))
    }
}

/// One fault point's line: its checks held, or which failed.
enum PointLine {
    Held(String),
    Failed(String),
}

/// What each fault point of a sweep replays.
struct Swept<'a> {
    vm_config: &'a VmConfig,
    normalize: &'a [String],
    setup: &'a [Step],
    steps: &'a [Step],
    after: &'a [Step],
    check: &'a Checks,
    errno: Errno,
}

impl Swept<'_> {
    /// The steps on a fresh guest with `point` failing: its line, or its failure.
    async fn point(&self, point: &FaultPoint) -> Result<PointLine, ScenarioError> {
        let mut runner = fresh(self.vm_config, self.normalize, self.setup).await?;
        let fake = &runner.backend.vm.fake;
        fake.baseline();
        fake.faults.fail_nth(point.op, point.nth, self.errno);
        run_steps(&mut runner, self.steps, true).await?;
        if let Err(e) = runner.backend.settle().await {
            runner.notes.push(format!("settle: {e}"));
        }
        let fired = runner.backend.vm.fake.faults.pending() == 0;
        runner.backend.vm.fake.faults.clear();
        if !self.after.is_empty() {
            runner.notes.push("then".into());
            run_steps(&mut runner, self.after, true).await?;
        }
        let checked = run_checks(&runner.backend.vm, self.check);
        let notes = runner.notes.join("; ");
        runner.finish().await;
        let errno = self.errno;
        let head = format!(
            "{point} fails {errno:?}{}",
            if fired { "" } else { " (never reached)" }
        );
        Ok(match checked {
            Ok(n) => PointLine::Held(format!("{head}: {notes}; {n} check(s) held")),
            Err(e) => PointLine::Failed(format!(
                "{head}: {notes}\n    {}",
                e.to_string().replace('\n', "\n    ")
            )),
        })
    }
}
