//! The container fields of issue #16 on real containers, driven over ttrpc exactly as a Kata
//! runtime would: `string_user` resolved against a rootfs's own /etc/passwd and /etc/group,
//! and a shared mount of one container seen from another, with nothing left behind.
//!
//! Needs root and Debian's busybox-static (see `support::real_agent`).

use std::fs;

use agent_protos::agent as pb;
use protobuf::MessageField;

mod support;
use support::real_agent::{RealAgent, ctx};
use support::wire::{code, create_request, process, spec};

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
    agent.client.agent.exec_process(ctx(), &req).await?;
    let out = agent.read_all(cid, eid, false).await;
    assert_eq!(agent.wait(cid, eid).await, 0);
    Ok(out)
}

#[tokio::test]
#[ignore = "needs root: real containers"]
async fn string_user_resolves_in_the_container_rootfs() {
    let agent = RealAgent::start("struser").await;
    let sandbox = agent.id("sb");
    agent.create_sandbox(&sandbox, "e2e-user").await;
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
