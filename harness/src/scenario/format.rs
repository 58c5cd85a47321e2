//! The scenario file format (YAML): a VM description and a list of steps, each a map whose
//! one "verb" key says what it does.
//!
//! ```yaml
//! description: virtio-blk hot-plugged while nobody waits
//! real_vm: true   # also run by `harness run --vmm qemu` on a real guest
//! vm: { cmdline: "agent.hotplug_timeout=10s", uevent_delay: 100ms }
//! steps:
//!   - call: Check
//!     expect: { status: SERVING }
//!   - hotplug: virtio-blk
//!     id: blk1
//!   - settle
//!   - check:
//!       files: { /sys/block/vda/dev: "254:0" }
//! ```

use super::error::FormatError;
use super::port_steps::{ConnectStep, ListenStep, ReceiveStep, SendStep, SpansStep};
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::vmm::config::{Hotplug, VmConfig, duration, opt_duration};
use crate::vmm::guest::UeventMatch;

/// A parsed scenario file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name (the file stem).
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The virtual machine.
    pub vm: VmConfig,
    /// Run it this many times and require identical traces (determinism).
    pub repeat: u32,
    /// JSON keys whose values the trace replaces with `<normalized>`.
    pub normalize: Vec<String>,
    /// Also run on a real guest (`harness run --vmm qemu`).
    pub real_vm: bool,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    description: String,
    #[serde(default)]
    vm: VmConfig,
    #[serde(default)]
    repeat: Option<u32>,
    #[serde(default)]
    normalize: Vec<String>,
    #[serde(default)]
    real_vm: bool,
    steps: Vec<Value>,
}

/// The error a reply must be: its ttrpc code name and a substring of its message.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectError {
    /// `UNIMPLEMENTED`, `NOT_FOUND`, `DEADLINE_EXCEEDED`, ... (`TRANSPORT` for non-status
    /// failures).
    pub code: String,
    /// A substring of the message.
    #[serde(default)]
    pub message: String,
}

/// `call: Method`: one RPC, as a host runtime makes it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallStep {
    /// The RPC name (`Check`, `CreateContainer`).
    pub call: String,
    /// The request (proto3 JSON mapping, written as YAML).
    #[serde(default)]
    pub request: Option<Value>,
    /// A subset the reply must contain.
    #[serde(default)]
    pub expect: Option<Value>,
    /// The error the call must fail with.
    #[serde(default)]
    pub expect_error: Option<ExpectError>,
    /// Run in the background under this name; `await:` it later.
    #[serde(default, rename = "as")]
    pub background: Option<String>,
    /// The ttrpc timeout sent with the request (none by default).
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// Request metadata (`traceparent: 00-...`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `await: name`: the reply of a background call.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwaitStep {
    /// The background call's name.
    #[serde(rename = "await")]
    pub name: String,
    /// A subset the reply must contain.
    #[serde(default)]
    pub expect: Option<Value>,
    /// The error the call must have failed with.
    #[serde(default)]
    pub expect_error: Option<ExpectError>,
}

/// `unplug: id`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnplugStep {
    /// The device's id.
    pub unplug: String,
    /// Delay before the guest sees it.
    #[serde(default, deserialize_with = "opt_duration")]
    pub delay: Option<Duration>,
}

/// `raw_uevent: "add@/devices/... | ACTION=add | ..."` (a line of a uevent log).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUeventStep {
    /// The uevent, as `harness record` writes it.
    pub raw_uevent: String,
    /// Delay before the guest sees it.
    #[serde(default, deserialize_with = "opt_duration")]
    pub delay: Option<Duration>,
}

/// `drop_uevent`, `delay_uevent`, `reorder_uevent`: what happens to the next matching
/// uevents.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleStep {
    /// Drop them.
    #[serde(default)]
    pub drop_uevent: Option<UeventMatch>,
    /// Delay them by `by`.
    #[serde(default)]
    pub delay_uevent: Option<UeventMatch>,
    /// Deliver each after `after` later uevents of its sequence.
    #[serde(default)]
    pub reorder_uevent: Option<UeventMatch>,
    /// How much later (delay).
    #[serde(default, deserialize_with = "opt_duration")]
    pub by: Option<Duration>,
    /// How many uevents later (reorder).
    #[serde(default)]
    pub after: Option<usize>,
    /// How many uevents the rule applies to (default 1).
    #[serde(default)]
    pub count: Option<u32>,
}

/// `advance: 1s`: let virtual time pass.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvanceStep {
    /// How long.
    #[serde(deserialize_with = "duration")]
    pub advance: Duration,
}

