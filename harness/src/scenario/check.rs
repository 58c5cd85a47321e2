//! Checks of guest state: the fake sysfs, the agent's device watcher, guest RAM, links,
//! mounts, cgroups, processes, hostname and leftovers.

use std::path::Path;

use kata_agent::device::{Uevent, UeventMatcher};
use kata_agent::host::{NodeKind, Sysfs};
use serde_json::{Value as Json, json};

use super::error::ScenarioError;
use super::expect::{subset, to_json};
use super::format::Checks;
use super::vm::GuestVm;

/// `IFF_NOARP`.
const IFF_NOARP: u32 = 0x80;

/// Picks a device whose devpath contains a substring.
struct DevpathContains(String);

impl std::fmt::Display for DevpathContains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "devpath containing {:?}", self.0)
    }
}

impl UeventMatcher for DevpathContains {
    fn matches(&self, event: &Uevent) -> bool {
        event.devpath.contains(&self.0)
    }
}

/// Links (with their addresses), the main routing table and neighbour entries.
fn check_network(r: &mut Report, vm: &GuestVm, checks: &Checks) {
    let net = vm.fake.netlink.snapshot();
    for (name, want) in &checks.net_links {
        let got = net.links.iter().find(|l| &l.name == name).map(|l| {
            let addresses: Vec<String> = net
                .addresses
                .iter()
                .filter(|a| a.index == l.index)
                .map(|a| format!("{}/{}", a.ip, a.prefix_len))
                .collect();
            let noarp = l.flags & IFF_NOARP != 0;
            json!({"index": l.index, "mac": l.mac, "mtu": l.mtu, "up": l.is_up(),
                   "noarp": noarp, "addresses": addresses})
        });
        r.subset(&format!("link {name}"), want, got);
    }
    let link_name = |index: u32| {
        net.links
            .iter()
            .find(|l| l.index == index)
            .map_or(format!("#{index}"), |l| l.name.clone())
    };
    if let Some(want) = &checks.net_routes {
        let got: Vec<String> = net
            .routes
            .iter()
            .map(|rt| {
                let mut line = rt
                    .dest
                    .map_or("default".to_owned(), |(ip, len)| format!("{ip}/{len}"));
                if let Some(gw) = rt.gateway {
                    line.push_str(&format!(" via {gw}"));
                }
                if let Some(oif) = rt.oif {
                    line.push_str(&format!(" dev {}", link_name(oif)));
                }
                line
            })
            .collect();
        r.check(&got == want, || {
            format!("routes: expected {want:?}, got {got:?}")
        });
    }
    for (ip, want) in &checks.net_neighbours {
        let got = net
            .neighbours
            .iter()
            .find(|n| n.ip.to_string() == *ip)
            .map(|n| json!({"link": link_name(n.index), "lladdr": n.lladdr, "state": n.state}));
        r.subset(&format!("neighbour {ip}"), want, got);
    }
}

/// Collects failures; each names what was checked, what was expected and what was found.
#[derive(Default)]
struct Report {
    checked: usize,
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, ok: bool, failure: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.failures.push(failure());
        }
    }

    fn subset(&mut self, what: &str, want: &Option<serde_yaml::Value>, got: Option<Json>) {
        self.checked += 1;
        match (want, got) {
            (None, None) => {}
            (None, Some(got)) => self
                .failures
                .push(format!("{what}: expected absent, got {got}")),
            (Some(_), None) => self
                .failures
                .push(format!("{what}: expected present, got absent")),
            (Some(want), Some(got)) => {
                let failure = match to_json(want) {
                    Ok(want) => subset(&want, &got).err().map(|e| e.to_string()),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(e) = failure {
                    self.failures.push(format!("{what}: {e} (got {got})"));
                }
            }
        }
    }
}

/// Runs every check; returns how many held, or every failure.
pub fn run_checks(vm: &GuestVm, checks: &Checks) -> Result<usize, ScenarioError> {
    let mut r = Report::default();
    check_files(&mut r, vm, checks);
    check_devices(&mut r, vm, checks);
    check_memory(&mut r, vm, checks);
    check_network(&mut r, vm, checks);
    check_guest_state(&mut r, vm, checks);
    if r.failures.is_empty() {
        Ok(r.checked)
    } else {
        Err(ScenarioError::Checks(r.failures.join("\n")))
    }
}

