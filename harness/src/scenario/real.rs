//! The real backend: a scenario marked `real_vm: true` on a real guest (QEMU). RPCs run as
//! they are, `advance` waits real time, hot-plug goes through QMP, checks and OOM kills go
//! through the debug console. A step it cannot do (fault injection, uevent rules, fake-state
//! checks) is skipped and reported with the reason, never counted as passed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::agent_start::{AgentStart, agent_start};
use super::backend::{Backend, Done};
use super::error::ScenarioError;
use super::format::{Scenario, Step};
use super::real_check::run_real_checks;
use super::real_plug::{Plugged, Plugger};
use super::runner::{Runner, Skip, StepError, run_steps};
use super::trace::{Trace, TraceEntry};
use super::vm::BootInfo;
use crate::client::AgentClient;
use crate::qemu::shell;
use crate::qemu::{BootSpec, QemuError, RealGuest};
use crate::vmm::config::{CgroupMode, DeviceKind, Hotplug, PortKind, VmConfig};

/// Why some checks are skipped on a real guest.
const FAKE_CHECKS: &str =
    "these checks read the fakes' state (device watcher, guest RAM model, processes, seams)";
/// How long `settle` waits for plugged devices to show up in the guest.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// After they show up: time for the agent's uevent loop to act on them (online memory).
const SETTLE_GRACE: Duration = Duration::from_millis(1500);
/// `loops_per_jiffy` as the guest measures it at boot under TCG on these machines: given, so a
/// hot-added vCPU skips its delay-loop calibration, which under TCG can fail and stall the
/// CPU's bring-up ("calibrate_delay_direct() failed", then soft lockups).
const LPJ: &str = "lpj=11173700";
/// How long an RPC without its own `timeout` may take on a real guest before it is failed.
const CALL_LIMIT: Duration = Duration::from_secs(120);
/// The kernel command line that makes the guest's cgroup hierarchy v2 only.
const CGROUP_V2: &str = "systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all";

/// Where the real backend finds what it boots.
#[derive(Clone, Debug)]
pub struct RealOptions {
    /// The agent binary put in the initramfs (a release build).
    pub agent: PathBuf,
    /// The kernel cache; each scenario's sockets and logs go in `vm/<name>` under it.
    pub cache: PathBuf,
}

/// What a real run came to.
#[derive(Debug)]
pub struct RealOutcome {
    /// QEMU start to the first Check answered (none: the guest never got there).
    pub boot_to_check: Option<Duration>,
    /// The agent's own start as PID 1, from its log.
    pub agent_start: Option<AgentStart>,
    /// The trace, comparable with the fake run's (see `parity`).
    pub trace: Trace,
    /// Steps not run in full, with the reason.
    pub skipped: Vec<Skip>,
    /// How long each ExecProcess call took.
    pub exec_latencies: Vec<Duration>,
    /// The first failure.
    pub error: Option<StepError>,
    /// The guest's folder (console log, QEMU and vsock backend logs).
    pub workdir: PathBuf,
    /// After a final DestroySandbox: whether the guest powered off within 5 s.
    pub powered_off: Option<bool>,
}

impl RealOutcome {
    /// How many steps ran in full or in part.
    pub fn ran(&self) -> usize {
        self.trace.steps.len() - self.skipped.iter().filter(|s| s.whole).count()
    }
}

/// The `OCI.Root.Path` of every CreateContainer call of `scenario`.
pub fn rootfs_paths(scenario: &Scenario) -> Vec<String> {
    let mut paths: Vec<String> = scenario
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Call(c) if c.call == "CreateContainer" => c.request.as_ref(),
            _ => None,
        })
        .filter_map(|r| r.get("OCI")?.get("Root")?.get("Path")?.as_str())
        .map(str::to_owned)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// PCI ports as `(id, slot on the root bus)`.
type Ports = Vec<(String, u8)>;

/// The scenario's PCI ports as QEMU root ports and PCI-PCI bridges at the same slots, so PCI
/// paths match the fake VMM's: `(root ports, bridges)`.
fn pci_ports(vm: &VmConfig) -> (Ports, Ports) {
    let (mut roots, mut bridges) = (Vec::new(), Vec::new());
    for port in &vm.pci {
        match port.kind {
            PortKind::RootPort => roots.push((port.id.clone(), port.slot)),
            PortKind::PciBridge => bridges.push((port.id.clone(), port.slot)),
        }
    }
    roots.sort_by_key(|(_, slot)| *slot);
    bridges.sort_by_key(|(_, slot)| *slot);
    (roots, bridges)
}

