//! A container helper is in the container's cgroup before anything in the container can see it
//! (runc CVE-2016-9962), by construction rather than by a write after the fact:
//!
//! - cgroup v2: the helper is created in the cgroup by `clone3(CLONE_INTO_CGROUP)` on a
//!   descriptor of the container's cgroup directory. The kernel attaches it there inside the
//!   fork itself, before the new task can run or be signalled, so there is no instant at which
//!   it is in the container's pid namespace but outside the cgroup. Both an exec's helper and a
//!   new container's init are born this way (the init then roots its cgroup namespace there).
//! - cgroup v1 (no `CLONE_INTO_CGROUP`): the short-lived launch thread moves itself (`tasks`,
//!   per thread) into the container's cgroup in every hierarchy before it enters the pid
//!   namespace and clones, so the child is born there. Only an exec needs this; a v1 init is
//!   placed by the agent before it runs anything of the container.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::host::CgroupVersion;

/// Where the guest mounts its cgroup hierarchies.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How a helper joins the container's cgroup.
#[derive(Debug, Default)]
pub(super) enum Join {
    /// Not at all (a v1 init, or a container without a cgroup of its own).
    #[default]
    None,
    /// cgroup v1: each hierarchy's `tasks`, written by the launch thread before the clone.
    Thread(Vec<OwnedFd>),
    /// cgroup v2: the cgroup directory, handed to `clone3(CLONE_INTO_CGROUP)`.
    Born(OwnedFd),
}

impl Join {
    /// The cgroup directory to clone into, on v2.
    pub(super) fn born_in(&self) -> Option<&OwnedFd> {
        match self {
            Join::Born(fd) => Some(fd),
            _ => None,
        }
    }
}

/// The [`Join`] of the container's cgroup for a helper (`exec` for a process entering a running
/// container, else a new container's init). The spec's `linux.cgroupsPath` is the container's
/// cgroup, as the agent wrote it; none joins nothing.
pub(super) fn join_files(spec: &Spec, exec: bool) -> io::Result<Join> {
    let cgroup = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_default();
    let relative = cgroup.strip_prefix("/").unwrap_or(&cgroup).to_path_buf();
    if relative.as_os_str().is_empty() {
        // A container without a cgroup of its own (the agent always gives one): nothing to join.
        return Ok(Join::None);
    }
    if crate::linux::detect_version() == CgroupVersion::V2 {
        let dir = Path::new(CGROUP_ROOT).join(&relative);
        return open(&dir, libc::O_RDONLY | libc::O_DIRECTORY, false).map(Join::Born);
    }
    if !exec {
        return Ok(Join::None);
    }
    let roots: Vec<PathBuf> = super::cgroup_mount::hierarchies()
        .map_err(|e| io::Error::other(e.to_string()))?
        .into_iter()
        .map(|(_, mount_point)| mount_point)
        .collect();
    let mut files = Vec::new();
    for root in roots {
        let tasks = root.join(&relative).join("tasks");
        if !tasks.exists() {
            // No cgroup in this hierarchy (one mounted after the container's creation).
            continue;
        }
        files.push(open(&tasks, 0, true)?);
    }
    if files.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the container's cgroup {} exists nowhere", cgroup.display()),
        ));
    }
    Ok(Join::Thread(files))
}

/// Moves the calling thread into the cgroups of a v1 [`Join`] (`0` names the writer).
pub(super) fn join_thread(join: &Join) -> io::Result<()> {
    let Join::Thread(files) = join else {
        return Ok(());
    };
    for fd in files {
        // SAFETY: write reads one byte of a static string.
        if unsafe { libc::write(fd.as_raw_fd(), c"0".as_ptr().cast(), 1) } != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn open(path: &Path, flags: i32, write: bool) -> io::Result<OwnedFd> {
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(flags | libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))
}
