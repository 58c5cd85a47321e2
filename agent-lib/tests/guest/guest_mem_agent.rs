//! The mem-agent on the fakes and virtual time: disabled by default (Kata's INTERNAL answer),
//! PSI-gated memcg reclaim and compaction when enabled, settings swapped by the RPCs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_fakes::FakeHost;
use agent_protos::agent as pb;
use agent_testing::pod::{Pod, code, ctx, message};
use kata_agent::config::{CompactConfig, Config, MemAgentConfig, MemcgConfig};
use kata_agent::guest::mem_agent::{COMPACT_MEMORY, CompactUpdate, MemAgent, MemcgUpdate};
use ttrpc::Code;

const PSI: &str = "/sys/fs/cgroup/memory.pressure";

#[tokio::test]
async fn the_rpcs_answer_as_kata_when_the_mem_agent_is_disabled() {
    let pod = Pod::new().await;
    let memcg = pod
        .client
        .agent
        .mem_agent_memcg_set(ctx(), &pb::MemAgentMemcgConfig::new())
        .await;
    assert_eq!(message(memcg.clone()), "mem-agent is disabled");
    assert_eq!(code(memcg), Code::INTERNAL);
    let compact = pod
        .client
        .agent
        .mem_agent_compact_set(ctx(), &pb::MemAgentCompactConfig::new())
        .await;
    assert_eq!(message(compact.clone()), "mem-agent is disabled");
    assert_eq!(code(compact), Code::INTERNAL);
    pod.shutdown().await;
}

#[tokio::test]
async fn the_rpcs_validate_then_swap_the_settings() {
    let config = Config {
        mem_agent: Some(MemAgentConfig::default()),
        ..Config::default()
    };
    let pod = Pod::with_config(config).await;
    let agent = &pod.client.agent;
    let req = pb::MemAgentMemcgConfig {
        swap: Some(true),
        swappiness_max: Some(60),
        period_secs: Some(30),
        ..Default::default()
    };
    agent.mem_agent_memcg_set(ctx(), &req).await.unwrap();
    let settings = pod.agent.guest().mem_agent().unwrap().settings();
    assert!(settings.memcg.swap);
    assert_eq!(
        (settings.memcg.swappiness_max, settings.memcg.period_secs),
        (60, 30)
    );

    let bad = pb::MemAgentMemcgConfig {
        swap: Some(false),
        swappiness_max: Some(250),
        ..Default::default()
    };
    let result = agent.mem_agent_memcg_set(ctx(), &bad).await;
    assert!(message(result.clone()).contains("swappiness_max"));
    assert_eq!(code(result), Code::INVALID_ARGUMENT);
    let bad = pb::MemAgentCompactConfig {
        disabled: Some(true),
        compact_order: Some(12),
        ..Default::default()
    };
    let result = agent.mem_agent_compact_set(ctx(), &bad).await;
    assert!(message(result.clone()).contains("compact_order"));
    assert_eq!(code(result), Code::INVALID_ARGUMENT);
    assert_eq!(
        pod.agent.guest().mem_agent().unwrap().settings(),
        settings,
        "a refused update changes nothing"
    );
    let ok = pb::MemAgentCompactConfig {
        compact_threshold: Some(64),
        ..Default::default()
    };
    agent.mem_agent_compact_set(ctx(), &ok).await.unwrap();
    let settings = pod.agent.guest().mem_agent().unwrap().settings();
    assert_eq!(settings.compact.compact_threshold, 64);
    pod.shutdown().await;
}

