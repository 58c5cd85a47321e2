//! The container fields of issue #16 on real containers, driven over ttrpc exactly as a Kata
//! runtime would: `string_user` resolved against a rootfs's own /etc/passwd and /etc/group,
//! and a shared mount of one container seen from another, with nothing left behind.
//!
//! Needs root and Debian's busybox-static (see `support::real_agent`).

use std::fs;

use agent_protos::agent as pb;
use protobuf::MessageField;

use agent_testing::real_agent::RealAgent;
use agent_testing::timed_ctx;
use agent_testing::wire::{code, create_request, process, spec};

const PASSWD: &str = "root:x:0:0:root:/:/bin/sh\nalice:x:1000:1000::/:/bin/sh\n\
                      bob:x:1001:100::/:/bin/sh\n";
const GROUP: &str = "root:x:0:\nusers:x:100:alice\nwheel:x:10:alice,bob\nalice:x:1000:\n";

fn string_user(uid: &str) -> MessageField<pb::StringUser> {
    MessageField::some(pb::StringUser {
        uid: uid.into(),
        ..Default::default()
    })
}

/// `id -u; id -g; id -G` of exec `eid` run as `user`.
async fn ids_as(agent: &RealAgent, cid: &str, eid: &str, user: &str) -> ttrpc::Result<String> {
    let req = pb::ExecProcessRequest {
        container_id: cid.into(),
        exec_id: eid.into(),
        string_user: string_user(user),
        process: MessageField::some(process(&["sh", "-c", "id -u; id -g; id -G"], false)),
        ..Default::default()
    };
    agent.client.agent.exec_process(timed_ctx(), &req).await?;
    let out = agent.read_all(cid, eid, false).await;
    assert_eq!(agent.wait(cid, eid).await, 0);
    Ok(out)
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn string_user_resolves_in_the_container_rootfs() {
    let agent = RealAgent::with_sandbox("struser", "e2e-user").await;
    let root = agent.rootfs("rootfs");
    fs::write(root.join("etc/passwd"), PASSWD).unwrap();
    fs::write(root.join("etc/group"), GROUP).unwrap();

    let cid = agent.id("c1");
    let mut req = create_request(&cid, spec(&root, &["sleep", "1000000"], false, None), false);
    req.string_user = string_user("alice");
    agent.client.create_container(&req).await.expect("create");
    agent.start_container(&cid).await.expect("start");
    // The init runs as alice: its credentials, seen from the exec (which keeps the spec user).
    let status = ids_as(&agent, &cid, "init-ids", "").await.unwrap();
    assert_eq!(
        status, "0\n0\n0\n",
        "an empty string_user keeps the spec's root"
    );
    let init_uid = fs::read_to_string(format!(
        "/proc/{}/status",
        agent
            .children()
            .iter()
            .map(|(pid, _)| *pid)
            .find(|pid| fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with("sleep\0")))
            .expect("the container's init")
    ))
    .unwrap();
    let uid_line = init_uid.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid_line.contains("\t1000\t"), "{uid_line}");
    let groups_line = init_uid.lines().find(|l| l.starts_with("Groups:")).unwrap();
    let mut groups: Vec<&str> = groups_line.split_whitespace().skip(1).collect();
    groups.sort();
    assert_eq!(groups, ["10", "100"], "{groups_line}");

    assert_eq!(
        ids_as(&agent, &cid, "bob", "bob").await.unwrap(),
        "1001\n100\n100 10\n"
    );
    assert_eq!(
        ids_as(&agent, &cid, "num", "4242:4343").await.unwrap(),
        "4242\n4343\n4343\n"
    );
    let refused = ids_as(&agent, &cid, "nobody", "mallory").await;
    assert_eq!(code(&refused), ttrpc::Code::INVALID_ARGUMENT);
    assert!(format!("{refused:?}").contains("mallory"), "{refused:?}");

    // A rootfs without /etc/passwd: numbers pass, names are refused; nothing of the guest's
    // own /etc/passwd (which knows root) is used.
    let bare = agent.rootfs("bare");
    fs::remove_file(bare.join("etc/passwd")).unwrap();
    let c2 = agent.id("c2");
    let mut req = create_request(&c2, spec(&bare, &["sleep", "1000000"], false, None), false);
    req.string_user = string_user("root");
    let refused = agent.client.create_container(&req).await;
    assert_eq!(code(&refused), ttrpc::Code::INVALID_ARGUMENT);
    assert!(
        format!("{refused:?}").contains("no /etc/passwd"),
        "{refused:?}"
    );
    req.string_user = string_user("77");
    agent
        .client
        .create_container(&req)
        .await
        .expect("create c2");
    agent.start_container(&c2).await.expect("start c2");

    agent.remove(&c2).await;
    agent.remove(&cid).await;
    agent.destroy_and_exit().await;
}

