//! `string_user` on CreateContainer and ExecProcess, on fakes: names resolved in the
//! container's own /etc/passwd and /etc/group, runc's numeric and missing-file rules, and the
//! refusals (INVALID_ARGUMENT naming the user, nothing left behind).

use agent_fakes::LaunchRecord;
use agent_protos::agent as pb;
use agent_testing::pod::{Pod, code, container_request, ctx, message, process};
use kata_agent::host::LaunchTarget;
use protobuf::MessageField;
use ttrpc::Code;

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n\
                      bob:x:1001:100::/home/bob:/bin/sh\n";
const GROUP: &str = "root:x:0:\nusers:x:100:alice\nwheel:x:10:alice,bob\n";

fn rootfs(cid: &str) -> String {
    format!("/run/kata-containers/shared/containers/{cid}/rootfs")
}

/// Gives container `cid`'s rootfs the test passwd and group.
fn user_db(pod: &Pod, cid: &str) {
    let etc = format!("{}/etc", rootfs(cid));
    pod.fake
        .sysfs
        .write_file(format!("{etc}/passwd"), PASSWD)
        .unwrap();
    pod.fake
        .sysfs
        .write_file(format!("{etc}/group"), GROUP)
        .unwrap();
}

fn string_user(uid: &str, gid: &str, extra: &[&str]) -> MessageField<pb::StringUser> {
    MessageField::some(pb::StringUser {
        uid: uid.into(),
        gid: gid.into(),
        additionalGids: extra.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

async fn create_as(pod: &Pod, cid: &str, user: MessageField<pb::StringUser>) -> ttrpc::Result<()> {
    let mut req = container_request(cid, &["sleep"], false);
    req.string_user = user;
    pod.create_req(req).await
}

/// The credentials the launcher was asked for, for the last process it launched.
fn last_launch(pod: &Pod) -> LaunchRecord {
    pod.fake.launcher.launches().pop().expect("a launch")
}

fn creds(record: &LaunchRecord) -> (u32, u32, Vec<u32>) {
    let p = &record.request.process;
    (p.uid, p.gid, p.additional_gids.clone())
}

#[tokio::test]
async fn a_name_resolves_in_the_container_rootfs() {
    let pod = Pod::with_sandbox().await;
    user_db(&pod, "c1");
    create_as(&pod, "c1", string_user("alice", "", &["wheel", "77"]))
        .await
        .unwrap();
    let record = last_launch(&pod);
    assert_eq!(creds(&record), (1000, 1000, vec![100, 10, 77]));
    // The spec the container is set up from (and config.json) says the same.
    let LaunchTarget::ContainerInit(setup) = &record.request.target else {
        panic!("not an init: {record}");
    };
    let user = setup.spec.process().as_ref().unwrap().user().clone();
    assert_eq!((user.uid(), user.gid()), (1000, 1000));
    let config = pod
        .fake
        .sysfs
        .contents("/run/kata-containers/c1/config.json")
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["process"]["user"]["uid"], 1000);
    assert_eq!(config["process"]["user"]["additionalGids"][2], 77);
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn exec_resolves_names_in_the_same_rootfs() {
    let pod = Pod::with_sandbox().await;
    user_db(&pod, "c1");
    pod.run("c1", &["sleep"]).await;
    let req = pb::ExecProcessRequest {
        container_id: "c1".into(),
        exec_id: "e1".into(),
        string_user: string_user("bob:users", "", &[]),
        process: MessageField::some(process(&["sleep"], false)),
        ..Default::default()
    };
    pod.client.agent.exec_process(ctx(), &req).await.unwrap();
    assert_eq!(creds(&last_launch(&pod)), (1001, 100, vec![]));

    let mut bad = req.clone();
    bad.exec_id = "e2".into();
    bad.string_user = string_user("mallory", "", &[]);
    let result = pod.client.agent.exec_process(ctx(), &bad).await;
    assert_eq!(code(result.clone()), Code::INVALID_ARGUMENT);
    assert!(message(result).contains("unknown user \"mallory\""));
    assert!(pod.agent.containers().process("c1", "e2").is_err());
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn unknown_names_are_refused_and_nothing_is_left() {
    let pod = Pod::with_sandbox().await;
    user_db(&pod, "c1");
    let launches = pod.fake.launcher.launches().len();
    for (user, needle) in [
        (string_user("mallory", "", &[]), "unknown user \"mallory\""),
        (
            string_user("alice:staff", "", &[]),
            "unknown group \"staff\"",
        ),
        (
            string_user("alice", "", &["ghosts"]),
            "unknown group \"ghosts\"",
        ),
        (
            string_user("alice:users", "wheel", &[]),
            "group is given twice",
        ),
        (string_user("4294967295", "", &[]), "string_user.uid"),
    ] {
        let result = create_as(&pod, "c1", user).await;
        assert_eq!(code(result.clone()), Code::INVALID_ARGUMENT);
        let text = message(result);
        assert!(text.contains(needle), "{text}");
        assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
    }
    assert_eq!(pod.fake.launcher.launches().len(), launches);
    assert!(pod.agent.containers().ids().is_empty());
}

#[tokio::test]
async fn without_passwd_numbers_pass_and_names_fail() {
    let pod = Pod::with_sandbox().await;
    let result = create_as(&pod, "c1", string_user("alice", "", &[])).await;
    assert_eq!(code(result.clone()), Code::INVALID_ARGUMENT);
    assert!(message(result).contains("no /etc/passwd"));
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());

    create_as(&pod, "c1", string_user("123", "456", &["7"]))
        .await
        .unwrap();
    assert_eq!(creds(&last_launch(&pod)), (123, 456, vec![7]));
    pod.remove("c1", 0).await.unwrap();
}

#[tokio::test]
async fn the_guest_files_are_never_read_and_links_are_refused() {
    let pod = Pod::with_sandbox().await;
    // The guest's own /etc/passwd knows alice; the container's rootfs does not.
    pod.fake.sysfs.write_file("/etc/passwd", PASSWD).unwrap();
    let etc = format!("{}/etc", rootfs("c1"));
    pod.fake
        .sysfs
        .symlink(format!("{etc}/passwd"), "/etc/passwd")
        .unwrap();
    let result = create_as(&pod, "c1", string_user("alice", "", &[])).await;
    assert_eq!(code(result.clone()), Code::INTERNAL);
    let text = message(result);
    assert!(text.contains("/etc/passwd"), "{text}");
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}
