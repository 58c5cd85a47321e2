//! The clone into a cgroup v2 directory, on a cgroup2 hierarchy mounted on a temporary folder
//! (the host runs cgroup v1; real v2 runs in the QEMU guest).

use super::clone;
use super::*;

/// A cgroup2 mount on a temp dir, unmounted on drop.
struct Cgroup2 {
    dir: tempfile::TempDir,
}

impl Drop for Cgroup2 {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.dir.path().join("born-here"));
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
#[ignore = "needs root: mounts cgroup2"]
fn the_process_is_born_non_dumpable_in_the_cgroup_v2_directory() {
    let dir = tempfile::tempdir().unwrap();
    nix::mount::mount(
        Some("cgroup2"),
        dir.path(),
        Some("cgroup2"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .expect("mount cgroup2");
    let cg = Cgroup2 { dir };
    let target = cg.dir.path().join("born-here");
    std::fs::create_dir(&target).unwrap();
    let fd = OwnedFd::from(std::fs::File::open(&target).unwrap());
    let (mut parent, child) = UnixStream::pair().unwrap();
    // SAFETY: the child makes raw system calls only: whether it is dumpable, then a read of
    // its own cgroup file into a stack buffer, each written to the socket, _exit.
    let pid = unsafe { clone::fork_into(Some(fd.as_raw_fd())) }.unwrap();
    if pid == 0 {
        // SAFETY: in the child: raw system calls on a stack buffer and an inherited socket.
        unsafe {
            let dumpable = b'0' + libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) as u8;
            libc::write(child.as_raw_fd(), (&raw const dumpable).cast(), 1);
            let mut buf = [0u8; 256];
            let f = libc::open(c"/proc/self/cgroup".as_ptr(), libc::O_RDONLY);
            let n = libc::read(f, buf.as_mut_ptr().cast(), buf.len());
            libc::write(child.as_raw_fd(), buf.as_ptr().cast(), n.max(0) as usize);
            libc::_exit(0);
        }
    }
    drop(child);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut parent, &mut text).unwrap();
    let mut status = 0;
    // SAFETY: waitpid on our own child into a local.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let text = text
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("the child was dumpable from birth: {text:?}"));
    assert!(
        text.lines().any(|l| l == "0::/born-here"),
        "the child's cgroups: {text:?}"
    );
    assert!(
        std::fs::read_to_string(target.join("cgroup.procs"))
            .unwrap()
            .is_empty(),
        "the child is gone"
    );
}

fn setup_with_seccomp(id: &str) -> Arc<ContainerSetup> {
    let spec: Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "/"},
        "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}}
    }))
    .unwrap();
    Arc::new(ContainerSetup {
        id: id.into(),
        spec,
        no_pivot_root: false,
    })
}

#[test]
fn the_seccomp_program_is_compiled_once_per_container_and_dropped_with_it() {
    let direct = DirectExec::default();
    // This process stands for the init: every namespace is the same.
    let me = std::process::id() as i32;
    let a = setup_with_seccomp("a");
    let first = direct.prepared(&a, me).unwrap();
    assert!(first.seccomp.is_some());
    assert_eq!((first.ns_flags, first.join_pid_ns), (0, false));
    let again = direct.prepared(&a, me).unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "compiled again for the same container"
    );
    // Another container with the same spec gets its own.
    let b = setup_with_seccomp("b");
    let other = direct.prepared(&b, me).unwrap();
    assert!(!Arc::ptr_eq(&first, &other));
    drop(a);
    drop((first, again));
    let _ = direct.prepared(&b, me).unwrap();
    let cache = direct.prepared.lock().unwrap();
    assert_eq!(cache.len(), 1, "the removed container's entry is gone");
}
