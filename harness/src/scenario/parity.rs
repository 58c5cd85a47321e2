//! The parity report: a scenario's trace on the fake VMM against its trace on a real guest,
//! step by step, after a normalisation that removes what legitimately differs:
//!
//! - `at`: virtual time on the fakes, real time on the guest — dropped;
//! - `uevents`: the fake VMM logs every uevent it plays; the real guest's are not observed
//!   from the host — dropped;
//! - replies: process ids (`pid`, `exec_pid`) become `<pid>`; counters the kernel keeps
//!   (`cgroup_stats`, `network_stats`) become `<stats>`; a link's `raw_flags` lose
//!   `IFF_RUNNING`, which the kernel sets from its link-watch work up to a second after the
//!   link comes up, racing with the agent's read-back;
//! - VMM lines: the PCI bus address the guest kernel picks (`0000:01:00.0`) and what follows the
//!   PCI path (the disk name and its `major:minor`) are dropped, as are details in parentheses
//!   after an OOM kill, the reason of a refusal and what an unplug removed;
//! - `checked`: compared only for a check step the real guest answered in full;
//! - steps skipped whole on the real guest are not compared, and named.
//!
//! Everything else (step names, replies, error codes and messages, VMM summaries, the number
//! of steps) must be equal.

use serde_json::Value as Json;

use super::runner::Skip;
use super::trace::{Trace, TraceEntry};

/// Reply keys holding process ids.
const PID_KEYS: &[&str] = &["pid", "exec_pid"];
/// `IFF_RUNNING`.
const IFF_RUNNING: u64 = 0x40;
/// Reply keys holding counters of the running kernel.
const STATS_KEYS: &[&str] = &["cgroup_stats", "network_stats"];

/// One difference between the two traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The step (`5. await create`), or `end`.
    pub step: String,
    /// What differs: `reply`, `error`, `vmm`, `checked`, `steps`.
    pub field: &'static str,
    /// The fake run's value (normalised).
    pub fake: String,
    /// The real run's value (normalised).
    pub real: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: fake {} / real {}",
            self.step, self.field, self.fake, self.real
        )
    }
}

/// What the comparison came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parity {
    /// Steps compared.
    pub compared: usize,
    /// Steps not compared (skipped whole on the real guest).
    pub not_compared: Vec<String>,
    /// The differences.
    pub differences: Vec<Difference>,
}

/// Compares `fake` with `real` step by step; `skipped` are the real run's skipped steps.
pub fn compare(fake: &Trace, real: &Trace, skipped: &[Skip]) -> Parity {
    let mut parity = Parity::default();
    for (i, (f, r)) in fake.steps.iter().zip(&real.steps).enumerate() {
        let skip = skipped.iter().find(|s| s.index == i + 1);
        if skip.is_some_and(|s| s.whole) {
            parity.not_compared.push(f.step.clone());
            continue;
        }
        parity.compared += 1;
        compare_step(f, r, skip.is_none(), &mut parity.differences);
    }
    if fake.steps.len() != real.steps.len() {
        parity.differences.push(Difference {
            step: "end".into(),
            field: "steps",
            fake: format!("{} step(s)", fake.steps.len()),
            real: format!("{} step(s)", real.steps.len()),
        });
    }
    parity
}

fn compare_step(f: &TraceEntry, r: &TraceEntry, in_full: bool, out: &mut Vec<Difference>) {
    let mut differ = |field: &'static str, fake: String, real: String| {
        if fake != real {
            out.push(Difference {
                step: f.step.clone(),
                field,
                fake,
                real,
            });
        }
    };
    differ("step", f.step.clone(), r.step.clone());
    differ("reply", shown(f.reply.as_ref()), shown(r.reply.as_ref()));
    differ("error", text(f.error.as_deref()), text(r.error.as_deref()));
    differ(
        "vmm",
        text(f.vmm.as_deref().map(vmm_line).as_deref()),
        text(r.vmm.as_deref().map(vmm_line).as_deref()),
    );
    if in_full {
        differ(
            "checked",
            format!("{:?}", f.checked),
            format!("{:?}", r.checked),
        );
    }
}

fn text(value: Option<&str>) -> String {
    value.map_or_else(|| "none".into(), str::to_owned)
}

fn shown(reply: Option<&Json>) -> String {
    reply.map_or_else(
        || "none".into(),
        |r| {
            let mut r = r.clone();
            normalise_reply(&mut r);
            r.to_string()
        },
    )
}

