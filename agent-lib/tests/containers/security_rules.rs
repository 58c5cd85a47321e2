//! The validation rules that close the container-escape paths of issue #11, on fakes: each
//! bad request is refused with `INVALID_ARGUMENT` (or `RESOURCE_EXHAUSTED`) naming the field,
//! and nothing reaches the OS. The real attacks are staged in `attacks.rs`.

use agent_testing::pod::{self, Pod, code, container_request, message, process};
use ttrpc::Code;

/// `(uid_t)-1`: "no change" to setresuid(2).
const NO_CHANGE: u32 = u32::MAX;

/// A change to a wire user.
type SetUser = fn(&mut agent_protos::oci::User);

#[tokio::test]
async fn uid_or_gid_minus_one_is_refused_for_create_and_exec() {
    let pod = Pod::with_sandbox().await;
    let before = pod.fake.faults.counts();
    let cases: [(&str, SetUser); 3] = [
        ("process.user.uid", |u| u.UID = NO_CHANGE),
        ("process.user.gid", |u| u.GID = NO_CHANGE),
        ("process.user.additionalGids[1]", |u| {
            u.AdditionalGids = vec![10, NO_CHANGE]
        }),
    ];
    for (field, set) in cases {
        let mut req = container_request("c1", &["sleep"], false);
        let user = req.OCI.as_mut().unwrap().Process.as_mut().unwrap();
        set(user.User.mut_or_insert_default());
        let result = pod.create_req(req).await;
        let msg = message(result.clone());
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{field}: {msg}");
        assert!(msg.contains(field) && msg.contains("4294967295"), "{msg}");
    }
    assert_eq!(pod.fake.faults.counts(), before, "nothing reached the OS");

    pod.run("c1", &["sleep"]).await;
    for (field, set) in cases {
        let mut p = process(&["sleep"], false);
        set(p.User.mut_or_insert_default());
        let result = pod.client.exec_process("c1", "e1", p).await;
        let msg = message(result.clone());
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{field}: {msg}");
        assert!(msg.contains(field), "{msg}");
    }
    assert_eq!(pod.agent.containers().get("c1").unwrap().exec_ids(), ["c1"]);
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

/// A wire char device at `path` (1:3, /dev/null's numbers).
fn char_device(path: &str) -> agent_protos::oci::LinuxDevice {
    agent_protos::oci::LinuxDevice {
        Path: path.into(),
        Type: "c".into(),
        Major: 1,
        Minor: 3,
        ..Default::default()
    }
}

#[tokio::test]
async fn device_paths_are_normalised_and_must_stay_below_dev() {
    let pod = Pod::with_sandbox().await;
    let before = pod.fake.faults.counts();
    for (i, bad) in [
        (0, "/dev/../bin/x"),
        (1, "/dev"),
        (1, "dev/x"),
        (1, "/devices/x"),
    ] {
        let mut req = container_request("c1", &["sleep"], false);
        let linux = req.OCI.as_mut().unwrap().Linux.as_mut().unwrap();
        if i == 1 {
            linux.Devices.push(char_device("/dev/ok"));
        }
        linux.Devices.push(char_device(bad));
        let result = pod.create_req(req).await;
        let msg = message(result.clone());
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{bad}: {msg}");
        assert!(
            msg.contains(&format!("linux.devices[{i}].path")) && msg.contains(bad),
            "{msg}"
        );
    }
    assert_eq!(pod.fake.faults.counts(), before, "nothing reached the OS");

    let mut req = container_request("c1", &["sleep"], false);
    let linux = req.OCI.as_mut().unwrap().Linux.as_mut().unwrap();
    linux.Devices.push(char_device("/dev/./net/../tun"));
    pod.create_req(req).await.unwrap();
    let launched = pod.fake.launcher.record(pod.pid("c1", "")).unwrap();
    let kata_agent::host::LaunchTarget::ContainerInit(setup) = &launched.request.target else {
        panic!("not a container init: {:?}", launched.request.target);
    };
    let devices = setup
        .spec
        .linux()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(devices[0].path(), std::path::Path::new("/dev/tun"));
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn concurrent_stdin_writes_are_capped_per_process() {
    use std::time::Duration;
    let pod = Pod::with_sandbox().await;
    // `sleep` never reads its stdin: every write past the pipe's 64 KiB blocks.
    pod.run("c1", &["sleep"]).await;
    pod.run("c2", &["sleep"]).await;
    let chunk = vec![b'x'; 1 << 20];
    let calls = (0..12)
        .map(|_| tokio::time::timeout(Duration::from_secs(1), pod.write_stdin("c1", "", &chunk)));
    let results = futures::future::join_all(calls).await;
    let blocked = results.iter().filter(|r| r.is_err()).count();
    let refused: Vec<String> = results
        .into_iter()
        .filter_map(Result::ok)
        .map(|r| {
            let msg = message(r.clone());
            assert_eq!(code(r), Code::RESOURCE_EXHAUSTED, "{msg}");
            msg
        })
        .collect();
    let limit = kata_agent::process::MAX_STDIN_IN_FLIGHT;
    assert_eq!(blocked, limit / chunk.len(), "{refused:?}");
    assert_eq!(refused.len(), 12 - blocked);
    assert!(refused[0].contains("stdin is busy"), "{}", refused[0]);

    // The cap is per process: another container's stdin still takes a blocked write.
    let other = tokio::time::timeout(Duration::from_secs(1), pod.write_stdin("c2", "", &chunk));
    assert!(other.await.is_err(), "c2's write was not left waiting");

    // Once c1 is gone the waiting writes end and give their share back: a new write is no
    // longer refused for being busy (it fails: nobody reads).
    pod.signal("c1", "", 9).await.unwrap();
    pod.wait("c1", "").await.unwrap();
    let after = pod.write_stdin("c1", "", &chunk).await;
    assert_ne!(code(after), Code::RESOURCE_EXHAUSTED);
    pod.remove("c1", 0).await.unwrap();
    pod.remove("c2", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

/// An ephemeral (tmpfs) storage on `mount_point`.
fn tmpfs_storage(mount_point: &str) -> agent_protos::agent::Storage {
    agent_protos::agent::Storage {
        driver: "ephemeral".into(),
        source: "tmpfs".into(),
        fstype: "tmpfs".into(),
        mount_point: mount_point.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn storage_mount_points_are_confined_to_the_kata_directories() {
    use agent_protos::agent as pb;
    let outside = [
        "/etc",
        "/",
        "/run/kata-containers",
        "/run/kata-containers/../../etc",
        "/run/kata-containers-x/y",
        "relative/path",
    ];
    let pod = Pod::new().await;
    for bad in outside {
        let req = pb::CreateSandboxRequest {
            hostname: "pod".into(),
            sandbox_id: "sb".into(),
            storages: vec![tmpfs_storage(bad)],
            ..Default::default()
        };
        let result = pod.client.agent.create_sandbox(pod::ctx(), &req).await;
        let msg = message(result.clone());
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{bad}: {msg}");
        assert!(msg.contains("mount_point") && msg.contains(bad), "{msg}");
    }
    assert!(pod.fake.mounter.table().is_empty(), "something was mounted");

    pod.create_sandbox().await.unwrap();
    pod.fake.baseline();
    let before_create = pod.fake.faults.counts();
    for bad in outside {
        let mut req = container_request("c1", &["sleep"], false);
        req.storages.push(tmpfs_storage(bad));
        let result = pod.create_req(req).await;
        let msg = message(result.clone());
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{bad}: {msg}");
        assert!(msg.contains("mount_point"), "{msg}");
        let update = pb::UpdateEphemeralMountsRequest {
            storages: vec![tmpfs_storage(bad)],
            ..Default::default()
        };
        let result = pod
            .client
            .agent
            .update_ephemeral_mounts(pod::ctx(), &update)
            .await;
        assert_eq!(code(result), Code::INVALID_ARGUMENT, "{bad}");
    }
    assert_eq!(
        pod.fake.faults.counts(),
        before_create,
        "nothing reached the OS"
    );
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());

    // A realistic one (an emptyDir under Kata's ephemeral root) passes, normalised.
    let mut req = container_request("c1", &["sleep"], false);
    req.storages.push(tmpfs_storage(
        "/run/kata-containers/sandbox/ephemeral/./cache/",
    ));
    pod.create_req(req).await.unwrap();
    let mounted = pod.fake.mounter.table();
    assert!(
        mounted
            .iter()
            .any(|m| m.target
                == std::path::Path::new("/run/kata-containers/sandbox/ephemeral/cache")),
        "{mounted:?}"
    );
    pod.remove("c1", 0).await.unwrap();
}

/// CreateContainer `cid` running `sleep` in cgroup `cgroups_path`.
fn in_cgroup(cid: &str, cgroups_path: &str) -> agent_protos::agent::CreateContainerRequest {
    let mut req = container_request(cid, &["sleep"], false);
    req.OCI
        .as_mut()
        .unwrap()
        .Linux
        .as_mut()
        .unwrap()
        .CgroupsPath = cgroups_path.into();
    req
}

#[tokio::test]
async fn parent_cgroups_the_agent_made_go_with_the_last_container_under_them() {
    use kata_agent::host::Cgroups;
    let pod = Pod::with_sandbox().await;
    // Made by someone else before: never removed by the agent.
    pod.fake.cgroups.create("/kubepods").unwrap();
    pod.fake.baseline();
    let exists = |p: &str| pod.fake.cgroups.state(p).is_some();
    for cid in ["c1", "c2"] {
        let req = in_cgroup(cid, &format!("/kubepods/pod1/burst/{cid}"));
        pod.create_req(req).await.unwrap();
        pod.start(cid).await.unwrap();
    }
    pod.remove("c1", 0).await.unwrap();
    assert!(
        exists("/kubepods/pod1/burst"),
        "removed while c2 is under it"
    );
    pod.remove("c2", 0).await.unwrap();
    assert!(!exists("/kubepods/pod1") && !exists("/kubepods/pod1/burst"));
    assert!(
        exists("/kubepods"),
        "a cgroup the agent did not make was removed"
    );
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());

    // A failed create takes its parents back too; DestroySandbox removes the rest.
    pod.fake
        .faults
        .fail_next(agent_fakes::Op::Launch, nix::errno::Errno::EIO);
    assert!(pod.create_req(in_cgroup("c3", "/a/b/c3")).await.is_err());
    assert!(!exists("/a"), "a failed create left its parent cgroup");
    pod.create_req(in_cgroup("c4", "/a/b/c4")).await.unwrap();
    pod.destroy_sandbox().await.unwrap();
    assert!(!exists("/a"), "DestroySandbox left a parent cgroup");
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

/// Operator port review: a flood of debug console connections gets at most
/// [`MAX_SESSIONS`] shells; the rest read why and are closed, no shell started for them; a
/// closed session frees its slot.
#[tokio::test]
async fn console_connections_past_the_cap_get_no_shell() {
    use agent_fakes::{FakeHost, Script};
    use kata_agent::console::{MAX_SESSIONS, TOO_MANY, serve_port};
    use kata_agent::host::ServerAddr;
    use tokio::io::AsyncReadExt;

    async fn until(what: &str, check: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !check() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let fake = FakeHost::new();
    fake.launcher.script("/bin/sh", Script::until_signal());
    let addr = ServerAddr::Unix("/run/console.sock".into());
    let server = tokio::spawn(serve_port(fake.host(), addr.clone(), "/bin/sh"));
    until("listening", || fake.transport.is_listening(&addr)).await;
    let mut sessions: Vec<_> = (0..MAX_SESSIONS)
        .map(|_| fake.transport.connect(&addr).unwrap())
        .collect();
    until("every shell", || fake.launcher.live().len() == MAX_SESSIONS).await;
    for _ in 0..3 {
        let mut extra = fake.transport.connect(&addr).unwrap();
        let mut seen = Vec::new();
        let read = extra.read_to_end(&mut seen);
        tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .expect("a connection past the cap was kept open")
            .unwrap();
        assert_eq!(seen, TOO_MANY);
    }
    assert_eq!(
        fake.launcher.live().len(),
        MAX_SESSIONS,
        "a shell past the cap"
    );
    assert_eq!(fake.launcher.launches().len(), MAX_SESSIONS);

    drop(sessions.pop());
    until("the hung-up shell gone", || {
        fake.launcher.live().len() == MAX_SESSIONS - 1
    })
    .await;
    sessions.push(fake.transport.connect(&addr).unwrap());
    until("a shell in the freed slot", || {
        fake.launcher.live().len() == MAX_SESSIONS
    })
    .await;
    server.abort();
}

/// cgroup v2 review: a container whose cgroup has no memory controller (a v2 guest without it
/// enabled) starts, without OOM events; any other failure to watch still fails the start.
#[tokio::test]
async fn a_cgroup_without_a_memory_controller_starts_without_oom_events() {
    use agent_fakes::Op;
    use nix::errno::Errno;
    let pod = Pod::with_sandbox().await;
    pod.create("c1", &["sleep"], false).await.unwrap();
    pod.fake
        .faults
        .fail_next(Op::CgroupWatchOom, Errno::EOPNOTSUPP);
    pod.start("c1")
        .await
        .expect("start without a memory controller");
    pod.create("c2", &["sleep"], false).await.unwrap();
    pod.fake.faults.fail_next(Op::CgroupWatchOom, Errno::EIO);
    let failed = pod.start("c2").await;
    let msg = message(failed.clone());
    assert_eq!(code(failed), Code::INTERNAL, "{msg}");
    assert!(msg.contains("OOM"), "{msg}");
}
