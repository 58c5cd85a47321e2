//! The agent's side of a container launch: the sealed helper image, the raw `clone` of the
//! helper, uid/gid maps, the protocol, hold/release, and clean-up on failure.

use std::collections::HashMap;
use std::ffi::{CStr, c_char};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Process};
use tokio::sync::oneshot;

use super::cgroup_join;
use super::protocol::{self, Order, Report};
use super::{HelperConfig, Program, SOCKET_FD};
use crate::host::{ExitStatus, LaunchRequest, LaunchTarget};
use crate::linux::reaper::Reaper;

/// Descriptors handed to the child are first moved at or above this number, so that moving them
/// onto 0..=3 in the child can never overwrite one not yet moved.
const HIGH_FD: RawFd = 10;

/// Starts container processes through the setup helper; keeps the held ones.
#[derive(Debug)]
pub(crate) struct ContainerSpawner {
    /// The agent binary to copy into the sealed image.
    helper_path: PathBuf,
    /// The sealed memfd copy, made at the first container launch.
    image: Mutex<Option<Arc<OwnedFd>>>,
    /// Held processes: the socket on which `Go` releases each.
    held: Mutex<HashMap<i32, UnixStream>>,
}

/// The child's ends of its standard streams, in order stdin, stdout, stderr.
pub(crate) type ChildStdio = [OwnedFd; 3];

/// Which pid namespace the child is created in.
enum PidNs {
    /// The agent's.
    Same,
    /// A new one (`CLONE_NEWPID`).
    New,
    /// The one this descriptor (a namespace file or a pidfd) refers to.
    Join(OwnedFd),
}

/// Everything the raw child needs, prepared so that it makes system calls only.
struct ChildPlan {
    stdio: [RawFd; 3],
    sock: RawFd,
    image: RawFd,
    tty: bool,
    become_root: bool,
    argv: [*const c_char; 3],
    envp: [*const c_char; 1],
}

impl ContainerSpawner {
    /// A spawner executing (a sealed copy of) `helper_path`.
    pub(crate) fn new(helper_path: PathBuf) -> Self {
        ContainerSpawner {
            helper_path,
            image: Mutex::new(None),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a container's init. On error the helper has been killed and reaped.
    pub(crate) fn launch(
        &self,
        reaper: &Reaper,
        request: &LaunchRequest,
        stdio: ChildStdio,
        tty: bool,
    ) -> io::Result<(i32, oneshot::Receiver<ExitStatus>)> {
        let (config, pid_ns, new_user, maps) = plan(request, tty)?;
        let image = self.image()?;
        let (mut sock, child_sock) = UnixStream::pair()?;
        let child_sock = above(child_sock.into())?;
        let stdio = stdio.map(above);
        let [stdin, stdout, stderr] = stdio;
        let stdio = [stdin?, stdout?, stderr?];
        let cgroup = cgroup_join::born_in(&config.spec)
            .map_err(|e| context(e, "join the container's cgroup"))?;
        let mut flags = libc::SIGCHLD as libc::c_ulong;
        if new_user {
            flags |= libc::CLONE_NEWUSER as libc::c_ulong;
        }
        if matches!(pid_ns, PidNs::New) {
            flags |= libc::CLONE_NEWPID as libc::c_ulong;
        }
        let child = ChildPlan {
            stdio: stdio.each_ref().map(|fd| fd.as_raw_fd()),
            sock: child_sock.as_raw_fd(),
            image: image.as_raw_fd(),
            tty,
            become_root: new_user,
            argv: [
                c"kata-agent".as_ptr(),
                HELPER_CSTR.as_ptr(),
                std::ptr::null(),
            ],
            envp: [std::ptr::null()],
        };

        let (pid, exit) = reaper.spawn_registered(|| {
            let pid = clone_on_thread(flags, &pid_ns, cgroup.as_ref(), &child)?;
            Ok((pid, pid))
        })?;
        drop((stdio, child_sock, pid_ns, cgroup));
        let guard = KillOnError { reaper, pid };
        let id = config.id.clone();
        let setup = (|| {
            if new_user {
                write_maps(pid, &maps)?;
            }
            sock.write_all(b"G")
                .map_err(|e| context(e, "start the setup helper"))?;
            protocol::send(&mut sock, &config)
                .map_err(|e| context(e, "send the helper its configuration"))?;
            match protocol::recv::<Report>(&mut sock) {
                Ok(Some(Report::Ready)) => Ok(()),
                Ok(Some(Report::Failed { message, errno })) => Err(failed(message, errno)),
                Ok(None) => Err(io::Error::other(
                    "the container setup helper exited before reporting",
                )),
                Err(e) => Err(context(e, "read the setup helper's report")),
            }
        })();
        setup.map_err(|e| context(e, &format!("container {id}")))?;
        if request.hold {
            self.lock_held().insert(pid, sock);
        } else {
            go(&mut sock).map_err(|e| context(e, &format!("container {id}")))?;
        }
        guard.disarm();
        Ok((pid, exit))
    }

    /// Lets a held process execute its program.
    pub(crate) fn release(&self, reaper: &Reaper, pid: i32) -> io::Result<()> {
        let sock = self.lock_held().remove(&pid);
        let Some(mut sock) = sock else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("release: pid {pid} is not held"),
            ));
        };
        let guard = KillOnError { reaper, pid };
        go(&mut sock).map_err(|e| context(e, &format!("release pid {pid}")))?;
        guard.disarm();
        Ok(())
    }

    fn lock_held(&self) -> MutexGuard<'_, HashMap<i32, UnixStream>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        // A held process that died (killed before its release) has closed its end: forget it.
        held.retain(|_, sock| !peer_gone(sock));
        held
    }

    /// The sealed image, made on first use.
    fn image(&self) -> io::Result<Arc<OwnedFd>> {
        let mut image = self.image.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fd) = image.as_ref() {
            return Ok(Arc::clone(fd));
        }
        let fd = Arc::new(sealed_copy(&self.helper_path)?);
        *image = Some(Arc::clone(&fd));
        Ok(fd)
    }
}

