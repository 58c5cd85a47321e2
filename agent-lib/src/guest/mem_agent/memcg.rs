//! Memory-cgroup reclaim (Kata's `memcg`, simplified): each period, unless memory is already
//! under pressure, ask every first-level cgroup v2 memcg to reclaim its inactive page cache
//! (and, with `swap`, part of its inactive anonymous memory scaled by `swappiness_max`),
//! stopping as soon as the reclaim itself makes tasks stall more than
//! `eviction_psi_percent_limit`.
//!
//! Kata drives MGLRU generations (aging runs, `eviction_run_aging_count_min`); this agent uses
//! the kernel's `memory.reclaim` instead, so that knob is accepted and kept but unused. On
//! cgroup v1 there is no `memory.reclaim` and rounds do nothing.

use std::path::{Path, PathBuf};

use tokio::time::Instant;

use super::psi::{PsiPeriod, read_some_total};
use crate::config::MemcgConfig;
use crate::host::{NodeKind, Sysfs};

/// The cgroup v2 mount.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `inactive_file` and `inactive_anon` of a `memory.stat`, bytes.
pub fn inactive(stat: &str) -> (u64, u64) {
    let field = |name: &str| {
        stat.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("inactive_file"), field("inactive_anon"))
}

/// How many bytes to ask a memcg to reclaim.
pub fn reclaim_amount(cfg: &MemcgConfig, inactive_file: u64, inactive_anon: u64) -> u64 {
    let anon = if cfg.swap {
        inactive_anon.saturating_mul(u64::from(cfg.swappiness_max)) / 200
    } else {
        0
    };
    inactive_file.saturating_add(anon)
}

/// The first-level memcgs: directories of the cgroup root with `memory.reclaim`.
fn memcgs(sysfs: &dyn Sysfs) -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    let Ok(names) = sysfs.read_dir(root) else {
        return Vec::new();
    };
    names
        .into_iter()
        .map(|n| root.join(n))
        .filter(|p| sysfs.stat(p).is_ok_and(|i| i.kind == NodeKind::Dir))
        .filter(|p| sysfs.exists(&p.join("memory.reclaim")))
        .collect()
}

/// One round. Returns how many memcgs were asked to reclaim.
pub fn round(sysfs: &dyn Sysfs, psi_path: &Path, cfg: &MemcgConfig, psi: &mut PsiPeriod) -> usize {
    let percent = psi.percent(read_some_total(sysfs, psi_path), Instant::now());
    if percent > u64::from(cfg.period_psi_percent_limit) {
        tracing::debug!(
            percent,
            "mem-agent: memory pressure, no reclaim this period"
        );
        return 0;
    }
    let mut eviction = PsiPeriod::start(read_some_total(sysfs, psi_path), Instant::now());
    let mut asked = 0;
    for memcg in memcgs(sysfs) {
        let Ok(stat) = sysfs.read_string(&memcg.join("memory.stat")) else {
            continue;
        };
        let (file, anon) = inactive(&stat);
        let amount = reclaim_amount(cfg, file, anon);
        if amount == 0 {
            continue;
        }
        tracing::info!(memcg = %memcg.display(), amount, "mem-agent: reclaiming");
        asked += 1;
        if let Err(e) = sysfs.write(&memcg.join("memory.reclaim"), amount.to_string().as_bytes()) {
            // EAGAIN: less than asked could be reclaimed.
            tracing::debug!(memcg = %memcg.display(), error = %e, "mem-agent: reclaim short");
        }
        let stalled = eviction.percent(read_some_total(sysfs, psi_path), Instant::now());
        if stalled > u64::from(cfg.eviction_psi_percent_limit) {
            tracing::info!(
                stalled,
                "mem-agent: reclaim stalls tasks, stopping this period"
            );
            break;
        }
    }
    // The reclaim's own stalls do not count against the next period.
    psi.percent(read_some_total(sysfs, psi_path), Instant::now());
    asked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_follow_swap_and_swappiness() {
        let stat =
            "anon 10\ninactive_anon 4000\nactive_anon 1\ninactive_file 1000\nactive_file 5\n";
        assert_eq!(inactive(stat), (1000, 4000));
        let no_swap = MemcgConfig::default();
        assert_eq!(reclaim_amount(&no_swap, 1000, 4000), 1000);
        let swap = MemcgConfig {
            swap: true,
            swappiness_max: 100,
            ..MemcgConfig::default()
        };
        assert_eq!(reclaim_amount(&swap, 1000, 4000), 3000);
        assert_eq!(inactive("garbage"), (0, 0));
    }
}