fn psi(total_us: u64) -> String {
    format!(
        "some avg10=0.00 avg60=0.00 avg300=0.00 total={total_us}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
}

/// A guest with one container memcg, some free memory and movable pages, and no pressure.
fn guest() -> FakeHost {
    let fake = FakeHost::new();
    let sysfs = &fake.sysfs;
    sysfs.write_file(PSI, psi(0)).unwrap();
    sysfs
        .write_file(
            "/sys/fs/cgroup/c1/memory.stat",
            "inactive_anon 8192\ninactive_file 4096\n",
        )
        .unwrap();
    sysfs
        .write_file("/sys/fs/cgroup/c1/memory.reclaim", "")
        .unwrap();
    sysfs
        .write_file(
            "/proc/meminfo",
            "MemTotal: 1048576 kB\nMemFree: 524288 kB\n",
        )
        .unwrap();
    sysfs
        .write_file(
            "/proc/pagetypeinfo",
            "Node 0, zone Normal, type Movable 4096 2048 1024 0 0 0 0 0 0 0 0\n",
        )
        .unwrap();
    sysfs.write_file(COMPACT_MEMORY, "").unwrap();
    fake
}

fn writes_to(fake: &FakeHost, path: &str) -> Vec<String> {
    fake.sysfs
        .writes()
        .into_iter()
        .filter(|(p, _)| p == Path::new(path))
        .map(|(_, data)| String::from_utf8_lossy(&data).into_owned())
        .collect()
}

fn settings() -> MemAgentConfig {
    MemAgentConfig {
        memcg: MemcgConfig {
            period_secs: 60,
            ..MemcgConfig::default()
        },
        compact: CompactConfig {
            period_secs: 100,
            ..CompactConfig::default()
        },
    }
}

/// Lets the loops run until `secs` more virtual seconds passed.
async fn advance(secs: u64) {
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn reclaim_and_compaction_run_each_period_unless_memory_is_under_pressure() {
    let fake = guest();
    let mem_agent = Arc::new(MemAgent::new(settings()));
    let task = {
        let (m, host) = (mem_agent.clone(), fake.host());
        tokio::spawn(async move { m.run(host).await })
    };
    advance(61).await;
    assert_eq!(
        writes_to(&fake, "/sys/fs/cgroup/c1/memory.reclaim"),
        ["4096"]
    );
    assert!(
        writes_to(&fake, COMPACT_MEMORY).is_empty(),
        "not its period yet"
    );
    advance(40).await;
    assert_eq!(
        writes_to(&fake, COMPACT_MEMORY),
        ["1"],
        "movable pages above the threshold"
    );

    // 30 s of stalls in the next minute: 50% pressure, more than the 1% limit.
    fake.sysfs.write_file(PSI, psi(30_000_000)).unwrap();
    advance(20).await;
    assert_eq!(
        writes_to(&fake, "/sys/fs/cgroup/c1/memory.reclaim").len(),
        1,
        "skipped"
    );

    // Calm again, with swap: inactive anon counts by swappiness.
    mem_agent
        .set_memcg(&MemcgUpdate {
            swap: Some(true),
            swappiness_max: Some(100),
            ..MemcgUpdate::default()
        })
        .unwrap();
    advance(61).await;
    assert_eq!(
        writes_to(&fake, "/sys/fs/cgroup/c1/memory.reclaim"),
        ["4096", "8192"]
    );
    // Nothing changed in free memory since the compaction: no second one.
    mem_agent
        .set_compact(&CompactUpdate {
            period_secs: Some(10),
            ..CompactUpdate::default()
        })
        .unwrap();
    advance(35).await;
    assert_eq!(writes_to(&fake, COMPACT_MEMORY).len(), 1);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn disabled_loops_do_nothing_and_forced_compaction_counts_rounds() {
    let fake = guest();
    let mut config = settings();
    config.memcg.disabled = true;
    config.compact.compact_force_times = 2;
    config.compact.compact_threshold = 1 << 30;
    let mem_agent = Arc::new(MemAgent::new(config));
    let task = {
        let (m, host) = (mem_agent.clone(), fake.host());
        tokio::spawn(async move { m.run(host).await })
    };
    advance(250).await;
    assert!(writes_to(&fake, "/sys/fs/cgroup/c1/memory.reclaim").is_empty());
    assert!(
        writes_to(&fake, COMPACT_MEMORY).is_empty(),
        "two rounds skipped"
    );
    advance(60).await;
    assert_eq!(
        writes_to(&fake, COMPACT_MEMORY),
        ["1"],
        "forced on the third"
    );
    task.abort();
}