static HELPER_CSTR: &CStr = c"init";

/// Sends `Go` and waits for the exec: end of file, or a `Failed` report.
fn go(sock: &mut UnixStream) -> io::Result<()> {
    protocol::send(sock, &Order::Go).map_err(|e| context(e, "release the process"))?;
    match protocol::recv::<Report>(sock) {
        Ok(None) => Ok(()),
        Ok(Some(Report::Failed { message, errno })) => Err(failed(message, errno)),
        Ok(Some(Report::Ready)) => Err(io::Error::other("unexpected report after Go")),
        Err(e) => Err(context(e, "wait for the exec")),
    }
}

/// Kills and reaps the helper unless disarmed.
struct KillOnError<'a> {
    reaper: &'a Reaper,
    pid: i32,
}

impl KillOnError<'_> {
    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for KillOnError<'_> {
    fn drop(&mut self) {
        self.reaper.kill_and_reap(self.pid);
    }
}

/// What the launch needs from the request: the helper's configuration, its pid namespace,
/// whether `clone` creates a user namespace, and the uid/gid maps to write for it.
fn plan(request: &LaunchRequest, tty: bool) -> io::Result<(HelperConfig, PidNs, bool, IdMaps)> {
    let p = &request.process;
    let program = Program {
        args: p.args.clone(),
        env: p.env.clone(),
        cwd: p.cwd.clone(),
        uid: p.uid,
        gid: p.gid,
        additional_gids: p.additional_gids.clone(),
    };
    if program.args.is_empty() {
        return Err(invalid("launch: empty argv"));
    }
    let LaunchTarget::ContainerInit(setup) = &request.target else {
        return Err(invalid("not a container init launch"));
    };
    let linux = setup.spec.linux().clone().unwrap_or_default();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut pid_ns = PidNs::Same;
    let mut new_user = false;
    for ns in &namespaces {
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::Pid, None) => pid_ns = PidNs::New,
            (LinuxNamespaceType::Pid, Some(path)) => pid_ns = PidNs::Join(open_ns(path)?),
            (LinuxNamespaceType::User, None) => new_user = true,
            _ => {}
        }
    }
    let maps = IdMaps {
        uid: linux.uid_mappings().clone().unwrap_or_default(),
        gid: linux.gid_mappings().clone().unwrap_or_default(),
    };
    if new_user && (maps.uid.is_empty() || maps.gid.is_empty()) {
        return Err(invalid(
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    let config = HelperConfig {
        id: setup.id.clone(),
        spec: setup.spec.clone(),
        no_pivot_root: setup.no_pivot_root,
        program,
        process: setup
            .spec
            .process()
            .clone()
            .unwrap_or_else(Process::default),
        tty,
    };
    Ok((config, pid_ns, new_user, maps))
}

/// The uid and gid maps of a new user namespace.
#[derive(Default)]
struct IdMaps {
    uid: Vec<LinuxIdMapping>,
    gid: Vec<LinuxIdMapping>,
}

fn write_maps(pid: i32, maps: &IdMaps) -> io::Result<()> {
    for (file, list) in [("uid_map", &maps.uid), ("gid_map", &maps.gid)] {
        let text: String = list
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| context(e, &format!("write {path}")))?;
    }
    Ok(())
}

fn open_ns(path: &Path) -> io::Result<OwnedFd> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| context(e, &format!("open namespace {}", path.display())))
}

