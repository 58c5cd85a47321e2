//! `check` steps on a real guest, answered through the harness's debug channel (a console
//! shell): `hostname`, `files`, `exists`, `absent`, `links`, `mounts` (from
//! `/proc/self/mountinfo`) and `cgroups` (from the guest's cgroup files, v1 or v2). The other
//! checks read the fakes' state and are named as skipped.

use serde_json::{Map, Value as Json, json};

use super::error::ScenarioError;
use super::expect::{subset, to_json};
use super::format::Checks;
use super::real_mounts::{MountEntry, parse_mountinfo};
use crate::qemu::QemuError;
use crate::qemu::shell::{self, ShellOutput, quote};

/// What a check step came to on the real guest.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RealChecks {
    /// How many checks were answered (all held).
    pub checked: usize,
    /// The keys that could not be answered on a real guest.
    pub skipped: Vec<&'static str>,
}

/// Runs the answerable checks of `checks` in the guest behind `vsock_addr`; every failure,
/// one per line.
pub async fn run_real_checks(
    vsock_addr: &str,
    checks: &Checks,
) -> Result<RealChecks, ScenarioError> {
    let mut report = Report {
        addr: vsock_addr,
        done: RealChecks {
            skipped: unanswerable(checks),
            ..RealChecks::default()
        },
        failures: Vec::new(),
    };
    report.paths(checks).await?;
    report.mounts(checks).await?;
    report.cgroups(checks).await?;
    if report.failures.is_empty() {
        Ok(report.done)
    } else {
        let lines: Vec<String> = report.failures.iter().map(Mismatch::to_string).collect();
        Err(ScenarioError::Checks(lines.join("\n")))
    }
}

/// A check that did not hold: what was checked (`files /etc/hostname`, `mount /run/x`) and how
/// the guest differs.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {detail}")]
struct Mismatch {
    what: String,
    detail: String,
}