/// `passfd: PORT`: the host's passfd stream from vsock port `PORT` (to the agent's
/// `agent.passfd_listener_port`): `open: true` connects it, `write: TEXT` sends bytes and
/// `eof: true` then ends it, `read_to_end: TEXT` expects exactly those bytes and then the
/// stream's end.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassfdStep {
    /// The host-side port naming the stream.
    pub passfd: u32,
    /// Connect it.
    #[serde(default)]
    pub open: bool,
    /// Bytes to send.
    #[serde(default)]
    pub write: Option<String>,
    /// End the stream after writing.
    #[serde(default)]
    pub eof: bool,
    /// Everything the stream must deliver before its end.
    #[serde(default)]
    pub read_to_end: Option<String>,
}

/// `oom: /cgroup/path`: the guest kernel OOM-kills in that cgroup.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OomStep {
    /// The cgroup.
    pub oom: String,
}

/// `kernel_file: {path: contents}`: the guest kernel changes files (pressure stall counters,
/// memory statistics), as a running kernel does between two agent reads.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelFileStep {
    /// The files and their new contents; missing files and parents are created.
    pub kernel_file: BTreeMap<String, String>,
}

/// `fault: Op`: the `nth` next call of a seam operation fails with `errno`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    /// The operation (`Mount`, `SysfsWrite`, ... as in agent-fakes' `Op`).
    pub fault: String,
    /// The errno name (default `EIO`).
    #[serde(default)]
    pub errno: Option<String>,
    /// Which call from now, from 1 (default 1).
    #[serde(default)]
    pub nth: Option<u64>,
}

/// Checks of guest state; every given check must hold.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// File contents (trimmed), by path, in the fake /sys, /dev, /proc, /etc, /run.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// JSON files (a bundle's `config.json`) by path: a subset of their parsed contents.
    #[serde(default)]
    pub json: BTreeMap<String, Value>,
    /// Paths that must exist.
    #[serde(default)]
    pub exists: Vec<String>,
    /// Paths that must not exist.
    #[serde(default)]
    pub absent: Vec<String>,
    /// Symbolic link targets, as stored.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    /// Device nodes: `block 254:0` or `char 243:1`.
    #[serde(default)]
    pub nodes: BTreeMap<String, String>,
    /// The agent's device watcher.
    #[serde(default)]
    pub devices: Option<DeviceCheck>,
    /// Guest RAM.
    #[serde(default)]
    pub memory: Option<MemoryCheck>,
    /// Network links by name: a subset of `{index, mac, mtu, up, noarp, addresses}`
    /// (addresses as `ip/prefix`), or null for absent.
    #[serde(default)]
    pub net_links: BTreeMap<String, Option<Value>>,
    /// The whole main routing table, in order: `dest [via gateway] [dev name]` lines
    /// (`default` for the default route).
    #[serde(default)]
    pub net_routes: Option<Vec<String>>,
    /// Neighbour entries by IP: a subset of `{link, lladdr, state}`, or null for absent.
    #[serde(default)]
    pub net_neighbours: BTreeMap<String, Option<Value>>,
    /// Mounts by target: a subset of `{source, fstype, options}`, or null for absent.
    #[serde(default)]
    pub mounts: BTreeMap<String, Option<Value>>,
    /// Cgroups by path: a subset of `{resources, pids, frozen}`, or null for absent.
    #[serde(default)]
    pub cgroups: BTreeMap<String, Option<Value>>,
    /// How many launched processes are still running.
    #[serde(default)]
    pub live_processes: Option<usize>,
    /// The mounts shared into containers' namespaces that exist, in the order they were made,
    /// as `SRC_PID:SRC_PATH -> DST_PID:DST_PATH`.
    #[serde(default)]
    pub shared_mounts: Option<Vec<String>>,
    /// The hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// `none`: nothing was left mounted, created or running since the baseline.
    #[serde(default)]
    pub leftovers: Option<String>,
    /// How many armed faults have not fired.
    #[serde(default)]
    pub faults_pending: Option<usize>,
}

/// The agent's device watcher.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCheck {
    /// How many devices it knows.
    #[serde(default)]
    pub known: Option<usize>,
    /// How many waits are pending.
    #[serde(default)]
    pub pending: Option<usize>,
    /// Devpath substrings of devices it must know.
    #[serde(default)]
    pub present: Vec<String>,
    /// Devpath substrings of devices it must not know.
    #[serde(default)]
    pub absent: Vec<String>,
}

