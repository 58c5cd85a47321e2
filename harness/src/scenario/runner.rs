//! Runs a scenario's steps against a booted guest and records the trace.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::check::run_checks;
use super::expect::{errno, normalize, op, subset, to_json};
use super::format::{ExpectError, Scenario, Step};
use super::port_steps::in_order;
use super::ports::Ports;
use super::record::parse_line;
use super::trace::{Trace, TraceEntry, time, uevent_line};
use super::vm::{BootInfo, GuestVm};
use crate::call::{CallError, call_json_with};
use crate::client::AgentClient;
use crate::vmm::config::VmConfig;
use crate::vmm::guest::{DeliveryRule, Effect};

/// How long (virtual) `settle` waits for the guest model to go idle.
const SETTLE_GUARD: Duration = Duration::from_secs(60);

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

/// Runs the steps of one guest.
pub(super) struct Runner<'a> {
    pub(super) vm: GuestVm,
    normalize: &'a [String],
    background: BTreeMap<String, JoinHandle<CallOutcome>>,
    /// The host's passfd streams, by port.
    pub(super) passfd: BTreeMap<u32, tokio::io::DuplexStream>,
    seen: usize,
    start: Instant,
    /// In a fault sweep: RPC outcomes are recorded, expectations not enforced.
    lenient: bool,
    pub(super) notes: Vec<String>,
    ports: Ports,
}

