//! Kata-shaped wire messages for real containers: the OCI spec and processes as the Kata runtime
//! sends them (`grpc.Spec`), for a busybox rootfs.

use std::path::Path;

use agent_protos::{agent as pb, oci};
use protobuf::MessageField;

/// An OCI process running `args` as root in `/`, with `PATH=/bin`.
pub fn process(args: &[&str], terminal: bool) -> oci::Process {
    oci::Process {
        Terminal: terminal,
        Args: args.iter().map(|a| a.to_string()).collect(),
        Env: vec!["PATH=/bin".into(), "HOME=/".into()],
        Cwd: "/".into(),
        User: MessageField::some(oci::User::default()),
        ..Default::default()
    }
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> oci::Mount {
    oci::Mount {
        destination: destination.into(),
        type_: typ.into(),
        source: source.into(),
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    }
}

/// The mounts containerd's default spec gives every container.
fn default_mounts() -> Vec<oci::Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ]
}

/// A container spec as the Kata runtime sends it: the rootfs at `root`, the default mounts,
/// IPC, UTS and mount namespaces (the agent adds the pid one; no network namespace: containers
/// share the VM's), masked and read-only paths, and `resources` when given.
pub fn spec(
    root: &Path,
    args: &[&str],
    terminal: bool,
    resources: Option<oci::LinuxResources>,
) -> oci::Spec {
    let namespaces = ["ipc", "uts", "mount"]
        .iter()
        .map(|t| oci::LinuxNamespace {
            Type: t.to_string(),
            ..Default::default()
        })
        .collect();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    oci::Spec {
        Version: "1.1.0".into(),
        Process: MessageField::some(process(args, terminal)),
        Root: MessageField::some(oci::Root {
            Path: root.to_string_lossy().into_owned(),
            Readonly: false,
            ..Default::default()
        }),
        Hostname: String::new(),
        Mounts: default_mounts(),
        Linux: MessageField::some(oci::Linux {
            Namespaces: namespaces,
            Resources: resources.map_or_else(MessageField::none, MessageField::some),
            MaskedPaths: strings(&["/proc/kcore", "/proc/keys", "/sys/firmware", "/secret"]),
            ReadonlyPaths: strings(&["/proc/sys", "/proc/sysrq-trigger", "/ro"]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Resources with a memory limit of `bytes`.
pub fn memory_limit(bytes: i64) -> oci::LinuxResources {
    oci::LinuxResources {
        Memory: MessageField::some(oci::LinuxMemory {
            Limit: bytes,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// CreateContainer for `cid` with `spec`.
pub fn create_request(
    cid: &str,
    spec: oci::Spec,
    sandbox_pidns: bool,
) -> pb::CreateContainerRequest {
    pb::CreateContainerRequest {
        container_id: cid.into(),
        exec_id: cid.into(),
        OCI: MessageField::some(spec),
        sandbox_pidns,
        ..Default::default()
    }
}

/// The status code of a failed call.
pub fn code<T: std::fmt::Debug>(result: &ttrpc::Result<T>) -> ttrpc::Code {
    match result {
        Err(ttrpc::Error::RpcStatus(status)) => status.code(),
        other => panic!("expected an RPC status error, got {other:?}"),
    }
}
