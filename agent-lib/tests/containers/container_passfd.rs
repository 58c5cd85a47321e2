//! passfd stdio on fakes: the host connects its streams to `agent.passfd_listener_port`
//! first, names them by port in CreateContainer and ExecProcess, and gets the output (then its
//! end) on them, with no ReadStdout; missing streams are a clear error and leave nothing.

use std::time::Duration;

use agent_protos::agent as pb;
use agent_testing::pod::{Pod, code, container_request, ctx, message, process};
use kata_agent::config::Config;
use kata_agent::host::ServerAddr;
use kata_agent::process::{HANDSHAKE, TAKE_INTERVAL, TAKE_TRIES, UNCLAIMED_AFTER};
use protobuf::MessageField;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use ttrpc::Code;

const PASSFD_PORT: u32 = 1027;

/// A pod whose agent listens for passfd streams (on `server_addr`'s port 1027), sandbox made.
async fn passfd_pod(server_addr: ServerAddr) -> (Pod, ServerAddr) {
    let config = Config {
        server_addr,
        passfd_listener_port: Some(PASSFD_PORT),
        ..Config::default()
    };
    let addr = config.server_addr.port_addr(PASSFD_PORT);
    let pod = Pod::with_config(config).await;
    pod.agent.start();
    for _ in 0..100 {
        if pod.fake.transport.is_listening(&addr) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(pod.fake.transport.is_listening(&addr), "no passfd listener");
    pod.create_sandbox().await.unwrap();
    pod.fake.baseline();
    (pod, addr)
}

/// A host stream from `port`, as over vsock.
fn connect(pod: &Pod, addr: &ServerAddr, port: u32) -> DuplexStream {
    pod.fake.transport.connect_from(addr, port).unwrap()
}

/// Waits until the agent holds streams from `ports` (the accept loop is a task).
async fn accepted(pod: &Pod, ports: &[u32]) {
    for _ in 0..200 {
        let waiting = pod.agent.passfd_waiting();
        if ports.iter().all(|p| waiting.contains(p)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "streams {ports:?} not accepted: {:?}",
        pod.agent.passfd_waiting()
    );
}

async fn read_to_end(stream: &mut DuplexStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("end of stream")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn exec_request(cid: &str, eid: &str, args: &[&str], tty: bool) -> pb::ExecProcessRequest {
    pb::ExecProcessRequest {
        container_id: cid.into(),
        exec_id: eid.into(),
        process: MessageField::some(process(args, tty)),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_init_output_arrives_on_its_streams_then_their_end() {
    let (pod, addr) = passfd_pod(ServerAddr::default()).await;
    let mut out = connect(&pod, &addr, 5001);
    let mut err = connect(&pod, &addr, 5002);
    accepted(&pod, &[5001, 5002]).await;
    let mut req = container_request("c1", &["hello"], false);
    req.stdout_port = 5001;
    req.stderr_port = 5002;
    pod.create_req(req).await.unwrap();
    assert!(pod.agent.passfd_waiting().is_empty());
    pod.start("c1").await.unwrap();
    assert_eq!(read_to_end(&mut out).await, "hello\n");
    assert_eq!(read_to_end(&mut err).await, "oops\n");
    // The output went to the streams: ReadStdout has nothing, as the stream is the host's.
    assert_eq!(pod.read_stdout("c1", "").await.unwrap(), b"");
    assert_eq!(pod.wait("c1", "").await.unwrap(), 0);
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn an_exec_reads_its_stdin_stream_and_ends_with_it() {
    let (pod, addr) = passfd_pod(ServerAddr::default()).await;
    pod.create("c1", &["sleep"], false).await.unwrap();
    pod.start("c1").await.unwrap();
    let mut input = connect(&pod, &addr, 6000);
    let mut out = connect(&pod, &addr, 6001);
    accepted(&pod, &[6000, 6001]).await;
    let mut req = exec_request("c1", "cat", &["cat"], false);
    req.stdin_port = 6000;
    req.stdout_port = 6001;
    pod.client.agent.exec_process(ctx(), &req).await.unwrap();
    input.write_all(b"first\nsecond\n").await.unwrap();
    input.shutdown().await.unwrap();
    assert_eq!(read_to_end(&mut out).await, "first\nsecond\n");
    assert_eq!(pod.wait("c1", "cat").await.unwrap(), 0);
    // stderr was not spliced: ReadStderr still serves it (and reads its end).
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn a_tty_exec_sends_the_terminal_output() {
    let (pod, addr) = passfd_pod(ServerAddr::default()).await;
    pod.create("c1", &["sleep"], false).await.unwrap();
    pod.start("c1").await.unwrap();
    let mut out = connect(&pod, &addr, 7001);
    accepted(&pod, &[7001]).await;
    let mut req = exec_request("c1", "t", &["hello"], true);
    req.stdout_port = 7001;
    pod.client.agent.exec_process(ctx(), &req).await.unwrap();
    let text = read_to_end(&mut out).await;
    assert!(text.contains("hello"), "{text:?}");
    assert_eq!(pod.wait("c1", "t").await.unwrap(), 0);
    pod.remove("c1", 0).await.unwrap();
}

#[tokio::test]
async fn on_a_unix_address_the_port_comes_in_a_handshake_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerAddr::Unix(dir.path().join("agent.sock"));
    let (pod, addr) = passfd_pod(server).await;
    let mut out = pod.fake.transport.connect(&addr).unwrap();
    out.write_all(b"5001\n").await.unwrap();
    // A line too long, or not a number, is dropped.
    let mut bad = pod.fake.transport.connect(&addr).unwrap();
    bad.write_all(&[b'9'; HANDSHAKE]).await.unwrap();
    let mut junk = pod.fake.transport.connect(&addr).unwrap();
    junk.write_all(b"x1\n").await.unwrap();
    accepted(&pod, &[5001]).await;
    assert_eq!(read_to_end(&mut bad).await, "");
    assert_eq!(read_to_end(&mut junk).await, "");
    assert_eq!(pod.agent.passfd_waiting(), [5001]);

    let mut req = container_request("c1", &["hello"], false);
    req.stdout_port = 5001;
    pod.create_req(req).await.unwrap();
    pod.start("c1").await.unwrap();
    assert_eq!(read_to_end(&mut out).await, "hello\n");
    assert_eq!(pod.wait("c1", "").await.unwrap(), 0);
    pod.remove("c1", 0).await.unwrap();
}

#[tokio::test]
async fn a_stream_that_never_comes_fails_the_request_and_closes_the_others() {
    let (pod, addr) = passfd_pod(ServerAddr::default()).await;
    let mut input = connect(&pod, &addr, 8000);
    accepted(&pod, &[8000]).await;
    let mut req = container_request("c1", &["hello"], false);
    req.stdin_port = 8000;
    req.stdout_port = 8001;
    let started = std::time::Instant::now();
    let result = pod.create_req(req).await;
    assert!(started.elapsed() >= TAKE_INTERVAL * (TAKE_TRIES - 1));
    assert_eq!(code(result.clone()), Code::DEADLINE_EXCEEDED);
    let text = message(result);
    assert!(text.contains("host port 8001 (stdout_port)"), "{text}");
    // The stdin stream taken first is closed, nothing was launched or left.
    assert_eq!(read_to_end(&mut input).await, "");
    assert!(pod.fake.launcher.launches().is_empty());
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
    assert!(pod.agent.passfd_waiting().is_empty());
}

#[tokio::test]
async fn ports_without_a_passfd_listener_are_refused() {
    let pod = Pod::with_sandbox().await;
    let mut req = container_request("c1", &["hello"], false);
    req.stdout_port = 5001;
    let result = pod.create_req(req).await;
    assert_eq!(code(result.clone()), Code::INVALID_ARGUMENT);
    assert!(message(result).contains("stdout_port 5001 given, but agent.passfd_listener_port"));
    pod.run("c1", &["sleep"]).await;
    let mut exec = exec_request("c1", "e", &["hello"], false);
    exec.stderr_port = 9;
    let result = pod.client.agent.exec_process(ctx(), &exec).await;
    assert_eq!(code(result), Code::INVALID_ARGUMENT);
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test(start_paused = true)]
async fn a_stream_nobody_claims_is_closed_after_a_while() {
    let (pod, addr) = passfd_pod(ServerAddr::default()).await;
    let mut early = connect(&pod, &addr, 5001);
    accepted(&pod, &[5001]).await;
    tokio::time::sleep(UNCLAIMED_AFTER / 4).await;
    assert_eq!(
        pod.agent.passfd_waiting(),
        [5001],
        "still waiting for its request"
    );
    tokio::time::sleep(UNCLAIMED_AFTER * 2).await;
    assert!(pod.agent.passfd_waiting().is_empty());
    assert_eq!(read_to_end(&mut early).await, "");
}