fn outcome_of(result: Result<String, CallError>) -> Result<CallOutcome, String> {
    match result {
        Ok(text) => serde_json::from_str(&text)
            .map(Ok)
            .map_err(|e| format!("reply is not JSON: {e}")),
        Err(CallError::Rpc(ttrpc::Error::RpcStatus(status))) => {
            let code = status
                .code
                .enum_value()
                .map_or_else(|n| format!("CODE_{n}"), |c| format!("{c:?}"));
            Ok(Err((code, status.message)))
        }
        Err(CallError::Rpc(other)) => Ok(Err(("TRANSPORT".into(), other.to_string()))),
        Err(e) => Err(e.to_string()),
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
        .unwrap_or_else(|e| Err(("HARNESS".into(), e)))
}

impl<'a> Runner<'a> {
    pub(super) fn new(vm: GuestVm, normalize: &'a [String], lenient: bool) -> Self {
        Runner {
            vm,
            normalize,
            background: BTreeMap::new(),
            passfd: BTreeMap::new(),
            seen: 0,
            start: Instant::now(),
            lenient,
            notes: Vec::new(),
            ports: Ports::default(),
        }
    }

    /// Records RPC outcomes without enforcing expectations (fault sweeps).
    pub(super) fn set_lenient(&mut self, lenient: bool) {
        self.lenient = lenient;
    }

    /// Runs one step; fills `entry`; an error is expected vs got.
    pub(super) async fn step(
        &mut self,
        step: &Step,
        entry: &mut TraceEntry,
        vm_config: &VmConfig,
    ) -> Result<(), String> {
        let result = self.exec(step, entry, vm_config).await;
        entry.at = time(Instant::now() - self.start);
        let log = self.vm.vmm.uevent_log();
        entry.uevents = log[self.seen.min(log.len())..]
            .iter()
            .map(uevent_line)
            .collect();
        self.seen = log.len();
        result
    }

    async fn exec(
        &mut self,
        step: &Step,
        entry: &mut TraceEntry,
        vm_config: &VmConfig,
    ) -> Result<(), String> {
        match step {
            Step::Call(c) => {
                let body = match &c.request {
                    Some(r) => to_json(r)?.to_string(),
                    None => String::new(),
                };
                let timeout = c.timeout.unwrap_or(Duration::ZERO);
                let metadata = c.metadata.clone().into_iter().collect();
                let fut = call(
                    self.vm.client.clone(),
                    c.call.clone(),
                    body,
                    timeout,
                    metadata,
                );
                if let Some(name) = &c.background {
                    if c.expect.is_some() || c.expect_error.is_some() {
                        return Err("a background call's expectations go on its `await`".into());
                    }
                    self.background.insert(name.clone(), tokio::spawn(fut));
                    // Let the request reach the agent before the next step.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    return Ok(());
                }
                let outcome = fut.await;
                self.judge(outcome, &c.expect, &c.expect_error, entry)
            }
            Step::Await(a) => {
                let task = self
                    .background
                    .remove(&a.name)
                    .ok_or_else(|| format!("no background call named {:?}", a.name))?;
                let outcome = task
                    .await
                    .unwrap_or_else(|e| Err(("HARNESS".into(), e.to_string())));
                self.judge(outcome, &a.expect, &a.expect_error, entry)
            }
            Step::Hotplug(h) => match (self.vm.vmm.hotplug(h), &h.refused) {
                (Ok((id, summary)), None) => {
                    entry.vmm = Some(format!("{id}: {summary}"));
                    Ok(())
                }
                (Err(e), Some(want)) if e.to_string().contains(want.as_str()) => {
                    entry.vmm = Some(format!("refused: {e}"));
                    Ok(())
                }
                (Ok((id, summary)), Some(want)) => Err(format!(
                    "expected the VMM to refuse ({want:?})\n  got {id}: {summary}"
                )),
                (Err(e), _) => Err(format!("VMM refused: {e}")),
            },
            Step::Unplug(u) => {
                let summary = self
                    .vm
                    .vmm
                    .unplug(&u.unplug, u.delay)
                    .map_err(|e| e.to_string())?;
                entry.vmm = Some(format!("{}: unplugged {summary}", u.unplug));
                Ok(())
            }
            Step::RawUevent(r) => {
                let event = parse_line(&r.raw_uevent)?;
                self.vm
                    .vmm
                    .raw_uevent(event, r.delay)
                    .map_err(|e| e.to_string())
            }
            Step::Rule(rule) => {
                let (matcher, effect) =
                    match (&rule.drop_uevent, &rule.delay_uevent, &rule.reorder_uevent) {
                        (Some(m), _, _) => (m.clone(), Effect::Drop),
                        (_, Some(m), _) => (m.clone(), Effect::Delay(rule.by.unwrap_or_default())),
                        (_, _, Some(m)) => (m.clone(), Effect::Reorder(rule.after.unwrap_or(1))),
                        _ => return Err("no rule".into()),
                    };
                self.vm.vmm.add_rule(DeliveryRule {
                    matcher,
                    effect,
                    count: rule.count.unwrap_or(1),
                });
                Ok(())
            }
            Step::Advance(a) => {
                tokio::time::sleep(a.advance).await;
                Ok(())
            }
            Step::Settle => self.settle().await,
            Step::Baseline => {
                self.vm.fake.baseline();
                Ok(())
            }
            Step::Fault(f) => {
                let op = op(&f.fault)?;
                let errno = errno(f.errno.as_deref().unwrap_or("EIO"))?;
                let nth = f.nth.unwrap_or(1).max(1);
                self.vm.fake.faults.fail_nth(op, nth, errno);
                entry.vmm = Some(format!("{op:?} call #{nth} from now fails with {errno:?}"));
                Ok(())
            }
            Step::Oom(o) => {
                let watchers = self
                    .vm
                    .fake
                    .cgroups
                    .trigger_oom(&o.oom)
                    .map_err(|e| format!("cgroup {}: {e}", o.oom))?;
                entry.vmm = Some(format!("OOM kill in {} ({watchers} watcher(s))", o.oom));
                Ok(())
            }
            Step::KernelFile(k) => {
                for (path, contents) in &k.kernel_file {
                    self.vm
                        .fake
                        .sysfs
                        .write_file(path, contents.as_bytes())
                        .map_err(|e| format!("{path}: {e}"))?;
                }
                Ok(())
            }
            Step::Passfd(p) => {
                entry.vmm = Some(self.passfd_step(p).await?);
                Ok(())
            }
            Step::Check(c) => {
                entry.checked = Some(run_checks(&self.vm, &c.check)?);
                Ok(())
            }
            Step::Connect(c) => self.ports.connect(&self.vm, c.connect, &c.name).await,
            Step::Listen(l) => self.ports.listen(&self.vm, l.listen, &l.name),
            Step::Send(s) => self.ports.send(&s.send, &s.data).await,
            Step::Receive(r) => {
                let text = self.ports.receive(&r.receive, r.until.as_deref()).await?;
                in_order(&text, &r.lines).map_err(|missing| {
                    format!("{}: {missing:?} not found in order in {text:?}", r.receive)
                })?;
                entry.checked = Some(r.lines.len() + usize::from(r.until.is_some()));
                Ok(())
            }
            Step::Spans(s) => {
                let expect = s
                    .expect
                    .iter()
                    .map(to_json)
                    .collect::<Result<Vec<_>, _>>()?;
                let names = self.ports.spans(&s.spans, &expect).await?;
                entry.vmm = Some(format!("spans: {}", names.join(", ")));
                Ok(())
            }
            Step::FaultSweep(s) => {
                if self.lenient {
                    return Err("fault sweeps do not nest".into());
                }
                // Boxed: a sweep runs steps, which is this function.
                entry.sweep = Box::pin(super::sweep::sweep(s, vm_config, self.normalize)).await?;
                Ok(())
            }
        }
    }

    /// Waits (on virtual time) until the guest model played everything and the agent took
    /// every uevent.
    pub(super) async fn settle(&mut self) -> Result<(), String> {
        let started = Instant::now();
        // Sleeping lets every other task run: paused time only advances when all are idle.
        // Fine steps first (most sequences are due at once), then coarse ones up to the guard.
        let mut polls = 0u32;
        loop {
            let step = if polls < 1000 {
                Duration::from_millis(1)
            } else {
                Duration::from_secs(1)
            };
            tokio::time::sleep(step).await;
            polls += 1;
            if self.vm.vmm.is_idle() {
                return Ok(());
            }
            if Instant::now() - started >= SETTLE_GUARD {
                return Err(format!(
                    "guest not idle after {} (uevents not taken by the agent?)",
                    time(SETTLE_GUARD)
                ));
            }
        }
    }

    fn judge(
        &mut self,
        outcome: CallOutcome,
        expect: &Option<serde_yaml::Value>,
        expect_error: &Option<ExpectError>,
        entry: &mut TraceEntry,
    ) -> Result<(), String> {
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

    /// Stops the guest; background calls still running are cancelled.
    pub(super) async fn finish(self) {
        for (_, task) in self.background {
            task.abort();
        }
        self.vm.shutdown().await;
    }
}

/// Whether `outcome` is what the step expected: the error `expect_error`, or a reply containing
/// `expect`.
pub(super) fn verdict(
    outcome: CallOutcome,
    expect: &Option<serde_yaml::Value>,
    expect_error: &Option<ExpectError>,
) -> Result<(), String> {
    match (expect_error, outcome) {
        (Some(want), Err((code, message))) => {
            if want.code != code || !message.contains(&want.message) {
                return Err(format!(
                    "expected error {} containing {:?}\n  got error {code}: {message}",
                    want.code, want.message
                ));
            }
            Ok(())
        }
        (Some(want), Ok(reply)) => Err(format!(
            "expected error {} containing {:?}\n  got reply {reply}",
            want.code, want.message
        )),
        (None, Err((code, message))) => {
            Err(format!("expected a reply\n  got error {code}: {message}"))
        }
        (None, Ok(reply)) => match expect {
            Some(want) => {
                let want = to_json(want)?;
                subset(&want, &reply)
                    .map_err(|e| format!("expected reply ⊇ {want}\n  got {reply}\n  ({e})"))
            }
            None => Ok(()),
        },
    }
}

/// Runs `scenario` once on the current runtime (which should have paused time).
pub async fn run_once(scenario: &Scenario) -> Outcome {
    let vm = match GuestVm::boot(&scenario.vm).await {
        Ok(vm) => vm,
        Err(detail) => {
            return Outcome {
                trace: Trace {
                    scenario: scenario.name.clone(),
                    boot: BootInfo::failed(&scenario.vm),
                    steps: Vec::new(),
                },
                error: Some(StepError {
                    index: 0,
                    step: "boot".into(),
                    detail,
                }),
            };
        }
    };
    let boot = vm.boot.clone();
    let mut runner = Runner::new(vm, &scenario.normalize, false);
    let mut steps = Vec::new();
    let mut error = None;
    for (i, step) in scenario.steps.iter().enumerate() {
        let mut entry = TraceEntry {
            step: format!("{}. {}", i + 1, step.describe()),
            ..TraceEntry::default()
        };
        let result = runner.step(step, &mut entry, &scenario.vm).await;
        steps.push(entry);
        if let Err(detail) = result {
            error = Some(StepError {
                index: i + 1,
                step: step.describe(),
                detail,
            });
            break;
        }
    }
    if error.is_none() && !runner.background.is_empty() {
        let names: Vec<String> = runner.background.keys().cloned().collect();
        error = Some(StepError {
            index: scenario.steps.len(),
            step: "end".into(),
            detail: format!("background calls never awaited: {}", names.join(", ")),
        });
    }
    runner.finish().await;
    Outcome {
        trace: Trace {
            scenario: scenario.name.clone(),
            boot,
            steps,
        },
        error,
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
