use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

use super::*;
use crate::linux::test_support::require_root;

#[test]
fn paths_are_made_relative_and_checked() {
    assert_eq!(relative("/kata/abc").unwrap(), "kata/abc");
    assert_eq!(relative("kata//abc/").unwrap(), "kata/abc");
    for bad in ["", "/", "//", "../etc", "/kata/../..", "a/./b", "a\0b"] {
        let err = relative(bad).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
    }
}

#[derive(Debug, thiserror::Error)]
#[error("outer")]
struct Outer(#[source] Inner);

#[derive(Debug, thiserror::Error)]
#[error("inner")]
struct Inner(#[source] io::Error);

#[derive(Debug, thiserror::Error)]
#[error("no errno here")]
struct Plain;

#[test]
fn errors_keep_the_errno_of_their_cause() {
    let err = map_err(
        "set",
        "a/b",
        &Outer(Inner(io::Error::from_raw_os_error(libc::EBUSY))),
    );
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY));

    let err = map_err("set", "a/b", &Plain);
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert!(err.to_string().contains("set a/b: no errno here"), "{err}");
}

#[test]
fn a_panic_becomes_an_error() {
    let err = guarded::<()>("stats", "a", || panic!("bad cgroupfs file")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other);
}

#[test]
fn the_configured_version_must_match_the_mount() {
    let mounted = detect_version();
    assert_eq!(
        LinuxCgroups::with_version(mounted).unwrap().version(),
        mounted
    );
    let other = match mounted {
        CgroupVersion::V1 => CgroupVersion::V2,
        CgroupVersion::V2 => CgroupVersion::V1,
    };
    let err = LinuxCgroups::with_version(other).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn unknown_cgroups_are_not_found_and_destroying_them_is_a_no_op() {
    let cg = LinuxCgroups::detect();
    let name = format!("kata-agent-test-{}-absent", std::process::id());
    assert_eq!(cg.stats(&name).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(cg.pids(&name).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(
        cg.freeze(&name, true).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    cg.destroy(&name).unwrap();
    assert_eq!(
        cg.create("../escape").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        cg.add_process(&name, 0).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Directories the cgroup `rel` may have: one per mounted controller hierarchy (v1), or one (v2).
fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut dirs = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = right.split(' ').next().unwrap_or("");
        let v2 = detect_version() == CgroupVersion::V2;
        let wanted = if v2 { "cgroup2" } else { "cgroup" };
        if fstype != wanted {
            continue;
        }
        if let Some(mount_point) = left.split(' ').nth(4) {
            if v2 && mount_point != "/sys/fs/cgroup" {
                continue;
            }
            dirs.push(Path::new(mount_point).join(rel));
        }
    }
    dirs
}

/// A uniquely named test cgroup and the child in it; dropping it kills the child and removes
/// every directory left behind, even when the test failed half-way.
struct TestCgroup {
    name: String,
    child: Option<Child>,
}

impl TestCgroup {
    fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TestCgroup {
            name: format!("kata-agent-test-{}-{n}", std::process::id()),
            child: None,
        }
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.kill_child();
        for rel in [format!("{}/inner", self.name), self.name.clone()] {
            for dir in cgroup_dirs(&rel) {
                if !dir.exists() {
                    continue;
                }
                let _ = fs::write(dir.join("freezer.state"), "THAWED");
                let _ = fs::write(dir.join("cgroup.freeze"), "0");
                let root = dir
                    .ancestors()
                    .nth(rel.split('/').count())
                    .map(Path::to_owned);
                if let (Ok(procs), Some(root)) =
                    (fs::read_to_string(dir.join("cgroup.procs")), root)
                {
                    for pid in procs.lines() {
                        let _ = fs::write(root.join("cgroup.procs"), pid);
                    }
                }
                for _ in 0..20 {
                    if fs::remove_dir(&dir).is_ok() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

fn proc_state(pid: i32) -> String {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().next().unwrap().to_owned()
}

fn read_trimmed(path: PathBuf) -> String {
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_owned()
}

#[test]
#[ignore = "needs root: cgroup v1 hierarchy"]
fn real_cgroup_lifecycle() {
    require_root("creates cgroups under /sys/fs/cgroup");
    let version = detect_version();
    let cg = LinuxCgroups::with_version(version).unwrap();
    let mut test = TestCgroup::new();
    let path = format!("/{}", test.name);
    let dir = |ctrl: &str| -> PathBuf {
        match version {
            CgroupVersion::V1 => Path::new("/sys/fs/cgroup").join(ctrl).join(&test.name),
            CgroupVersion::V2 => Path::new("/sys/fs/cgroup").join(&test.name),
        }
    };

    cg.create(&path).unwrap();
    cg.create(&path).unwrap(); // existing is fine
    for ctrl in ["memory", "cpu", "pids", "freezer"] {
        assert!(dir(ctrl).is_dir(), "{} missing", dir(ctrl).display());
    }

    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .build()
                .unwrap(),
        )
        .cpu(LinuxCpuBuilder::default().shares(512u64).build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
        .build()
        .unwrap();
    cg.set(&path, &resources).unwrap();
    match version {
        CgroupVersion::V1 => {
            assert_eq!(
                read_trimmed(dir("memory").join("memory.limit_in_bytes")),
                "67108864"
            );
            assert_eq!(read_trimmed(dir("cpu").join("cpu.shares")), "512");
        }
        CgroupVersion::V2 => {
            assert_eq!(read_trimmed(dir("memory").join("memory.max")), "67108864");
            // 512 shares as a weight: 1 + (512 - 2) * 9999 / 262142.
            assert_eq!(read_trimmed(dir("cpu").join("cpu.weight")), "20");
        }
    }
    assert_eq!(read_trimmed(dir("pids").join("pids.max")), "64");

    let child = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    test.child = Some(child);
    cg.add_process(&path, pid).unwrap();
    assert_eq!(cg.pids(&path).unwrap(), vec![pid]);
    let membership = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(membership.contains(&test.name), "{membership}");

    // An errno from the kernel survives the seam: no such process.
    let err = cg.add_process(&path, i32::MAX).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "{err}");

    let stats = cg.stats(&path).unwrap();
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, 64);
    assert_eq!(stats.memory.usage.limit, 64 << 20);
    assert!(!stats.memory.stats.is_empty());
    if version == CgroupVersion::V1 {
        assert!(!stats.cpu.percpu_usage.is_empty());
    }

    cg.freeze(&path, true).unwrap();
    match version {
        CgroupVersion::V1 => {
            assert_eq!(read_trimmed(dir("freezer").join("freezer.state")), "FROZEN")
        }
        CgroupVersion::V2 => assert_eq!(read_trimmed(dir("freezer").join("cgroup.freeze")), "1"),
    }
    if version == CgroupVersion::V1 {
        // A v1-frozen task sleeps uninterruptibly.
        assert_eq!(proc_state(pid), "D");
    }
    cg.freeze(&path, false).unwrap();
    match version {
        CgroupVersion::V1 => {
            assert_eq!(read_trimmed(dir("freezer").join("freezer.state")), "THAWED")
        }
        CgroupVersion::V2 => assert_eq!(read_trimmed(dir("freezer").join("cgroup.freeze")), "0"),
    }
    assert_ne!(proc_state(pid), "D");

    let inner = format!("{path}/inner");
    cg.create(&inner).unwrap();
    assert!(dir("memory").join("inner").is_dir());
    cg.destroy(&inner).unwrap();
    assert!(!dir("memory").join("inner").exists());

    test.kill_child();
    cg.destroy(&path).unwrap();
    for leftover in cgroup_dirs(&test.name) {
        assert!(!leftover.exists(), "{} left behind", leftover.display());
    }
    cg.destroy(&path).unwrap(); // gone already: a no-op
    assert_eq!(cg.stats(&path).unwrap_err().kind(), io::ErrorKind::NotFound);
}
