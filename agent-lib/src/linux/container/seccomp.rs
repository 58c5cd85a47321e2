//! OCI seccomp profiles compiled to BPF with `seccompiler` (pure Rust: no libseccomp).
//!
//! `seccompiler` builds filters with one action for matching system calls and one for the rest,
//! while an OCI profile has a default action and an action per rule. The profile becomes a
//! **stack** of filters, which the kernel evaluates together, keeping the most restrictive
//! result:
//!
//! - unless the default action is `ALLOW`: one filter returning `ALLOW` for every rule of the
//!   profile (with its argument conditions) and the default action for everything else;
//! - per distinct non-`ALLOW` rule action: one filter returning that action for its rules and
//!   `ALLOW` for everything else.
//!
//! A call matching a rule thus gets the rule's action, any other the default action. Rules whose
//! action equals the default action are dropped (libseccomp does the same). When one call
//! matches rules with different actions, the most restrictive wins.
//!
//! What cannot be expressed fails with a clear error rather than a weaker filter:
//! `SCMP_ACT_NOTIFY` (and its listener) and argument indexes above 5. Foreign architectures in
//! `architectures` are not filtered but killed outright (seccompiler's filter kills any other
//! audit arch), and on x86_64 the x32 ABI is killed too, so a denylist cannot be bypassed
//! through it. System call names this architecture does not have are skipped, as runc does.

use std::collections::BTreeMap;
use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use super::error::{Result, SetupError};

/// A compiled profile: the filters to install, in order, and the `seccomp(2)` flags.
#[derive(Debug)]
pub(super) struct Compiled {
    programs: Vec<BpfProgram>,
    flags: libc::c_ulong,
}

/// The rules of one system call in one filter: unconditional, or any of these rules.
#[derive(Clone, Debug)]
enum Rules {
    Always,
    Any(Vec<SeccompRule>),
}

impl Rules {
    fn merge(&mut self, other: Rules) {
        match (&mut *self, other) {
            (Rules::Always, _) => {}
            (_, Rules::Always) => *self = Rules::Always,
            (Rules::Any(mine), Rules::Any(more)) => mine.extend(more),
        }
    }

    fn into_vec(self) -> Vec<SeccompRule> {
        match self {
            Rules::Always => Vec::new(),
            Rules::Any(rules) => rules,
        }
    }
}

fn target_arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| SetupError::spec(format!("seccomp on {}: {e}", std::env::consts::ARCH)))
}

fn native_arch() -> Option<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => Some(Arch::ScmpArchX86_64),
        "aarch64" => Some(Arch::ScmpArchAarch64),
        "riscv64" => Some(Arch::ScmpArchRiscv64),
        _ => None,
    }
}

fn action(action: LinuxSeccompAction, errno: Option<u32>, what: &str) -> Result<SeccompAction> {
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32))
        }
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno.unwrap_or(0)),
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SetupError::spec(format!(
                "seccomp: {what}: SCMP_ACT_NOTIFY is not supported"
            )));
        }
    })
}

fn condition(arg: &LinuxSeccompArg) -> Result<SeccompCondition> {
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => SeccompCmpOp::Ne,
        LinuxSeccompOperator::ScmpCmpLt => SeccompCmpOp::Lt,
        LinuxSeccompOperator::ScmpCmpLe => SeccompCmpOp::Le,
        LinuxSeccompOperator::ScmpCmpEq => SeccompCmpOp::Eq,
        LinuxSeccompOperator::ScmpCmpGe => SeccompCmpOp::Ge,
        LinuxSeccompOperator::ScmpCmpGt => SeccompCmpOp::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => SeccompCmpOp::MaskedEq(arg.value()),
    };
    // For MASKED_EQ, `value` is the mask and `valueTwo` the expected result.
    let value = match arg.op() {
        LinuxSeccompOperator::ScmpCmpMaskedEq => arg.value_two().unwrap_or(0),
        _ => arg.value(),
    };
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|&i| i <= 5)
        .ok_or_else(|| SetupError::spec(format!("seccomp: argument index {}", arg.index())))?;
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| SetupError::spec(format!("seccomp: {e}")))
}

