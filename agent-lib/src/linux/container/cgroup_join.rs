//! An exec's helper is in the container's cgroup before anything in the container can see it
//! (runc CVE-2016-9962). On cgroup v1 the short-lived launch thread moves itself (`tasks`,
//! per thread) into the container's cgroup in every hierarchy before it enters the pid
//! namespace and clones, so the child is born there. On cgroup v2 (no per-thread placement)
//! the child writes itself to `cgroup.procs` as its first act after `clone`, before it executes
//! the helper image, enters the container or changes credentials.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::host::CgroupVersion;

/// Where the guest mounts its cgroup hierarchies.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The files through which an exec joins the container's cgroup, opened for writing
/// (close-on-exec); `0` written to each moves the writer.
#[derive(Debug, Default)]
pub(super) struct Join {
    /// cgroup v1: each hierarchy's `tasks`, written by the launch thread before the clone.
    pub(super) thread: Vec<OwnedFd>,
    /// cgroup v2: `cgroup.procs`, written by the child first thing.
    pub(super) child: Vec<OwnedFd>,
}

/// The [`Join`] of the container's cgroup in every hierarchy it has one in. The spec's
/// `linux.cgroupsPath` is the container's cgroup, as the agent wrote it; none joins nothing.
pub(super) fn join_files(spec: &Spec) -> io::Result<Join> {
    let cgroup = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_default();
    let relative = cgroup.strip_prefix("/").unwrap_or(&cgroup).to_path_buf();
    if relative.as_os_str().is_empty() {
        // A container without a cgroup of its own (the agent always gives one): nothing to join.
        return Ok(Join::default());
    }
    let v2 = crate::linux::detect_version() == CgroupVersion::V2;
    let roots: Vec<PathBuf> = if v2 {
        vec![PathBuf::from(CGROUP_ROOT)]
    } else {
        super::cgroup_mount::hierarchies()
            .map_err(|e| io::Error::other(e.to_string()))?
            .into_iter()
            .map(|(_, mount_point)| mount_point)
            .collect()
    };
    let mut files = Vec::new();
    for root in roots {
        let procs = root
            .join(&relative)
            .join(if v2 { "cgroup.procs" } else { "tasks" });
        if !procs.exists() {
            // No cgroup in this hierarchy (one mounted after the container's creation).
            continue;
        }
        files.push(open(&procs)?);
    }
    if files.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the container's cgroup {} exists nowhere", cgroup.display()),
        ));
    }
    Ok(if v2 {
        Join {
            thread: Vec::new(),
            child: files,
        }
    } else {
        Join {
            thread: files,
            child: Vec::new(),
        }
    })
}

/// Moves the calling thread into the cgroups of `files` (`0` names the writer).
pub(super) fn join_thread(files: &[OwnedFd]) -> io::Result<()> {
    for fd in files {
        // SAFETY: write reads one byte of a static string.
        if unsafe { libc::write(fd.as_raw_fd(), c"0".as_ptr().cast(), 1) } != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn open(path: &Path) -> io::Result<OwnedFd> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))
}