/// The scenario's cold-plugged devices as QEMU disks, `(id, bus, slot, size)`: virtio-blk
/// with an id, a bus and a slot (QEMU places nothing by itself, so paths stay the fake's).
fn cold_disks(vm: &VmConfig) -> Result<Vec<(String, String, u8, u64)>, ScenarioError> {
    vm.devices
        .iter()
        .map(|d| match (d.kind, &d.id, &d.bus, d.slot) {
            (DeviceKind::VirtioBlk, Some(id), Some(bus), Some(slot)) => {
                let size = d.size.map_or(64 << 20, |s| s.0);
                Ok((id.clone(), bus.clone(), slot, size))
            }
            _ => Err(ScenarioError::Invalid(format!(
                "vm.devices: only virtio-blk with an id, a bus and a slot maps to QEMU: {d:?}"
            ))),
        })
        .collect()
}

/// The scenario's command line, plus the cgroup v2 switches when the fake VM is v2 (the fakes
/// take the hierarchy from `vm.cgroups`, the kernel from its command line), plus the debug
/// console the harness answers checks through.
fn guest_cmdline(vm: &VmConfig) -> String {
    let mut line = vm.cmdline.clone();
    if vm.max_cpus > vm.cpus && !line.contains("lpj=") {
        line = format!("{line} {LPJ}");
    }
    if vm.cgroups == CgroupMode::V2 && !line.contains("cgroup_no_v1=") {
        line = format!("{line} {CGROUP_V2}");
    }
    if !line.contains("agent.debug_console_vport=") {
        let port = shell::CONSOLE_PORT;
        line = format!("{line} agent.debug_console_vport={port}");
    }
    line.trim().to_owned()
}

fn boot_spec(
    scenario: &Scenario,
    options: &RealOptions,
    workdir: PathBuf,
) -> Result<BootSpec, ScenarioError> {
    let mib = |size: u64| u32::try_from(size >> 20).unwrap_or(u32::MAX);
    Ok(BootSpec {
        agent: options.agent.clone(),
        cache: options.cache.clone(),
        workdir,
        cmdline: guest_cmdline(&scenario.vm),
        rootfs_paths: rootfs_paths(scenario),
        memory_mib: mib(scenario.vm.memory.0).max(512),
        max_memory_mib: mib(scenario.vm.max_memory.0),
        cpus: scenario.vm.cpus.max(1),
        max_cpus: scenario.vm.max_cpus,
        root_ports: pci_ports(&scenario.vm).0,
        bridges: pci_ports(&scenario.vm).1,
        cold_disks: cold_disks(&scenario.vm)?,
    })
}

/// Boots a real guest for `scenario` and runs its steps.
pub async fn run_real(scenario: &Scenario, options: &RealOptions) -> RealOutcome {
    let workdir = options.cache.join("vm").join(&scenario.name);
    let mut outcome = RealOutcome {
        boot_to_check: None,
        agent_start: None,
        trace: Trace {
            scenario: scenario.name.clone(),
            boot: BootInfo::failed(&scenario.vm),
            steps: Vec::new(),
        },
        skipped: Vec::new(),
        exec_latencies: Vec::new(),
        error: None,
        workdir: workdir.clone(),
        powered_off: None,
    };
    let booted = match boot_spec(scenario, options, workdir) {
        Ok(spec) => RealGuest::boot(&spec)
            .await
            .map(|g| (g, spec))
            .map_err(ScenarioError::from),
        Err(e) => Err(e),
    };
    let (guest, spec) = match booted {
        Ok(booted) => booted,
        Err(e) => {
            outcome.error = Some(StepError {
                index: 0,
                step: "boot".into(),
                detail: e.to_string(),
            });
            return outcome;
        }
    };
    outcome.boot_to_check = Some(guest.boot_to_check);
    let backend = RealBackend {
        plugger: Plugger::new(
            spec.root_ports.clone(),
            scenario.vm.memory_block_size.0,
            spec.cpus,
        ),
        guest,
        probes: Vec::new(),
        plugged: BTreeMap::new(),
    };
    let mut runner = Runner::new(backend, &scenario.normalize, false);
    let run = run_steps(&mut runner, &scenario.steps).await;
    outcome.trace.steps = run.steps;
    outcome.skipped = run.skipped;
    outcome.exec_latencies = run.exec_latencies;
    outcome.error = run.error;
    // Read last: the agent logs the end of its deferred start work after the first Check.
    outcome.agent_start = agent_start(&runner.backend.guest.vm.console());
    // DestroySandbox powers the guest off: give it a moment; otherwise dropping the guest
    // kills QEMU.
    let destroyed =
        matches!(scenario.steps.last(), Some(Step::Call(c)) if c.call == "DestroySandbox");
    if destroyed && outcome.error.is_none() {
        let vm = &mut runner.backend.guest.vm;
        outcome.powered_off = Some(vm.wait_exit(Duration::from_secs(5)).is_some());
    }
    runner.finish().await;
    if outcome.error.is_none() {
        remove_bulky_files(&outcome.workdir);
    }
    outcome
}

