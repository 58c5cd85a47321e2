//! The fake backend: the fake VMM around an in-process agent on the fakes, on paused time.
//! VMM actions, uevent rules, fault injection and checks read or drive the fakes directly.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::backend::{Backend, Done};
use super::check::run_checks;
use super::error::ScenarioError;
use super::expect::{errno, op, to_json};
use super::format::{FaultStep, OomStep, RuleStep, Step};
use super::port_steps::in_order;
use super::ports::Ports;
use super::record::parse_line;
use super::trace::{TraceEntry, time, uevent_line};
use super::vm::GuestVm;
use crate::client::AgentClient;
use crate::vmm::config::{Hotplug, VmConfig};
use crate::vmm::guest::{DeliveryRule, Effect};

/// How long (virtual) `settle` waits for the guest model to go idle.
const SETTLE_GUARD: Duration = Duration::from_secs(60);

/// A booted fake guest and the host-side state of its steps.
pub(super) struct FakeBackend {
    pub(super) vm: GuestVm,
    /// The VM description (fault sweeps boot fresh guests from it).
    config: VmConfig,
    /// The reply keys normalised in traces (passed on to fault sweeps).
    normalize: Vec<String>,
    /// The host's passfd streams, by port.
    pub(super) passfd: BTreeMap<u32, tokio::io::DuplexStream>,
    ports: Ports,
    /// Uevents already put in the trace.
    seen: usize,
}

impl FakeBackend {
    pub(super) fn new(vm: GuestVm, config: &VmConfig, normalize: &[String]) -> Self {
        FakeBackend {
            vm,
            config: config.clone(),
            normalize: normalize.to_vec(),
            passfd: BTreeMap::new(),
            ports: Ports::default(),
            seen: 0,
        }
    }

