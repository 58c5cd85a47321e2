//! OCI hooks the agent runs itself: prestart and createRuntime (their failure fails
//! CreateContainer, with nothing left behind), poststart and poststop (failures are logged).

use agent_fakes::Script;
use agent_protos::oci;
use agent_testing::pod::{self, Pod};
use kata_agent::host::LaunchTarget;

fn hook(path: &str, timeout: i64) -> oci::Hook {
    oci::Hook {
        Path: path.into(),
        Args: vec!["hook-name".into(), "--flag".into()],
        Env: vec!["HOOK=1".into()],
        Timeout: timeout,
        ..Default::default()
    }
}

fn with_hooks(cid: &str, hooks: oci::Hooks) -> agent_protos::agent::CreateContainerRequest {
    let mut req = pod::container_request(cid, &["sleep"], false);
    req.OCI.as_mut().unwrap().Hooks = protobuf::MessageField::some(hooks);
    req
}

/// The hooks the fake launcher ran, in order: (program, args after it).
fn hook_runs(pod: &Pod) -> Vec<(String, Vec<String>)> {
    pod.fake
        .launcher
        .launches()
        .into_iter()
        .filter(|r| r.request.target == LaunchTarget::Host)
        .map(|r| {
            (
                r.request.process.args[0].clone(),
                r.request.process.args[1..].to_vec(),
            )
        })
        .collect()
}

#[tokio::test]
async fn runtime_hooks_run_in_order_at_their_lifecycle_points() {
    let pod = Pod::with_sandbox().await;
    for name in ["/h/pre", "/h/runtime", "/h/poststart", "/h/poststop"] {
        pod.fake.launcher.script(name, Script::exit(0));
    }
    let hooks = oci::Hooks {
        Prestart: vec![hook("/h/pre", 0)],
        CreateRuntime: vec![hook("/h/runtime", 5)],
        Poststart: vec![hook("/h/poststart", 0)],
        Poststop: vec![hook("/h/poststop", 0)],
        ..Default::default()
    };
    pod.create_req(with_hooks("c1", hooks)).await.unwrap();
    let ran: Vec<String> = hook_runs(&pod).into_iter().map(|(p, _)| p).collect();
    assert_eq!(ran, ["/h/pre", "/h/runtime"]);
    // argv[0] is the hook's name; the program is its path.
    assert_eq!(hook_runs(&pod)[0].1, ["--flag"]);
    let record = pod
        .fake
        .launcher
        .launches()
        .into_iter()
        .find(|r| r.request.process.args[0] == "/h/pre");
    assert_eq!(record.unwrap().request.process.env, ["HOOK=1"]);

    pod.start("c1").await.unwrap();
    let ran: Vec<String> = hook_runs(&pod).into_iter().map(|(p, _)| p).collect();
    assert_eq!(ran, ["/h/pre", "/h/runtime", "/h/poststart"]);

    pod.remove("c1", 0).await.unwrap();
    let ran: Vec<String> = hook_runs(&pod).into_iter().map(|(p, _)| p).collect();
    assert_eq!(ran, ["/h/pre", "/h/runtime", "/h/poststart", "/h/poststop"]);
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn a_failing_prestart_hook_fails_create_and_leaves_nothing() {
    let pod = Pod::with_sandbox().await;
    pod.fake.launcher.script("/h/bad", Script::exit(2));
    let hooks = oci::Hooks {
        Prestart: vec![hook("/h/bad", 0)],
        ..Default::default()
    };
    let err = pod.create_req(with_hooks("c1", hooks)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("prestart hook /h/bad: exit code 2"),
        "{err}"
    );
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
    // The id is free again.
    pod.create_req(pod::container_request("c1", &["sleep"], false))
        .await
        .unwrap();
    pod.remove("c1", 0).await.unwrap();
}

#[tokio::test]
async fn a_missing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let pod = Pod::with_sandbox().await;
    let hooks = oci::Hooks {
        CreateRuntime: vec![hook("/h/missing", 0)],
        ..Default::default()
    };
    let err = pod.create_req(with_hooks("c1", hooks)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("createRuntime hook /h/missing: cannot start"),
        "{err}"
    );
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test(start_paused = true)]
async fn a_hook_past_its_timeout_is_killed_and_fails_create() {
    let pod = Pod::with_sandbox().await;
    pod.fake.launcher.script("/h/hang", Script::until_signal());
    let hooks = oci::Hooks {
        Prestart: vec![hook("/h/hang", 2)],
        ..Default::default()
    };
    let err = pod.create_req(with_hooks("c1", hooks)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("prestart hook /h/hang: timed out after 2s"),
        "{err}"
    );
    assert!(pod.fake.launcher.live().is_empty(), "the hook was killed");
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn failing_poststart_and_poststop_hooks_are_only_logged() {
    let pod = Pod::with_sandbox().await;
    pod.fake.launcher.script("/h/fail", Script::exit(1));
    let hooks = oci::Hooks {
        Poststart: vec![hook("/h/fail", 0)],
        Poststop: vec![hook("/h/fail", 0)],
        ..Default::default()
    };
    pod.create_req(with_hooks("c1", hooks)).await.unwrap();
    pod.start("c1").await.unwrap();
    pod.remove("c1", 0).await.unwrap();
    assert_eq!(hook_runs(&pod).len(), 2);
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}
