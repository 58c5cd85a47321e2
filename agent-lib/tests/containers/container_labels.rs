//! SELinux and AppArmor labels on fakes: passed on to the container setup (and the mount
//! label added to the mounts that take one) when the guest kernel has the LSM, refused with
//! FAILED_PRECONDITION naming the field when it does not; nothing is left after a refusal.

use agent_fakes::LaunchRecord;
use agent_protos::{agent as pb, oci};
use agent_testing::pod::{Pod, code, container_request, ctx, message, process};
use kata_agent::host::LaunchTarget;
use protobuf::MessageField;
use ttrpc::Code;

const LABEL: &str = "system_u:system_r:container_t:s0:c1,c2";
const MOUNT_LABEL: &str = "system_u:object_r:container_file_t:s0:c1";

fn mount(destination: &str, typ: &str, options: &[&str]) -> oci::Mount {
    oci::Mount {
        destination: destination.into(),
        type_: typ.into(),
        source: typ.into(),
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    }
}

/// A CreateContainer whose spec carries the given labels and four kinds of mounts.
fn labelled(selinux: &str, apparmor: &str, mount_label: &str) -> pb::CreateContainerRequest {
    let mut req = container_request("c1", &["sleep"], false);
    let spec = req.OCI.as_mut().unwrap();
    let p = spec.Process.as_mut().unwrap();
    p.SelinuxLabel = selinux.into();
    p.ApparmorProfile = apparmor.into();
    spec.Linux.as_mut().unwrap().MountLabel = mount_label.into();
    spec.Mounts = vec![
        mount("/proc", "proc", &["nosuid"]),
        mount("/dev/shm", "tmpfs", &["nosuid", "size=65536k"]),
        mount("/dev/mqueue", "mqueue", &[]),
        mount("/data", "bind", &["rbind", "ro"]),
    ];
    req
}

fn init_setup(pod: &Pod) -> LaunchRecord {
    pod.fake.launcher.launches().pop().expect("a launch")
}

fn options(record: &LaunchRecord, destination: &str) -> Vec<String> {
    let LaunchTarget::ContainerInit(setup) = &record.request.target else {
        panic!("not an init: {record}");
    };
    let mounts = setup.spec.mounts().as_ref().unwrap();
    let m = mounts
        .iter()
        .find(|m| m.destination().to_str() == Some(destination))
        .unwrap();
    m.options().clone().unwrap_or_default()
}

#[tokio::test]
async fn without_the_lsm_every_label_is_refused_and_nothing_is_made() {
    let pod = Pod::with_sandbox().await;
    for (req, needle) in [
        (labelled(LABEL, "", ""), "process.selinuxLabel"),
        (
            labelled("", "docker-default", ""),
            "process.apparmorProfile",
        ),
        (labelled("", "", MOUNT_LABEL), "linux.mountLabel"),
    ] {
        let result = pod.create_req(req).await;
        assert_eq!(code(result.clone()), Code::FAILED_PRECONDITION);
        let text = message(result);
        assert!(text.contains(needle), "{text}");
        assert!(text.contains("not enabled in the guest kernel"), "{text}");
        assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
    }
    assert!(pod.fake.launcher.launches().is_empty());
}

#[tokio::test]
async fn with_selinux_the_labels_reach_the_setup_and_the_mounts() {
    let pod = Pod::with_sandbox().await;
    pod.fake
        .sysfs
        .write_file("/sys/kernel/security/lsm", "lockdown,capability,selinux")
        .unwrap();
    pod.create_req(labelled(LABEL, "", MOUNT_LABEL))
        .await
        .unwrap();
    let record = init_setup(&pod);
    let LaunchTarget::ContainerInit(setup) = &record.request.target else {
        panic!("not an init");
    };
    let p = setup.spec.process().as_ref().unwrap();
    assert_eq!(p.selinux_label().as_deref(), Some(LABEL));
    let context = format!("context=\"{MOUNT_LABEL}\"");
    assert!(options(&record, "/dev/shm").contains(&context));
    for unlabeled in ["/proc", "/dev/mqueue", "/data"] {
        assert!(
            !options(&record, unlabeled).contains(&context),
            "{unlabeled} got a context"
        );
    }
    // AppArmor is still absent: an exec asking for a profile is refused.
    pod.start("c1").await.unwrap();
    let mut exec = process(&["sleep"], false);
    exec.ApparmorProfile = "docker-default".into();
    let req = pb::ExecProcessRequest {
        container_id: "c1".into(),
        exec_id: "e1".into(),
        process: MessageField::some(exec),
        ..Default::default()
    };
    let result = pod.client.agent.exec_process(ctx(), &req).await;
    assert_eq!(code(result.clone()), Code::FAILED_PRECONDITION);
    assert!(message(result).contains("AppArmor"));
    pod.remove("c1", 0).await.unwrap();
    assert!(pod.fake.leftovers().is_empty(), "{}", pod.fake.leftovers());
}

#[tokio::test]
async fn apparmor_is_found_by_its_module_parameter_too() {
    let pod = Pod::with_sandbox().await;
    pod.fake
        .sysfs
        .write_file("/sys/module/apparmor/parameters/enabled", "Y\n")
        .unwrap();
    pod.run("c1", &["sleep"]).await;
    let mut exec = process(&["sleep"], false);
    exec.ApparmorProfile = "docker-default".into();
    let req = pb::ExecProcessRequest {
        container_id: "c1".into(),
        exec_id: "e1".into(),
        process: MessageField::some(exec),
        ..Default::default()
    };
    pod.client.agent.exec_process(ctx(), &req).await.unwrap();
    let record = pod.fake.launcher.launches().pop().unwrap();
    let LaunchTarget::ContainerExec { process, .. } = &record.request.target else {
        panic!("not an exec: {record}");
    };
    assert_eq!(
        process.apparmor_profile().as_deref(),
        Some("docker-default")
    );
    pod.remove("c1", 0).await.unwrap();
}
