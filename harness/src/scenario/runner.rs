//! Runs a scenario's steps against a booted guest and records the trace.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::backend::{Backend, Done};
use super::error::ScenarioError;
use super::expect::{normalize, subset, to_json};
use super::fake::FakeBackend;
use super::format::{AwaitStep, CallStep, ExpectError, Scenario, Step};
use super::trace::{Trace, TraceEntry, time};
use super::vm::{BootInfo, GuestVm};
use crate::call::{CallError, call_json_with};
use crate::client::AgentClient;

/// What an RPC came back with: a JSON reply, or `(code, message)`.
pub type CallOutcome = Result<Json, (String, String)>;

/// A failed step: which one, and expected vs got.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("step {index} ({step}): {detail}")]
pub struct StepError {
    /// The step's number, from 1 (0: before the first step).
    pub index: usize,
    /// The step's description.
    pub step: String,
    /// What went wrong: expected vs got.
    pub detail: String,
}

/// The result of one scenario run.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The trace (up to the failing step).
    pub trace: Trace,
    /// The first failure, if any.
    pub error: Option<StepError>,
}

/// Runs the steps of one guest on a backend: RPC steps here, the others on the backend.
pub(super) struct Runner<'a, B: Backend> {
    pub(super) backend: B,
    normalize: &'a [String],
    background: BTreeMap<String, JoinHandle<CallOutcome>>,
    start: Instant,
    /// In a fault sweep: RPC outcomes are recorded, expectations not enforced.
    lenient: bool,
    pub(super) notes: Vec<String>,
}

/// A call's result as the trace shows it: the reply, the agent's error code and message,
/// `TRANSPORT` for a ttrpc failure, or `HARNESS` for one of the harness's own.
fn outcome_of(result: Result<String, CallError>) -> CallOutcome {
    let harness = |e: &dyn std::fmt::Display| Err(("HARNESS".into(), e.to_string()));
    match result {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(reply) => Ok(reply),
            Err(e) => harness(&format_args!("reply is not JSON: {e}")),
        },
        Err(CallError::Rpc(ttrpc::Error::RpcStatus(status))) => {
            let code = status
                .code
                .enum_value()
                .map_or_else(|n| format!("CODE_{n}"), |c| format!("{c:?}"));
            Err((code, status.message))
        }
        Err(CallError::Rpc(other)) => Err(("TRANSPORT".into(), other.to_string())),
        Err(e) => harness(&e),
    }
}

/// Makes one call. No virtual-time guard here: with paused time, a pending timer lets the clock
/// jump ahead whenever the runtime idles on real I/O (the fake launcher's pipes), which would
/// fire the guard spuriously. A hung call is caught by the real-time watchdog of [`run`].
pub(super) async fn call(
    client: AgentClient,
    method: String,
    body: String,
    timeout: Duration,
    metadata: Vec<(String, String)>,
) -> CallOutcome {
    outcome_of(call_json_with(&client, &method, &body, timeout, &metadata).await)
}

impl<'a, B: Backend> Runner<'a, B> {
    pub(super) fn new(backend: B, normalize: &'a [String], lenient: bool) -> Self {
        Runner {
            backend,
            normalize,
            background: BTreeMap::new(),
            start: Instant::now(),
            lenient,
            notes: Vec::new(),
        }
    }

    /// Records RPC outcomes without enforcing expectations (fault sweeps).
    pub(super) fn set_lenient(&mut self, lenient: bool) {
        self.lenient = lenient;
    }

    /// Runs one step; fills `entry` (with the time and the uevents delivered meanwhile).
    pub(super) async fn step(
        &mut self,
        step: &Step,
        entry: &mut TraceEntry,
    ) -> Result<Done, ScenarioError> {
        let result = match step {
            Step::Call(c) => self.call_step(c, entry).await.map(|()| Done::Ran),
            Step::Await(a) => self.await_step(a, entry).await.map(|()| Done::Ran),
            Step::Advance(a) => {
                // Virtual time on the fakes, real time on a real guest.
                tokio::time::sleep(a.advance).await;
                Ok(Done::Ran)
            }
            _ => self.backend.device_step(step, entry).await,
        };
        entry.at = time(Instant::now() - self.start);
        entry.uevents = self.backend.new_uevents();
        result
    }

