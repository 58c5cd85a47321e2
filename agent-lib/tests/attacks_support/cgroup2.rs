//! cgroup v2 on this cgroup v1 host: the agent runs with a `cgroup2` hierarchy over its
//! `/sys/fs/cgroup` ([`RealAgent::start_cgroup2`]); the test looks at the same (single) v2
//! hierarchy through the host's own cgroup2 mount. The host must leave at least one controller
//! to v2 (here `hugetlb`, not bound to any v1 hierarchy): with none, the agent refuses to make
//! cgroups at all and the tests fail saying so.

use std::fs;
use std::path::PathBuf;

use crate::attacks_support::PAUSE;
use crate::support::real_agent::RealAgent;
use crate::support::wire::spec;

/// Where the host mounts its cgroup2 hierarchy (systemd's hybrid layout mounts it at
/// `/sys/fs/cgroup/unified`), from `/proc/self/mountinfo`.
pub fn v2_root() -> PathBuf {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap();
    table
        .lines()
        .filter_map(|l| l.split_once(" - "))
        .find(|(_, tail)| tail.starts_with("cgroup2 "))
        .and_then(|(head, _)| head.split(' ').nth(4).map(PathBuf::from))
        .expect("these tests look at cgroup v2 through the host's cgroup2 mount: none found")
}

/// The v2 cgroup of `pid` as the host sees it (`/a/b`).
pub fn cgroup_of(pid: i32) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_default()
        .to_owned()
}

/// The processes in the v2 cgroup `rel` (relative to the root).
pub fn pids(rel: &str) -> Vec<i32> {
    let procs = v2_root().join(rel).join("cgroup.procs");
    fs::read_to_string(&procs)
        .unwrap_or_else(|e| panic!("{}: {e}", procs.display()))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A sandbox with its infra container running, on an agent in cgroup v2 mode.
pub async fn sandbox(test: &str) -> RealAgent {
    let agent = RealAgent::start_cgroup2(test).await;
    let sandbox = agent.id("sb");
    agent.create_sandbox(&sandbox, "attack-pod").await;
    let infra = agent.rootfs("infra");
    agent
        .run_container(&sandbox, spec(&infra, &PAUSE, false, None))
        .await;
    assert_eq!(
        pids(&sandbox).len(),
        1,
        "the infra container is not in its v2 cgroup"
    );
    agent
}

/// The controllers enabled in the v2 root's `cgroup.subtree_control` when made; on drop, those
/// enabled since (the agent enables its controllers in every parent of its cgroups) are
/// disabled again, leaving the host's hierarchy as it was. Held, it keeps other v2 tests (of
/// any process) waiting, so that none loses a controller it is using.
pub struct RootControllers {
    before: Vec<String>,
    _lock: fs::File,
}

/// Serializes the cgroup v2 tests across threads and processes.
const LOCK_FILE: &str = "/tmp/kata-agent-cgroup2-tests.lock";

impl RootControllers {
    pub fn save() -> RootControllers {
        let lock = crate::support::file_lock(LOCK_FILE);
        RootControllers {
            before: enabled(),
            _lock: lock,
        }
    }
}

fn enabled() -> Vec<String> {
    let file = v2_root().join("cgroup.subtree_control");
    let text = fs::read_to_string(file).unwrap_or_default();
    text.split_whitespace().map(str::to_owned).collect()
}

impl Drop for RootControllers {
    fn drop(&mut self) {
        let file = v2_root().join("cgroup.subtree_control");
        for c in enabled().into_iter().filter(|c| !self.before.contains(c)) {
            if let Err(e) = fs::write(&file, format!("-{c}")) {
                eprintln!("cleanup: cannot disable {c} in {}: {e}", file.display());
            }
        }
    }
}
