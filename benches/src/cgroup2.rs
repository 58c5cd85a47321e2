//! cgroup v2 for the real-Linux pod on a cgroup v1 host: the agent's thread mounts the host's
//! (single) cgroup2 hierarchy over its private `/sys/fs/cgroup`, so its execs take the v2 path
//! (one clone straight into the container's pid namespace and cgroup). The host must leave at
//! least one controller to v2 (on these machines `hugetlb`): the agent makes no cgroup without
//! one. The controllers the agent enables in the root are disabled again when the pod stops.

use std::fs;
use std::path::PathBuf;

/// Where the host mounts cgroup2 (systemd's hybrid layout: `/sys/fs/cgroup/unified`).
fn host_root() -> Option<PathBuf> {
    let table = fs::read_to_string("/proc/self/mountinfo").ok()?;
    table
        .lines()
        .filter_map(|l| l.split_once(" - "))
        .find(|(_, tail)| tail.starts_with("cgroup2 "))
        .and_then(|(head, _)| head.split(' ').nth(4).map(PathBuf::from))
}

/// Why the v2 pod cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    let Some(root) = host_root() else {
        return Some("the host mounts no cgroup2 hierarchy".into());
    };
    let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    if controllers.trim().is_empty() {
        return Some(format!(
            "{} has no controller (all are bound to v1 hierarchies)",
            root.display()
        ));
    }
    None
}

/// The host's cgroup2 root controllers as they were; on drop, those enabled since are
/// disabled again.
#[derive(Debug)]
pub struct RootControllers {
    root: PathBuf,
    before: Vec<String>,
}

impl RootControllers {
    /// Notes the controllers enabled in the host's cgroup2 root now.
    pub fn save() -> anyhow::Result<RootControllers> {
        let root = host_root().ok_or_else(|| anyhow::anyhow!("no cgroup2 mount"))?;
        let before = enabled(&root);
        Ok(RootControllers { root, before })
    }
}

fn enabled(root: &std::path::Path) -> Vec<String> {
    fs::read_to_string(root.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

impl Drop for RootControllers {
    fn drop(&mut self) {
        for controller in enabled(&self.root) {
            if !self.before.contains(&controller) {
                let control = self.root.join("cgroup.subtree_control");
                if let Err(e) = fs::write(&control, format!("-{controller}")) {
                    eprintln!("cgroup2: cannot disable {controller} again: {e}");
                }
            }
        }
    }
}
