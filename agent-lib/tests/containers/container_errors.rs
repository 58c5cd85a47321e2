//! Every error path of the container and process RPCs, with its ttrpc code.

use agent_protos::agent as pb;
use agent_testing::pod::{Pod, code, container_request, message};
use protobuf::MessageField;
use ttrpc::Code;

#[tokio::test]
async fn unknown_containers_and_processes_are_not_found() {
    let pod = Pod::with_sandbox().await;
    assert_eq!(code(pod.start("nope").await), Code::NOT_FOUND);
    assert_eq!(code(pod.remove("nope", 0).await), Code::NOT_FOUND);
    assert_eq!(
        code(pod.exec("nope", "e", &["hello"], false).await),
        Code::NOT_FOUND
    );
    assert_eq!(code(pod.signal("nope", "", 15).await), Code::NOT_FOUND);
    assert_eq!(code(pod.signal("nope", "", 9).await), Code::NOT_FOUND);
    assert_eq!(code(pod.wait("nope", "").await), Code::NOT_FOUND);
    assert_eq!(code(pod.read_stdout("nope", "").await), Code::NOT_FOUND);
    assert_eq!(
        code(pod.write_stdin("nope", "", b"x").await),
        Code::NOT_FOUND
    );
    assert_eq!(
        code(pod.client.stats_container("nope").await),
        Code::NOT_FOUND
    );
    assert_eq!(
        code(
            pod.client
                .update_container("nope", Default::default())
                .await
        ),
        Code::NOT_FOUND
    );
    assert_eq!(
        code(pod.client.pause_container("nope").await),
        Code::NOT_FOUND
    );

    pod.run("c1", &["sleep"]).await;
    assert_eq!(code(pod.wait("c1", "ghost").await), Code::NOT_FOUND);
    assert_eq!(code(pod.signal("c1", "ghost", 15).await), Code::NOT_FOUND);
    assert_eq!(code(pod.read_stderr("c1", "ghost").await), Code::NOT_FOUND);
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn bad_ids_and_specs_are_invalid_arguments_and_touch_nothing() {
    let pod = Pod::with_sandbox().await;
    let before = pod.fake.faults.counts();
    for bad in [
        "",
        "../etc",
        "a/b",
        ".",
        "..",
        "-x",
        "a b",
        &"x".repeat(300),
    ] {
        let result = pod.create(bad, &["sleep"], false).await;
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{bad:?}");
    }
    let no_spec = pb::CreateContainerRequest {
        container_id: "c1".into(),
        ..Default::default()
    };
    assert_eq!(code(pod.create_req(no_spec).await), Code::INVALID_ARGUMENT);
    let mut no_args = container_request("c1", &[], false);
    assert_eq!(
        code(pod.create_req(no_args.clone()).await),
        Code::INVALID_ARGUMENT
    );
    no_args.OCI.as_mut().unwrap().Process = MessageField::none();
    assert_eq!(code(pod.create_req(no_args).await), Code::INVALID_ARGUMENT);
    let mut bad_ns = container_request("c1", &["sleep"], false);
    bad_ns
        .OCI
        .as_mut()
        .unwrap()
        .Linux
        .as_mut()
        .unwrap()
        .Namespaces[0]
        .Type = "bogus".into();
    let msg = message(pod.create_req(bad_ns).await);
    assert!(msg.contains("Linux.Namespaces[0].Type"), "{msg}");
    // Nothing of the above reached the OS.
    assert_eq!(pod.fake.faults.counts(), before);
    pod.create("c1", &["sleep"], false).await.unwrap();
    let mut bad_cap = container_request("c2", &["sleep"], false);
    let process = bad_cap.OCI.as_mut().unwrap().Process.as_mut().unwrap();
    process.Capabilities.mut_or_insert_default().Bounding = vec!["CAP_TELEPORT".into()];
    let msg = message(pod.create_req(bad_cap).await);
    assert!(
        msg.contains("Capabilities.Bounding") && msg.contains("CAP_TELEPORT"),
        "{msg}"
    );
    let mut relative_root = container_request("c3", &["sleep"], false);
    relative_root
        .OCI
        .as_mut()
        .unwrap()
        .Root
        .as_mut()
        .unwrap()
        .Path = "rootfs".into();
    assert_eq!(
        code(pod.create_req(relative_root).await),
        Code::INVALID_ARGUMENT
    );
    let mut escaping_cgroup = container_request("c4", &["sleep"], false);
    escaping_cgroup
        .OCI
        .as_mut()
        .unwrap()
        .Linux
        .as_mut()
        .unwrap()
        .CgroupsPath = "/../../x".into();
    assert_eq!(
        code(pod.create_req(escaping_cgroup).await),
        Code::INVALID_ARGUMENT
    );
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn duplicates_are_already_exists() {
    let pod = Pod::with_sandbox().await;
    pod.run("c1", &["sleep"]).await;
    assert_eq!(
        code(pod.create("c1", &["sleep"], false).await),
        Code::ALREADY_EXISTS
    );
    pod.exec("c1", "e1", &["sleep"], false).await.unwrap();
    assert_eq!(
        code(pod.exec("c1", "e1", &["sleep"], false).await),
        Code::ALREADY_EXISTS
    );
    assert_eq!(
        code(pod.exec("c1", "c1", &["sleep"], false).await),
        Code::ALREADY_EXISTS
    );
    assert_eq!(
        code(pod.exec("c1", "", &["sleep"], false).await),
        Code::INVALID_ARGUMENT
    );
    assert_eq!(
        code(pod.exec("c1", "../x", &["sleep"], false).await),
        Code::INVALID_ARGUMENT
    );
    assert_eq!(
        code(pod.exec("c1", "e9", &[], false).await),
        Code::INVALID_ARGUMENT
    );
    // An unknown program fails to launch: INTERNAL naming the step, nothing left running.
    let msg = message(pod.exec("c1", "e2", &["no-such-program"], false).await);
    assert!(msg.contains("start process e2"), "{msg}");
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn wrong_states_are_failed_preconditions() {
    let pod = Pod::with_sandbox().await;
    pod.create("c1", &["sleep"], false).await.unwrap();
    assert_eq!(
        code(pod.client.resume_container("c1").await),
        Code::FAILED_PRECONDITION
    );
    pod.start("c1").await.unwrap();
    assert_eq!(code(pod.start("c1").await), Code::FAILED_PRECONDITION);
    // No exec into a frozen cgroup: the process could never reach its exec.
    pod.client.pause_container("c1").await.unwrap();
    let refused = pod.exec("c1", "e0", &["sleep"], false).await;
    assert!(message(refused.clone()).contains("paused"), "{refused:?}");
    assert_eq!(code(refused), Code::FAILED_PRECONDITION);
    pod.client.resume_container("c1").await.unwrap();
    pod.signal("c1", "", 9).await.unwrap();
    assert_eq!(pod.wait("c1", "").await.unwrap(), 137);
    assert_eq!(
        code(pod.exec("c1", "e1", &["sleep"], false).await),
        Code::FAILED_PRECONDITION
    );
    // A container that was never started can be removed: its held init is killed.
    pod.create("c2", &["sleep"], false).await.unwrap();
    pod.remove("c2", 0).await.unwrap();
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn devices_the_handlers_do_not_know_are_refused_and_undone() {
    let pod = Pod::with_sandbox().await;
    let mut req = container_request("c1", &["sleep"], false);
    req.devices.push(pb::Device {
        id: "x".into(),
        type_: "no-such-handler".into(),
        container_path: "/dev/x".into(),
        ..Default::default()
    });
    assert_eq!(code(pod.create_req(req).await), Code::INVALID_ARGUMENT);
    let mut req = container_request("c1", &["sleep"], false);
    req.storages.push(pb::Storage {
        driver: "no-such-driver".into(),
        mount_point: "/run/kata-containers/sandbox/x".into(),
        ..Default::default()
    });
    assert_eq!(code(pod.create_req(req).await), Code::INVALID_ARGUMENT);
    assert!(pod.agent.containers().ids().is_empty());
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}
