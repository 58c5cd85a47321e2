//! The container process's last steps: rlimits, credentials, `noNewPrivileges`, seccomp, the
//! working directory, and the exec of the program (looked up in the container's `PATH`).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{PosixRlimitType, Process};

use super::Program;
use super::capabilities;
use super::error::{Result, SetupError, Step};
use super::seccomp::Compiled;

/// `PATH` when the process's environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Sets the process's rlimits and OOM score (before the uid change: raising a hard limit needs
/// CAP_SYS_RESOURCE).
pub(super) fn apply_limits(process: &Process) -> Result<()> {
    for r in process.rlimits().as_deref().unwrap_or_default() {
        let limit = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        let resource = rlimit_resource(r.typ());
        // SAFETY: setrlimit reads a valid local.
        if unsafe { libc::setrlimit(resource, &limit) } < 0 {
            return Err(std::io::Error::last_os_error())
                .step(|| format!("set rlimit {:?}", r.typ()));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .step(|| format!("set oom_score_adj {adj}"))?;
    }
    Ok(())
}

pub(super) fn rlimit_resource(typ: PosixRlimitType) -> libc::__rlimit_resource_t {
    match typ {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// The program, resolved inside the container root, ready to execute.
#[derive(Debug)]
pub(super) struct Ready {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    umask: u32,
}

/// Resolves the program in the container's `PATH` (from the process's environment) and builds
/// argv and envp. Environment entries without `KEY=` are dropped.
pub(super) fn resolve(program: &Program, process: &Process) -> Result<Ready> {
    let cstr = |s: &str| CString::new(s).map_err(|_| SetupError::spec("NUL byte in argv or env"));
    let argv = program
        .args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>>>()?;
    let envp = program
        .env
        .iter()
        .filter(|e| e.split_once('=').is_some_and(|(k, _)| !k.is_empty()))
        .map(|e| cstr(e))
        .collect::<Result<Vec<_>>>()?;
    let name = program
        .args
        .first()
        .ok_or_else(|| SetupError::spec("empty argv"))?;
    let path = if name.contains('/') {
        PathBuf::from(name)
    } else {
        let search = program
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        search
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(name))
            .find(|p| is_executable(p))
            .ok_or_else(|| SetupError::Step {
                step: format!("exec {name}: not found in PATH {search}"),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            })?
    };
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SetupError::spec("NUL byte in the program path"))?;
    let umask = process.user().umask().unwrap_or(0o022);
    Ok(Ready {
        path,
        argv,
        envp,
        umask,
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Switches to the process's credentials; installs seccomp first when `noNewPrivileges` is off
/// (loading a filter then needs CAP_SYS_ADMIN, about to be dropped); sets `no_new_privs`;
/// enters the working directory (a path inside the container root, after the uid change).
pub(super) fn apply_credentials(
    program: &Program,
    process: &Process,
    seccomp: Option<&Compiled>,
) -> Result<()> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let (Some(filter), false) = (seccomp, nnp) {
        filter.install()?;
    }
    capabilities::apply(program, process.capabilities().as_ref())?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().step(|| "set no_new_privs".to_owned())?;
    }
    let cwd = if program.cwd.as_os_str().is_empty() {
        Path::new("/")
    } else {
        program.cwd.as_path()
    };
    nix::unistd::chdir(cwd).step(|| format!("chdir {}", cwd.display()))
}

impl Ready {
    /// Installs a seccomp filter left for last (with `noNewPrivileges`), then executes the
    /// program with no descriptor but 0..=2. Returns only on failure.
    pub(super) fn exec(self, process: &Process, seccomp: Option<&Compiled>) -> SetupError {
        if process.no_new_privileges().unwrap_or(false)
            && let Some(filter) = seccomp
            && let Err(e) = filter.install()
        {
            return e;
        }
        // SAFETY: umask and close_range have no memory effects.
        unsafe {
            libc::umask(self.umask as libc::mode_t);
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
            );
        }
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: NULL-terminated arrays of valid C strings that outlive the call.
        unsafe { libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        SetupError::Step {
            step: format!("exec {}", self.path.to_string_lossy()),
            source: std::io::Error::last_os_error(),
        }
    }
}