/// The rules of one OCI syscall entry: all conditions together, or (as runc does when several
/// conditions name the same argument) each condition alone.
fn entry_rules(args: &[LinuxSeccompArg]) -> Result<Rules> {
    if args.is_empty() {
        return Ok(Rules::Always);
    }
    let conditions = args.iter().map(condition).collect::<Result<Vec<_>>>()?;
    let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let groups = if indexes.len() == args.len() {
        vec![conditions]
    } else {
        conditions.into_iter().map(|c| vec![c]).collect()
    };
    groups
        .into_iter()
        .map(|g| SeccompRule::new(g).map_err(|e| SetupError::spec(format!("seccomp: {e}"))))
        .collect::<Result<Vec<_>>>()
        .map(Rules::Any)
}

/// The rules of each system call in one filter, by number.
type ByNumber = BTreeMap<i64, Rules>;
/// Per action other than allow (keyed by its encoding), the system calls that take it.
type ByAction = BTreeMap<u32, (SeccompAction, ByNumber)>;

/// Compiles a profile.
pub(super) fn compile(profile: &LinuxSeccomp) -> Result<Compiled> {
    let arch = check_supported(profile)?;
    let default = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "default action",
    )?;
    let (allowed, by_action) = group(profile, &default)?;
    let mut programs = Vec::new();
    if std::env::consts::ARCH == "x86_64" {
        programs.push(x32_guard());
    }
    let build = |rules: ByNumber, mismatch: SeccompAction, matched: SeccompAction| {
        let rules = rules
            .into_iter()
            .map(|(nr, r)| (nr, r.into_vec()))
            .collect();
        SeccompFilter::new(rules, mismatch, matched, arch)
            .and_then(BpfProgram::try_from)
            .map_err(|e| SetupError::spec(format!("seccomp: {e}")))
    };
    if default != SeccompAction::Allow {
        programs.push(build(allowed, default.clone(), SeccompAction::Allow)?);
    }
    for (_, (act, rules)) in by_action {
        programs.push(build(rules, SeccompAction::Allow, act)?);
    }
    Ok(Compiled {
        programs,
        flags: filter_flags(profile),
    })
}

/// Refuses what this agent cannot install (a notify listener, a foreign architecture); the
/// architecture to compile for.
fn check_supported(profile: &LinuxSeccomp) -> Result<TargetArch> {
    if profile.listener_path().is_some() {
        return Err(SetupError::spec(
            "seccomp: a listener path is not supported",
        ));
    }
    let arch = target_arch()?;
    if let Some(arches) = profile.architectures().as_ref().filter(|a| !a.is_empty()) {
        let native = native_arch();
        if !arches
            .iter()
            .any(|a| Some(*a) == native || *a == Arch::ScmpArchNative)
        {
            return Err(SetupError::spec(format!(
                "seccomp: none of the architectures {arches:?} is this machine's"
            )));
        }
    }
    Ok(arch)
}

/// The profile's entries that differ from `default`, grouped: every such system call (the
/// filter that lets them past the default), and, per action other than allow, the calls that
/// take it (one filter each). Names this kernel does not know are skipped.
fn group(profile: &LinuxSeccomp, default: &SeccompAction) -> Result<(ByNumber, ByAction)> {
    let mut allowed = ByNumber::new();
    let mut by_action = ByAction::new();
    for entry in profile.syscalls().as_deref().unwrap_or_default() {
        let act = action(entry.action(), entry.errno_ret(), &entry.names().join(","))?;
        if act == *default {
            continue;
        }
        let rules = entry_rules(entry.args().as_deref().unwrap_or_default())?;
        for name in entry.names() {
            let Ok(sysno) = syscalls::Sysno::from_str(name) else {
                continue;
            };
            let nr = i64::from(sysno.id());
            allowed
                .entry(nr)
                .or_insert_with(|| Rules::Any(Vec::new()))
                .merge(rules.clone());
            if act != SeccompAction::Allow {
                by_action
                    .entry(u32::from(act.clone()))
                    .or_insert_with(|| (act.clone(), ByNumber::new()))
                    .1
                    .entry(nr)
                    .or_insert_with(|| Rules::Any(Vec::new()))
                    .merge(rules.clone());
            }
        }
    }
    Ok((allowed, by_action))
}

