//! Scale on the fakes: 100 containers with 10 concurrent ExecProcess + WaitProcess each (1,000
//! in flight), against 1 container with 10. Criterion does not do percentiles, so this bench
//! measures them itself: each exec's latency over a few rounds, p50/p99 and the wall time per
//! exec (inverse throughput). Prints them and writes `<target>/criterion/scale/summary.json`
//! for the gate.

use std::time::{Duration, Instant};

use agent_benches::stats::{Latencies, criterion_dir};
use agent_benches::{FakePod, calls};
use serde::Serialize;

#[derive(Serialize)]
struct Summary {
    one_container: Latencies,
    hundred_containers: Latencies,
}

async fn measure(containers: usize, concurrent: usize, rounds: usize) -> Latencies {
    let mut pod = FakePod::boot().await.expect("fake pod");
    let ids: Vec<String> = (0..containers).map(|_| pod.id("c")).collect();
    for cid in &ids {
        pod.run(cid).await.expect("container");
    }
    let mut samples = Vec::with_capacity(containers * concurrent * rounds);
    let mut wall = Duration::ZERO;
    // Round 0 warms up and is not counted.
    for round in 0..=rounds {
        let began = Instant::now();
        let mut tasks = Vec::with_capacity(containers * concurrent);
        for cid in &ids {
            for _ in 0..concurrent {
                let client = pod.vm.client.clone();
                let (cid, eid) = (cid.clone(), pod.id("e"));
                tasks.push(tokio::spawn(async move {
                    let began = Instant::now();
                    let status = calls::exec_wait(&client, &cid, &eid, &["true"]).await;
                    (status, began.elapsed())
                }));
            }
        }
        for task in tasks {
            let (status, took) = task.await.expect("exec task");
            assert_eq!(status.expect("exec"), 0, "exit status of true");
            if round > 0 {
                samples.push(took);
            }
        }
        if round > 0 {
            wall += began.elapsed();
        }
    }
    for cid in &ids {
        pod.remove(cid).await.expect("remove");
    }
    pod.vm.shutdown().await;
    Latencies::of(&mut samples, wall)
}

fn show(what: &str, l: &Latencies) {
    println!(
        "scale/{what:<28} p50 {:>9.1} µs  p99 {:>9.1} µs  per exec {:>7.1} µs  ({} execs)",
        l.p50_us, l.p99_us, l.per_op_us, l.samples
    );
}

fn main() {
    // `cargo bench` passes `--bench` and any criterion options; this bench takes none.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let one = rt.block_on(measure(1, 10, 100));
    let hundred = rt.block_on(measure(100, 10, 3));
    show("1_container_10_concurrent", &one);
    show("100_containers_10_concurrent", &hundred);
    println!(
        "scale/100 vs 1 container: p50 x{:.1}, p99 x{:.1}, per exec x{:.2} (in flight x100)",
        hundred.p50_us / one.p50_us,
        hundred.p99_us / one.p99_us,
        hundred.per_op_us / one.per_op_us
    );
    let summary = Summary {
        one_container: one,
        hundred_containers: hundred,
    };
    let dir = criterion_dir().join("scale");
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        let json = serde_json::to_vec_pretty(&summary).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("summary.json"), json)
    });
    if let Err(e) = written {
        eprintln!("scale: cannot write {}: {e}", dir.display());
        std::process::exit(1);
    }
}
