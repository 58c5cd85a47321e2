//! Pure parsers of the /proc files GetMetrics reads, into Kata's item names and units.
//!
//! Lines that do not parse are skipped: a kernel with more or fewer fields still yields what
//! it has.

/// The unit of the tick counts in /proc/stat (`USER_HZ`, 100 on every Linux architecture).
pub const USER_HZ: f64 = 100.0;

/// `/proc/loadavg`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Load {
    /// 1, 5 and 15 minute load averages.
    pub averages: [f64; 3],
    /// Runnable tasks.
    pub running: f64,
    /// All tasks.
    pub total: f64,
}

/// `0.10 0.20 0.30 2/345 6789`.
pub fn loadavg(text: &str) -> Option<Load> {
    let mut fields = text.split_whitespace();
    let mut averages = [0.0; 3];
    for slot in &mut averages {
        *slot = fields.next()?.parse().ok()?;
    }
    let (running, total) = fields.next()?.split_once('/')?;
    Some(Load {
        averages,
        running: running.parse().ok()?,
        total: total.parse().ok()?,
    })
}

const CPU_ITEMS: [&str; 10] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
];

/// `/proc/stat` CPU lines as `(cpu, item, milliseconds)`: `cpu` is `total` for the summary
/// line and the CPU number otherwise.
pub fn cpu_times(text: &str) -> Vec<(String, &'static str, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields.next().and_then(|f| f.strip_prefix("cpu")) else {
            continue;
        };
        let cpu = if cpu.is_empty() {
            "total".to_owned()
        } else {
            cpu.to_owned()
        };
        if cpu != "total" && cpu.parse::<u32>().is_err() {
            continue;
        }
        for (item, value) in CPU_ITEMS.iter().zip(fields) {
            if let Ok(ticks) = value.parse::<f64>() {
                out.push((cpu.clone(), *item, ticks * 1000.0 / USER_HZ));
            }
        }
    }
    out
}

/// `name value` lines (`/proc/vmstat`).
pub fn key_values(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(char::is_whitespace)?;
            Some((key.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// `name: value [kB]` lines, values in kB scaled to bytes when `kb_to_bytes`.
fn colon_values(text: &str, kb_to_bytes: bool) -> Vec<(&str, f64)> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let mut words = rest.split_whitespace();
            let value: f64 = words.next()?.parse().ok()?;
            let scale = if kb_to_bytes && words.next() == Some("kB") {
                1024.0
            } else {
                1.0
            };
            Some((key.trim(), value * scale))
        })
        .collect()
}

/// /proc/meminfo names and Kata's items for them (procfs' field names).
const MEMINFO_ITEMS: [(&str, &str); 58] = [
    ("MemTotal", "mem_total"),
    ("MemFree", "mem_free"),
    ("MemAvailable", "mem_available"),
    ("Buffers", "buffers"),
    ("Cached", "cached"),
    ("SwapCached", "swap_cached"),
    ("Active", "active"),
    ("Inactive", "inactive"),
    ("Active(anon)", "active_anon"),
    ("Inactive(anon)", "inactive_anon"),
    ("Active(file)", "active_file"),
    ("Inactive(file)", "inactive_file"),
    ("Unevictable", "unevictable"),
    ("Mlocked", "mlocked"),
    ("HighTotal", "high_total"),
    ("HighFree", "high_free"),
    ("LowTotal", "low_total"),
    ("LowFree", "low_free"),
    ("MmapCopy", "mmap_copy"),
    ("SwapTotal", "swap_total"),
    ("SwapFree", "swap_free"),
    ("Dirty", "dirty"),
    ("Writeback", "writeback"),
    ("AnonPages", "anon_pages"),
    ("Mapped", "mapped"),
    ("Shmem", "shmem"),
    ("Slab", "slab"),
    ("SReclaimable", "s_reclaimable"),
    ("SUnreclaim", "s_unreclaim"),
    ("KernelStack", "kernel_stack"),
    ("PageTables", "page_tables"),
    ("Quicklists", "quicklists"),
    ("NFS_Unstable", "nfs_unstable"),
    ("Bounce", "bounce"),
    ("WritebackTmp", "writeback_tmp"),
    ("CommitLimit", "commit_limit"),
    ("Committed_AS", "committed_as"),
    ("VmallocTotal", "vmalloc_total"),
    ("VmallocUsed", "vmalloc_used"),
    ("VmallocChunk", "vmalloc_chunk"),
    ("HardwareCorrupted", "hardware_corrupted"),
    ("AnonHugePages", "anon_hugepages"),
    ("ShmemHugePages", "shmem_hugepages"),
    ("ShmemPmdMapped", "shmem_pmd_mapped"),
    ("CmaTotal", "cma_total"),
    ("CmaFree", "cma_free"),
    ("HugePages_Total", "hugepages_total"),
    ("HugePages_Free", "hugepages_free"),
    ("HugePages_Rsvd", "hugepages_rsvd"),
    ("HugePages_Surp", "hugepages_surp"),
    ("Hugepagesize", "hugepagesize"),
    ("DirectMap4k", "direct_map_4k"),
    ("DirectMap4M", "direct_map_4M"),
    ("DirectMap2M", "direct_map_2M"),
    ("DirectMap1G", "direct_map_1G"),
    ("Hugetlb", "hugetlb"),
    ("Percpu", "per_cpu"),
    ("KReclaimable", "k_reclaimable"),
];

