//! StatsContainer's answer: the agent's statistics as `grpc.StatsContainerResponse`.

use agent_protos::agent as pb;
use protobuf::MessageField;

use crate::container::{ContainerStats, NetworkStats};
use crate::host::{BlkioEntry, CgroupStats, MemoryData};

/// Encodes container statistics.
pub(crate) fn stats_to_proto(stats: &ContainerStats) -> pb::StatsContainerResponse {
    pb::StatsContainerResponse {
        cgroup_stats: MessageField::some(cgroup_stats(&stats.cgroup)),
        network_stats: stats.network.iter().map(network).collect(),
        ..Default::default()
    }
}

fn cgroup_stats(s: &CgroupStats) -> pb::CgroupStats {
    let cpu = pb::CpuStats {
        cpu_usage: MessageField::some(pb::CpuUsage {
            total_usage: s.cpu.usage_total,
            percpu_usage: s.cpu.percpu_usage.clone(),
            usage_in_kernelmode: s.cpu.usage_kernel,
            usage_in_usermode: s.cpu.usage_user,
            ..Default::default()
        }),
        throttling_data: MessageField::some(pb::ThrottlingData {
            periods: s.cpu.periods,
            throttled_periods: s.cpu.throttled_periods,
            throttled_time: s.cpu.throttled_time,
            ..Default::default()
        }),
        ..Default::default()
    };
    let memory = pb::MemoryStats {
        cache: s.memory.cache,
        usage: MessageField::some(memory_data(&s.memory.usage)),
        swap_usage: MessageField::some(memory_data(&s.memory.swap_usage)),
        kernel_usage: MessageField::some(memory_data(&s.memory.kernel_usage)),
        use_hierarchy: s.memory.use_hierarchy,
        stats: s
            .memory
            .stats
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        ..Default::default()
    };
    let entries = |list: &[BlkioEntry]| -> Vec<pb::BlkioStatsEntry> {
        list.iter()
            .map(|e| pb::BlkioStatsEntry {
                major: e.major,
                minor: e.minor,
                op: e.op.clone(),
                value: e.value,
                ..Default::default()
            })
            .collect()
    };
    let b = &s.blkio;
    let blkio = pb::BlkioStats {
        io_service_bytes_recursive: entries(&b.service_bytes),
        io_serviced_recursive: entries(&b.serviced),
        io_queued_recursive: entries(&b.queued),
        io_service_time_recursive: entries(&b.service_time),
        io_wait_time_recursive: entries(&b.wait_time),
        io_merged_recursive: entries(&b.merged),
        io_time_recursive: entries(&b.time),
        sectors_recursive: entries(&b.sectors),
        ..Default::default()
    };
    pb::CgroupStats {
        cpu_stats: MessageField::some(cpu),
        memory_stats: MessageField::some(memory),
        pids_stats: MessageField::some(pb::PidsStats {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        blkio_stats: MessageField::some(blkio),
        hugetlb_stats: s
            .hugetlb
            .iter()
            .map(|(size, h)| {
                let stats = pb::HugetlbStats {
                    usage: h.usage,
                    max_usage: h.max_usage,
                    failcnt: h.failcnt,
                    ..Default::default()
                };
                (size.clone(), stats)
            })
            .collect(),
        ..Default::default()
    }
}

fn memory_data(d: &MemoryData) -> pb::MemoryData {
    pb::MemoryData {
        usage: d.usage,
        max_usage: d.max_usage,
        failcnt: d.failcnt,
        limit: d.limit,
        ..Default::default()
    }
}

fn network(n: &NetworkStats) -> pb::NetworkStats {
    pb::NetworkStats {
        name: n.name.clone(),
        rx_bytes: n.rx_bytes,
        rx_packets: n.rx_packets,
        rx_errors: n.rx_errors,
        rx_dropped: n.rx_dropped,
        tx_bytes: n.tx_bytes,
        tx_packets: n.tx_packets,
        tx_errors: n.tx_errors,
        tx_dropped: n.tx_dropped,
        ..Default::default()
    }
}
