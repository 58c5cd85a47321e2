//! GetMetrics: the agent process and the guest in Prometheus text, with Kata's metric names.
//!
//! One [`Registry`] per agent, built on the first scrape (as Kata registers lazily); no global
//! registry. Every /proc file is read through the [`Sysfs`] seam, filesystems come from the
//! [`Mounter`]'s table and [`System::statfs`], so a fake guest is scraped like a real one. A
//! file that cannot be read or parsed leaves its metrics out of that scrape (Kata logs and
//! goes on); labelled series are rebuilt at each scrape, so a vanished disk, interface or
//! filesystem leaves no stale series.

pub mod procfs;

use std::path::Path;
use std::sync::Mutex;

use prometheus::{Encoder, Gauge, GaugeVec, IntCounter, Opts, Registry, TextEncoder};

use super::error::GuestError;
use crate::host::{Host, Mounter, Sysfs, System};

/// Filesystems whose usage is reported (Kata's list).
const REAL_FS_TYPES: [&str; 5] = ["ext4", "xfs", "btrfs", "vfat", "overlay"];

/// The metrics of one agent.
#[derive(Debug, Default)]
pub struct Metrics {
    set: Mutex<Option<MetricSet>>,
}

impl Metrics {
    /// No registry yet: it is built on the first scrape.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Counts a scrape, refreshes every metric from `host` and returns the text exposition.
    /// Concurrent scrapes take turns.
    pub fn scrape(&self, host: &Host) -> Result<String, GuestError> {
        let mut guard = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let set = match guard.as_mut() {
            Some(set) => set,
            None => guard.insert(MetricSet::new().map_err(prom)?),
        };
        set.scrapes.inc();
        set.update_agent(&*host.sysfs);
        set.update_guest(&*host.sysfs);
        set.update_filesystems(&*host.mounter, &*host.system);
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&set.registry.gather(), &mut text)
            .map_err(prom)?;
        String::from_utf8(text).map_err(|e| GuestError::Metrics(e.to_string()))
    }
}

fn prom(e: prometheus::Error) -> GuestError {
    GuestError::Metrics(e.to_string())
}

/// The registry and its metrics.
#[derive(Debug)]
struct MetricSet {
    registry: Registry,
    scrapes: IntCounter,
    threads: Gauge,
    total_time: Gauge,
    total_vm: Gauge,
    total_rss: Gauge,
    proc_status: GaugeVec,
    io_stat: GaugeVec,
    proc_stat: GaugeVec,
    load: GaugeVec,
    tasks: GaugeVec,
    cpu_time: GaugeVec,
    vm_stat: GaugeVec,
    netdev: GaugeVec,
    diskstat: GaugeVec,
    meminfo: GaugeVec,
    fs_bytes: GaugeVec,
    fs_inodes: GaugeVec,
}

impl MetricSet {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| -> prometheus::Result<Gauge> {
            let g = Gauge::with_opts(Opts::new(format!("kata_agent_{name}"), help))?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let vec = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<GaugeVec> {
            let g = GaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let scrapes = IntCounter::new("kata_agent_scrape_count", "Metrics scrape count")?;
        registry.register(Box::new(scrapes.clone()))?;
        let item = &["item"];
        Ok(MetricSet {
            scrapes,
            threads: gauge("threads", "Agent process threads")?,
            total_time: gauge("total_time", "Agent process total time")?,
            total_vm: gauge("total_vm", "Agent process total VM size")?,
            total_rss: gauge("total_rss", "Agent process total RSS size")?,
            proc_status: vec("kata_agent_proc_status", "Agent process status.", item)?,
            io_stat: vec("kata_agent_io_stat", "Agent process IO statistics.", item)?,
            proc_stat: vec("kata_agent_proc_stat", "Agent process statistics.", item)?,
            load: vec("kata_guest_load", "Guest system load.", item)?,
            tasks: vec("kata_guest_tasks", "Guest system tasks.", item)?,
            cpu_time: vec(
                "kata_guest_cpu_time",
                "Guest CPU statistics.",
                &["cpu", "item"],
            )?,
            vm_stat: vec(
                "kata_guest_vm_stat",
                "Guest virtual memory statistics.",
                item,
            )?,
            netdev: vec(
                "kata_guest_netdev_stat",
                "Guest net devices statistics.",
                &["interface", "item"],
            )?,
            diskstat: vec(
                "kata_guest_diskstat",
                "Disks statistics in system.",
                &["disk", "item"],
            )?,
            meminfo: vec(
                "kata_guest_meminfo",
                "Statistics about memory usage in the system.",
                item,
            )?,
            fs_bytes: vec(
                "kata_guest_filesystem_bytes",
                "Guest filesystem space usage in bytes.",
                &["mount", "device", "item"],
            )?,
            fs_inodes: vec(
                "kata_guest_filesystem_inodes",
                "Guest filesystem inode usage.",
                &["mount", "device", "item"],
            )?,
            registry,
        })
    }