/// Replaces process ids and kernel counters in a reply.
pub fn normalise_reply(value: &mut Json) {
    match value {
        Json::Object(map) => {
            for (key, v) in map.iter_mut() {
                if PID_KEYS.contains(&key.as_str()) {
                    *v = Json::String("<pid>".into());
                } else if STATS_KEYS.contains(&key.as_str()) {
                    *v = Json::String("<stats>".into());
                } else if key == "raw_flags"
                    && let Some(flags) = v.as_u64()
                {
                    *v = Json::from(flags & !IFF_RUNNING);
                } else {
                    normalise_reply(v);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(normalise_reply),
        _ => {}
    }
}

/// A VMM line without what the guest kernel or the VMM picks on its own.
pub fn vmm_line(line: &str) -> String {
    if line.starts_with("refused") {
        return "refused".into();
    }
    if let Some((head, _)) = line.split_once(": unplugged") {
        return format!("{head}: unplugged");
    }
    if line.starts_with("OOM kill in ") {
        return line.split(" (").next().unwrap_or(line).to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    let mut words = line.split(' ').peekable();
    while let Some(word) = words.next() {
        // `at 0000:01:00.0`: the bus number the kernel assigned.
        if word == "at" && words.peek().is_some_and(|w| is_bdf(w)) {
            words.next();
            continue;
        }
        out.push(word);
    }
    let joined = out.join(" ");
    // `(pci path 02/00): vda 254:0`: the disk's name and numbers.
    match joined.find("): ") {
        Some(at) if joined[..at].contains("(pci path") => joined[..=at].to_owned(),
        _ => joined,
    }
}

fn is_bdf(word: &str) -> bool {
    let parts: Vec<&str> = word.split([':', '.']).collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(step: &str, vmm: Option<&str>, reply: Option<Json>) -> TraceEntry {
        TraceEntry {
            step: step.into(),
            vmm: vmm.map(str::to_owned),
            reply,
            ..TraceEntry::default()
        }
    }

    fn trace(steps: Vec<TraceEntry>) -> Trace {
        Trace {
            scenario: "t".into(),
            boot: super::super::vm::BootInfo::failed(&Default::default()),
            steps,
        }
    }

    #[test]
    fn vmm_lines_lose_bus_addresses_and_device_numbers() {
        assert_eq!(
            vmm_line("blk1: virtio-blk at 0000:01:00.0 (pci path 02/00): vda 254:0"),
            "blk1: virtio-blk (pci path 02/00)"
        );
        assert_eq!(
            vmm_line("dimm1: memory 256M at 0x100000000: blocks 32,33"),
            "dimm1: memory 256M at 0x100000000: blocks 32,33"
        );
        assert_eq!(
            vmm_line("OOM kill in /c1 (1 watcher(s))"),
            "OOM kill in /c1"
        );
        assert_eq!(vmm_line("refused: bad size: 0x1"), "refused");
        assert_eq!(vmm_line("blk1: unplugged vda"), "blk1: unplugged");
    }

    #[test]
    fn replies_lose_pids_stats_and_the_running_flag() {
        let mut reply = json!({"pid": 9, "raw_flags": 69699, "x": [{"exec_pid": 3}],
                               "cgroup_stats": {"a": 1}});
        normalise_reply(&mut reply);
        assert_eq!(
            reply,
            json!({"pid": "<pid>", "raw_flags": 69635, "x": [{"exec_pid": "<pid>"}],
                   "cgroup_stats": "<stats>"})
        );
    }

    #[test]
    fn equal_after_normalisation_or_each_difference_named() {
        let fake = trace(vec![
            entry(
                "1. call ExecProcess",
                None,
                Some(json!({"pid": 7, "status": 0})),
            ),
            entry(
                "2. hotplug virtio-blk b",
                Some("b: virtio-blk at 0000:01:00.0 (pci path 02/00): vda 254:0"),
                None,
            ),
            entry("3. settle", None, None),
            entry("4. call WaitProcess", None, Some(json!({"status": 0}))),
        ]);
        let real = trace(vec![
            entry(
                "1. call ExecProcess",
                None,
                Some(json!({"pid": 912, "status": 0})),
            ),
            entry(
                "2. hotplug virtio-blk b",
                Some("b: virtio-blk (pci path 02/00)"),
                None,
            ),
            entry("3. settle", Some("anything"), None),
            entry("4. call WaitProcess", None, Some(json!({"status": 1}))),
        ]);
        let skipped = [Skip {
            index: 3,
            step: "settle".into(),
            whole: true,
            reason: "r".into(),
        }];
        let parity = compare(&fake, &real, &skipped);
        assert_eq!(parity.compared, 3);
        assert_eq!(parity.not_compared, ["3. settle"]);
        assert_eq!(parity.differences.len(), 1, "{:?}", parity.differences);
        let d = &parity.differences[0];
        assert_eq!((d.step.as_str(), d.field), ("4. call WaitProcess", "reply"));
        assert!(
            d.to_string()
                .contains(r#"fake {"status":0} / real {"status":1}"#),
            "{d}"
        );
    }
}