/// After a pass, the initramfs and disk images go; the logs stay.
fn remove_bulky_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let bulky = path
            .extension()
            .is_some_and(|ext| ext == "img" || ext == "cpio");
        if bulky && let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove");
        }
    }
}

/// A booted real guest and what the harness plugged into it.
pub(super) struct RealBackend {
    guest: RealGuest,
    plugger: Plugger,
    /// Shell conditions that hold once every plugged device is visible in the guest and every
    /// unplugged one gone.
    probes: Vec<String>,
    /// The visibility condition of each plugged device, by id.
    plugged: BTreeMap<String, String>,
}

impl RealBackend {
    fn addr(&self) -> String {
        self.guest.vm.vsock_addr()
    }

    /// A hot-plug through QMP, or the refusal the step expects.
    async fn hotplug(
        &mut self,
        h: &Hotplug,
        entry: &mut TraceEntry,
    ) -> Result<Done, ScenarioError> {
        if !Plugger::supports(h.kind) {
            return Ok(Done::Skipped(format!(
                "{:?} hot-plug is not mapped to QMP",
                h.kind
            )));
        }
        // The fake VMM's delay before the guest sees the device: here, before QMP.
        if let Some(delay) = h.delay {
            tokio::time::sleep(delay).await;
        }
        match (self.plugger.plug(&mut self.guest, h), &h.refused) {
            (Ok(Plugged { summary, probe }), None) => {
                entry.vmm = Some(summary);
                if let Some(id) = &h.id {
                    self.plugged.insert(id.clone(), probe.clone());
                }
                self.probes.push(probe);
                Ok(Done::Ran)
            }
            (Err(e @ (QemuError::Qmp { .. } | QemuError::Refused { .. })), Some(_)) => {
                entry.vmm = Some(format!("refused: {e}"));
                Ok(Done::Ran)
            }
            (Ok(Plugged { summary, .. }), Some(want)) => Err(ScenarioError::Mismatch(format!(
                "expected the VMM to refuse ({want:?})\n  got {summary} (QEMU took it)"
            ))),
            (Err(e), _) => Err(e.into()),
        }
    }