    /// The agent process, from /proc/self.
    fn update_agent(&self, sysfs: &dyn Sysfs) {
        if let Some(stat) = read(sysfs, "/proc/self/stat").and_then(|t| procfs::self_stat(&t)) {
            self.threads.set(stat.threads);
            self.total_time
                .set((stat.times[0] + stat.times[1]) / procfs::USER_HZ);
            self.total_vm.set(stat.vsize);
            set_items(
                &self.proc_stat,
                ["utime", "stime", "cutime", "cstime"]
                    .into_iter()
                    .zip(stat.times),
            );
        }
        if let Some(text) = read(sysfs, "/proc/self/status") {
            let items = procfs::status(&text);
            if let Some((_, kb)) = items.iter().find(|(item, _)| *item == "vmrss") {
                self.total_rss.set(kb * 1024.0);
            }
            set_items(&self.proc_status, items);
        }
        if let Some(text) = read(sysfs, "/proc/self/io") {
            set_items(&self.io_stat, procfs::io(&text));
        }
    }

    /// The guest: load, CPUs, memory, disks, network devices.
    fn update_guest(&self, sysfs: &dyn Sysfs) {
        if let Some(load) = read(sysfs, "/proc/loadavg").and_then(|t| procfs::loadavg(&t)) {
            let [one, five, fifteen] = load.averages;
            set_items(
                &self.load,
                [("load1", one), ("load5", five), ("load15", fifteen)],
            );
            set_items(&self.tasks, [("cur", load.running), ("max", load.total)]);
        }
        if let Some(text) = read(sysfs, "/proc/stat") {
            self.cpu_time.reset();
            for (cpu, item, ms) in procfs::cpu_times(&text) {
                self.cpu_time
                    .with_label_values(&[cpu.as_str(), item])
                    .set(ms);
            }
        }
        if let Some(text) = read(sysfs, "/proc/vmstat") {
            self.vm_stat.reset();
            for (key, value) in procfs::key_values(&text) {
                self.vm_stat.with_label_values(&[key.as_str()]).set(value);
            }
        }
        if let Some(text) = read(sysfs, "/proc/meminfo") {
            set_items(&self.meminfo, procfs::meminfo(&text));
        }
        if let Some(text) = read(sysfs, "/proc/diskstats") {
            set_pairs(&self.diskstat, procfs::diskstats(&text));
        }
        if let Some(text) = read(sysfs, "/proc/net/dev") {
            set_pairs(&self.netdev, procfs::netdev(&text));
        }
    }

    /// Space and inodes of each writable real filesystem, once per source.
    fn update_filesystems(&self, mounter: &dyn Mounter, system: &dyn System) {
        self.fs_bytes.reset();
        self.fs_inodes.reset();
        let mounts = match mounter.mounts() {
            Ok(mounts) => mounts,
            Err(e) => {
                tracing::debug!(error = %e, "metrics: no mount table");
                return;
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        for m in mounts {
            let read_only = m.options.split(',').any(|o| o == "ro");
            if !REAL_FS_TYPES.contains(&m.fstype.as_str()) || read_only {
                continue;
            }
            if !seen.insert(m.source.clone()) {
                continue;
            }
            let Ok(st) = system.statfs(&m.target) else {
                continue;
            };
            let device = m.source.rsplit('/').next().unwrap_or(&m.source);
            let mount = m.target.to_string_lossy();
            let total = st.blocks.saturating_mul(st.block_size);
            let free = st.blocks_free.saturating_mul(st.block_size);
            let labels = |item| [mount.as_ref(), device, item];
            for (item, value) in [
                ("total", total),
                ("used", total.saturating_sub(free)),
                ("available", free),
            ] {
                self.fs_bytes
                    .with_label_values(&labels(item))
                    .set(value as f64);
            }
            let used = st.files.saturating_sub(st.files_free);
            for (item, value) in [
                ("total", st.files),
                ("used", used),
                ("available", st.files_free),
            ] {
                self.fs_inodes
                    .with_label_values(&labels(item))
                    .set(value as f64);
            }
        }
    }
}

fn read(sysfs: &dyn Sysfs, path: &str) -> Option<String> {
    match sysfs.read(Path::new(path)) {
        Ok(data) => Some(String::from_utf8_lossy(&data).into_owned()),
        Err(e) => {
            tracing::debug!(path, error = %e, "metrics: cannot read");
            None
        }
    }
}

fn set_items<'a>(vec: &GaugeVec, items: impl IntoIterator<Item = (&'a str, f64)>) {
    vec.reset();
    for (item, value) in items {
        vec.with_label_values(&[item]).set(value);
    }
}

fn set_pairs(vec: &GaugeVec, rows: Vec<(String, &'static str, f64)>) {
    vec.reset();
    for (name, item, value) in rows {
        vec.with_label_values(&[name.as_str(), item]).set(value);
    }
}
