//! The listener-first start on the fakes: Health answers while the deferred start work (the
//! cgroup hierarchy and the loopback link) runs; an AgentService call that arrives meanwhile
//! waits for it and then gets the answer it would get later; a failed deferred start fails
//! such calls with the reason and stops the agent.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use agent_fakes::{FakeHost, Op};
use agent_harness::AgentClient;
use agent_protos::health::CheckRequest;
use agent_protos::health::health_check_response::ServingStatus;
use agent_protos::types::Interface;
use agent_testing::{code, ctx, message};
use kata_agent::Agent;
use kata_agent::config::Config;
use kata_agent::init::{InitError, bring_up_loopback, mount_cgroups};
use kata_agent::ready::Readiness;
use kata_agent::rpc::RpcServer;
use kata_agent::startup::serve_first;
use nix::errno::Errno;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use ttrpc::Code;

/// An agent served listener-first on the fakes, its deferred start held until `release`.
struct Starting {
    fake: FakeHost,
    agent: Arc<Agent>,
    client: AgentClient,
    server: RpcServer,
    release: oneshot::Sender<()>,
}

/// The binary's deferred work in init mode, on the fakes: the v2 hierarchy, then `lo` up.
fn deferred_work(
    fake: &FakeHost,
    released: oneshot::Receiver<()>,
) -> impl Future<Output = Result<(), InitError>> + Send + 'static {
    let (mounter, sysfs, netlink) = (
        fake.mounter.clone(),
        fake.sysfs.clone(),
        fake.netlink.clone(),
    );
    async move {
        let _ = released.await;
        mount_cgroups(&*mounter, &*sysfs, &*sysfs, true).await?;
        bring_up_loopback(&*netlink).await
    }
}

async fn starting() -> Starting {
    let fake = FakeHost::new();
    let config = Config::default();
    let addr = config.server_addr.clone();
    let agent = Arc::new(Agent::with_readiness(
        config,
        fake.host(),
        Readiness::pending(),
    ));
    let (release, released) = oneshot::channel();
    let work = deferred_work(&fake, released);
    let server = serve_first(agent.clone(), &addr, work)
        .await
        .expect("serve");
    let client = AgentClient::from_stream(fake.transport.connect(&addr).expect("connect"));
    Starting {
        fake,
        agent,
        client,
        server,
        release,
    }
}

/// Health answers: the server serves while the deferred work has not ended.
async fn assert_serving(client: &AgentClient) {
    for _ in 0..2 {
        let resp = client
            .health
            .check(ctx(), &CheckRequest::new())
            .await
            .expect("Check");
        assert_eq!(resp.status.value(), ServingStatus::SERVING as i32);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Sends ListInterfaces before the deferred work ran, and checks that Health answers while
/// that call still waits.
async fn list_interfaces_early(
    client: &Arc<AgentClient>,
) -> JoinHandle<ttrpc::Result<Vec<Interface>>> {
    let early = tokio::spawn({
        let client = client.clone();
        async move { client.list_interfaces().await }
    });
    assert_serving(client).await;
    assert!(
        !early.is_finished(),
        "ListInterfaces ran before the deferred start"
    );
    early
}

#[tokio::test]
async fn an_early_call_waits_for_the_deferred_start_and_gets_the_later_answer() {
    let s = starting().await;
    let client = Arc::new(s.client);
    let early = list_interfaces_early(&client).await;
    assert_eq!(s.agent.readiness().outcome(), None);
    assert!(!s.fake.netlink.link(1).unwrap().is_up(), "nothing done yet");

    s.release.send(()).expect("the work waits");
    let early = early.await.expect("call task").expect("ListInterfaces");
    assert_eq!(s.agent.readiness().outcome(), Some(Ok(())));
    let lo = early.iter().find(|i| i.name == "lo").expect("lo listed");
    assert_ne!(
        lo.raw_flags & libc::IFF_UP as u32,
        0,
        "lo is up in the early answer"
    );
    let later = client.list_interfaces().await.expect("ListInterfaces");
    assert_eq!(
        early, later,
        "the early call got the answer a later one gets"
    );
    let mounts = s.fake.mounter.table();
    assert!(mounts.iter().any(|m| m.fstype == "cgroup2"), "{mounts:?}");
    let _ = s.server.shutdown().await;
}

#[tokio::test]
async fn a_failed_deferred_start_fails_waiting_calls_clearly_and_stops_the_agent() {
    let s = starting().await;
    s.fake.faults.fail_nth(Op::Mount, 1, Errno::EPERM);
    let client = Arc::new(s.client);
    let early = list_interfaces_early(&client).await;

    s.release.send(()).expect("the work waits");
    let early = early.await.expect("call task");
    let want = "the agent's start failed: cannot mount cgroup2 on /sys/fs/cgroup";
    assert_eq!(code(&early), Code::INTERNAL);
    assert_eq!(message(&early), want);
    let later = client.list_interfaces().await;
    assert_eq!(message(&later), want, "later calls are told the same");
    tokio::time::timeout(Duration::from_secs(10), s.agent.stopped())
        .await
        .expect("a stop was requested, as after DestroySandbox");
    let outcome = s.agent.readiness().outcome().expect("settled");
    assert_eq!(outcome.expect_err("failed").to_string(), want);
    assert!(
        !s.fake.netlink.link(1).unwrap().is_up(),
        "the work stopped at the failed step"
    );
    let _ = s.server.shutdown().await;
}
