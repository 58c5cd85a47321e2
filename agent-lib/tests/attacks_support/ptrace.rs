//! The class-1 attacker (`ptrace_attacker.c`) run inside a container, and the verdict on its
//! report: shared by the cgroup v1 and v2 cases.

use std::fs;
use std::path::{Path, PathBuf};

use super::{build_static, exec_default_caps};
use crate::support::real_agent::RealAgent;

/// The exec id the attacker runs under.
const EID: &str = "attacker";

/// A running attacker: built into a container's rootfs and started there as root with
/// Docker's default capabilities.
pub struct PtraceAttacker {
    root: PathBuf,
    cid: String,
}

impl PtraceAttacker {
    /// Builds the attacker into `root` (container `cid`'s rootfs) and starts it in `cid`.
    pub async fn start(agent: &RealAgent, root: &Path, cid: &str) -> Self {
        build_static(
            include_str!("ptrace_attacker.c"),
            &root.join("bin/attacker"),
        );
        exec_default_caps(agent, cid, EID, &["attacker"]).await;
        PtraceAttacker {
            root: root.to_path_buf(),
            cid: cid.to_owned(),
        }
    }

    /// Stops the attacker, waits for its clean exit and reads its report.
    pub async fn stop(self, agent: &RealAgent) -> AttackerReport {
        fs::write(self.root.join("stop-attack"), "").unwrap();
        let text = agent.read_all(&self.cid, EID, false).await;
        assert_eq!(agent.wait(&self.cid, EID).await, 0, "{text}");
        eprintln!("attacker in {}: {}", self.cid, text.trim());
        AttackerReport::parse(&text).unwrap_or_else(|| panic!("not an attacker report: {text:?}"))
    }
}

/// What the attacker counted: the agent's processes it saw, reached (ptrace, `/proc/<pid>/mem`
/// or `process_vm_readv`), and saw outside its own cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttackerReport {
    pub seen: u64,
    pub won: u64,
    pub outside: u64,
}

impl AttackerReport {
    /// Parses `seen=N won=N outside=N`; `None` if a field is missing or not a number.
    pub fn parse(text: &str) -> Option<Self> {
        let field = |key: &str| {
            text.split_whitespace()
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
        };
        Some(AttackerReport {
            seen: field("seen")?,
            won: field("won")?,
            outside: field("outside")?,
        })
    }

    /// What is wrong with the report: the attack never ran into the agent (nothing seen, so
    /// it proves nothing), reached it, or saw it outside the container's cgroup.
    pub fn failures(&self) -> Vec<&'static str> {
        let mut failures = Vec::new();
        if self.seen == 0 {
            failures.push("the attacker never saw an agent process");
        }
        if self.won > 0 {
            failures.push("an agent process was reached");
        }
        if self.outside > 0 {
            failures.push("an agent process was seen outside the container's cgroup");
        }
        failures
    }

    /// Panics unless the attacker saw the agent's processes and lost every time.
    pub fn assert_lost(&self) {
        let failures = self.failures();
        assert!(failures.is_empty(), "{}: {self:?}", failures.join("; "));
    }
}