/// The exec `eid` of `sh -c script` in `cid`: its stdout, after a zero exit.
async fn sh(agent: &RealAgent, cid: &str, eid: &str, script: &str) -> String {
    let (out, status) = agent.sh(cid, eid, script).await;
    assert_eq!(status, 0, "{script}: {out}");
    out
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn a_shared_mount_is_seen_from_the_second_container_and_goes_with_them() {
    let agent = RealAgent::with_sandbox("shmount", "e2e-share").await;

    // The source: a tmpfs of its own at /cache (the sidecar's mount).
    let side = agent.id("side");
    let mut side_spec = spec(&agent.rootfs("side"), &["sleep", "1000000"], false, None);
    side_spec.Mounts.push(agent_protos::oci::Mount {
        destination: "/cache".into(),
        type_: "tmpfs".into(),
        source: "e2e-shared-cache".into(),
        options: vec!["size=1m".into()],
        ..Default::default()
    });
    agent.run_container(&side, side_spec).await;
    sh(&agent, &side, "w1", "echo from-side > /cache/note").await;

    // Refused while the source is unknown: nothing is created.
    let app = agent.id("app");
    let app_spec = spec(&agent.rootfs("app"), &["sleep", "1000000"], false, None);
    let mut req = create_request(&app, app_spec, false);
    let mount = |src_ctr: &str| pb::SharedMount {
        name: "cache".into(),
        src_ctr: src_ctr.into(),
        src_path: "/cache".into(),
        dst_ctr: String::new(),
        dst_path: "/mnt/cache".into(),
        ..Default::default()
    };
    req.shared_mounts = vec![mount("no-such-container")];
    let refused = agent.client.create_container(&req).await;
    assert_eq!(code(&refused), ttrpc::Code::NOT_FOUND);

    req.shared_mounts = vec![mount(&side)];
    agent
        .client
        .create_container(&req)
        .await
        .expect("create app");
    agent.start_container(&app).await.expect("start app");
    assert_eq!(
        sh(&agent, &app, "r1", "cat /mnt/cache/note").await,
        "from-side\n"
    );
    sh(&agent, &app, "w2", "echo from-app > /mnt/cache/reply").await;
    assert_eq!(
        sh(&agent, &side, "r2", "cat /cache/reply").await,
        "from-app\n"
    );
    // Neither the agent's namespace nor the source's got a new mount point.
    assert!(!agent.mountinfo().contains("e2e-shared-cache"));
    assert!(!agent.mountinfo().contains("/mnt/cache"));

    agent.remove(&side).await;
    // The clone outlives the source container: app still reads it.
    assert_eq!(
        sh(&agent, &app, "r3", "cat /mnt/cache/note").await,
        "from-side\n"
    );
    agent.remove(&app).await;
    assert!(!agent.mountinfo().contains("e2e-shared-cache"));
    let leftover = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!leftover.contains("e2e-shared-cache"), "{leftover}");
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers (waits 10 s)"]
async fn waiting_for_a_source_mount_blocks_no_other_rpc_and_fails_clearly() {
    let agent = RealAgent::with_sandbox("shwait", "e2e-share").await;
    let side = agent.id("side");
    let side_spec = spec(&agent.rootfs("side"), &["sleep", "1000000"], false, None);
    agent.run_container(&side, side_spec).await;

    let app = agent.id("app");
    let mut req = create_request(
        &app,
        spec(&agent.rootfs("app"), &["sleep", "1000000"], false, None),
        false,
    );
    req.shared_mounts = vec![pb::SharedMount {
        name: "never".into(),
        src_ctr: side.clone(),
        src_path: "/data".into(),
        dst_path: "/data".into(),
        ..Default::default()
    }];
    let started = std::time::Instant::now();
    let create = agent.client.create_container(&req);
    let others = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let t = std::time::Instant::now();
        let out = sh(&agent, &side, "meanwhile", "echo alive").await;
        (out, t.elapsed())
    };
    let (created, (out, took)) = tokio::join!(create, others);
    assert_eq!(out, "alive\n");
    assert!(
        took < std::time::Duration::from_secs(3),
        "exec took {took:?}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(10));
    assert_eq!(code(&created), ttrpc::Code::INTERNAL);
    let text = format!("{created:?}");
    assert!(text.contains("/data is not a mount point"), "{text}");
    assert_eq!(agent.children().len(), 1, "only the sidecar's init is left");
    agent.remove(&side).await;
    agent.destroy_and_exit().await;
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn labels_are_refused_on_a_kernel_without_the_lsm() {
    let lsm_on = std::path::Path::new("/sys/fs/selinux/enforce").exists()
        || std::path::Path::new("/sys/kernel/security/apparmor").exists()
        || fs::read_to_string("/sys/kernel/security/lsm")
            .is_ok_and(|l| l.contains("selinux") || l.contains("apparmor"));
    if lsm_on {
        eprintln!("skipped: this kernel has SELinux or AppArmor enabled");
        return;
    }
    let agent = RealAgent::with_sandbox("labels", "e2e-labels").await;
    let cid = agent.id("c1");
    let root = agent.rootfs("rootfs");
    let mut selinux = spec(&root, &["sleep", "1000000"], false, None);
    selinux.Process.as_mut().unwrap().SelinuxLabel = "system_u:system_r:container_t:s0".into();
    let mut apparmor = spec(&root, &["sleep", "1000000"], false, None);
    apparmor.Process.as_mut().unwrap().ApparmorProfile = "docker-default".into();
    let mut mount_label = spec(&root, &["sleep", "1000000"], false, None);
    mount_label.Linux.as_mut().unwrap().MountLabel = "system_u:object_r:c_t:s0".into();
    for (spec, field) in [
        (selinux, "process.selinuxLabel"),
        (apparmor, "process.apparmorProfile"),
        (mount_label, "linux.mountLabel"),
    ] {
        let refused = agent
            .client
            .create_container(&create_request(&cid, spec, false))
            .await;
        assert_eq!(code(&refused), ttrpc::Code::FAILED_PRECONDITION);
        let text = format!("{refused:?}");
        assert!(
            text.contains(field) && text.contains("not enabled"),
            "{text}"
        );
    }
    assert!(agent.children().is_empty(), "nothing was started");
    agent.destroy_and_exit().await;
}

/// A host passfd stream to the real agent's unix passfd socket, introduced by its port line.
async fn passfd_stream(agent: &RealAgent, port: u32) -> tokio::net::UnixStream {
    use tokio::io::AsyncWriteExt;
    let mut path = agent.socket().into_os_string();
    path.push("_1027");
    let mut stream = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connect to the passfd socket");
    stream
        .write_all(format!("{port}\n").as_bytes())
        .await
        .unwrap();
    stream
}

async fn read_stream(stream: &mut tokio::net::UnixStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut out),
    )
    .await
    .expect("the stream ends")
    .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn passfd_streams_carry_a_real_process_stdio() {
    use tokio::io::AsyncWriteExt;
    let agent = RealAgent::start_with_config("passfd", "passfd_listener_port = 1027\n").await;
    let sandbox = agent.id("sb");
    agent.create_sandbox(&sandbox, "e2e-passfd").await;
    let cid = agent.id("c1");
    let root = agent.rootfs("rootfs");
    agent
        .run_container(&cid, spec(&root, &["sleep", "1000000"], false, None))
        .await;

    let mut input = passfd_stream(&agent, 5000).await;
    let mut out = passfd_stream(&agent, 5001).await;
    let mut err = passfd_stream(&agent, 5002).await;
    let req = pb::ExecProcessRequest {
        container_id: cid.clone(),
        exec_id: "cat".into(),
        process: MessageField::some(process(&["sh", "-c", "cat; echo bye >&2"], false)),
        stdin_port: 5000,
        stdout_port: 5001,
        stderr_port: 5002,
        ..Default::default()
    };
    agent
        .client
        .agent
        .exec_process(timed_ctx(), &req)
        .await
        .expect("exec");
    // The spliced output is the host's: ReadStdout answers end of stream.
    assert_eq!(agent.read(&cid, "cat", false).await, b"");
    input.write_all(b"through passfd\n").await.unwrap();
    input.shutdown().await.unwrap();
    assert_eq!(read_stream(&mut out).await, "through passfd\n");
    assert_eq!(read_stream(&mut err).await, "bye\n");
    assert_eq!(agent.wait(&cid, "cat").await, 0);

    let mut tty = passfd_stream(&agent, 6001).await;
    let req = pb::ExecProcessRequest {
        container_id: cid.clone(),
        exec_id: "tty".into(),
        process: MessageField::some(process(&["sh", "-c", "test -t 1 && echo on-a-tty"], true)),
        stdout_port: 6001,
        ..Default::default()
    };
    agent
        .client
        .agent
        .exec_process(timed_ctx(), &req)
        .await
        .expect("exec tty");
    assert_eq!(read_stream(&mut tty).await, "on-a-tty\r\n");
    assert_eq!(agent.wait(&cid, "tty").await, 0);

    // A stream that never comes: refused after Kata's retries, the one that came is closed.
    let mut lonely = passfd_stream(&agent, 7000).await;
    let req = pb::ExecProcessRequest {
        container_id: cid.clone(),
        exec_id: "lost".into(),
        process: MessageField::some(process(&["cat"], false)),
        stdin_port: 7000,
        stdout_port: 7001,
        ..Default::default()
    };
    let refused = agent.client.agent.exec_process(timed_ctx(), &req).await;
    assert_eq!(code(&refused), ttrpc::Code::DEADLINE_EXCEEDED);
    assert_eq!(read_stream(&mut lonely).await, "");

    agent.remove(&cid).await;
    let mut passfd_socket = agent.socket().into_os_string();
    passfd_socket.push("_1027");
    agent.destroy_and_exit().await;
    assert!(
        !std::path::Path::new(&passfd_socket).exists(),
        "passfd socket left"
    );
}
