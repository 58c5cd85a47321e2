//! RPC round trip: `grpc.Health/Check` over a unix socket, against the agent and against a
//! bare ttrpc server (the floor). The gate compares their ratio, which is stable on noisy
//! machines where absolute times are not.

use agent_benches::{EchoServer, SocketAgent};
use agent_harness::AgentClient;
use agent_protos::health::CheckRequest;
use criterion::{Criterion, criterion_group, criterion_main};
use kata_agent::config::Config;

fn round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = || ttrpc::context::with_timeout(5_000_000_000);
    let req = CheckRequest::new();

    let mut group = c.benchmark_group("rpc_round_trip");

    let echo_path = dir.path().join("echo.sock");
    let echo = rt
        .block_on(EchoServer::start(&echo_path))
        .expect("echo server");
    let client = rt
        .block_on(AgentClient::connect(&format!(
            "unix://{}",
            echo_path.display()
        )))
        .expect("connect echo");
    group.bench_function("floor_ttrpc_echo", |b| {
        b.iter(|| {
            rt.block_on(client.health.check(ctx(), &req))
                .expect("check")
        })
    });

    let agent_path = dir.path().join("agent.sock");
    let agent = rt
        .block_on(SocketAgent::start(&agent_path, Config::default()))
        .expect("agent");
    let client = rt
        .block_on(AgentClient::connect(&agent.addr()))
        .expect("connect agent");
    group.bench_function("agent_health_check", |b| {
        b.iter(|| {
            rt.block_on(client.health.check(ctx(), &req))
                .expect("check")
        })
    });
    group.finish();

    rt.block_on(async {
        agent.stop().await.expect("stop agent");
        echo.stop().await;
    });
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