/// Files, JSON files, paths, links and device nodes of the fake filesystems.
fn check_files(r: &mut Report, vm: &GuestVm, checks: &Checks) {
    let sysfs = &vm.fake.sysfs;
    for (path, want) in &checks.files {
        let got = sysfs
            .contents(path)
            .map(|c| String::from_utf8_lossy(&c).trim().to_owned());
        r.check(got.as_deref() == Some(want.trim()), || {
            format!("file {path}: expected {want:?}, got {got:?}")
        });
    }
    for (path, want) in &checks.json {
        let got = sysfs
            .contents(path)
            .and_then(|c| serde_json::from_slice::<Json>(&c).ok());
        r.subset(&format!("JSON file {path}"), &Some(want.clone()), got);
    }
    for path in &checks.exists {
        r.check(sysfs.kind(path).is_some(), || {
            format!("{path}: expected to exist")
        });
    }
    for path in &checks.absent {
        let kind = sysfs.kind(path);
        r.check(kind.is_none(), || {
            format!("{path}: expected absent, is a {kind:?}")
        });
    }
    for (path, want) in &checks.links {
        let got = Sysfs::read_link(&**sysfs, Path::new(path)).map(|p| p.display().to_string());
        r.check(got.as_ref().ok() == Some(want), || {
            format!("link {path}: expected -> {want}, got {got:?}")
        });
    }
    for (path, want) in &checks.nodes {
        let got = Sysfs::stat(&**sysfs, Path::new(path)).map(|info| {
            let kind = match info.kind {
                NodeKind::BlockDevice => "block",
                NodeKind::CharDevice => "char",
                _ => "other",
            };
            format!("{kind} {}:{}", info.major, info.minor)
        });
        r.check(got.as_ref().ok() == Some(want), || {
            format!("node {path}: expected {want}, got {got:?}")
        });
    }
}

/// The agent's device watcher.
fn check_devices(r: &mut Report, vm: &GuestVm, checks: &Checks) {
    if let Some(d) = &checks.devices {
        let watcher = vm.agent.devices();
        if let Some(known) = d.known {
            let got = watcher.known();
            r.check(got == known, || {
                format!("devices known: expected {known}, got {got}")
            });
        }
        if let Some(pending) = d.pending {
            let got = watcher.pending();
            r.check(got == pending, || {
                format!("device waits pending: expected {pending}, got {got}")
            });
        }
        for part in &d.present {
            let found = watcher.find(&DevpathContains(part.clone())).is_some();
            r.check(found, || {
                format!("device {part:?}: expected known to the agent")
            });
        }
        for part in &d.absent {
            let found = watcher.find(&DevpathContains(part.clone()));
            r.check(found.is_none(), || {
                format!("device {part:?}: expected unknown to the agent, found {found:?}")
            });
        }
    }
}

/// Guest RAM.
fn check_memory(r: &mut Report, vm: &GuestVm, checks: &Checks) {
    if let Some(m) = &checks.memory {
        let regions = vm.vmm.ram_regions();
        if let Some(n) = m.regions {
            r.check(regions.len() == n, || {
                format!("memory regions: expected {n}, got {regions:x?}")
            });
        }
        if let Some(total) = m.total {
            let got: u64 = regions.iter().map(|(_, len)| len).sum();
            r.check(got == total.0, || {
                format!(
                    "memory total: expected {total}, got {}",
                    crate::vmm::config::Size(got)
                )
            });
        }
        let probe = vm.vmm.probe_ram();
        r.check(probe.is_ok(), || {
            format!("guest RAM not accessible: {probe:?}")
        });
    }
}

/// Mounts, cgroups, processes, hostname, leftovers and faults.
fn check_guest_state(r: &mut Report, vm: &GuestVm, checks: &Checks) {
    let mounts = vm.fake.mounter.table();
    for (target, want) in &checks.mounts {
        let got = mounts
            .iter()
            .rev()
            .find(|m| m.target == Path::new(target))
            .map(|m| {
                let e = m.entry();
                json!({"source": e.source, "fstype": e.fstype, "options": e.options})
            });
        r.subset(&format!("mount {target}"), want, got);
    }
    for (path, want) in &checks.cgroups {
        let got = vm.fake.cgroups.state(path).map(|s| {
            json!({
                "resources": serde_json::to_value(&s.resources).unwrap_or(Json::Null),
                "pids": s.pids,
                "frozen": s.frozen,
            })
        });
        r.subset(&format!("cgroup {path}"), want, got);
    }
    if let Some(n) = checks.live_processes {
        let live = vm.fake.launcher.live();
        r.check(live.len() == n, || {
            format!("live processes: expected {n}, got {live:?}")
        });
    }
    if let Some(want) = &checks.shared_mounts {
        let got: Vec<String> = vm
            .fake
            .mounter
            .shared()
            .iter()
            .map(|m| {
                let s = &m.share;
                let (src, dst) = (s.src_path.display(), s.dst_path.display());
                format!("{}:{src} -> {}:{dst}", s.src_pid, s.dst_pid)
            })
            .collect();
        r.check(&got == want, || {
            format!("shared mounts: expected {want:?}, got {got:?}")
        });
    }
    if let Some(want) = &checks.hostname {
        let got = vm.fake.system.hostname();
        r.check(&got == want, || {
            format!("hostname: expected {want:?}, got {got:?}")
        });
    }
    if let Some(want) = &checks.leftovers {
        let left = vm.fake.leftovers();
        if want == "none" {
            r.check(left.is_empty(), || left.to_string());
        } else {
            r.check(false, || {
                format!("leftovers: only `none` is checkable, not {want:?}")
            });
        }
    }
    if let Some(n) = checks.faults_pending {
        let got = vm.fake.faults.pending();
        r.check(got == n, || {
            format!("faults pending: expected {n}, got {got}")
        });
    }
}
