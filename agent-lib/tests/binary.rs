//! The `kata-agent` binary, started outside a VM on a unix socket, driven over ttrpc.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_protos::health::CheckRequest;
use agent_protos::health::health_check_response::ServingStatus;
use agent_protos::health_ttrpc::HealthClient;
use agent_testing::agent_command;
use agent_testing::real_agent::RealAgent;
use ttrpc::r#async::Client;

const TIMEOUT_NS: i64 = 5_000_000_000;

/// An unprivileged real agent with `toml` as its configuration file, and the runtime its client
/// lives on (declared first, so dropped after the agent).
fn start(toml: &str) -> (tokio::runtime::Runtime, RealAgent) {
    let rt = runtime();
    let agent = rt.block_on(RealAgent::unprivileged("binary", toml));
    (rt, agent)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn check(addr: &str) -> ttrpc::Result<i32> {
    let client = HealthClient::new(Client::connect(addr).await?);
    let resp = client
        .check(
            ttrpc::context::with_timeout(TIMEOUT_NS),
            &CheckRequest::new(),
        )
        .await?;
    Ok(resp.status.value())
}

async fn raw_call(client: &Client, service: &str, method: &str) -> ttrpc::Error {
    let req = ttrpc::Request {
        service: service.into(),
        method: method.into(),
        timeout_nano: TIMEOUT_NS,
        ..Default::default()
    };
    client.request(req).await.expect_err("the call should fail")
}

fn status_code(err: &ttrpc::Error) -> ttrpc::Code {
    match err {
        ttrpc::Error::RpcStatus(status) => status.code(),
        other => panic!("expected an RPC status, got {other:?}"),
    }
}

#[test]
fn answers_check_and_version() {
    let (rt, agent) = start("");
    rt.block_on(async {
        assert_eq!(
            check(&agent.addr()).await.unwrap(),
            ServingStatus::SERVING as i32
        );
        let client = HealthClient::new(Client::connect(&agent.addr()).await.unwrap());
        let version = client
            .version(
                ttrpc::context::with_timeout(TIMEOUT_NS),
                &CheckRequest::new(),
            )
            .await
            .unwrap();
        assert_eq!(version.grpc_version, "0.0.1");
        assert_eq!(version.agent_version, env!("CARGO_PKG_VERSION"));
    });
}

#[test]
fn unknown_methods_and_unimplemented_rpcs_get_clear_errors() {
    let (rt, agent) = start("");
    rt.block_on(async {
        let client = Client::connect(&agent.addr()).await.unwrap();
        let err = raw_call(&client, "grpc.AgentService", "NoSuchMethod").await;
        assert_eq!(status_code(&err), ttrpc::Code::UNIMPLEMENTED, "{err:?}");
        let err = raw_call(&client, "grpc.NoSuchService", "Check").await;
        assert_eq!(status_code(&err), ttrpc::Code::INVALID_ARGUMENT, "{err:?}");
        // A real RPC this build does not serve (SetPolicy, as Kata without agent-policy)
        // answers NOT_FOUND with its name, never a hang or a dropped connection.
        let err = raw_call(&client, "grpc.AgentService", "SetPolicy").await;
        assert_eq!(status_code(&err), ttrpc::Code::NOT_FOUND, "{err:?}");
        assert!(
            err.to_string().contains("SetPolicy is not supported"),
            "{err}"
        );
        // The same connection still serves after errors.
        let health = HealthClient::new(client);
        let resp = health
            .check(
                ttrpc::context::with_timeout(TIMEOUT_NS),
                &CheckRequest::new(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status.value(), ServingStatus::SERVING as i32);
    });
}

#[test]
fn a_garbage_frame_closes_only_its_connection() {
    let (rt, agent) = start("");
    // A healthy connection, opened before the garbage arrives.
    let healthy = rt.block_on(Client::connect(&agent.addr())).unwrap();
    let healthy = HealthClient::new(healthy);

    let mut bad = StdUnixStream::connect(agent.socket()).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A header announcing a request far beyond the 4 MiB limit, then junk. The agent may
    // close the connection before the junk is written: a broken pipe is that close.
    let mut garbage = vec![0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 1, 1, 0];
    garbage.extend([0xde; 64]);
    if let Err(e) = bad.write_all(&garbage) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        );
    }
    let mut buf = [0u8; 256];
    let closed = loop {
        match bad.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue, // an error frame is fine; the close must follow
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(e) => panic!("the agent neither answered nor closed: {e}"),
        }
    };
    assert!(closed);

    rt.block_on(async {
        let resp = healthy
            .check(
                ttrpc::context::with_timeout(TIMEOUT_NS),
                &CheckRequest::new(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status.value(), ServingStatus::SERVING as i32);
        assert_eq!(
            check(&agent.addr()).await.unwrap(),
            ServingStatus::SERVING as i32
        );
    });
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let (rt, agent) = start("");
    let socket = agent.socket();
    assert_eq!(rt.block_on(check(&agent.addr())).unwrap(), 1);
    let (status, out) = rt.block_on(agent.terminate());
    assert!(status.success(), "exit status {status:?}; output:\n{out}");
    assert!(!socket_exists(&socket), "the socket file was left behind");
    // Every line is a Kata-shaped JSON log record.
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert!(lines.iter().any(|l| l["msg"] == "announce"), "{out}");
    for line in &lines {
        for key in [
            "msg",
            "level",
            "ts",
            "pid",
            "subsystem",
            "source",
            "name",
            "version",
        ] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
        assert_eq!(line["name"], "kata-agent");
        assert_eq!(line["source"], "agent");
    }
}

