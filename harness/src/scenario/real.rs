//! Runs a scenario marked `real_vm: true` on a real guest (the QEMU backend), with the same
//! steps: RPCs as they are, `advance` as real time, virtio-blk hotplug through QMP. A verb the
//! real backend cannot do yet (fake-state checks, fault injection, uevent rules) is skipped and
//! reported with the reason, never counted as passed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinHandle;

use super::expect::to_json;
use super::format::{Scenario, Step};
use super::real_check::run_real_checks;
use super::runner::{CallOutcome, StepError, call, verdict};
use crate::qemu::{BootSpec, QemuError, RealGuest};
use crate::vmm::config::{DeviceKind, Hotplug, PortKind, VmConfig};

/// Why some checks are skipped on a real guest.
const FAKE_CHECKS: &str = "these checks read the fakes' state; the debug channel answers only hostname, files, links, exists and absent";

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
    /// Steps run.
    pub ran: usize,
    /// Steps skipped, with the reason.
    pub skipped: Vec<String>,
    /// How long each ExecProcess call took.
    pub exec_latencies: Vec<Duration>,
    /// The first failure.
    pub error: Option<StepError>,
    /// The guest's folder (console log, QEMU and vsock backend logs).
    pub workdir: PathBuf,
    /// After a final DestroySandbox: whether the guest powered off within 5 s.
    pub powered_off: Option<bool>,
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

/// The scenario's PCI ports as QEMU root ports at the same slots, so PCI paths match the fake
/// VMM's.
fn root_ports(vm: &VmConfig) -> Result<Vec<(String, u8)>, String> {
    let mut ports = Vec::new();
    for port in &vm.pci {
        if port.kind != PortKind::RootPort {
            return Err(format!(
                "vm.pci {}: only root ports are mapped to QEMU so far",
                port.id
            ));
        }
        ports.push((port.id.clone(), port.slot));
    }
    ports.sort_by_key(|(_, slot)| *slot);
    Ok(ports)
}

/// The scenario's command line plus the debug console the harness answers checks through.
fn with_debug_channel(cmdline: &str) -> String {
    if cmdline.contains("agent.debug_console_vport=") {
        return cmdline.to_owned();
    }
    let port = crate::qemu::shell::CONSOLE_PORT;
    format!("{cmdline} agent.debug_console_vport={port}")
        .trim()
        .to_owned()
}

/// Boots a real guest for `scenario` and runs its steps.
pub async fn run_real(scenario: &Scenario, options: &RealOptions) -> RealOutcome {
    let workdir = options.cache.join("vm").join(&scenario.name);
    let mut outcome = RealOutcome {
        boot_to_check: None,
        ran: 0,
        skipped: Vec::new(),
        exec_latencies: Vec::new(),
        error: None,
        workdir: workdir.clone(),
        powered_off: None,
    };
    let root_ports = match root_ports(&scenario.vm) {
        Ok(ports) => ports,
        Err(detail) => {
            outcome.error = Some(StepError {
                index: 0,
                step: "boot".into(),
                detail,
            });
            return outcome;
        }
    };
    let spec = BootSpec {
        agent: options.agent.clone(),
        cache: options.cache.clone(),
        workdir,
        cmdline: with_debug_channel(&scenario.vm.cmdline),
        rootfs_paths: rootfs_paths(scenario),
        memory_mib: u32::try_from(scenario.vm.memory.0 >> 20)
            .unwrap_or(u32::MAX)
            .max(1024),
        root_ports: root_ports.clone(),
    };
    let mut guest = match RealGuest::boot(&spec).await {
        Ok(g) => g,
        Err(e) => {
            outcome.error = Some(StepError {
                index: 0,
                step: "boot".into(),
                detail: chain(&e),
            });
            return outcome;
        }
    };
    outcome.boot_to_check = Some(guest.boot_to_check);
    let mut state = RealRun {
        guest: &mut guest,
        background: BTreeMap::new(),
        free_ports: root_ports.into_iter().map(|(id, _)| id).collect(),
    };
    for (i, step) in scenario.steps.iter().enumerate() {
        let started = Instant::now();
        match state.step(step).await {
            Ok(Done::Ran) => outcome.ran += 1,
            Ok(Done::Skipped(reason)) => {
                outcome
                    .skipped
                    .push(format!("step {} ({}): {reason}", i + 1, step.describe()))
            }
            Ok(Done::Partly(reason)) => {
                outcome.ran += 1;
                outcome.skipped.push(format!(
                    "part of step {} ({}): {reason}",
                    i + 1,
                    step.describe()
                ));
            }
            Err(detail) => {
                outcome.error = Some(StepError {
                    index: i + 1,
                    step: step.describe(),
                    detail,
                });
                break;
            }
        }
        if matches!(step, Step::Call(c) if c.call == "ExecProcess" && c.background.is_none()) {
            outcome.exec_latencies.push(started.elapsed());
        }
    }
    if outcome.error.is_none() && !state.background.is_empty() {
        let names: Vec<String> = state.background.keys().cloned().collect();
        outcome.error = Some(StepError {
            index: scenario.steps.len(),
            step: "end".into(),
            detail: format!("background calls never awaited: {}", names.join(", ")),
        });
    }
    for (_, task) in std::mem::take(&mut state.background) {
        task.abort();
    }
    // DestroySandbox powers the guest off: give it a moment; otherwise dropping the guest
    // kills QEMU.
    let destroyed =
        matches!(scenario.steps.last(), Some(Step::Call(c)) if c.call == "DestroySandbox");
    if destroyed && outcome.error.is_none() {
        outcome.powered_off = Some(guest.vm.wait_exit(Duration::from_secs(5)).is_some());
    }
    drop(guest);
    if outcome.error.is_none() {
        remove_bulky_files(&outcome.workdir);
    }
    outcome
}