/// Guest RAM as the VMM maps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryCheck {
    /// Number of regions.
    #[serde(default)]
    pub regions: Option<usize>,
    /// Total size (`640M`).
    #[serde(default)]
    pub total: Option<crate::vmm::config::Size>,
}

/// `check: {...}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckStep {
    /// The checks.
    pub check: Checks,
}

/// `fault_sweep`: replays `steps` on a fresh VM once per seam call they make, with that call
/// failing, then `after` with no fault armed, and runs `check`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSweep {
    /// Steps run before arming (not swept).
    #[serde(default)]
    pub setup: Vec<Value>,
    /// The steps whose seam calls are swept; their expectations are not enforced.
    pub steps: Vec<Value>,
    /// Steps run after the swept ones with every fault disarmed (clean-up such as
    /// RemoveContainer); not enforced either.
    #[serde(default)]
    pub after: Vec<Value>,
    /// Checks after each faulted run.
    #[serde(default)]
    pub check: Checks,
    /// The errno injected (default `EIO`).
    #[serde(default)]
    pub errno: Option<String>,
    /// Sweep only these operations (default: all).
    #[serde(default)]
    pub ops: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepStep {
    fault_sweep: FaultSweep,
}

/// One step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// An RPC.
    Call(CallStep),
    /// The reply of a background RPC.
    Await(AwaitStep),
    /// A hotplug.
    Hotplug(Box<Hotplug>),
    /// An unplug.
    Unplug(UnplugStep),
    /// A raw uevent.
    RawUevent(RawUeventStep),
    /// A uevent delivery rule.
    Rule(RuleStep),
    /// Virtual time passes.
    Advance(AdvanceStep),
    /// Waits until the guest model and the agent's uevent loop are idle.
    Settle,
    /// What exists now is not a leftover.
    Baseline,
    /// A fault injection.
    Fault(FaultStep),
    /// An OOM kill in a cgroup.
    Oom(OomStep),
    /// Files the guest kernel changes.
    KernelFile(KernelFileStep),
    /// A host passfd stream.
    Passfd(PassfdStep),
    /// Checks of guest state.
    Check(Box<CheckStep>),
    /// The host connects to one of the agent's ports.
    Connect(ConnectStep),
    /// The host writes to a connection.
    Send(SendStep),
    /// The host reads from a connection.
    Receive(ReceiveStep),
    /// The host listens where the agent connects out.
    Listen(ListenStep),
    /// Spans the agent exported.
    Spans(SpansStep),
    /// A fault sweep.
    FaultSweep(Box<FaultSweep>),
}

/// The verb keys of a step map.
pub(super) const VERBS: [&str; 20] = [
    "oom",
    "passfd",
    "kernel_file",
    "call",
    "await",
    "hotplug",
    "unplug",
    "raw_uevent",
    "drop_uevent",
    "delay_uevent",
    "reorder_uevent",
    "advance",
    "fault",
    "check",
    "fault_sweep",
    "connect",
    "send",
    "receive",
    "listen",
    "spans",
];