    /// Waits (on virtual time) until the guest model played everything and the agent took
    /// every uevent.
    pub(super) async fn settle(&mut self) -> Result<(), ScenarioError> {
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
                return Err(ScenarioError::Mismatch(format!(
                    "guest not idle after {} (uevents not taken by the agent?)",
                    time(SETTLE_GUARD)
                )));
            }
        }
    }

    /// A hot-plug, or the refusal the step expects.
    fn hotplug(&self, h: &Hotplug, entry: &mut TraceEntry) -> Result<(), ScenarioError> {
        match (self.vm.vmm.hotplug(h), &h.refused) {
            (Ok((id, summary)), None) => {
                entry.vmm = Some(format!("{id}: {summary}"));
                Ok(())
            }
            (Err(e), Some(want)) if e.to_string().contains(want.as_str()) => {
                entry.vmm = Some(format!("refused: {e}"));
                Ok(())
            }
            (Ok((id, summary)), Some(want)) => Err(ScenarioError::Mismatch(format!(
                "expected the VMM to refuse ({want:?})\n  got {id}: {summary}"
            ))),
            (Err(e), _) => Err(ScenarioError::Refused(e)),
        }
    }

    /// A uevent delivery rule for the guest model.
    fn rule(&self, rule: &RuleStep) -> Result<(), ScenarioError> {
        let (matcher, effect) = match (&rule.drop_uevent, &rule.delay_uevent, &rule.reorder_uevent)
        {
            (Some(m), _, _) => (m.clone(), Effect::Drop),
            (_, Some(m), _) => (m.clone(), Effect::Delay(rule.by.unwrap_or_default())),
            (_, _, Some(m)) => (m.clone(), Effect::Reorder(rule.after.unwrap_or(1))),
            _ => return Err(ScenarioError::Invalid("no rule".into())),
        };
        self.vm.vmm.add_rule(DeliveryRule {
            matcher,
            effect,
            count: rule.count.unwrap_or(1),
        });
        Ok(())
    }

    /// Arms a fault on the fakes' seams.
    fn fault(&self, f: &FaultStep, entry: &mut TraceEntry) -> Result<(), ScenarioError> {
        let op = op(&f.fault)?;
        let errno = errno(f.errno.as_deref().unwrap_or("EIO"))?;
        let nth = f.nth.unwrap_or(1).max(1);
        self.vm.fake.faults.fail_nth(op, nth, errno);
        entry.vmm = Some(format!("{op:?} call #{nth} from now fails with {errno:?}"));
        Ok(())
    }

    /// Plays an OOM kill in a cgroup of the fakes.
    fn oom(&self, o: &OomStep, entry: &mut TraceEntry) -> Result<(), ScenarioError> {
        let watchers = self
            .vm
            .fake
            .cgroups
            .trigger_oom(&o.oom)
            .map_err(|e| ScenarioError::Invalid(format!("cgroup {}: {e}", o.oom)))?;
        entry.vmm = Some(format!("OOM kill in {} ({watchers} watcher(s))", o.oom));
        Ok(())
    }

    /// Files the guest kernel writes.
    fn kernel_files(&self, files: &BTreeMap<String, String>) -> Result<(), ScenarioError> {
        for (path, contents) in files {
            self.vm
                .fake
                .sysfs
                .write_file(path, contents.as_bytes())
                .map_err(ScenarioError::stream(path.clone()))?;
        }
        Ok(())
    }

    /// Steps on the agent's other vsock ports.
    async fn port_step(
        &mut self,
        step: &Step,
        entry: &mut TraceEntry,
    ) -> Result<(), ScenarioError> {
        match step {
            Step::Connect(c) => self.ports.connect(&self.vm, c.connect, &c.name).await,
            Step::Listen(l) => self.ports.listen(&self.vm, l.listen, &l.name),
            Step::Send(s) => self.ports.send(&s.send, &s.data).await,
            Step::Receive(r) => {
                let text = self.ports.receive(&r.receive, r.until.as_deref()).await?;
                in_order(&text, &r.lines).map_err(|missing| {
                    ScenarioError::Mismatch(format!(
                        "{}: {missing:?} not found in order in {text:?}",
                        r.receive
                    ))
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
            _ => Err(ScenarioError::Invalid(format!(
                "{} is not a port step",
                step.describe()
            ))),
        }
    }
}

impl Backend for FakeBackend {
    fn client(&self) -> AgentClient {
        self.vm.client.clone()
    }

    fn background_grace(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn call_limit(&self) -> Duration {
        // None: a hung call is caught by the run's real-time watchdog (see `runner::call`).
        Duration::ZERO
    }

    async fn device_step(
        &mut self,
        step: &Step,
        entry: &mut TraceEntry,
    ) -> Result<Done, ScenarioError> {
        match step {
            Step::Hotplug(h) => self.hotplug(h, entry)?,
            Step::Unplug(u) => {
                let summary = self.vm.vmm.unplug(&u.unplug, u.delay)?;
                entry.vmm = Some(format!("{}: unplugged {summary}", u.unplug));
            }
            Step::RawUevent(r) => {
                let event = parse_line(&r.raw_uevent)?;
                self.vm.vmm.raw_uevent(event, r.delay)?;
            }
            Step::Rule(rule) => self.rule(rule)?,
            Step::Settle => self.settle().await?,
            Step::Baseline => self.vm.fake.baseline(),
            Step::Fault(f) => self.fault(f, entry)?,
            Step::Oom(o) => self.oom(o, entry)?,
            Step::KernelFile(k) => self.kernel_files(&k.kernel_file)?,
            Step::Passfd(p) => entry.vmm = Some(self.passfd_step(p).await?),
            Step::Check(c) => entry.checked = Some(run_checks(&self.vm, &c.check)?),
            Step::FaultSweep(s) => {
                // Boxed: a sweep runs steps, which end up here.
                let sweep = super::sweep::sweep(s, &self.config, &self.normalize);
                entry.sweep = Box::pin(sweep).await?;
            }
            Step::Connect(_) | Step::Listen(_) | Step::Send(_) | Step::Receive(_) => {
                self.port_step(step, entry).await?
            }
            Step::Spans(_) => self.port_step(step, entry).await?,
            Step::Call(_) | Step::Await(_) | Step::Advance(_) => {
                return Err(ScenarioError::Invalid(format!(
                    "{} is run by the runner",
                    step.describe()
                )));
            }
        }
        Ok(Done::Ran)
    }

    fn new_uevents(&mut self) -> Vec<String> {
        let log = self.vm.vmm.uevent_log();
        let lines = log[self.seen.min(log.len())..]
            .iter()
            .map(uevent_line)
            .collect();
        self.seen = log.len();
        lines
    }

    async fn finish(self) {
        self.vm.shutdown().await;
    }
}