    /// An RPC: judged at once, or left running in the background under its name.
    async fn call_step(
        &mut self,
        c: &CallStep,
        entry: &mut TraceEntry,
    ) -> Result<(), ScenarioError> {
        let body = match &c.request {
            Some(r) => to_json(r)?.to_string(),
            None => String::new(),
        };
        let timeout = c.timeout.unwrap_or_else(|| self.backend.call_limit());
        let metadata = c.metadata.clone().into_iter().collect();
        let fut = call(
            self.backend.client(),
            c.call.clone(),
            body,
            timeout,
            metadata,
        );
        let Some(name) = &c.background else {
            let outcome = fut.await;
            return self.judge(outcome, &c.expect, &c.expect_error, entry);
        };
        if c.expect.is_some() || c.expect_error.is_some() {
            return Err(ScenarioError::Invalid(
                "a background call's expectations go on its `await`".into(),
            ));
        }
        self.background.insert(name.clone(), tokio::spawn(fut));
        // Let the request reach the agent before the next step.
        tokio::time::sleep(self.backend.background_grace()).await;
        Ok(())
    }

    /// Waits for a background call and judges its outcome.
    async fn await_step(
        &mut self,
        a: &AwaitStep,
        entry: &mut TraceEntry,
    ) -> Result<(), ScenarioError> {
        let task = self.background.remove(&a.name).ok_or_else(|| {
            ScenarioError::Invalid(format!("no background call named {:?}", a.name))
        })?;
        let outcome = task
            .await
            .unwrap_or_else(|e| Err(("HARNESS".into(), e.to_string())));
        self.judge(outcome, &a.expect, &a.expect_error, entry)
    }

    fn judge(
        &mut self,
        outcome: CallOutcome,
        expect: &Option<serde_yaml::Value>,
        expect_error: &Option<ExpectError>,
        entry: &mut TraceEntry,
    ) -> Result<(), ScenarioError> {
        let shown = match &outcome {
            Ok(reply) => {
                let mut reply = reply.clone();
                let mut keys = vec!["agent_version".to_owned()];
                keys.extend(self.normalize.iter().cloned());
                normalize(&mut reply, &keys);
                entry.reply = Some(reply);
                "reply".to_owned()
            }
            Err((code, message)) => {
                entry.error = Some(format!("{code}: {message}"));
                format!("{code}: {message}")
            }
        };
        self.notes.push(shown);
        if self.lenient {
            return Ok(());
        }
        verdict(outcome, expect, expect_error)
    }

    /// The names of background calls never awaited.
    fn pending(&self) -> Vec<String> {
        self.background.keys().cloned().collect()
    }

    /// Stops the guest; background calls still running are cancelled.
    pub(super) async fn finish(self) {
        for (_, task) in self.background {
            task.abort();
        }
        self.backend.finish().await;
    }
}

/// A step that did not run (in full) on its backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The step's number, from 1.
    pub index: usize,
    /// The step's description.
    pub step: String,
    /// Whether it was skipped whole (else only parts of it).
    pub whole: bool,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = if self.whole { "" } else { "part of " };
        write!(
            f,
            "{part}step {} ({}): {}",
            self.index, self.step, self.reason
        )
    }
}

/// What running a scenario's steps came to.
#[derive(Debug, Default)]
pub(super) struct StepsRun {
    /// One entry per step run (up to the failing one).
    pub(super) steps: Vec<TraceEntry>,
    /// The first failure.
    pub(super) error: Option<StepError>,
    /// Steps not run in full.
    pub(super) skipped: Vec<Skip>,
    /// How long each foreground ExecProcess call took.
    pub(super) exec_latencies: Vec<Duration>,
}

/// Runs `steps` in order until one fails; a background call never awaited is a failure.
pub(super) async fn run_steps<B: Backend>(runner: &mut Runner<'_, B>, steps: &[Step]) -> StepsRun {
    let mut run = StepsRun::default();
    for (i, step) in steps.iter().enumerate() {
        let mut entry = TraceEntry {
            step: format!("{}. {}", i + 1, step.describe()),
            ..TraceEntry::default()
        };
        let started = std::time::Instant::now();
        let result = runner.step(step, &mut entry).await;
        if matches!(step, Step::Call(c) if c.call == "ExecProcess" && c.background.is_none()) {
            run.exec_latencies.push(started.elapsed());
        }
        run.steps.push(entry);
        let (whole, reason) = match result {
            Ok(Done::Ran) => continue,
            Ok(Done::Skipped(reason)) => (true, reason),
            Ok(Done::Partly(reason)) => (false, reason),
            Err(e) => {
                run.error = Some(StepError {
                    index: i + 1,
                    step: step.describe(),
                    detail: e.to_string(),
                });
                return run;
            }
        };
        run.skipped.push(Skip {
            index: i + 1,
            step: step.describe(),
            whole,
            reason,
        });
    }
    let pending = runner.pending();
    if !pending.is_empty() {
        run.error = Some(StepError {
            index: steps.len(),
            step: "end".into(),
            detail: format!("background calls never awaited: {}", pending.join(", ")),
        });
    }
    run
}

