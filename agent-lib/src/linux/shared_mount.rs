//! [`share_mount`]: a mount of one container attached in another, with open_tree(2) and
//! move_mount(2) (Linux 5.2+), as Kata's `setup_shared_mounts`.
//!
//! Both mount namespaces are opened by fd from `/proc/<pid>/ns/mnt` first. The agent reaps
//! the containers' inits, so a pid it names cannot be reused before the agent has seen it exit.
//! The namespace switches happen on a dedicated thread that first unshares its filesystem
//! attributes (setns(2) into a mount namespace refuses a thread sharing them, and moves its
//! root and working directory): no other thread, of the runtime or its blocking pool, ever
//! runs in a container's mount namespace. The thread ends with the operation.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns, unshare};

use super::mounter::parse_mountinfo;
use crate::host::ShareMount;

/// `OPEN_TREE_CLONE`: a detached copy of the mount, not the mount itself.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `AT_RECURSIVE`: the mounts beneath it too.
const AT_RECURSIVE: libc::c_uint = 0x8000;
/// `MOVE_MOUNT_F_EMPTY_PATH`: the source is the fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
/// How often the source's mount table is read while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Clones `share.src_path` of the source's namespace onto `share.dst_path` of the
/// destination's. Blocks up to `share.wait` (plus the work itself).
pub(crate) fn share_mount(share: &ShareMount) -> io::Result<()> {
    let src_ns = open_ns(share.src_pid)?;
    let dst_ns = open_ns(share.dst_pid)?;
    wait_for_mount(share.src_pid, &share.src_path, share.wait)?;
    let src = c_path(&share.src_path)?;
    let dst = share.dst_path.clone();
    let worker = std::thread::Builder::new()
        .name("shared-mount".into())
        .spawn(move || in_namespaces(&src_ns, &src, &dst_ns, &dst))?;
    worker
        .join()
        .map_err(|_| io::Error::other("the shared-mount thread panicked"))?
}

fn open_ns(pid: i32) -> io::Result<File> {
    File::open(format!("/proc/{pid}/ns/mnt"))
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a path"))
}

/// Waits until `path` is a mount point in process `pid`'s view (its mountinfo shows mount
/// points relative to its root).
fn wait_for_mount(pid: i32, path: &Path, wait: Duration) -> io::Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        let table = std::fs::read(format!("/proc/{pid}/mountinfo"))?;
        if parse_mountinfo(&table).iter().any(|m| m.target == path) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} is not a mount point of the source container after {wait:?}",
                    path.display()
                ),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// On the dedicated thread: clone in the source namespace, attach in the destination's.
fn in_namespaces(src_ns: &File, src: &CString, dst_ns: &File, dst: &PathBuf) -> io::Result<()> {
    unshare(CloneFlags::CLONE_FS)?;
    setns(src_ns, CloneFlags::CLONE_NEWNS)?;
    let flags = OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: open_tree reads a NUL-terminated path that lives across the call.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, src.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("open_tree returned a bad fd"))?;
    // SAFETY: open_tree returned this fd to us and nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(fd) };
    setns(dst_ns, CloneFlags::CLONE_NEWNS)?;
    // The thread's root is now the destination container's: the path stays inside it.
    std::fs::create_dir_all(dst)?;
    let target = c_path(dst)?;
    let empty = c"";
    // SAFETY: move_mount reads two NUL-terminated strings that live across the call; the fd
    // is open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
