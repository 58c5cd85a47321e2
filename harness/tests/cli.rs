//! `harness call` against an agent served on a real unix socket (the agent itself on fakes).

use std::process::Command;
use std::sync::Arc;

use agent_fakes::FakeHost;
use kata_agent::Agent;
use kata_agent::config::Config;
use kata_agent::host::ServerAddr;
use kata_agent::linux::LinuxTransport;

/// Runs `harness call` with `args` against a fresh agent; returns (success, stdout, stderr).
fn call(args: &[&str]) -> (bool, String, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let addr = ServerAddr::Unix(sock.clone());
    let fake = FakeHost::new();
    let mut host = fake.host();
    host.transport = Arc::new(LinuxTransport::new());
    let server = rt.block_on(async {
        let agent = Arc::new(Agent::new(Config::default(), host));
        kata_agent::rpc::serve(agent, &addr).await.unwrap()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "call",
            "--addr",
            &format!("unix://{}", sock.display()),
            "--timeout",
            "10s",
        ])
        .args(args)
        .output()
        .unwrap();
    rt.block_on(server.shutdown()).unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_prints_serving() {
    let (ok, out, err) = call(&["Check"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["status"], "SERVING");
}

#[test]
fn version_prints_both_versions() {
    let (ok, out, err) = call(&["Version", r#"{"service": "x"}"#]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["grpc_version"], "0.0.1");
    assert!(!json["agent_version"].as_str().unwrap().is_empty());
}

#[test]
fn bad_json_and_unknown_methods_fail_clearly() {
    let (ok, _, err) = call(&["Check", r#"{"no_such_field": 1}"#]);
    assert!(!ok);
    assert!(err.contains("bad JSON for grpc.CheckRequest"), "{err}");
    let (ok, _, err) = call(&["NoSuchMethod"]);
    assert!(!ok);
    assert!(err.contains("unknown method"), "{err}");
}

#[test]
fn agent_errors_are_reported_with_their_status() {
    let (ok, _, err) = call(&["SetPolicy", r#"{"policy": "package agent_policy"}"#]);
    assert!(!ok);
    assert!(
        err.contains("SetPolicy") && err.contains("not supported") && err.contains("NOT_FOUND"),
        "{err}"
    );
}