/// After a pass, the initramfs and disk images go; the logs stay.
fn remove_bulky_files(dir: &std::path::Path) {
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

enum Done {
    Ran,
    Skipped(&'static str),
    /// Ran, but these parts were skipped.
    Partly(String),
}

struct RealRun<'g> {
    guest: &'g mut RealGuest,
    background: BTreeMap<String, JoinHandle<CallOutcome>>,
    /// Root ports nothing was plugged into yet, in slot order.
    free_ports: Vec<String>,
}

impl RealRun<'_> {
    async fn step(&mut self, step: &Step) -> Result<Done, String> {
        match step {
            Step::Call(c) => {
                let body = match &c.request {
                    Some(r) => to_json(r)?.to_string(),
                    None => String::new(),
                };
                let metadata = c.metadata.clone().into_iter().collect();
                let fut = call(
                    self.guest.client.clone(),
                    c.call.clone(),
                    body,
                    c.timeout.unwrap_or(Duration::ZERO),
                    metadata,
                );
                if let Some(name) = &c.background {
                    self.background.insert(name.clone(), tokio::spawn(fut));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Ok(Done::Ran);
                }
                verdict(fut.await, &c.expect, &c.expect_error)?;
                Ok(Done::Ran)
            }
            Step::Await(a) => {
                let task = self
                    .background
                    .remove(&a.name)
                    .ok_or_else(|| format!("no background call named {:?}", a.name))?;
                let outcome = task
                    .await
                    .unwrap_or_else(|e| Err(("HARNESS".into(), e.to_string())));
                verdict(outcome, &a.expect, &a.expect_error)?;
                Ok(Done::Ran)
            }
            Step::Advance(a) => {
                tokio::time::sleep(a.advance).await;
                Ok(Done::Ran)
            }
            Step::Hotplug(h) if h.kind == DeviceKind::VirtioBlk && h.refused.is_none() => {
                // The fake VMM's delay before the guest sees the device: here, before QMP.
                if let Some(delay) = h.delay {
                    tokio::time::sleep(delay).await;
                }
                self.hotplug_blk(h).map_err(|e| chain(&e))?;
                Ok(Done::Ran)
            }
            Step::Hotplug(_) => Ok(Done::Skipped(
                "only virtio-blk hotplug is mapped to QMP so far",
            )),
            Step::Check(c) => {
                let addr = self.guest.vm.vsock_addr();
                let done = run_real_checks(&addr, &c.check).await?;
                let skipped = done.skipped.join(", ");
                Ok(match (done.checked, skipped.is_empty()) {
                    (_, true) => Done::Ran,
                    (0, false) => Done::Skipped(FAKE_CHECKS),
                    (_, false) => Done::Partly(format!("{skipped}: {FAKE_CHECKS}")),
                })
            }
            Step::Baseline => Ok(Done::Skipped("leftover baselines need the fakes")),
            Step::Settle => Ok(Done::Skipped(
                "settle waits for the fake VMM's uevent queue; a real kernel has none to watch",
            )),
            Step::Fault(_) | Step::FaultSweep(_) => {
                Ok(Done::Skipped("fault injection needs the fake seams"))
            }
            Step::Oom(_) | Step::KernelFile(_) | Step::RawUevent(_) | Step::Rule(_) => Ok(
                Done::Skipped("the real kernel cannot be scripted this way yet"),
            ),
            Step::Unplug(_) => Ok(Done::Skipped("unplug is not mapped to QMP yet")),
            Step::Connect(_)
            | Step::Send(_)
            | Step::Receive(_)
            | Step::Listen(_)
            | Step::Spans(_)
            | Step::Passfd(_) => Ok(Done::Skipped(
                "the agent's other vsock ports are not wired to the real guest yet",
            )),
        }
    }

    /// A virtio-blk disk (a sparse raw file holding an empty ext4) on the named or the next
    /// free PCIe root port.
    fn hotplug_blk(&mut self, h: &Hotplug) -> Result<(), QemuError> {
        let bus = match &h.bus {
            Some(bus) => bus.clone(),
            None => self.free_ports.first().cloned().ok_or(QemuError::Missing {
                what: "a free root port".into(),
            })?,
        };
        self.free_ports.retain(|p| *p != bus);
        let id = h.id.clone().unwrap_or_else(|| format!("blk-{bus}"));
        let size = h.size.map_or(64 << 20, |s| s.0);
        let image = self.guest.vm.workdir().join(format!("{id}.img"));
        let file = std::fs::File::create(&image).map_err(|e| QemuError::io(&image, e))?;
        file.set_len(size).map_err(|e| QemuError::io(&image, e))?;
        drop(file);
        crate::qemu::kernel::run(
            std::process::Command::new("mkfs.ext4")
                .args(["-q", "-F"])
                .arg(&image),
        )?;
        let node = format!("drive-{id}");
        let qmp = self.guest.qmp()?;
        qmp.execute(
            "blockdev-add",
            json!({
                "node-name": node,
                "driver": "raw",
                "file": { "driver": "file", "filename": image.display().to_string() },
            }),
        )?;
        qmp.execute(
            "device_add",
            json!({ "driver": "virtio-blk-pci", "id": id, "drive": node, "bus": bus }),
        )?;
        Ok(())
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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
}
