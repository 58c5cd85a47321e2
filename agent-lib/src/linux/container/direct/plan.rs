//! The agent's preparation of a direct exec: every descriptor, C string, pointer array, mask and
//! BPF program the children use, made before the clone; and the messages that name a failed
//! step afterwards.

use std::ffi::{CString, c_char, c_int};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxCapabilities, PosixRlimit, PosixRlimitType, Process};

use super::child::{CapMasks, Plan};
use super::step::{Record, Step};
use crate::host::ProcessSpec;
use crate::linux::container::seccomp::Compiled;
use crate::linux::container::{capabilities, exec};

/// `PATH` when the process's environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The calling thread's LSM attributes, in the agent's `/proc`.
const ATTR: &str = "/proc/thread-self/attr";

/// The strings behind a [`Plan`], kept alive as long as it.
pub(super) struct Owned {
    _argv: Vec<CString>,
    _envp: Vec<CString>,
}

/// What a failed step's message names: kept with a held process for its release.
#[derive(Clone, Debug)]
pub(super) struct Names {
    init_pid: i32,
    program: String,
    search: String,
    rlimits: Vec<PosixRlimitType>,
    oom_score_adj: Option<i32>,
    labels: Vec<String>,
    groups: Vec<u32>,
    uid: u32,
    gid: u32,
    cwd: String,
}

/// The parts of a plan that come from the container (cached per container) and the exec.
pub(super) struct Inputs<'a> {
    pub(super) spec: &'a ProcessSpec,
    pub(super) process: &'a Process,
    pub(super) init_pid: i32,
    pub(super) seccomp: Option<&'a Compiled>,
    pub(super) ns_flags: libc::c_int,
    pub(super) intermediate: bool,
    pub(super) cap_last: u8,
    pub(super) tty: bool,
    pub(super) hold: bool,
}

/// The descriptors of a plan, owned by the agent until the clone.
pub(super) struct Fds<'a> {
    pub(super) stdio: &'a [OwnedFd; 3],
    pub(super) sock: &'a OwnedFd,
    pub(super) pidfd: &'a OwnedFd,
    pub(super) root: &'a OwnedFd,
    pub(super) cgroup_tasks: &'a [OwnedFd],
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// Builds the plan; bad input (a NUL byte, an unknown capability, uid -1) is an error here,
/// before any process exists.
pub(super) fn build(input: &Inputs<'_>, fds: &Fds<'_>) -> io::Result<(Plan, Owned, Names)> {
    let spec = input.spec;
    refuse_unset_ids(spec)?;
    let (argv_owned, envp_owned) = c_strings(spec)?;
    let program = Program::resolve(spec)?;
    let process = input.process;
    let rlimits: Vec<_> = process.rlimits().as_deref().unwrap_or_default().to_vec();
    let labels = labels(process)?;
    let (seccomp, seccomp_flags) = match input.seccomp {
        Some(c) => c.fprogs().map_err(|e| invalid(e.to_string()))?,
        None => (Vec::new(), 0),
    };
    let plan = Plan {
        stdio: fds.stdio.each_ref().map(|fd| fd.as_raw_fd()),
        sock: fds.sock.as_raw_fd(),
        tty: input.tty,
        hold: input.hold,
        cgroup_tasks: fds.cgroup_tasks.iter().map(|fd| fd.as_raw_fd()).collect(),
        pidfd: fds.pidfd.as_raw_fd(),
        intermediate: input.intermediate,
        ns_flags: input.ns_flags,
        root: fds.root.as_raw_fd(),
        rlimits: rlimits.iter().map(rlimit).collect(),
        oom_score_adj: oom_score_adj(process)?,
        labels: labels
            .iter()
            .map(|(path, value, _)| (path.clone(), value.clone()))
            .collect(),
        caps: process
            .capabilities()
            .as_ref()
            .map(|c| masks(c, input.cap_last))
            .transpose()?,
        groups: spec.additional_gids.clone(),
        uid: spec.uid,
        gid: spec.gid,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        seccomp,
        seccomp_flags,
        cwd: program.cwd_c,
        umask: process.user().umask().unwrap_or(0o022) as libc::mode_t,
        candidates: program.candidates,
        argv: pointers(&argv_owned),
        envp: pointers(&envp_owned),
        sigmask: super::child::current_sigmask(),
    };
    let names = Names {
        init_pid: input.init_pid,
        program: program.name.clone(),
        search: program.search.to_owned(),
        rlimits: rlimits.iter().map(|r| r.typ()).collect(),
        oom_score_adj: process.oom_score_adj(),
        labels: labels.into_iter().map(|(_, _, what)| what).collect(),
        groups: spec.additional_gids.clone(),
        uid: spec.uid,
        gid: spec.gid,
        cwd: program.cwd.display().to_string(),
    };
    let owned = Owned {
        _argv: argv_owned,
        _envp: envp_owned,
    };
    Ok((plan, owned, names))
}

