//! Kata-shaped wire messages: the OCI spec and processes as the Kata runtime sends them
//! (`grpc.Spec`), built by one [`SpecBuilder`] with a preset per fixture level: a busybox rootfs
//! for real containers ([`SpecBuilder::real`]), the shared folder for the fakes
//! ([`SpecBuilder::fake`]).

use std::path::Path;

use agent_protos::{agent as pb, oci};
use protobuf::MessageField;

pub use crate::rpc::{code, message};

/// The environment of real processes (busybox in `/bin`).
const REAL_ENV: [&str; 2] = ["PATH=/bin", "HOME=/"];
/// The environment of processes on the fakes.
const FAKE_ENV: [&str; 1] = ["PATH=/bin:/usr/bin"];

/// An OCI process running `args` as root in `/`, with `PATH=/bin`.
pub fn process(args: &[&str], terminal: bool) -> oci::Process {
    process_with_env(args, terminal, &REAL_ENV)
}

fn process_with_env(args: &[&str], terminal: bool, env: &[&str]) -> oci::Process {
    oci::Process {
        Terminal: terminal,
        Args: strings(args),
        Env: strings(env),
        Cwd: "/".into(),
        User: MessageField::some(oci::User::default()),
        ..Default::default()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The IPC, UTS and mount namespaces the runtime asks for (the agent adds the pid one; no
/// network namespace: containers share the VM's).
fn kata_namespaces() -> Vec<oci::LinuxNamespace> {
    ["ipc", "uts", "mount"]
        .iter()
        .map(|t| oci::LinuxNamespace {
            Type: t.to_string(),
            ..Default::default()
        })
        .collect()
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> oci::Mount {
    oci::Mount {
        destination: destination.into(),
        type_: typ.into(),
        source: source.into(),
        options: strings(options),
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

/// Builds a `grpc.Spec` from a preset; the presets are what the runtime sends for a container.
#[derive(Debug, Clone)]
pub struct SpecBuilder {
    spec: oci::Spec,
}

impl SpecBuilder {
    /// A container spec as the Kata runtime sends it: the rootfs at `root`, the default mounts,
    /// IPC, UTS and mount namespaces, masked and read-only paths, running `args`.
    pub fn real(root: &Path, args: &[&str]) -> SpecBuilder {
        let spec = oci::Spec {
            Version: "1.1.0".into(),
            Process: MessageField::some(process(args, false)),
            Root: MessageField::some(oci::Root {
                Path: root.to_string_lossy().into_owned(),
                Readonly: false,
                ..Default::default()
            }),
            Hostname: String::new(),
            Mounts: default_mounts(),
            Linux: MessageField::some(oci::Linux {
                Namespaces: kata_namespaces(),
                MaskedPaths: strings(&["/proc/kcore", "/proc/keys", "/sys/firmware", "/secret"]),
                ReadonlyPaths: strings(&["/proc/sys", "/proc/sysrq-trigger", "/ro"]),
                ..Default::default()
            }),
            ..Default::default()
        };
        SpecBuilder { spec }
    }

    /// The spec of container `cid` on the fakes: the rootfs under the shared folder, hostname
    /// "pod", IPC/UTS/mount namespaces and a 128 MiB memory limit, running `args`.
    pub fn fake(cid: &str, args: &[&str]) -> SpecBuilder {
        let spec = oci::Spec {
            Version: "1.1.0".into(),
            Process: MessageField::some(SpecBuilder::fake_process(args, false)),
            Root: MessageField::some(oci::Root {
                Path: format!("/run/kata-containers/shared/containers/{cid}/rootfs"),
                ..Default::default()
            }),
            Hostname: "pod".into(),
            Linux: MessageField::some(oci::Linux {
                Namespaces: kata_namespaces(),
                Resources: MessageField::some(memory_limit(128 << 20)),
                ..Default::default()
            }),
            ..Default::default()
        };
        SpecBuilder { spec }
    }

    /// The process of the [`fake`](SpecBuilder::fake) preset (the fakes' `PATH`).
    pub fn fake_process(args: &[&str], terminal: bool) -> oci::Process {
        process_with_env(args, terminal, &FAKE_ENV)
    }

    /// Gives the process a terminal (or not).
    pub fn terminal(mut self, terminal: bool) -> SpecBuilder {
        self.spec.Process.mut_or_insert_default().Terminal = terminal;
        self
    }

    /// Sets (`Some`) or clears (`None`) the resources.
    pub fn resources(mut self, resources: Option<oci::LinuxResources>) -> SpecBuilder {
        self.spec.Linux.mut_or_insert_default().Resources =
            resources.map_or_else(MessageField::none, MessageField::some);
        self
    }

    /// The spec.
    pub fn build(self) -> oci::Spec {
        self.spec
    }
}

/// [`SpecBuilder::real`] with a terminal or not and `resources` when given.
pub fn spec(
    root: &Path,
    args: &[&str],
    terminal: bool,
    resources: Option<oci::LinuxResources>,
) -> oci::Spec {
    SpecBuilder::real(root, args)
        .terminal(terminal)
        .resources(resources)
        .build()
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