impl Mismatch {
    fn new(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Mismatch {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

struct Report<'a> {
    addr: &'a str,
    done: RealChecks,
    failures: Vec<Mismatch>,
}

impl Report<'_> {
    async fn sh(&self, command: &str) -> Result<ShellOutput, QemuError> {
        shell::run(self.addr, command).await
    }

    fn outcome(&mut self, result: Result<(), Mismatch>) {
        match result {
            Ok(()) => self.done.checked += 1,
            Err(e) => self.failures.push(e),
        }
    }

    /// `hostname`, `files`, `links`, `exists`, `absent`.
    async fn paths(&mut self, checks: &Checks) -> Result<(), QemuError> {
        if let Some(want) = &checks.hostname {
            let got = self.sh("/bin/busybox hostname").await?;
            self.outcome(expect_eq("hostname", want, &got.text));
        }
        for (path, want) in &checks.files {
            let got = self
                .sh(&format!("/bin/busybox cat {}", quote(path)?))
                .await?;
            self.outcome(if got.status == 0 {
                expect_eq(&format!("files {path}"), want.trim(), &got.text)
            } else {
                Err(Mismatch::new(
                    format!("files {path}"),
                    format!("cannot be read in the guest: {}", got.text),
                ))
            });
        }
        for (path, want) in &checks.links {
            let got = self
                .sh(&format!("/bin/busybox readlink {}", quote(path)?))
                .await?;
            self.outcome(expect_eq(&format!("links {path}"), want, &got.text));
        }
        for (paths, must_exist) in [(&checks.exists, true), (&checks.absent, false)] {
            for path in paths {
                let q = quote(path)?;
                let cmd = format!("/bin/busybox test -e {q} || /bin/busybox test -L {q}");
                let exists = self.sh(&cmd).await?.status == 0;
                let (key, state) = if must_exist {
                    ("exists", "missing")
                } else {
                    ("absent", "present")
                };
                self.outcome(if exists == must_exist {
                    Ok(())
                } else {
                    Err(Mismatch::new(
                        key,
                        format!("{path} is {state} in the guest"),
                    ))
                });
            }
        }
        Ok(())
    }

    /// `mounts`: each target's last mount in the agent's mount namespace.
    async fn mounts(&mut self, checks: &Checks) -> Result<(), ScenarioError> {
        if checks.mounts.is_empty() {
            return Ok(());
        }
        let table = self.sh("/bin/busybox cat /proc/self/mountinfo").await?;
        let entries = parse_mountinfo(&table.text);
        for (target, want) in &checks.mounts {
            let got = entries.iter().rev().find(|m| &m.target == target);
            let what = format!("mount {target}");
            let result = match want {
                None => got.map_or(Ok(()), |m| {
                    Err(Mismatch::new(
                        what,
                        format!("expected absent, got {}", m.source),
                    ))
                }),
                Some(want) => {
                    let want = to_json(want)?;
                    match got {
                        None => Err(Mismatch::new(what, "expected present, got absent")),
                        Some(m) => mount_matches(what, &want, m),
                    }
                }
            };
            self.outcome(result);
        }
        Ok(())
    }

    /// `cgroups`: limits and the freezer read back from the guest's cgroup files.
    async fn cgroups(&mut self, checks: &Checks) -> Result<(), ScenarioError> {
        for (path, want) in &checks.cgroups {
            let got = self.sh(&cgroup_script(&quote(path)?)).await?;
            let state = cgroup_state(&got.text);
            let what = format!("cgroup {path}");
            let result = match (want, state) {
                (None, None) => Ok(()),
                (None, Some(s)) => Err(Mismatch::new(what, format!("expected absent, got {s}"))),
                (Some(_), None) => Err(Mismatch::new(what, "expected present, got absent")),
                (Some(want), Some(got)) => {
                    let want = to_json(want)?;
                    subset(&want, &got).map_err(|e| Mismatch::new(what, format!("{e} (got {got})")))
                }
            };
            self.outcome(result);
        }
        Ok(())
    }
}

/// A mount against its expectation: `source` and `fstype` equal, every wanted option present
/// (the kernel adds its defaults, `relatime` and the like).
fn mount_matches(what: String, want: &Json, got: &MountEntry) -> Result<(), Mismatch> {
    let mut want = want.clone();
    if let Some(options) = want.as_object_mut().and_then(|w| w.remove("options")) {
        for option in options.as_array().into_iter().flatten() {
            let option = option.as_str().unwrap_or_default();
            if !got.options.iter().any(|o| o == option) {
                let detail = format!("option {option:?} missing from {:?}", got.options);
                return Err(Mismatch::new(what, detail));
            }
        }
    }
    let got_json = json!({ "source": got.source, "fstype": got.fstype });
    subset(&want, &got_json).map_err(|e| Mismatch::new(what, format!("{e} (got {got_json})")))
}

/// A shell script printing `key=value` lines for the cgroup at `path` (quoted), `absent` when
/// it does not exist. v2 when `/sys/fs/cgroup` is a cgroup2 root, else v1 per controller.
fn cgroup_script(path: &str) -> String {
    let bb = "/bin/busybox";
    format!(
        "r=/sys/fs/cgroup; p={path}; \
         if {bb} test -e $r/cgroup.controllers; then v=2; d=$r$p; else v=1; d=$r/memory$p; fi; \
         if ! {bb} test -d $d; then echo absent; \
         elif {bb} test $v = 2; then echo v=2; \
           for f in memory.max cpu.max cpu.weight cpuset.cpus pids.max cgroup.freeze; do \
             echo \"$f=$({bb} cat $r$p/$f 2>/dev/null)\"; done; \
         else echo v=1; \
           for f in memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us \
             cpu/cpu.shares cpuset/cpuset.cpus pids/pids.max freezer/freezer.state; do \
             echo \"${{f#*/}}=$({bb} cat $r/${{f%%/*}}$p/${{f#*/}} 2>/dev/null)\"; done; \
         fi"
    )
}

/// The cgroup's state in the fakes' shape (`resources` as OCI `LinuxResources`, `frozen`),
/// from [`cgroup_script`]'s output; `None` when it is absent.
fn cgroup_state(text: &str) -> Option<Json> {
    if text.trim() == "absent" {
        return None;
    }
    let value = |key: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    // Values meaning "no limit" are left out, as the fakes leave out limits never set.
    let limit = |v: Option<&str>| -> Option<i64> {
        v.and_then(|v| v.parse::<i64>().ok())
            .filter(|n| *n > 0 && *n < 0x7fff_ffff_ffff_f000)
    };
    let mut memory = Map::new();
    let mut cpu = Map::new();
    let mut pids = Map::new();
    let frozen = if value("v") == Some("2") {
        put(&mut memory, "limit", limit(value("memory.max")));
        let mut max = value("cpu.max").unwrap_or_default().split_whitespace();
        put(&mut cpu, "quota", limit(max.next()));
        put(&mut cpu, "period", limit(max.next()));
        put(&mut pids, "limit", limit(value("pids.max")));
        value("cgroup.freeze") == Some("1")
    } else {
        put(&mut memory, "limit", limit(value("memory.limit_in_bytes")));
        put(&mut cpu, "quota", limit(value("cpu.cfs_quota_us")));
        put(&mut cpu, "period", limit(value("cpu.cfs_period_us")));
        put(&mut cpu, "shares", limit(value("cpu.shares")));
        put(&mut pids, "limit", limit(value("pids.max")));
        value("freezer.state") == Some("FROZEN")
    };
    if let Some(cpus) = value("cpuset.cpus") {
        cpu.insert("cpus".into(), json!(cpus));
    }
    let mut resources = Map::new();
    for (key, map) in [("memory", memory), ("cpu", cpu), ("pids", pids)] {
        if !map.is_empty() {
            resources.insert(key.into(), Json::Object(map));
        }
    }
    Some(json!({ "resources": resources, "frozen": frozen }))
}

fn put(map: &mut Map<String, Json>, key: &str, value: Option<i64>) {
    if let Some(v) = value {
        map.insert(key.into(), json!(v));
    }
}

fn expect_eq(what: &str, want: &str, got: &str) -> Result<(), Mismatch> {
    if want == got {
        Ok(())
    } else {
        let detail = format!("expected {want:?}\n  got {got:?} in the guest");
        Err(Mismatch::new(what, detail))
    }
}

/// The keys of `checks` given but not answerable on a real guest.
fn unanswerable(c: &Checks) -> Vec<&'static str> {
    let given = [
        ("json", !c.json.is_empty()),
        ("nodes", !c.nodes.is_empty()),
        ("devices", c.devices.is_some()),
        ("memory", c.memory.is_some()),
        ("net_links", !c.net_links.is_empty()),
        ("net_routes", c.net_routes.is_some()),
        ("net_neighbours", !c.net_neighbours.is_empty()),
        ("live_processes", c.live_processes.is_some()),
        ("leftovers", c.leftovers.is_some()),
        ("faults_pending", c.faults_pending.is_some()),
    ];
    given
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_only_keys_are_named() {
        let checks: Checks = serde_yaml::from_str(
            "{ hostname: pod, mounts: { /a: null }, live_processes: 1, absent: [/x] }",
        )
        .unwrap();
        assert_eq!(unanswerable(&checks), ["live_processes"]);
        assert!(expect_eq("hostname", "pod", "pod").is_ok());
        let err = expect_eq("hostname", "pod", "other").unwrap_err();
        assert_eq!(err.what, "hostname");
        assert!(err.to_string().contains("other"), "{err}");
    }

    #[test]
    fn cgroup_files_read_back_in_the_fakes_shape() {
        let v2 = "v=2\nmemory.max=134217728\ncpu.max=50000 100000\ncpu.weight=20\n\
                  cpuset.cpus=0-2\npids.max=64\ncgroup.freeze=1\n";
        assert_eq!(
            cgroup_state(v2).unwrap(),
            json!({"resources": {"memory": {"limit": 134217728},
                   "cpu": {"quota": 50000, "period": 100000, "cpus": "0-2"},
                   "pids": {"limit": 64}}, "frozen": true})
        );
        let unlimited = "v=2\nmemory.max=max\ncpu.max=max 100000\npids.max=max\ncgroup.freeze=0\n";
        assert_eq!(
            cgroup_state(unlimited).unwrap(),
            json!({"resources": {"cpu": {"period": 100000}}, "frozen": false})
        );
        let v1 = "v=1\nmemory.limit_in_bytes=9223372036854771712\ncpu.cfs_quota_us=-1\n\
                  freezer.state=THAWED\n";
        assert_eq!(
            cgroup_state(v1).unwrap(),
            json!({"resources": {}, "frozen": false})
        );
        assert_eq!(cgroup_state("absent\n"), None);
    }
}
