//! Kata-shaped requests, as the runtime sends them, built once outside the timed loops.

use std::path::Path;

use agent_protos::agent as pb;
use agent_protos::oci;
use agent_protos::protobuf::MessageField;

/// CreateSandbox of pod `pod` with id `sb` and no storages.
pub fn create_sandbox() -> pb::CreateSandboxRequest {
    pb::CreateSandboxRequest {
        hostname: "pod".into(),
        sandbox_id: "sb".into(),
        ..Default::default()
    }
}

/// An OCI process running `args` as root in `/`.
pub fn process(args: &[&str]) -> oci::Process {
    oci::Process {
        Args: args.iter().map(|a| a.to_string()).collect(),
        Env: vec!["PATH=/bin:/usr/bin".into()],
        Cwd: "/".into(),
        User: MessageField::some(oci::User::default()),
        ..Default::default()
    }
}

/// A container `cid` running `args` on the rootfs at `root`, in new mount and pid namespaces
/// and the sandbox's IPC and UTS ones; `mounts` are the spec's mounts.
pub fn create_container(
    cid: &str,
    args: &[&str],
    root: &Path,
    mounts: Vec<oci::Mount>,
) -> pb::CreateContainerRequest {
    let namespaces = ["ipc", "uts", "mount"]
        .iter()
        .map(|t| oci::LinuxNamespace {
            Type: t.to_string(),
            ..Default::default()
        })
        .collect();
    let spec = oci::Spec {
        Version: "1.1.0".into(),
        Process: MessageField::some(process(args)),
        Root: MessageField::some(oci::Root {
            Path: root.display().to_string(),
            ..Default::default()
        }),
        Hostname: "pod".into(),
        Mounts: mounts,
        Linux: MessageField::some(oci::Linux {
            Namespaces: namespaces,
            ..Default::default()
        }),
        ..Default::default()
    };
    pb::CreateContainerRequest {
        container_id: cid.into(),
        OCI: MessageField::some(spec),
        ..Default::default()
    }
}

/// A `blk` storage: the virtio-blk disk at PCI path `pci_path` (`02/00`), ext4, on `mount_point`.
pub fn blk_storage(pci_path: &str, mount_point: &str) -> pb::Storage {
    pb::Storage {
        driver: "blk".into(),
        source: pci_path.into(),
        fstype: "ext4".into(),
        mount_point: mount_point.into(),
        ..Default::default()
    }
}

/// ExecProcess of `args` as `exec_id` in `cid`.
pub fn exec_process(cid: &str, exec_id: &str, args: &[&str]) -> pb::ExecProcessRequest {
    pb::ExecProcessRequest {
        container_id: cid.into(),
        exec_id: exec_id.into(),
        process: MessageField::some(process(args)),
        ..Default::default()
    }
}

/// The mounts a container runtime gives every container: /proc, /dev, /dev/pts, /sys.
pub fn standard_mounts() -> Vec<oci::Mount> {
    let mount = |dest: &str, kind: &str, options: &[&str]| oci::Mount {
        destination: dest.into(),
        type_: kind.into(),
        source: kind.into(),
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    };
    vec![
        mount("/proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", &["nosuid", "strictatime", "mode=755"]),
        mount(
            "/dev/pts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666"],
        ),
        mount("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
    ]
}