/// A start step deferred past listening fails: the cgroup hierarchy asked for is not the one
/// mounted. The agent logs why and exits with a failure, as when a start step failed before
/// it listened.
#[test]
fn a_failed_deferred_start_stops_the_agent_with_the_reason() {
    use kata_agent::host::CgroupVersion;
    let (asked, mounted) = match kata_agent::linux::detect_version() {
        CgroupVersion::V1 => (true, "V1"),
        CgroupVersion::V2 => (false, "V2"),
    };
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("unified_cgroup_hierarchy = {asked}\n");
    let mut child = agent_command(dir.path(), Some(&toml))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the agent kept running");
        std::thread::sleep(Duration::from_millis(10));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{out}\n{err}");
    let reason = format!("/sys/fs/cgroup holds {mounted}");
    let failed = out
        .lines()
        .find(|l| l.contains("deferred start failed"))
        .unwrap_or_else(|| panic!("no failure logged:\n{out}"));
    assert!(failed.contains(&reason), "{failed}");
    let listened = out.find("ttRPC server started").expect("it listened");
    assert!(
        listened < out.find("deferred start failed").unwrap(),
        "it listened first:\n{out}"
    );
    assert!(
        err.contains("kata-agent: the agent's start failed: cgroups: ") && err.contains(&reason),
        "{err}"
    );
}

#[test]
fn version_flag_prints_the_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_kata-agent"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("kata-agent {}", env!("CARGO_PKG_VERSION"))
    );
}

fn socket_exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Reads from `stream` until what was read contains `needle`; returns all of it.
fn read_until(stream: &mut StdUnixStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}; got {seen:?}"));
        assert!(
            n > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

const OPERATOR: &str = "debug_console_vport = 1026\nlog_vport = 1025\n";

#[test]
fn the_debug_console_gives_each_connection_a_shell_on_a_pty() {
    let (rt, agent) = start(OPERATOR);
    let mut console = agent.connect_port(1026);
    console
        .write_all(b"echo hello-$((6*7)); tty; stty size\n")
        .unwrap();
    // One read may return all of it: wait for the last line, then look at the whole.
    let out = read_until(&mut console, "24 80");
    assert!(out.contains("hello-42"), "the shell ran the command: {out}");
    assert!(out.contains("/dev/pts/"), "a pty: {out}");
    // A second connection gets a shell of its own, at the same time.
    let mut second = agent.connect_port(1026);
    second.write_all(b"echo other-$$\n").unwrap();
    read_until(&mut second, "other-");
    console.write_all(b"exit 3\n").unwrap();
    // The shell's exit ends the session: the agent closes the connection.
    let mut rest = Vec::new();
    console.read_to_end(&mut rest).unwrap();
    // The RPC server was never in the way.
    rt.block_on(async {
        assert_eq!(
            check(&agent.addr()).await.unwrap(),
            ServingStatus::SERVING as i32
        );
    });
}

#[test]
fn closing_a_console_connection_ends_and_reaps_its_shell() {
    let (_rt, agent) = start(OPERATOR);
    let mut console = agent.connect_port(1026);
    // The terminal echoes the command as typed (`"P""ID=$$;"`); only the output reads PID=.
    console.write_all(b"echo \"P\"\"ID=$$;\"\n").unwrap();
    let mut out = read_until(&mut console, "PID=");
    while !out.rsplit("PID=").next().unwrap().contains(';') {
        out += &read_until(&mut console, ";");
    }
    let pid: i32 = out
        .rsplit("PID=")
        .next()
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {out:?}"));
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(console);
    let deadline = Instant::now() + Duration::from_secs(5);
    // Gone, not a zombie: the agent reaped it.
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "shell {pid} still there");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_log_port_streams_the_log_from_its_first_line() {
    let (rt, agent) = start(OPERATOR);
    // Logged before anyone connects: kept for the host.
    rt.block_on(async {
        check(&agent.addr()).await.unwrap();
    });
    let mut log = agent.connect_port(1025);
    let text = read_until(&mut log, "debug console listening");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        lines[0]["msg"], "announce",
        "the first line comes first: {text}"
    );
    assert!(lines.iter().all(|l| l["name"] == "kata-agent"));
    // Live lines follow: a console session's start is logged.
    let _console = agent.connect_port(1026);
    read_until(&mut log, "debug console session started");
    let (_, stdout) = rt.block_on(agent.terminate());
    assert!(
        !stdout.contains("announce"),
        "with a log port nothing goes to stdout: {stdout}"
    );
}