/// `/proc/meminfo` as Kata's items, in bytes (page counts stay counts). Fields this kernel
/// does not have are absent rather than zero.
pub fn meminfo(text: &str) -> Vec<(&'static str, f64)> {
    let values = colon_values(text, true);
    MEMINFO_ITEMS
        .iter()
        .filter_map(|(key, item)| {
            let value = values.iter().find(|(k, _)| k == key)?.1;
            Some((*item, value))
        })
        .collect()
}

const STATUS_ITEMS: [(&str, &str); 18] = [
    ("VmPeak", "vmpeak"),
    ("VmSize", "vmsize"),
    ("VmLck", "vmlck"),
    ("VmPin", "vmpin"),
    ("VmHWM", "vmhwm"),
    ("VmRSS", "vmrss"),
    ("RssAnon", "rssanon"),
    ("RssFile", "rssfile"),
    ("RssShmem", "rssshmem"),
    ("VmData", "vmdata"),
    ("VmStk", "vmstk"),
    ("VmExe", "vmexe"),
    ("VmLib", "vmlib"),
    ("VmPTE", "vmpte"),
    ("VmSwap", "vmswap"),
    ("HugetlbPages", "hugetlbpages"),
    ("voluntary_ctxt_switches", "voluntary_ctxt_switches"),
    ("nonvoluntary_ctxt_switches", "nonvoluntary_ctxt_switches"),
];

/// `/proc/self/status` memory and context-switch lines as Kata's items (sizes in kB, as the
/// file has them).
pub fn status(text: &str) -> Vec<(&'static str, f64)> {
    let values = colon_values(text, false);
    STATUS_ITEMS
        .iter()
        .filter_map(|(key, item)| Some((*item, values.iter().find(|(k, _)| k == key)?.1)))
        .collect()
}

const IO_ITEMS: [&str; 7] = [
    "rchar",
    "wchar",
    "syscr",
    "syscw",
    "read_bytes",
    "write_bytes",
    "cancelled_write_bytes",
];

/// `/proc/self/io`.
pub fn io(text: &str) -> Vec<(&'static str, f64)> {
    let values = colon_values(text, false);
    IO_ITEMS
        .iter()
        .filter_map(|item| Some((*item, values.iter().find(|(k, _)| k == item)?.1)))
        .collect()
}

/// What GetMetrics takes from `/proc/self/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SelfStat {
    /// Threads.
    pub threads: f64,
    /// User, system, children's user and children's system time, in ticks.
    pub times: [f64; 4],
    /// Virtual memory size, bytes.
    pub vsize: f64,
}

/// `pid (comm) state ...`: the command may hold spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn self_stat(text: &str) -> Option<SelfStat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state) of proc(5).
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    Some(SelfStat {
        threads: field(20)?,
        times: [field(14)?, field(15)?, field(16)?, field(17)?],
        vsize: field(23)?,
    })
}

const DISK_ITEMS: [&str; 17] = [
    "reads",
    "merged",
    "sectors_read",
    "time_reading",
    "writes",
    "writes_merged",
    "sectors_written",
    "time_writing",
    "in_progress",
    "time_in_progress",
    "weighted_time_in_progress",
    "discards",
    "discards_merged",
    "sectors_discarded",
    "time_discarding",
    "flushes",
    "time_flushing",
];

/// `/proc/diskstats` as `(disk, item, value)`.
pub fn diskstats(text: &str) -> Vec<(String, &'static str, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(name) = fields.get(2) else { continue };
        for (item, value) in DISK_ITEMS.iter().zip(&fields[3..]) {
            if let Ok(v) = value.parse() {
                out.push(((*name).to_owned(), *item, v));
            }
        }
    }
    out
}

const NETDEV_ITEMS: [&str; 16] = [
    "recv_bytes",
    "recv_packets",
    "recv_errs",
    "recv_drop",
    "recv_fifo",
    "recv_frame",
    "recv_compressed",
    "recv_multicast",
    "sent_bytes",
    "sent_packets",
    "sent_errs",
    "sent_drop",
    "sent_fifo",
    "sent_colls",
    "sent_carrier",
    "sent_compressed",
];

/// `/proc/net/dev` as `(interface, item, value)`; the two header lines have no `:`-separated
/// counters and are skipped.
pub fn netdev(text: &str) -> Vec<(String, &'static str, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let values: Vec<f64> = counters
            .split_whitespace()
            .map_while(|v| v.parse().ok())
            .collect();
        if values.len() != NETDEV_ITEMS.len() {
            continue;
        }
        for (item, value) in NETDEV_ITEMS.iter().zip(values) {
            out.push((name.trim().to_owned(), *item, value));
        }
    }
    out
}

#[cfg(test)]
#[path = "procfs_tests.rs"]
mod tests;