/// Refuses `(uid_t)-1` as the uid, gid or an additional gid (`setresuid(-1)` changes nothing).
fn refuse_unset_ids(spec: &ProcessSpec) -> io::Result<()> {
    if [spec.uid, spec.gid]
        .iter()
        .chain(&spec.additional_gids)
        .any(|&id| id == u32::MAX)
    {
        return Err(invalid("process.user: id 4294967295 ((uid_t)-1) refused"));
    }
    Ok(())
}

/// What the program is and where it runs: its name, the `PATH` searched, the paths to try, and
/// the working directory (`/` when unset).
struct Program<'a> {
    name: &'a String,
    search: &'a str,
    candidates: Vec<CString>,
    cwd: &'a Path,
    cwd_c: CString,
}

impl<'a> Program<'a> {
    fn resolve(spec: &'a ProcessSpec) -> io::Result<Self> {
        let name = spec
            .args
            .first()
            .ok_or_else(|| invalid("launch: empty argv"))?;
        let search = spec
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let candidates = candidates(name, search)?;
        let cwd = if spec.cwd.as_os_str().is_empty() {
            Path::new("/")
        } else {
            spec.cwd.as_path()
        };
        let cwd_c = CString::new(cwd.as_os_str().as_encoded_bytes())
            .map_err(|_| invalid("NUL byte in cwd"))?;
        Ok(Program {
            name,
            search,
            candidates,
            cwd,
            cwd_c,
        })
    }
}

/// The null-terminated pointer array of `strings` (which must outlive it).
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    let mut out: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
    out.push(std::ptr::null());
    out
}

/// `oom_score_adj` as the text written to `/proc/self/oom_score_adj`.
fn oom_score_adj(process: &Process) -> io::Result<Option<CString>> {
    process
        .oom_score_adj()
        .map(|adj| CString::new(adj.to_string()).map_err(|_| invalid("oom_score_adj")))
        .transpose()
}

/// argv and the environment (entries without a name dropped) as C strings.
fn c_strings(spec: &ProcessSpec) -> io::Result<(Vec<CString>, Vec<CString>)> {
    let cstr =
        |s: &String| CString::new(s.as_str()).map_err(|_| invalid("NUL byte in argv or env"));
    let argv = spec.args.iter().map(cstr).collect::<io::Result<Vec<_>>>()?;
    let envp = spec
        .env
        .iter()
        .filter(|e| e.split_once('=').is_some_and(|(k, _)| !k.is_empty()))
        .map(cstr)
        .collect::<io::Result<Vec<_>>>()?;
    Ok((argv, envp))
}

/// One OCI rlimit as `prlimit64` takes it.
fn rlimit(r: &PosixRlimit) -> (c_int, libc::rlimit) {
    let limit = libc::rlimit {
        rlim_cur: r.soft(),
        rlim_max: r.hard(),
    };
    (exec::rlimit_resource(r.typ()) as c_int, limit)
}

/// The paths to try: `name` itself when it has a slash, else each directory of `search`.
fn candidates(name: &str, search: &str) -> io::Result<Vec<CString>> {
    let nul = |_| invalid("NUL byte in the program path");
    if name.contains('/') {
        return Ok(vec![CString::new(name).map_err(nul)?]);
    }
    search
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| {
            let path = Path::new(d).join(name);
            CString::new(path.into_os_string().into_encoded_bytes()).map_err(nul)
        })
        .collect()
}

/// The LSM exec labels the process asks for: (attribute file, value, what for messages).
fn labels(process: &Process) -> io::Result<Vec<(CString, CString, String)>> {
    let mut out = Vec::new();
    let c = |s: String| CString::new(s).map_err(|_| invalid("NUL byte in an LSM label"));
    if let Some(label) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        out.push((
            c(format!("{ATTR}/exec"))?,
            c(label.to_owned())?,
            format!("set the SELinux exec label {label:?}"),
        ));
    }
    if let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let own = format!("{ATTR}/apparmor/exec");
        let path = if Path::new(&own).exists() {
            own
        } else {
            format!("{ATTR}/exec")
        };
        out.push((
            c(path)?,
            c(format!("exec {profile}"))?,
            format!("set the AppArmor exec profile {profile:?}"),
        ));
    }
    Ok(out)
}

/// The OCI capability sets as masks; an absent bounding set keeps every capability.
fn masks(c: &LinuxCapabilities, last: u8) -> io::Result<CapMasks> {
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| -> io::Result<u64> {
        let Some(set) = set else { return Ok(0) };
        let caps = capabilities::convert(set).map_err(|e| invalid(e.to_string()))?;
        Ok(caps.iter().fold(0, |m, cap| m | cap.bitmask()))
    };
    Ok(CapMasks {
        bounding: if c.bounding().is_some() {
            mask(c.bounding())?
        } else {
            u64::MAX
        },
        effective: mask(c.effective())?,
        permitted: mask(c.permitted())?,
        inheritable: mask(c.inheritable())?,
        ambient: mask(c.ambient())?,
        last,
    })
}

