//! The validation rules that close the container-escape paths of issue #11, on fakes: each
//! bad request is refused with `INVALID_ARGUMENT` (or `RESOURCE_EXHAUSTED`) naming the field,
//! and nothing reaches the OS. The real attacks are staged in `attacks.rs`.

mod pod;

use pod::{Pod, code, container_request, message, process};
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