/// The `seccomp(2)` flags the profile asks for.
fn filter_flags(profile: &LinuxSeccomp) -> libc::c_ulong {
    let mut flags = 0;
    for flag in profile.flags().as_deref().unwrap_or_default() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // Only meaningful with a notify listener, which is refused above.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        };
    }
    flags
}

/// On x86_64, kills any x32-ABI system call (numbers with bit 30 set, same audit arch).
fn x32_guard() -> BpfProgram {
    const X32_BIT: u32 = 0x4000_0000;
    let stmt = |code: u16, k: u32| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    // BPF_LD|BPF_W|BPF_ABS = 0x20, BPF_JMP|BPF_JGE|BPF_K = 0x35, BPF_RET|BPF_K = 0x06.
    vec![
        stmt(0x20, 0), // seccomp_data.nr
        sock_filter {
            code: 0x35,
            jt: 0,
            jf: 1,
            k: X32_BIT,
        },
        stmt(0x06, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(0x06, libc::SECCOMP_RET_ALLOW),
    ]
}

impl Compiled {
    /// Installs the filters on the calling thread. Needs `no_new_privs` or CAP_SYS_ADMIN.
    pub(super) fn install(&self) -> Result<()> {
        for program in &self.programs {
            let prog = libc::sock_fprog {
                len: u16::try_from(program.len())
                    .map_err(|_| SetupError::spec("seccomp: filter too long"))?,
                // Same layout: struct sock_filter from linux/filter.h.
                filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
            };
            // SAFETY: the kernel copies the program; `prog` points into `program`, alive here.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    self.flags,
                    &prog as *const libc::sock_fprog,
                )
            };
            if ret != 0 {
                return Err(SetupError::Step {
                    step: "install the seccomp filter".to_owned(),
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        Ok(())
    }

    /// The filters as `sock_fprog`s pointing into `self`, and the `seccomp(2)` flags: for a
    /// child that installs them with raw system calls and may not allocate.
    pub(super) fn fprogs(&self) -> Result<(Vec<libc::sock_fprog>, libc::c_ulong)> {
        let progs = self
            .programs
            .iter()
            .map(|program| {
                Ok(libc::sock_fprog {
                    len: u16::try_from(program.len())
                        .map_err(|_| SetupError::spec("seccomp: filter too long"))?,
                    // Same layout: struct sock_filter from linux/filter.h.
                    filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((progs, self.flags))
    }

    /// How many filters the profile became.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.programs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_allowlist_and_an_errno_rule_make_a_stack() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
               "syscalls":[{"names":["read","write","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                           {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                           {"names":["personality"],"action":"SCMP_ACT_ALLOW",
                            "args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        let c = compile(&p).unwrap();
        let guard = usize::from(std::env::consts::ARCH == "x86_64");
        assert_eq!(c.len(), guard + 2);
    }

    #[test]
    fn notify_and_foreign_arches_are_refused() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        let e = compile(&p).unwrap_err().to_string();
        assert!(e.contains("SCMP_ACT_NOTIFY"), "{e}");
        let p =
            profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_S390X"]}"#);
        assert!(
            compile(&p)
                .unwrap_err()
                .to_string()
                .contains("architectures")
        );
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(compile(&p).unwrap_err().to_string().contains("index"));
    }
}
