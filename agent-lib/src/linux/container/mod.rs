//! Container processes: the work of runc (or Kata's rustjail) inside the agent.
//!
//! A process entering a running container ([`LaunchTarget::ContainerExec`]) does not go
//! through the setup helper described here: it is forked and set up directly ([`direct`]). The
//! helper creates containers.
//!
//! [`LaunchTarget::ContainerExec`]: crate::host::LaunchTarget::ContainerExec
//! # Mechanism
//!
//! Setting a container up takes hundreds of system calls, file parsing and allocation, which a
//! child forked from the multithreaded async agent cannot safely do (another thread may hold the
//! allocator's lock at the fork). So the agent **re-executes itself as a setup helper**, as
//! Kata's `kata-agent init` does: a fresh, single-threaded process that may allocate, parse JSON
//! and call `unshare(CLONE_NEWUSER)`.
//!
//! 1. The parent ([`spawn`]) makes, once per launcher, a **sealed memfd copy** of the agent
//!    binary and always executes that copy (`execveat(AT_EMPTY_PATH)`), so a container process
//!    that reaches the helper's `/proc/self/exe` can never overwrite the agent binary (runc
//!    CVE-2019-5736).
//! 2. It forks the helper with a raw `clone(2)` on a short-lived dedicated thread. The thread first
//!    joins the pid namespace to run in, if any (`setns` of the sandbox's or the container's pid
//!    namespace: `setns(CLONE_NEWPID)` only changes the namespace of the thread's future
//!    children); `clone` creates a new pid and user namespace when the spec asks for them, so
//!    the helper is the container's pid 1, a direct child of the agent (its exit goes to the
//!    agent's [`Reaper`](super::Reaper)), and every namespace it creates later is owned by the
//!    new user namespace. Between `clone` and `execveat` the child makes raw system calls only.
//!    Nothing in the container can reach the helper (runc CVE-2016-9962): the child makes itself
//!    non-dumpable first, the helper again first thing after its exec and after every namespace
//!    entry and credential change; on cgroup v2 the helper is born in the container's cgroup
//!    (`clone3(CLONE_INTO_CGROUP)` on the cgroup's directory, [`cgroup_join`]) rather than moved
//!    there after `Ready`.
//! 3. With a new user namespace the child waits (one byte on its socket) until the parent has
//!    written its uid and gid maps, then becomes root of the namespace before the exec, so the
//!    helper keeps its capabilities there.
//! 4. The helper gets its configuration ([`HelperConfig`], JSON) over a `socketpair` on fd 3 and
//!    reports back on the same socket ([`protocol`]): `Ready` once everything up to the exec is
//!    done, or `Failed` naming the step (`mount proc on /proc: EPERM`). It never writes to its
//!    stdio, which already belongs to the container.
//! 5. The parent answers `Go` at once, or, for a held process, when
//!    [`Launcher::release`](crate::host::Launcher::release) is called (the StartContainer "exec
//!    fifo" role). After `Go` the helper runs the startContainer hooks, installs seccomp (when
//!    `noNewPrivileges` lets it be last) and executes the program; the socket is close-on-exec,
//!    so a clean end of file tells the parent the exec happened, and a `Failed` message that it
//!    did not.
//! 6. On any failure the parent kills and reaps the helper before returning the error: no
//!    process, no zombie, no descriptor is left.
//!
//! The container process inherits no descriptor of the agent's but its three standard streams:
//! the child marks everything else close-on-exec before the helper starts, and the helper does it
//! again before the final exec; its working directory is always a path resolved inside the
//! container root, never an inherited directory (runc CVE-2024-21626).

mod beneath;
mod capabilities;
mod cgroup_join;
mod cgroup_mount;
mod devices;
mod direct;
mod error;
mod exec;
mod helper;
mod hooks;
mod in_root;
mod lsm;
mod mounts;
mod namespaces;
mod new_mount;
mod paths;
mod protocol;
mod rootfs;
mod seccomp;
mod source;
mod spawn;

use std::path::PathBuf;

use oci_spec::runtime::{Process, Spec};
use serde::{Deserialize, Serialize};

pub(crate) use direct::DirectExec;
pub use error::SetupError;
pub use helper::{HELPER_ARG, run_if_helper};
pub(crate) use spawn::{ChildStdio, ContainerSpawner};

/// The fd on which the helper finds its socket to the agent.
const SOCKET_FD: i32 = 3;

/// What the helper is asked to do, sent as JSON over its socket.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct HelperConfig {
    /// The container id (for hooks' state and messages).
    id: String,
    /// The container's spec.
    spec: Spec,
    /// Use `MS_MOVE` + `chroot` instead of `pivot_root` (initramfs guest root).
    no_pivot_root: bool,
    /// The program and its credentials, resolved by the agent.
    program: Program,
    /// The OCI process whose capabilities, rlimits, `noNewPrivileges` apply.
    process: Process,
    /// stdio is a terminal.
    tty: bool,
}

/// The program to execute and the credentials to run it with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Program {
    args: Vec<String>,
    env: Vec<String>,
    cwd: PathBuf,
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
}
