//! A container process is in the container's cgroup before anything in the container can see
//! it (runc CVE-2016-9962), by construction rather than by a write after the fact:
//!
//! - cgroup v2: the process is created in the cgroup by `clone3(CLONE_INTO_CGROUP)` on a
//!   descriptor of the container's cgroup directory ([`born_in`]). The kernel attaches it there
//!   inside the fork itself, before the new task can run or be signalled, so there is no instant
//!   at which it is in the container's pid namespace but outside the cgroup. Both a new
//!   container's setup helper and an exec are born this way (the init then roots its cgroup
//!   namespace there).
//! - cgroup v1 (no `CLONE_INTO_CGROUP`): the exec's first child moves itself (`tasks`) into the
//!   container's cgroup in every hierarchy ([`v1_tasks`]) before it enters the pid namespace and
//!   forks, so the exec is born there. A v1 init is placed by the agent before it runs anything
//!   of the container.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::host::CgroupVersion;

/// Where the guest mounts its cgroup hierarchies.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The spec's `linux.cgroupsPath` (the container's cgroup, as the agent wrote it), relative to
/// a hierarchy's root; `None` for a container without a cgroup of its own.
fn relative_path(spec: &Spec) -> Option<PathBuf> {
    let cgroup = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_default();
    let relative = cgroup.strip_prefix("/").unwrap_or(&cgroup).to_path_buf();
    (!relative.as_os_str().is_empty()).then_some(relative)
}

/// On cgroup v2, the container's cgroup directory, for `clone3(CLONE_INTO_CGROUP)`; `None` on
/// v1 or for a container without a cgroup of its own (the agent always gives one).
pub(super) fn born_in(spec: &Spec) -> io::Result<Option<OwnedFd>> {
    dir_v2(spec).map(|dir| open_dir(&dir)).transpose()
}

/// On cgroup v2, the path of the container's cgroup directory, as [`born_in`] opens it.
pub(super) fn dir_v2(spec: &Spec) -> Option<PathBuf> {
    let relative = relative_path(spec)?;
    (crate::linux::detect_version() == CgroupVersion::V2)
        .then(|| Path::new(CGROUP_ROOT).join(relative))
}

/// On cgroup v1, the container's `tasks` file in each hierarchy it has a cgroup in (read from
/// the mount table: find them once per container); empty for a container without a cgroup of
/// its own.
pub(super) fn v1_tasks(spec: &Spec) -> io::Result<Vec<PathBuf>> {
    let Some(relative) = relative_path(spec) else {
        return Ok(Vec::new());
    };
    let roots: Vec<PathBuf> = super::cgroup_mount::hierarchies()
        .map_err(|e| io::Error::other(e.to_string()))?
        .into_iter()
        .map(|(_, mount_point)| mount_point)
        .collect();
    let files: Vec<PathBuf> = roots
        .into_iter()
        .map(|root| root.join(&relative).join("tasks"))
        // No cgroup in a hierarchy mounted after the container's creation.
        .filter(|tasks| tasks.exists())
        .collect();
    if files.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "the container's cgroup /{} exists nowhere",
                relative.display()
            ),
        ));
    }
    Ok(files)
}

/// Opens a `tasks` file for writing.
pub(super) fn open_tasks(tasks: &Path) -> io::Result<OwnedFd> {
    open(tasks, 0, true)
}

/// Opens a cgroup v2 directory for `clone3(CLONE_INTO_CGROUP)`.
pub(super) fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    open(dir, libc::O_RDONLY | libc::O_DIRECTORY, false)
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
