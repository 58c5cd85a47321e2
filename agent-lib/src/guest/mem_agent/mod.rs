//! The mem-agent (`agent.mem_agent_enable`): memory-cgroup reclaim and memory compaction
//! driven by pressure stall information, on the agent's runtime (virtual time in the
//! harness). The RPCs MemAgentMemcgSet and MemAgentCompactSet swap its settings.
//!
//! Everything goes through the seams: PSI, `/proc/meminfo`, `/proc/pagetypeinfo`,
//! `memory.stat`, `memory.reclaim` and `/proc/sys/vm/compact_memory` through [`Sysfs`]. PSI
//! comes from the cgroup v2 root's `memory.pressure`, else `/proc/pressure/memory` (Kata adds
//! io pressure; this agent counts memory stalls only).
//!
//! Not done as Kata does: the compaction is one synchronous write that cannot be cut short, so
//! `compact_sec_max` and `compact_psi_percent_limit` are validated and kept but do not stop a
//! running compaction; reclaim uses `memory.reclaim` rather than MGLRU aging (see `memcg`).

mod compact;
mod memcg;
mod psi;
mod settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

pub use compact::{COMPACT_MEMORY, CompactState};
pub use memcg::CGROUP_ROOT;
pub use settings::{CompactUpdate, MemcgUpdate};

use self::psi::{PsiPeriod, read_some_total};
use super::GuestError;
use crate::config::MemAgentConfig;
use crate::host::{CgroupVersion, Host, Sysfs};

/// A running mem-agent's settings; [`MemAgent::run`] does the work.
#[derive(Debug)]
pub struct MemAgent {
    settings: watch::Sender<MemAgentConfig>,
}

impl MemAgent {
    /// A mem-agent with the boot settings.
    pub fn new(config: MemAgentConfig) -> Self {
        MemAgent {
            settings: watch::Sender::new(config),
        }
    }

    /// The current settings.
    pub fn settings(&self) -> MemAgentConfig {
        self.settings.borrow().clone()
    }

    /// MemAgentMemcgSet: checks the update, then swaps it in; the reclaim loop restarts its
    /// period with it.
    pub fn set_memcg(&self, update: &MemcgUpdate) -> Result<(), GuestError> {
        let next = update.apply(&self.settings.borrow().memcg)?;
        tracing::info!(?next, "mem-agent: memcg settings");
        self.settings.send_modify(|s| s.memcg = next);
        Ok(())
    }

    /// MemAgentCompactSet: checks the update, then swaps it in.
    pub fn set_compact(&self, update: &CompactUpdate) -> Result<(), GuestError> {
        let next = update.apply(&self.settings.borrow().compact)?;
        tracing::info!(?next, "mem-agent: compaction settings");
        self.settings.send_modify(|s| s.compact = next);
        Ok(())
    }

    /// Runs both loops until the future is dropped.
    pub async fn run(&self, host: Host) {
        let root_psi = PathBuf::from(CGROUP_ROOT).join("memory.pressure");
        let psi_path = match host.cgroups.version() {
            CgroupVersion::V2 if host.sysfs.exists(&root_psi) => root_psi,
            _ => PathBuf::from("/proc/pressure/memory"),
        };
        tokio::join!(
            self.memcg_loop(host.sysfs.clone(), psi_path.clone(), host.cgroups.version()),
            self.compact_loop(host.sysfs.clone(), psi_path),
        );
    }

    async fn memcg_loop(&self, sysfs: Arc<dyn Sysfs>, psi_path: PathBuf, version: CgroupVersion) {
        let mut rx = self.settings.subscribe();
        let mut psi = PsiPeriod::start(read_some_total(&*sysfs, &psi_path), Instant::now());
        loop {
            let cfg = rx.borrow_and_update().memcg.clone();
            let period = (!cfg.disabled).then(|| Duration::from_secs(cfg.period_secs));
            tokio::select! {
                () = sleep_for(period) => {
                    if version == CgroupVersion::V2 {
                        memcg::round(&*sysfs, &psi_path, &cfg, &mut psi);
                    }
                }
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    }

    async fn compact_loop(&self, sysfs: Arc<dyn Sysfs>, psi_path: PathBuf) {
        let mut rx = self.settings.subscribe();
        let mut psi = PsiPeriod::start(read_some_total(&*sysfs, &psi_path), Instant::now());
        let mut state = CompactState::default();
        loop {
            let cfg = rx.borrow_and_update().compact.clone();
            let period = (!cfg.disabled).then(|| Duration::from_secs(cfg.period_secs));
            tokio::select! {
                () = sleep_for(period) => {
                    compact::round(&sysfs, &psi_path, &cfg, &mut state, &mut psi).await;
                }
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    }
}

/// Sleeps `period`, or forever when disabled (`None`).
async fn sleep_for(period: Option<Duration>) {
    match period {
        Some(period) => tokio::time::sleep(period).await,
        None => std::future::pending().await,
    }
}