#[test]
fn a_reserved_console_port_is_refused_with_a_warning_and_the_agent_serves() {
    let (rt, agent) = start("debug_console_vport = 1025\n");
    rt.block_on(async {
        assert_eq!(
            check(&agent.addr()).await.unwrap(),
            ServingStatus::SERVING as i32
        );
    });
    assert!(!agent.port_socket(1025).exists());
    let (_, out) = rt.block_on(agent.terminate());
    assert!(
        out.contains("agent.debug_console_vport=1025 is reserved"),
        "{out}"
    );
}

/// Reads one span frame (8-byte big-endian length, then JSON) from the collector side:
/// the JSON text (a 128-bit trace id does not fit a JSON value's number) and its value.
fn read_span(conn: &mut StdUnixStream) -> (String, serde_json::Value) {
    let mut len = [0u8; 8];
    conn.read_exact(&mut len).unwrap();
    let mut payload = vec![0u8; u64::from_be_bytes(len) as usize];
    conn.read_exact(&mut payload).unwrap();
    let text = String::from_utf8(payload).unwrap();
    let value = serde_json::from_str(&text).unwrap();
    (text, value)
}

#[test]
fn rpc_spans_continue_the_hosts_trace_and_reach_the_collector() {
    let (rt, agent) = start("tracing = true\n");
    // The host's collector, where an agent on `<socket>` sends spans: `<socket>_10240`.
    let collector = std::os::unix::net::UnixListener::bind(agent.port_socket(10240)).unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    rt.block_on(async {
        let client = HealthClient::new(Client::connect(&agent.addr()).await.unwrap());
        let mut ctx = ttrpc::context::with_timeout(TIMEOUT_NS);
        ctx.add("traceparent".into(), format!("00-{trace}-{parent}-01"));
        client.check(ctx, &CheckRequest::new()).await.unwrap();
    });
    let (mut conn, _) = collector.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (text, span) = read_span(&mut conn);
    assert_eq!(span["name"], "check", "{text}");
    let trace_id = u128::from_str_radix(trace, 16).unwrap();
    assert!(
        text.contains(&format!("\"trace_id\":{trace_id},")),
        "{text}"
    );
    assert_eq!(
        span["parent_span_id"].as_u64(),
        Some(u64::from_str_radix(parent, 16).unwrap())
    );
    assert_eq!(span["span_kind"], "Internal");
    assert_eq!(
        span["attributes"]["map"]["method"]["String"],
        "Health/Check"
    );
    assert_eq!(span["status_code"], "Unset");
}

#[test]
fn without_a_collector_spans_are_dropped_with_one_warning() {
    let (rt, agent) = start("tracing = true\n");
    rt.block_on(async {
        for _ in 0..5 {
            assert_eq!(
                check(&agent.addr()).await.unwrap(),
                ServingStatus::SERVING as i32
            );
        }
    });
    let (_, out) = rt.block_on(agent.terminate());
    assert_eq!(
        out.matches("no trace collector").count(),
        1,
        "one warning: {out}"
    );
}

#[test]
fn debug_mode_logs_each_rpc_with_its_duration_and_outcome() {
    let (rt, agent) = start("");
    rt.block_on(async {
        check(&agent.addr()).await.unwrap();
        let client = Client::connect(&agent.addr()).await.unwrap();
        let err = raw_call(&client, "grpc.AgentService", "StatsContainer").await;
        assert_eq!(status_code(&err), ttrpc::Code::NOT_FOUND);
    });
    let (_, out) = rt.block_on(agent.terminate());
    let rpcs: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["msg"] == "rpc")
        .collect();
    let check = rpcs
        .iter()
        .find(|l| l["method"] == "Health/Check")
        .unwrap_or_else(|| panic!("no Check line: {out}"));
    assert_eq!(check["level"], "DEBG");
    assert_eq!(check["outcome"], "OK");
    assert!(check["duration_us"].as_u64().is_some());
    let stats = rpcs
        .iter()
        .find(|l| l["method"] == "AgentService/StatsContainer")
        .unwrap_or_else(|| panic!("no StatsContainer line: {out}"));
    assert_eq!(stats["outcome"], "NOT_FOUND");
}

#[test]
fn garbage_or_a_hang_up_on_the_operator_ports_leaves_the_agent_serving() {
    let (rt, agent) = start(OPERATOR);
    // The log port is write-only: what the host sends is ignored.
    let mut log = agent.connect_port(1025);
    log.write_all(&[0xff; 4096]).unwrap();
    drop(log);
    // A console fed binary junk and dropped mid-line.
    let mut console = agent.connect_port(1026);
    console
        .write_all(b"\x00\x1b[999;999H\xff\xfe echo half a li")
        .unwrap();
    drop(console);
    rt.block_on(async {
        assert_eq!(
            check(&agent.addr()).await.unwrap(),
            ServingStatus::SERVING as i32
        );
    });
    // Both ports still take new connections.
    let mut console = agent.connect_port(1026);
    console.write_all(b"echo still-$((40+2))\n").unwrap();
    read_until(&mut console, "still-42");
    let mut log = agent.connect_port(1025);
    read_until(&mut log, "debug console session");
}