/// A duplicate of `fd` at or above [`HIGH_FD`], close-on-exec; `fd` is closed.
pub(super) fn above(fd: OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one we then own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Whether the other end of a held process's socket is closed (the process died).
pub(super) fn peer_gone(sock: &UnixStream) -> bool {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd, no timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0
}

/// A memfd holding a copy of `path`, sealed against any change, at or above [`HIGH_FD`].
fn sealed_copy(path: &Path) -> io::Result<OwnedFd> {
    let step = |e: io::Error| context(e, &format!("seal a copy of {}", path.display()));
    let mut src = File::open(path).map_err(step)?;
    // SAFETY: memfd_create with a static name; the result is a new descriptor we own.
    let raw = unsafe {
        libc::memfd_create(
            c"kata-agent".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if raw < 0 {
        return Err(step(io::Error::last_os_error()));
    }
    // SAFETY: see above.
    let mut image = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    io::copy(&mut src, &mut image).map_err(step)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on our memfd.
    if unsafe { libc::fcntl(image.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(step(io::Error::last_os_error()));
    }
    above(image.into())
}

/// Clones the child on a dedicated thread that first enters `pid_ns`; on cgroup v2 the clone
/// itself puts the child into the container's cgroup `cgroup` (on v1 the agent places the init
/// before it runs anything of the container). Returns its pid; the thread ends with the call.
fn clone_on_thread(
    flags: libc::c_ulong,
    pid_ns: &PidNs,
    cgroup: Option<&OwnedFd>,
    child: &ChildPlan,
) -> io::Result<i32> {
    // The plan holds raw pointers (to 'static strings): pass its address across.
    let child = ChildPtr(child);
    std::thread::scope(|s| {
        let thread = s.spawn(move || {
            let child = child;
            if let PidNs::Join(fd) = pid_ns {
                nix::sched::setns(fd, CloneFlags::CLONE_NEWPID)
                    .map_err(|e| context(e.into(), "join the pid namespace"))?;
            }
            let pid = match cgroup {
                Some(dir) => clone_into(flags, dir),
                // SAFETY: a fork-like clone (no CLONE_VM, no new stack); the child runs only
                // `child_main`, which makes raw system calls and never returns.
                None => unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) },
            };
            if pid == 0 {
                // SAFETY: in the child; see `child_main`.
                unsafe { child_main(&*child.0) }
            }
            if pid < 0 {
                let e = io::Error::last_os_error();
                // The kernel's answer to a fork into a pid namespace whose init has exited.
                let what = match (pid_ns, e.raw_os_error()) {
                    (PidNs::Join(_), Some(libc::ENOMEM)) => {
                        "clone the setup helper into the pid namespace (its init has exited)"
                    }
                    _ => "clone the setup helper",
                };
                return Err(context(e, what));
            }
            Ok(pid as i32)
        });
        thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the launch thread panicked")))
    })
}

/// `CLONE_INTO_CGROUP` (Linux ≥ 5.7): clone3's `cgroup` field names the child's cgroup.
pub(super) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` as of Linux 5.7 (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
pub(super) struct CloneArgs {
    pub(super) flags: u64,
    pub(super) pidfd: u64,
    pub(super) child_tid: u64,
    pub(super) parent_tid: u64,
    pub(super) exit_signal: u64,
    pub(super) stack: u64,
    pub(super) stack_size: u64,
    pub(super) tls: u64,
    pub(super) set_tid: u64,
    pub(super) set_tid_size: u64,
    pub(super) cgroup: u64,
}

/// A fork-like `clone3` whose child the kernel attaches to the cgroup directory `dir` while
/// forking it. `flags` are `clone`'s (the exit signal in the low byte). Returns as `clone`
/// does: 0 in the child, the pid or -1 in the parent.
fn clone_into(flags: libc::c_ulong, dir: &OwnedFd) -> libc::c_long {
    let args = CloneArgs {
        flags: (flags & !0xff) | CLONE_INTO_CGROUP,
        exit_signal: flags & 0xff,
        cgroup: dir.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 reads `args` (of the size given); no CLONE_VM and no stack, so the child
    // continues on a copy of this stack like a fork, and runs only `child_main`.
    unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    }
}

struct ChildPtr(*const ChildPlan);
// SAFETY: the pointer is only dereferenced while the plan is borrowed by `clone_on_thread`.
unsafe impl Send for ChildPtr {}

/// The child between `clone` and the helper's exec: raw system calls only (no allocation, no
/// lock, no glibc wrapper that consults thread state), then `_exit(127)` on any failure, which
/// the parent sees as an end of file before the helper's first report.
///
/// # Safety
/// Only in the child of a fork-like clone, with a plan whose descriptors and strings are valid.
unsafe fn child_main(plan: &ChildPlan) -> ! {
    // SAFETY: each call is a system call on descriptors and buffers valid in this process.
    unsafe {
        // Nothing in the container may ptrace or read the helper (runc CVE-2016-9962): not
        // dumpable from here to the program's exec (the helper says so again after its exec and
        // each credential change); on cgroup v2 it was born in the container's cgroup
        // ([`cgroup_join`]).
        if libc::syscall(libc::SYS_prctl, libc::PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 {
            libc::_exit(121);
        }
        let mut byte = 0u8;
        loop {
            let n = libc::read(plan.sock, (&raw mut byte).cast(), 1);
            if n == 1 {
                break;
            }
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            libc::_exit(126);
        }
        if plan.become_root
            && (libc::syscall(libc::SYS_setresgid, 0, 0, 0) < 0
                || libc::syscall(libc::SYS_setresuid, 0, 0, 0) < 0)
        {
            libc::_exit(125);
        }
        for (target, &fd) in plan.stdio.iter().enumerate() {
            if libc::dup2(fd, target as RawFd) < 0 {
                libc::_exit(124);
            }
        }
        if libc::setsid() < 0 || (plan.tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0) {
            libc::_exit(123);
        }
        if libc::dup2(plan.sock, SOCKET_FD) < 0 {
            libc::_exit(122);
        }
        libc::syscall(
            libc::SYS_close_range,
            (SOCKET_FD + 1) as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        );
        libc::syscall(
            libc::SYS_execveat,
            plan.image,
            c"".as_ptr(),
            plan.argv.as_ptr(),
            plan.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        libc::_exit(127)
    }
}

/// An error from the helper's report.
fn failed(message: String, errno: Option<i32>) -> io::Error {
    let kind = errno
        .map(|e| io::Error::from_raw_os_error(e).kind())
        .unwrap_or(io::ErrorKind::InvalidInput);
    io::Error::new(kind, message)
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}
