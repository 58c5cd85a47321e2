//! `shared_mounts` of CreateContainer on fakes: a mount of a running container made in the new
//! container's namespace, refused when the source is unknown or not running, undone with the
//! container, and nothing left when both are gone.

use agent_fakes::Op;
use agent_protos::agent as pb;
use agent_testing::pod::{Pod, code, container_request, message};
use nix::errno::Errno;
use ttrpc::Code;

const NAME_KEY: &str = "io.kubernetes.cri.container-name";

/// CreateContainer of `cid` (Kubernetes name `name`, program `sleep`) with `mounts`.
fn request(cid: &str, name: &str, mounts: Vec<pb::SharedMount>) -> pb::CreateContainerRequest {
    let mut req = container_request(cid, &["sleep"], false);
    req.OCI
        .as_mut()
        .unwrap()
        .Annotations
        .insert(NAME_KEY.into(), name.into());
    req.shared_mounts = mounts;
    req
}

fn shared(src_ctr: &str, src_path: &str, dst_ctr: &str, dst_path: &str) -> pb::SharedMount {
    pb::SharedMount {
        name: "cache".into(),
        src_ctr: src_ctr.into(),
        src_path: src_path.into(),
        dst_ctr: dst_ctr.into(),
        dst_path: dst_path.into(),
        ..Default::default()
    }
}

/// A pod whose container `side` (name "sidecar") runs.
async fn with_sidecar() -> Pod {
    let pod = Pod::with_sandbox().await;
    pod.create_req(request("side", "sidecar", vec![]))
        .await
        .unwrap();
    pod.start("side").await.unwrap();
    pod
}

#[tokio::test]
async fn a_mount_of_the_sidecar_appears_in_the_new_container() {
    let pod = with_sidecar().await;
    let mount = shared("sidecar", "/cache", "app", "/mnt/cache");
    pod.create_req(request("app", "app", vec![mount]))
        .await
        .unwrap();
    let made = pod.fake.mounter.shared();
    assert_eq!(made.len(), 1);
    let share = &made[0].share;
    assert_eq!(share.src_pid, pod.pid("side", ""));
    assert_eq!(share.dst_pid, pod.pid("app", ""));
    assert_eq!(share.src_path.to_str(), Some("/cache"));
    assert_eq!(share.dst_path.to_str(), Some("/mnt/cache"));
    assert_eq!(share.wait, kata_agent::container::SHARED_MOUNT_WAIT);
    // The agent's own mount table is untouched: the clone lives in app's namespace.
    assert!(pod.fake.mounter.top("/mnt/cache".as_ref()).is_none());

    // The clone goes with app's namespace, whatever happens to the source.
    pod.remove("app", 0).await.unwrap();
    assert!(pod.fake.mounter.shared().is_empty());
    pod.remove("side", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn a_source_found_by_id_works_and_removing_it_first_leaves_nothing() {
    let pod = with_sidecar().await;
    pod.create_req(request("app", "app", vec![shared("side", "/c", "", "/c")]))
        .await
        .unwrap();
    pod.remove("side", 0).await.unwrap();
    assert_eq!(
        pod.fake.mounter.shared().len(),
        1,
        "still in app's namespace"
    );
    pod.remove("app", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn an_unknown_or_stopped_source_is_refused_before_anything_is_made() {
    let pod = Pod::with_sandbox().await;
    let launches = pod.fake.launcher.launches().len();
    let result = pod
        .create_req(request("app", "app", vec![shared("ghost", "/c", "", "/c")]))
        .await;
    assert_eq!(code(result.clone()), Code::NOT_FOUND);
    let text = message(result);
    assert!(text.contains("\"ghost\" not found"), "{text}");
    assert_eq!(pod.fake.launcher.launches().len(), launches);

    // Created but not started: its program does not run yet.
    pod.create_req(request("side", "sidecar", vec![]))
        .await
        .unwrap();
    pod.fake.baseline();
    let result = pod
        .create_req(request(
            "app",
            "app",
            vec![shared("sidecar", "/c", "", "/c")],
        ))
        .await;
    assert_eq!(code(result.clone()), Code::FAILED_PRECONDITION);
    let text = message(result);
    assert!(
        text.contains("\"sidecar\" is created, not running"),
        "{text}"
    );
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
    assert!(pod.agent.containers().get("app").is_err());
    pod.remove("side", 0).await.unwrap();
}

#[tokio::test]
async fn bad_paths_and_another_destination_are_invalid() {
    let pod = with_sidecar().await;
    pod.fake.baseline();
    for (mount, needle) in [
        (shared("sidecar", "cache", "", "/c"), "src_path \"cache\""),
        (shared("sidecar", "/c", "", "c"), "dst_path \"c\""),
        (shared("sidecar", "/c", "web", "/c"), "dst_ctr \"web\""),
    ] {
        let result = pod.create_req(request("app", "app", vec![mount])).await;
        assert_eq!(code(result.clone()), Code::INVALID_ARGUMENT);
        let text = message(result);
        assert!(text.contains(needle), "{text}");
        assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
    }
    pod.remove("side", 0).await.unwrap();
}

#[tokio::test]
async fn a_failed_mount_undoes_the_container() {
    let pod = with_sidecar().await;
    pod.fake.baseline();
    // The second of two mounts fails: the first goes with the killed init's namespace.
    pod.fake.faults.fail_nth(Op::ShareMount, 2, Errno::ENOENT);
    let mounts = vec![
        shared("sidecar", "/a", "", "/a"),
        shared("sidecar", "/b", "", "/b"),
    ];
    let result = pod.create_req(request("app", "app", mounts)).await;
    assert_eq!(code(result.clone()), Code::INTERNAL);
    let text = message(result);
    assert!(text.contains("shared mount \"cache\" (/b on /b)"), "{text}");
    assert!(pod.agent.containers().get("app").is_err());
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
    pod.remove("side", 0).await.unwrap();
}