/// A failed fork into a pid namespace: `ENOMEM` there means its init has exited.
pub(super) fn fork_into_pid_ns(errno: i32) -> String {
    match errno {
        libc::ENOMEM => "fork into the container's pid namespace (its init has exited)".into(),
        _ => "fork into the container's pid namespace".into(),
    }
}

impl Names {
    /// The error a failure record stands for: the step in words, with its errno.
    pub(super) fn error(&self, r: Record) -> io::Error {
        let os = io::Error::from_raw_os_error(r.errno);
        let what = self.describe(r);
        io::Error::new(os.kind(), format!("{what}: {os}"))
    }

    fn describe(&self, r: Record) -> String {
        let init = self.init_pid;
        let index = |i: i32| usize::try_from(i).ok();
        match r.step {
            Step::Pid | Step::Ready => format!("unexpected report {:?}", r.step),
            Step::NonDumpable => "make the process non-dumpable".into(),
            Step::JoinCgroup => "join the container's cgroup".into(),
            Step::JoinPidNs => format!("join the pid namespace of init pid {init}"),
            Step::ForkIntoPidNs => fork_into_pid_ns(r.errno),
            Step::Stdio => format!("set up stdio fd {}", r.detail),
            Step::Session => "setsid".into(),
            Step::Ctty => "set the controlling terminal".into(),
            Step::Rlimit => match index(r.detail).and_then(|i| self.rlimits.get(i)) {
                Some(typ) => format!("set rlimit {typ:?}"),
                None => "set an rlimit".into(),
            },
            Step::OomScoreAdj => format!("set oom_score_adj {}", self.oom_score_adj.unwrap_or(0)),
            Step::Label => index(r.detail)
                .and_then(|i| self.labels.get(i).cloned())
                .unwrap_or_else(|| "set an LSM exec label".into()),
            Step::JoinNamespaces => format!("join the namespaces of init pid {init}"),
            Step::EnterRoot => "enter the container root".into(),
            Step::Chroot => "chroot into the container root".into(),
            Step::Seccomp => "install the seccomp filter".into(),
            Step::KeepCaps => "keep capabilities".into(),
            Step::Bounding => format!("drop capability {} from the bounding set", r.detail),
            Step::Setgroups => format!("setgroups {:?}", self.groups),
            Step::Setgid => format!("setgid {}", self.gid),
            Step::Setuid => format!("setuid {}", self.uid),
            Step::Capset => "set the capabilities".into(),
            Step::Ambient => "set the ambient capabilities".into(),
            Step::NoNewPrivs => "set no_new_privs".into(),
            Step::Chdir => format!("chdir {}", self.cwd),
            Step::WaitGo => "wait for the release".into(),
            Step::NotFound => format!("exec {}: not found in PATH {}", self.program, self.search),
            Step::Exec => format!("exec {}", self.program),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_path_and_a_slash_is_taken_as_is() {
        let c = candidates("true", "/usr/bin::/bin").unwrap();
        assert_eq!(c, [c"/usr/bin/true".to_owned(), c"/bin/true".to_owned()]);
        let c = candidates("./run", "/bin").unwrap();
        assert_eq!(c, [c"./run".to_owned()]);
        assert!(candidates("a\0b", "/bin").is_err());
    }

    #[test]
    fn capability_masks_keep_bounding_when_absent_and_refuse_unknown_names() {
        let caps: LinuxCapabilities = serde_json::from_str(
            r#"{"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN","CAP_KILL"]}"#,
        )
        .unwrap();
        let m = masks(&caps, 40).unwrap();
        assert_eq!(m.bounding, u64::MAX);
        assert_eq!(m.effective, 1); // CAP_CHOWN is 0, CAP_KILL 5
        assert_eq!(m.permitted, 1 | (1 << 5));
        assert_eq!(m.ambient, 0);
        let bad: Result<LinuxCapabilities, _> =
            serde_json::from_str(r#"{"bounding":["CAP_NO_SUCH"]}"#);
        assert!(bad.is_err() || masks(&bad.unwrap(), 40).is_err());
    }

    #[test]
    fn a_failure_names_its_step_and_keeps_its_errno() {
        let names = Names {
            init_pid: 42,
            program: "sh".into(),
            search: "/bin".into(),
            rlimits: vec![PosixRlimitType::RlimitNofile],
            oom_score_adj: None,
            labels: Vec::new(),
            groups: Vec::new(),
            uid: 1000,
            gid: 1000,
            cwd: "/nowhere".into(),
        };
        let e = names.error(Record {
            step: Step::Chdir,
            errno: libc::ENOENT,
            detail: 0,
        });
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.raw_os_error(), None);
        assert!(e.to_string().starts_with("chdir /nowhere: "), "{e}");
        let e = names.error(Record {
            step: Step::Rlimit,
            errno: libc::EPERM,
            detail: 0,
        });
        assert!(e.to_string().contains("RlimitNofile"), "{e}");
        let e = names.error(Record {
            step: Step::NotFound,
            errno: libc::ENOENT,
            detail: 0,
        });
        assert!(
            e.to_string().contains("exec sh: not found in PATH /bin"),
            "{e}"
        );
    }
}
