//! Periodic memory compaction (Kata's `compact`): when free memory changed enough since the
//! last compaction and memory is not under pressure, write `1` to
//! `/proc/sys/vm/compact_memory` so free pages coalesce for the host's free page reporting.

use std::path::Path;

use tokio::time::Instant;

use super::psi::{PsiPeriod, read_some_total};
use crate::config::CompactConfig;
use crate::host::Sysfs;

/// Where compaction is triggered.
pub const COMPACT_MEMORY: &str = "/proc/sys/vm/compact_memory";

/// `compact_force_times` at or above this never forces a compaction (Kata's convention).
const NEVER_FORCE: u64 = i64::MAX as u64;

/// What the compaction loop remembers between rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactState {
    /// MemFree after the last compaction, kB.
    pub prev_memfree_kb: u64,
    /// Free movable pages below `compact_order` after the last compaction.
    pub prev_free_movable: u64,
    /// Rounds skipped since the last compaction.
    pub skipped: u64,
}

/// Whether a round compacts, given the period's stall percentage and the memory now.
pub fn should_compact(
    cfg: &CompactConfig,
    state: &CompactState,
    psi_percent: u64,
    memfree_kb: u64,
    free_movable: u64,
) -> bool {
    if psi_percent > u64::from(cfg.period_psi_percent_limit) {
        return false;
    }
    let forced = cfg.compact_force_times < NEVER_FORCE && state.skipped >= cfg.compact_force_times;
    let freed_dropped =
        state.prev_memfree_kb > memfree_kb.saturating_add(cfg.compact_threshold << 2);
    let movable_grew = free_movable
        > cfg
            .compact_threshold
            .saturating_add(state.prev_free_movable);
    forced || freed_dropped || movable_grew
}

/// `MemFree` of `/proc/meminfo`, kB.
pub fn memfree_kb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemFree:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Free movable pages of order below `order_limit`, counted in base pages, from
/// `/proc/pagetypeinfo` (`Node 0, zone Normal, type Movable  1 2 3 ...`).
pub fn free_movable_pages(pagetypeinfo: &str, order_limit: u8) -> u64 {
    let mut total = 0u64;
    for line in pagetypeinfo.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = fields.iter().position(|f| *f == "Movable") else {
            continue;
        };
        for (order, count) in fields[at + 1..].iter().enumerate() {
            if order >= usize::from(order_limit) {
                break;
            }
            if let Ok(count) = count.parse::<u64>() {
                total = total.saturating_add(count << order);
            }
        }
    }
    total
}

fn memory_now(sysfs: &dyn Sysfs, order: u8) -> Option<(u64, u64)> {
    let meminfo = sysfs.read_string(Path::new("/proc/meminfo")).ok()?;
    let pagetypes = sysfs.read_string(Path::new("/proc/pagetypeinfo")).ok()?;
    Some((memfree_kb(&meminfo)?, free_movable_pages(&pagetypes, order)))
}

/// One round: decide, compact, remember. Returns whether it compacted.
pub async fn round(
    sysfs: &std::sync::Arc<dyn Sysfs>,
    psi_path: &Path,
    cfg: &CompactConfig,
    state: &mut CompactState,
    psi: &mut PsiPeriod,
) -> bool {
    let percent = psi.percent(read_some_total(&**sysfs, psi_path), Instant::now());
    let Some((memfree, movable)) = memory_now(&**sysfs, cfg.compact_order) else {
        tracing::debug!("mem-agent: no meminfo or pagetypeinfo, compaction skipped");
        state.skipped += 1;
        return false;
    };
    if !should_compact(cfg, state, percent, memfree, movable) {
        state.skipped += 1;
        return false;
    }
    tracing::info!(
        memfree_kb = memfree,
        free_movable = movable,
        "mem-agent: compacting"
    );
    // The kernel compacts inside the write, which can take a while: off the async workers.
    let writer = sysfs.clone();
    let written =
        tokio::task::spawn_blocking(move || writer.write(Path::new(COMPACT_MEMORY), b"1")).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "mem-agent: compaction failed"),
        Err(e) => tracing::warn!(error = %e, "mem-agent: compaction task failed"),
    }
    let (memfree, movable) = memory_now(&**sysfs, cfg.compact_order).unwrap_or((memfree, movable));
    *state = CompactState {
        prev_memfree_kb: memfree,
        prev_free_movable: movable,
        skipped: 0,
    };
    // The compaction's own stalls do not count against the next period.
    psi.percent(read_some_total(&**sysfs, psi_path), Instant::now());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_needs_calm_and_a_change_in_free_memory() {
        let cfg = CompactConfig {
            compact_threshold: 100,
            ..CompactConfig::default()
        };
        let state = CompactState {
            prev_memfree_kb: 10_000,
            prev_free_movable: 50,
            skipped: 0,
        };
        assert!(
            should_compact(&cfg, &state, 0, 10_000, 151),
            "movable pages grew"
        );
        assert!(!should_compact(&cfg, &state, 0, 10_000, 150));
        assert!(
            should_compact(&cfg, &state, 0, 9_599, 0),
            "free memory dropped"
        );
        assert!(!should_compact(&cfg, &state, 0, 9_600, 0));
        assert!(
            !should_compact(&cfg, &state, 2, 10_000, 1_000),
            "under pressure"
        );
    }

    #[test]
    fn forced_compaction_counts_skipped_rounds() {
        let cfg = CompactConfig {
            compact_force_times: 3,
            ..CompactConfig::default()
        };
        let mut state = CompactState {
            skipped: 2,
            ..CompactState::default()
        };
        assert!(!should_compact(&cfg, &state, 0, 0, 0));
        state.skipped = 3;
        assert!(should_compact(&cfg, &state, 0, 0, 0));
        let never = CompactConfig::default();
        state.skipped = u64::MAX;
        assert!(!should_compact(&never, &state, 0, 0, 0));
    }

    #[test]
    fn proc_files_are_parsed() {
        assert_eq!(memfree_kb("MemTotal: 10 kB\nMemFree:   7 kB\n"), Some(7));
        let info = "Page block order: 9\nNode    0, zone      DMA, type    Unmovable      1      0\nNode    0, zone   Normal, type      Movable      4      2      1      9\n";
        // Orders 0..3: 4*1 + 2*2 + 1*4.
        assert_eq!(free_movable_pages(info, 3), 12);
        assert_eq!(free_movable_pages(info, 9), 12 + 9 * 8);
    }
}