/// Whether `outcome` is what the step expected: the error `expect_error`, or a reply containing
/// `expect`.
pub(super) fn verdict(
    outcome: CallOutcome,
    expect: &Option<serde_yaml::Value>,
    expect_error: &Option<ExpectError>,
) -> Result<(), ScenarioError> {
    let mismatch = ScenarioError::Mismatch;
    match (expect_error, outcome) {
        (Some(want), Err((code, message))) => {
            if want.code != code || !message.contains(&want.message) {
                return Err(mismatch(format!(
                    "expected error {} containing {:?}\n  got error {code}: {message}",
                    want.code, want.message
                )));
            }
            Ok(())
        }
        (Some(want), Ok(reply)) => Err(mismatch(format!(
            "expected error {} containing {:?}\n  got reply {reply}",
            want.code, want.message
        ))),
        (None, Err((code, message))) => Err(mismatch(format!(
            "expected a reply\n  got error {code}: {message}"
        ))),
        (None, Ok(reply)) => match expect {
            Some(want) => {
                let want = to_json(want)?;
                subset(&want, &reply).map_err(|e| {
                    mismatch(format!("expected reply ⊇ {want}\n  got {reply}\n  ({e})"))
                })
            }
            None => Ok(()),
        },
    }
}

/// Runs `scenario` once on the fake backend, on the current runtime (which should have paused
/// time).
pub async fn run_once(scenario: &Scenario) -> Outcome {
    let vm = match GuestVm::boot(&scenario.vm).await {
        Ok(vm) => vm,
        Err(e) => {
            return Outcome {
                trace: Trace {
                    scenario: scenario.name.clone(),
                    boot: BootInfo::failed(&scenario.vm),
                    steps: Vec::new(),
                },
                error: Some(StepError {
                    index: 0,
                    step: "boot".into(),
                    detail: e.to_string(),
                }),
            };
        }
    };
    let boot = vm.boot.clone();
    let backend = FakeBackend::new(vm, &scenario.vm, &scenario.normalize);
    let mut runner = Runner::new(backend, &scenario.normalize, false);
    let run = run_steps(&mut runner, &scenario.steps).await;
    runner.finish().await;
    Outcome {
        trace: Trace {
            scenario: scenario.name.clone(),
            boot,
            steps: run.steps,
        },
        error: run.error,
    }
}

/// Runs `scenario` on a fresh single-threaded runtime with paused time, `repeat` times; a
/// repeat whose trace differs from the first is an error.
pub fn run(scenario: &Scenario) -> Outcome {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Outcome {
                trace: Trace {
                    scenario: scenario.name.clone(),
                    boot: BootInfo::failed(&scenario.vm),
                    steps: Vec::new(),
                },
                error: Some(StepError {
                    index: 0,
                    step: "runtime".into(),
                    detail: e.to_string(),
                }),
            };
        }
    };
    let _watchdog = Watchdog::start(&scenario.name);
    let first = runtime.block_on(run_once(scenario));
    for n in 2..=scenario.repeat {
        if first.error.is_some() {
            break;
        }
        let again = runtime.block_on(run_once(scenario));
        if again.trace != first.trace {
            let (a, b) = (first.trace.to_yaml(), again.trace.to_yaml());
            let diff = super::suite::first_difference(&a, &b);
            return Outcome {
                error: Some(StepError {
                    index: 0,
                    step: format!("repeat {n}"),
                    detail: format!("trace differs from the first run: {diff}"),
                }),
                ..first
            };
        }
    }
    first
}

/// Real time a scenario may take before the process gives up on it (a hung RPC).
const WATCHDOG: Duration = Duration::from_secs(120);

/// Ends the process when a scenario hangs; disarmed when dropped.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    fn start(name: &str) -> Watchdog {
        let (done, rx) = std::sync::mpsc::channel::<()>();
        let name = name.to_owned();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(WATCHDOG) {
                eprintln!(
                    "scenario {name}: no progress after {} of real time (a call never answered?)",
                    time(WATCHDOG)
                );
                std::process::exit(2);
            }
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.done.send(());
    }
}
