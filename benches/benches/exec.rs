//! Exec latency: ExecProcess + WaitProcess of a process that exits at once, and
//! CreateContainer + StartContainer, (a) on the fakes inside the fake VMM (the agent's own
//! overhead; floor: a Check on the same connection) and (b) on real Linux as root with busybox
//! containers, on the host's cgroup hierarchy (`exec_real`) and on cgroup v2 (`exec_real_v2`,
//! exec only: the v2 exec path on a v1 host), each skipped, saying so on stderr, where it
//! cannot run; floor: this process forks straight into the container's pid namespace, joins
//! its other namespaces, executes `true` and waits ([`ExecFloor`]).
//!
//! Real containers are set up by this executable re-run as `init`, as the agent binary does.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use agent_benches::floor::ExecFloor;
use agent_benches::real::{self, RealPod};
use agent_benches::{FakePod, calls};
use criterion::Criterion;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn on_fakes(c: &mut Criterion) {
    let rt = runtime();
    let mut pod = rt.block_on(FakePod::boot()).expect("fake pod");
    rt.block_on(pod.run("c1")).expect("container c1");
    let mut group = c.benchmark_group("exec_fake");
    group.bench_function("floor_check", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    calls::check(&pod.vm.client).await.expect("Check");
                }
                began.elapsed()
            })
        })
    });
    group.bench_function("exec_wait_true", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    pod.exec_true("c1").await.expect("exec");
                }
                began.elapsed()
            })
        })
    });
    group.bench_function("create_start", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let cid = pod.id("c");
                    let began = Instant::now();
                    pod.run(&cid).await.expect("create+start");
                    total += began.elapsed();
                    pod.remove(&cid).await.expect("remove");
                }
                total
            })
        })
    });
    group.finish();
    rt.block_on(async {
        pod.remove("c1").await.expect("remove c1");
        pod.vm.shutdown().await;
    });
}

/// Which real-Linux group: the host's cgroups (with create+start) or cgroup v2.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hierarchy {
    Host,
    V2,
}

fn on_linux(c: &mut Criterion, hierarchy: Hierarchy) {
    let (name, unavailable) = match hierarchy {
        Hierarchy::Host => ("exec_real", real::unavailable()),
        Hierarchy::V2 => (
            "exec_real_v2",
            real::unavailable().or_else(agent_benches::cgroup2::unavailable),
        ),
    };
    if let Some(why) = unavailable {
        eprintln!("{name}: skipped: {why}");
        return;
    }
    let rt = runtime();
    let mut pod = match hierarchy {
        Hierarchy::Host => rt.block_on(RealPod::start()),
        Hierarchy::V2 => rt.block_on(RealPod::start_v2()),
    }
    .expect("real pod");
    let cid = pod.id("c");
    rt.block_on(pod.run(&cid)).expect("busybox container");
    let floor = pod
        .init_pid(&cid)
        .and_then(ExecFloor::new)
        .expect("the exec floor");
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.bench_function("floor_fork_join_exec_true", |b| {
        b.iter(|| floor.run().expect("floor exec"))
    });
    group.bench_function("exec_wait_true_busybox", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    pod.exec_true(&cid).await.expect("exec");
                }
                began.elapsed()
            })
        })
    });
    if hierarchy == Hierarchy::Host {
        group.bench_function("create_start_busybox", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let other = pod.id("c");
                        let began = Instant::now();
                        pod.run(&other).await.expect("create+start");
                        total += began.elapsed();
                        pod.remove(&other).await.expect("remove");
                    }
                    total
                })
            })
        });
    }
    group.finish();
    rt.block_on(async {
        pod.remove(&cid).await.expect("remove");
        pod.stop().await.expect("stop the real pod");
    });
}

fn main() -> ExitCode {
    // Container setup helpers are this executable run as `init`.
    if let Some(code) = kata_agent::linux::run_if_helper() {
        return code;
    }
    let mut c = Criterion::default().configure_from_args();
    // Real Linux first, while this process is small: every fork copies its page tables, and
    // the fake launcher keeps a record of each process it ran (about 1.6 KiB per exec, 100 MiB
    // after the fake group), which made the real exec and its floor 15-20x slower than in an
    // agent-sized process.
    on_linux(&mut c, Hierarchy::Host);
    on_linux(&mut c, Hierarchy::V2);
    on_fakes(&mut c);
    c.final_summary();
    ExitCode::SUCCESS
}