impl Step {
    /// Parses one step: `settle`, `baseline`, or a map with one verb key.
    pub fn parse(value: &Value) -> Result<Step, FormatError> {
        if let Some(word) = value.as_str() {
            return match word {
                "settle" => Ok(Step::Settle),
                "baseline" => Ok(Step::Baseline),
                other => Err(FormatError::UnknownStep(other.to_owned())),
            };
        }
        let map = value.as_mapping().ok_or(FormatError::NotAStep)?;
        let verbs: Vec<&str> = map
            .keys()
            .filter_map(Value::as_str)
            .filter(|k| VERBS.contains(k))
            .collect();
        let verb = match verbs.as_slice() {
            [one] => *one,
            [] => return Err(FormatError::NoVerb),
            many => {
                let many = many.iter().map(|v| v.to_string()).collect();
                return Err(FormatError::SeveralVerbs(many));
            }
        };
        let parsed = |error| FormatError::Verb {
            verb: verb.to_owned(),
            error,
        };
        let v = value.clone();
        Ok(match verb {
            "call" => Step::Call(serde_yaml::from_value(v).map_err(parsed)?),
            "await" => Step::Await(serde_yaml::from_value(v).map_err(parsed)?),
            "hotplug" => Step::Hotplug(Box::new(serde_yaml::from_value(v).map_err(parsed)?)),
            "unplug" => Step::Unplug(serde_yaml::from_value(v).map_err(parsed)?),
            "raw_uevent" => Step::RawUevent(serde_yaml::from_value(v).map_err(parsed)?),
            "advance" => Step::Advance(serde_yaml::from_value(v).map_err(parsed)?),
            "fault" => Step::Fault(serde_yaml::from_value(v).map_err(parsed)?),
            "oom" => Step::Oom(serde_yaml::from_value(v).map_err(parsed)?),
            "passfd" => Step::Passfd(serde_yaml::from_value(v).map_err(parsed)?),
            "kernel_file" => Step::KernelFile(serde_yaml::from_value(v).map_err(parsed)?),
            "check" => Step::Check(Box::new(serde_yaml::from_value(v).map_err(parsed)?)),
            "connect" => Step::Connect(serde_yaml::from_value(v).map_err(parsed)?),
            "send" => Step::Send(serde_yaml::from_value(v).map_err(parsed)?),
            "receive" => Step::Receive(serde_yaml::from_value(v).map_err(parsed)?),
            "listen" => Step::Listen(serde_yaml::from_value(v).map_err(parsed)?),
            "spans" => Step::Spans(serde_yaml::from_value(v).map_err(parsed)?),
            "fault_sweep" => {
                let s: SweepStep = serde_yaml::from_value(v).map_err(parsed)?;
                Step::FaultSweep(Box::new(s.fault_sweep))
            }
            _ => {
                let rule: RuleStep = serde_yaml::from_value(v).map_err(parsed)?;
                if verb == "delay_uevent" && rule.by.is_none() {
                    return Err(FormatError::MissingField {
                        verb: "delay_uevent",
                        field: "by",
                    });
                }
                Step::Rule(rule)
            }
        })
    }

    /// A short description for traces and errors.
    pub fn describe(&self) -> String {
        match self {
            Step::Call(c) => match &c.background {
                Some(name) => format!("call {} as {name}", c.call),
                None => format!("call {}", c.call),
            },
            Step::Await(a) => format!("await {}", a.name),
            Step::Hotplug(h) => {
                let kind = serde_yaml::to_value(h.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                match &h.id {
                    Some(id) => format!("hotplug {kind} {id}"),
                    None => format!("hotplug {kind}"),
                }
            }
            Step::Unplug(u) => format!("unplug {}", u.unplug),
            Step::RawUevent(r) => {
                let head = r.raw_uevent.split('|').next().unwrap_or_default().trim();
                format!("raw uevent {head}")
            }
            Step::Rule(r) => {
                if r.drop_uevent.is_some() {
                    "drop uevent".into()
                } else if r.delay_uevent.is_some() {
                    "delay uevent".into()
                } else {
                    "reorder uevent".into()
                }
            }
            Step::Advance(a) => format!("advance {}", humantime::format_duration(a.advance)),
            Step::Settle => "settle".into(),
            Step::Baseline => "baseline".into(),
            Step::Fault(f) => format!("fault {}", f.fault),
            Step::Oom(o) => format!("oom in {}", o.oom),
            Step::Passfd(p) => format!("passfd stream {}", p.passfd),
            Step::KernelFile(k) => {
                let paths: Vec<&str> = k.kernel_file.keys().map(String::as_str).collect();
                format!("kernel writes {}", paths.join(", "))
            }
            Step::Check(_) => "check".into(),
            Step::FaultSweep(_) => "fault sweep".into(),
            Step::Connect(c) => format!("connect to port {} as {}", c.connect, c.name),
            Step::Send(s) => format!("send to {}", s.send),
            Step::Receive(r) => format!("receive from {}", r.receive),
            Step::Listen(l) => format!("host listens on port {} as {}", l.listen, l.name),
            Step::Spans(s) => format!("spans on {}", s.spans),
        }
    }
}

impl Scenario {
    /// Parses a scenario file's text; `name` is its file stem.
    pub fn parse(name: &str, text: &str) -> Result<Scenario, FormatError> {
        let raw: RawScenario = serde_yaml::from_str(text)?;
        let steps = parse_steps(&raw.steps)?;
        Ok(Scenario {
            name: name.to_owned(),
            description: raw.description,
            vm: raw.vm,
            repeat: raw.repeat.unwrap_or(1).max(1),
            normalize: raw.normalize,
            real_vm: raw.real_vm,
            steps,
        })
    }
}

/// Parses a list of steps; an error names the step (from 1).
pub fn parse_steps(values: &[Value]) -> Result<Vec<Step>, FormatError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Step::parse(v).map_err(|e| e.in_step(i + 1)))
        .collect()
}
