//! StatsContainer: cgroup statistics and the network counters of the container's namespace.

use std::path::PathBuf;

use super::{ContainerError, Containers, NetworkStats, parse_net_dev};
use crate::host::CgroupStats;

/// What StatsContainer reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerStats {
    /// The cgroup's statistics.
    pub cgroup: CgroupStats,
    /// Per-interface counters of the container's network namespace (read from
    /// `/proc/<init pid>/net/dev`; Kata never fills them). Empty once the init is gone.
    pub network: Vec<NetworkStats>,
}

impl Containers {
    /// Reads the container's statistics on the blocking pool, holding no lock meanwhile (Kata
    /// issue #13452: a stats read that held the sandbox lock wedged SignalProcess).
    pub async fn stats(&self, cid: &str) -> Result<ContainerStats, ContainerError> {
        let container = self.get(cid)?;
        let host = self.host.clone();
        let cgroup = container.cgroup.clone();
        let pid = container.init.pid();
        let running = container.init.exit_status().is_none();
        let id = cid.to_owned();
        let read = tokio::task::spawn_blocking(move || {
            let cgroup = host
                .cgroups
                .stats(&cgroup)
                .map_err(ContainerError::step(&id, "read cgroup statistics"))?;
            let network = if running {
                let path = PathBuf::from(format!("/proc/{pid}/net/dev"));
                match host.sysfs.read_string(&path) {
                    Ok(text) => parse_net_dev(&text),
                    Err(e) => {
                        tracing::debug!(container = %id, error = %e, "no network statistics");
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            Ok(ContainerStats { cgroup, network })
        });
        read.await.map_err(|e| ContainerError::Step {
            container: cid.to_owned(),
            step: "the statistics task".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }
}