    /// Waits until every plugged device is visible in the guest, then gives the agent a moment.
    async fn settle(&mut self) -> Result<Done, ScenarioError> {
        let addr = self.addr();
        let started = std::time::Instant::now();
        for probe in &self.probes {
            while shell::run(&addr, &format!("{probe} >/dev/null 2>&1"))
                .await?
                .status
                != 0
            {
                if started.elapsed() > SETTLE_LIMIT {
                    return Err(ScenarioError::Mismatch(format!(
                        "the guest does not see a plugged device after {SETTLE_LIMIT:?}: {probe}"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        self.probes.clear();
        tokio::time::sleep(SETTLE_GRACE).await;
        Ok(Done::Ran)
    }

    /// An OOM kill in cgroup `path`: a busybox shell joins it and doubles a string until the
    /// kernel's OOM killer ends it (exit status 137, SIGKILL).
    async fn oom(&mut self, path: &str, entry: &mut TraceEntry) -> Result<Done, ScenarioError> {
        let q = shell::quote(path)?;
        let hog = format!(
            "r=/sys/fs/cgroup; p={q}; f=$r$p/cgroup.procs; \
             /bin/busybox test -e $r/cgroup.controllers || f=$r/memory$p/cgroup.procs; \
             /bin/busybox sh -c \"echo \\$\\$ > $f && s=0123456789abcdef && while :; do s=\\$s\\$s; done\""
        );
        let got = shell::run(&self.addr(), &hog).await?;
        if got.status != 137 {
            return Err(ScenarioError::Mismatch(format!(
                "oom {path}: expected the memory hog killed (status 137), got status {}: {}",
                got.status, got.text
            )));
        }
        entry.vmm = Some(format!("OOM kill in {path} (busybox memory hog)"));
        Ok(Done::Ran)
    }

    async fn check(&mut self, step: &Step, entry: &mut TraceEntry) -> Result<Done, ScenarioError> {
        let Step::Check(c) = step else {
            return Err(ScenarioError::Invalid("not a check".into()));
        };
        let done = match run_real_checks(&self.addr(), &c.check).await {
            Ok(done) => done,
            // DestroySandbox powers a real guest off; the fakes keep running.
            Err(ScenarioError::Qemu(QemuError::Console { .. }))
                if self.guest.vm.wait_exit(Duration::from_secs(5)).is_some() =>
            {
                return Ok(Done::Skipped(
                    "the guest powered off (DestroySandbox): nothing left to check".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        entry.checked = Some(done.checked);
        let skipped = done.skipped.join(", ");
        Ok(match (done.checked, skipped.is_empty()) {
            (_, true) => Done::Ran,
            (0, false) => Done::Skipped(format!("{skipped}: {FAKE_CHECKS}")),
            (_, false) => Done::Partly(format!("{skipped}: {FAKE_CHECKS}")),
        })
    }
}

impl Backend for RealBackend {
    fn client(&self) -> AgentClient {
        self.guest.client.clone()
    }

    fn background_grace(&self) -> Duration {
        Duration::from_millis(50)
    }

    fn call_limit(&self) -> Duration {
        CALL_LIMIT
    }

    async fn device_step(
        &mut self,
        step: &Step,
        entry: &mut TraceEntry,
    ) -> Result<Done, ScenarioError> {
        let skip = |reason: &str| Ok(Done::Skipped(reason.to_owned()));
        match step {
            Step::Hotplug(h) => self.hotplug(h, entry).await,
            Step::Unplug(u) => {
                self.guest
                    .qmp()?
                    .execute("device_del", serde_json::json!({ "id": u.unplug }))?;
                if let Some(probe) = self.plugged.remove(&u.unplug) {
                    self.probes.push(format!("! {probe}"));
                }
                entry.vmm = Some(format!("{}: unplugged", u.unplug));
                Ok(Done::Ran)
            }
            Step::Settle => self.settle().await,
            Step::Check(_) => self.check(step, entry).await,
            Step::Oom(o) => self.oom(&o.oom, entry).await,
            Step::Baseline => skip("leftover baselines need the fakes"),
            Step::Fault(_) | Step::FaultSweep(_) => skip("fault injection needs the fake seams"),
            Step::KernelFile(_) | Step::RawUevent(_) | Step::Rule(_) => {
                skip("the real kernel cannot be scripted this way")
            }
            Step::Connect(_)
            | Step::Send(_)
            | Step::Receive(_)
            | Step::Listen(_)
            | Step::Spans(_)
            | Step::Passfd(_) => {
                skip("the agent's other vsock ports are not wired to the real guest yet")
            }
            Step::Call(_) | Step::Await(_) | Step::Advance(_) => Err(ScenarioError::Invalid(
                format!("{} is run by the runner", step.describe()),
            )),
        }
    }

    fn new_uevents(&mut self) -> Vec<String> {
        // The guest's uevents are not observed from the host.
        Vec::new()
    }

    async fn finish(self) {
        drop(self.guest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_roots_come_from_create_container_calls() {
        let text = r#"
real_vm: true
steps:
  - call: CreateContainer
    request: { container_id: a, OCI: { Root: { Path: /run/x/a } } }
  - call: CreateContainer
    request: { container_id: b, OCI: { Root: { Path: /run/x/a } } }
  - call: Check
"#;
        let scenario = Scenario::parse("t", text).unwrap();
        assert!(scenario.real_vm);
        assert_eq!(rootfs_paths(&scenario), ["/run/x/a"]);
    }

    #[test]
    fn the_guest_boots_with_the_fake_vms_cgroup_hierarchy_and_the_debug_console() {
        let mut vm = VmConfig::default();
        let line = guest_cmdline(&vm);
        assert!(line.contains(CGROUP_V2), "{line}");
        assert!(line.contains("agent.debug_console_vport=1026"), "{line}");
        assert!(line.contains(LPJ), "CPUs can be hot-added: {line}");
        vm.cgroups = CgroupMode::V1;
        vm.max_cpus = vm.cpus;
        let line = guest_cmdline(&vm);
        assert!(
            !line.contains("cgroup_no_v1") && !line.contains("lpj="),
            "{line}"
        );
    }
}
