//! Fixtures of the attack tests (`attacks.rs`): a sandbox on a real agent, specs that stage the
//! attacks, and observations of the host (modes, limits, namespaces, cgroups).

pub mod cgroup2;
pub mod ptrace;
pub mod race;

use std::fs;
use std::path::Path;

use agent_protos::oci;

use crate::support::host_state::{cgroup_dirs, cgroup_pids};
use crate::support::real_agent::RealAgent;
use crate::support::wire::spec;

pub use crate::support::real_agent::PAUSE;

/// A sandbox with its infra container running; returns the agent.
pub async fn sandbox(test: &str) -> RealAgent {
    RealAgent::with_infra(test, "attack-pod").await
}

/// The agent answers Check and runs a new process in `cid`.
pub async fn assert_serving(agent: &RealAgent, cid: &str, eid: &str) {
    agent.client.check().await.expect("Check after the attack");
    agent.exec(cid, eid, &["echo", "alive"], false).await;
    assert_eq!(agent.read_all(cid, eid, false).await, "alive\n");
    assert_eq!(agent.wait(cid, eid).await, 0);
}

/// Sets the user of a wire process.
pub fn user(p: &mut oci::Process, uid: u32, gid: u32, extra: &[u32]) {
    let u = p.User.mut_or_insert_default();
    u.UID = uid;
    u.GID = gid;
    u.AdditionalGids = extra.to_vec();
}

/// The permission bits of `path` on the host.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    meta.permissions().mode() & 0o7777
}

/// A wire char device at `path` with /dev/null's numbers.
pub fn null_device(path: &str) -> oci::LinuxDevice {
    oci::LinuxDevice {
        Path: path.into(),
        Type: "c".into(),
        Major: 1,
        Minor: 3,
        FileMode: 0o666,
        ..Default::default()
    }
}

/// A spec whose `/dev` is the rootfs's own folder (no tmpfs on it), so that what the agent
/// makes there shows on the host, with `devices`.
pub fn spec_with_devices(root: &Path, devices: &[&str]) -> oci::Spec {
    let mut s = spec(root, &["sleep", "100000"], false, None);
    s.Mounts.retain(|m| !m.destination.starts_with("/dev"));
    let linux = s.Linux.as_mut().unwrap();
    linux.Devices = devices.iter().map(|p| null_device(p)).collect();
    s
}

/// (size, inode) of a regular file, panicking if it is anything else.
pub fn regular(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).unwrap();
    assert!(
        meta.is_file(),
        "{} is no longer a regular file",
        path.display()
    );
    (meta.len(), meta.ino())
}

/// `(soft, hard)` "Max open files" of `pid`.
pub fn nofile(pid: i32) -> (u64, u64) {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut fields = line.split_whitespace().skip(3);
    let mut next = || fields.next().unwrap().parse().unwrap();
    (next(), next())
}

pub fn set_nofile(pid: i32, soft: u64, hard: u64) {
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: prlimit reads a valid local and writes nothing (null old limit).
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// The pid namespace of `pid` (`pid:[inode]`).
pub fn pidns(pid: i32) -> String {
    let link = fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    link.to_string_lossy().into_owned()
}

/// The init of container `cid` (the only member of its cgroup right after CreateContainer).
pub fn init_pid(cid: &str) -> i32 {
    let pids = cgroup_pids(cid);
    assert_eq!(pids.len(), 1, "{cid}: {pids:?}");
    pids[0]
}

/// Removes, on drop, whatever is left of cgroup `rel` and below it in every controller.
pub struct CgroupSweep(pub String);

impl Drop for CgroupSweep {
    fn drop(&mut self) {
        let mut dirs: Vec<std::path::PathBuf> = Vec::new();
        for top in cgroup_dirs(&self.0) {
            let mut stack = vec![top];
            while let Some(dir) = stack.pop() {
                for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
                dirs.push(dir);
            }
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// A spec running `sleep` with the OCI `cgroup` mount on /sys/fs/cgroup with `options`.
pub fn spec_with_cgroup_mount(root: &Path, options: &[&str]) -> oci::Spec {
    let mut s = spec(root, &["sleep", "100000"], false, None);
    s.Mounts.push(oci::Mount {
        destination: "/sys/fs/cgroup".into(),
        type_: "cgroup".into(),
        source: "cgroup".into(),
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    });
    s
}

/// Runs `script` in `cid` as root; returns (stdout, exit code).
pub async fn sh(agent: &RealAgent, cid: &str, eid: &str, script: &str) -> (String, i32) {
    agent.sh(cid, eid, script).await
}

/// Compiles the C program `source` with `gcc -static` to `out` (for a container rootfs).
pub fn build_static(source: &str, out: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("prog.c");
    fs::write(&c, source).unwrap();
    let status = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(out)
        .arg(&c)
        .status()
        .expect("gcc (needed to build the attackers)");
    assert!(status.success(), "gcc failed on {}", out.display());
}

/// Gives a wire process the capabilities of a default Docker container (no CAP_SYS_PTRACE: with
/// it the kernel lets a process ptrace even a non-dumpable one).
pub fn default_caps(p: &mut oci::Process) {
    let set: Vec<String> = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    let caps = p.Capabilities.mut_or_insert_default();
    caps.Bounding = set.clone();
    caps.Effective = set.clone();
    caps.Permitted = set;
}

/// Starts `args` in `cid` as `eid`, as root with [`default_caps`].
pub async fn exec_default_caps(agent: &RealAgent, cid: &str, eid: &str, args: &[&str]) {
    let mut p = crate::support::wire::process(args, false);
    default_caps(&mut p);
    agent.client.exec_process(cid, eid, p).await.unwrap();
}
