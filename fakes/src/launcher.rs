//! `FakeLauncher`: scripted processes on tokio time, with real pipes and ptys for their stdio.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

use kata_agent::host::{ExitStatus, LaunchRequest, LaunchTarget, Launched, Launcher, StdioMode};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};

use crate::faults::{Faults, Op, errno, lock};
use crate::mounter::FakeMounter;
use crate::script::{ProcessIo, Reaction, Script, play};

/// The first pid handed out.
pub const FIRST_PID: i32 = 1000;
/// The largest signal number (`SIGRTMAX`).
const SIGRTMAX: i32 = 64;

/// Runs after a process exits, before its `Launched::exit` resolves; gets its pid and status.
pub type ExitHook = Arc<dyn Fn(i32, ExitStatus) + Send + Sync>;

/// One launched process, live or exited.
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchRecord {
    /// Its pid.
    pub pid: i32,
    /// What was asked for.
    pub request: LaunchRequest,
    /// Signals delivered to it, in order (signal 0 excluded).
    pub signals: Vec<i32>,
    /// How it ended; `None` while it runs.
    pub exit: Option<ExitStatus>,
    /// Whether it is held before its program ([`LaunchRequest::hold`], not yet released).
    pub held: bool,
}

impl fmt::Display for LaunchRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} {:?}", self.pid, self.request.process.args)?;
        if self.held {
            write!(f, " [held]")?;
        }
        match self.exit {
            Some(status) => write!(f, " ({status:?})"),
            None => write!(f, " (running)"),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    scripts: HashMap<String, Script>,
    /// Signal channels of live processes.
    live: BTreeMap<i32, mpsc::UnboundedSender<i32>>,
    /// Held processes: what lets each run its program.
    held: BTreeMap<i32, oneshot::Sender<()>>,
    records: BTreeMap<i32, LaunchRecord>,
    next_pid: i32,
    /// Where pinned pid namespaces show as `nsfs` mounts ([`FakeLauncher::with_mounter`]).
    mounter: Option<Arc<FakeMounter>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    hooks: Mutex<Vec<ExitHook>>,
}

/// Starts scripted processes: argv\[0\] picks a [`Script`] registered with
/// [`FakeLauncher::script`] (an exact match first, then by file name, so `/bin/true` plays
/// `true`); unknown programs fail with `ENOENT`, an empty argv with `EINVAL`.
///
/// Each process is a tokio task, so sleeps run on tokio time (paused time included). Its stdio
/// is real: [`StdioMode::Pipes`] makes three `pipe2(O_CLOEXEC)` pipes (with `F_SETPIPE_SZ` when
/// asked) and [`StdioMode::Pty`] an `openpty` pair whose slave the process plays on, so the
/// agent's end of the streams behaves exactly as with a real process. Pids count up from
/// [`FIRST_PID`]; a failed launch takes none.
///
/// [`Launcher::signal`] delivers per the script; it is `ESRCH` for an unknown or exited pid
/// and `EINVAL` for a signal outside 0..=64; signal 0 only checks the pid. When a process ends
/// its fds close, it leaves the live set, exit hooks run ([`FakeLauncher::on_exit`]) and then
/// `Launched::exit` resolves. `launch` needs a tokio runtime.
///
/// A launch with [`LaunchRequest::hold`] gets its pid and stdio but does not start its script
/// until [`Launcher::release`] (`EINVAL` for a process that is not held, `ESRCH` for an unknown
/// one); while held, its program's signal handlers are not installed yet, so a signal has its
/// default action and [`Launcher::handles_signal`] is `false`. A
/// [`LaunchTarget::ContainerExec`] needs its `init_pid` to be live (`ESRCH` otherwise), as
/// joining the namespaces of a dead init fails. The target and setup are kept in the
/// [`LaunchRecord`]'s request; scripts are still picked by argv\[0\].
pub struct FakeLauncher {
    faults: Faults,
    shared: Arc<Shared>,
}

impl fmt::Debug for FakeLauncher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("FakeLauncher")
            .field("scripts", &state.scripts.keys().collect::<Vec<_>>())
            .field("live", &state.live.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl FakeLauncher {
    /// A launcher that knows no programs.
    pub fn new(faults: Faults) -> Self {
        let shared = Shared::default();
        lock(&shared.state).next_pid = FIRST_PID;
        FakeLauncher {
            faults,
            shared: Arc::new(shared),
        }
    }

    /// Like [`FakeLauncher::new`], with pinned pid namespaces mounted in `mounter`'s table (so
    /// unmounting releases the pin and a forgotten pin is a leftover mount).
    pub fn with_mounter(faults: Faults, mounter: Arc<FakeMounter>) -> Self {
        let launcher = Self::new(faults);
        lock(&launcher.shared.state).mounter = Some(mounter);
        launcher
    }

    /// Registers (or replaces) what `program` does.
    pub fn script(&self, program: &str, script: Script) {
        lock(&self.shared.state)
            .scripts
            .insert(program.to_owned(), script);
    }

    /// Calls `hook` whenever a process exits (after it left the live set, before its exit
    /// resolves). A [`crate::FakeHost`] uses this to empty cgroups of exited processes.
    pub fn on_exit(&self, hook: impl Fn(i32, ExitStatus) + Send + Sync + 'static) {
        lock(&self.shared.hooks).push(Arc::new(hook));
    }

    /// Pids of the processes still running, ascending.
    pub fn live(&self) -> Vec<i32> {
        lock(&self.shared.state).live.keys().copied().collect()
    }

    /// Whether `pid` is still running.
    pub fn is_live(&self, pid: i32) -> bool {
        lock(&self.shared.state).live.contains_key(&pid)
    }

    /// What is known of `pid`, if it was launched.
    pub fn record(&self, pid: i32) -> Option<LaunchRecord> {
        lock(&self.shared.state).records.get(&pid).cloned()
    }

    /// Every process launched, by pid.
    pub fn launches(&self) -> Vec<LaunchRecord> {
        lock(&self.shared.state).records.values().cloned().collect()
    }

    fn lookup(&self, program: &str) -> io::Result<Script> {
        let state = lock(&self.shared.state);
        let base = Path::new(program).file_name().and_then(|n| n.to_str());
        state
            .scripts
            .get(program)
            .or_else(|| base.and_then(|b| state.scripts.get(b)))
            .cloned()
            .ok_or_else(|| errno(Errno::ENOENT))
    }

    /// Gives a new process the next pid: live (reached by `signals`), held until `release`
    /// fires if the request asks, and recorded.
    fn register(
        &self,
        request: &LaunchRequest,
        signals: mpsc::UnboundedSender<i32>,
        release: oneshot::Sender<()>,
    ) -> i32 {
        let mut state = lock(&self.shared.state);
        let pid = state.next_pid;
        state.next_pid += 1;
        state.live.insert(pid, signals);
        if request.hold {
            state.held.insert(pid, release);
        }
        state.records.insert(
            pid,
            LaunchRecord {
                pid,
                request: request.clone(),
                signals: Vec::new(),
                exit: None,
                held: request.hold,
            },
        );
        pid
    }
}

impl Shared {
    /// Process `pid` ended with `status`: no longer live or held, its record closed, and the
    /// exit hooks told.
    fn exited(&self, pid: i32, status: ExitStatus) {
        {
            let mut state = lock(&self.state);
            state.live.remove(&pid);
            state.held.remove(&pid);
            if let Some(record) = state.records.get_mut(&pid) {
                record.exit = Some(status);
            }
        }
        let hooks = lock(&self.hooks).clone();
        for hook in hooks {
            hook(pid, status);
        }
    }
}

/// The agent's ends of a new process's stdio.
#[derive(Default)]
struct AgentEnds {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pty_master: Option<OwnedFd>,
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Registers the process's end of a stream with the reactor.
fn process_end(fd: OwnedFd) -> io::Result<Arc<AsyncFd<OwnedFd>>> {
    set_nonblocking(&fd)?;
    // SAFETY: an `OwnedFd` is open until dropped and always yields the same descriptor, and the
    // `AsyncFd` owns it for its whole life.
    let registered = unsafe { AsyncFd::register(fd) }?;
    Ok(Arc::new(registered))
}

/// Makes the fds for `mode`; must run inside a tokio runtime. Everything made is dropped (and
/// closed) on error.
fn stdio(mode: StdioMode, pipe_size: u32) -> io::Result<(AgentEnds, ProcessIo)> {
    match mode {
        // The console is the VM's: a scripted process's output there goes nowhere.
        StdioMode::Null | StdioMode::Console => Ok((AgentEnds::default(), ProcessIo::default())),
        StdioMode::Pipes => {
            let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            if pipe_size > 0 {
                let size = i32::try_from(pipe_size).map_err(|_| errno(Errno::EINVAL))?;
                fcntl(out_w.as_fd(), FcntlArg::F_SETPIPE_SZ(size))?;
                fcntl(err_w.as_fd(), FcntlArg::F_SETPIPE_SZ(size))?;
            }
            let io = ProcessIo {
                stdin: Some(process_end(in_r)?),
                stdout: Some(process_end(out_w)?),
                stderr: Some(process_end(err_w)?),
            };
            let ends = AgentEnds {
                stdin: Some(in_w),
                stdout: Some(out_r),
                stderr: Some(err_r),
                pty_master: None,
            };
            Ok((ends, io))
        }
        StdioMode::Pty => {
            let pty = nix::pty::openpty(None, None)?;
            for fd in [&pty.master, &pty.slave] {
                fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
            }
            let slave = process_end(pty.slave)?;
            let io = ProcessIo {
                stdin: Some(Arc::clone(&slave)),
                stdout: Some(Arc::clone(&slave)),
                stderr: Some(slave),
            };
            let ends = AgentEnds {
                pty_master: Some(pty.master),
                ..AgentEnds::default()
            };
            Ok((ends, io))
        }
    }
}

/// The launcher's operations, callable directly (they never block): the [`Launcher`] impl
/// delegates here.
impl FakeLauncher {
    /// [`Launcher::launch`].
    pub fn launch(&self, request: &LaunchRequest) -> io::Result<Launched> {
        self.faults.check(Op::Launch)?;
        let program = request
            .process
            .args
            .first()
            .ok_or_else(|| errno(Errno::EINVAL))?;
        if let LaunchTarget::ContainerExec { init_pid, .. } = &request.target
            && !self.is_live(*init_pid)
        {
            return Err(errno(Errno::ESRCH));
        }
        let script = self.lookup(program)?;
        if let Some(e) = script.launch_error() {
            return Err(errno(e));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| io::Error::other("FakeLauncher::launch needs a tokio runtime"))?;
        let _entered = runtime.enter();
        let (ends, io) = stdio(request.stdio, request.pipe_size)?;

        let (signal_tx, mut signal_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        let pid = self.register(request, signal_tx, release_tx);
        let shared = Arc::clone(&self.shared);
        let held = request.hold;
        runtime.spawn(async move {
            let status = match held {
                true => match wait_release(release_rx, &mut signal_rx).await {
                    None => play(script, io, signal_rx).await,
                    Some(killed) => {
                        drop(io);
                        killed
                    }
                },
                false => play(script, io, signal_rx).await,
            };
            shared.exited(pid, status);
            // The agent may have stopped waiting; nothing to do then.
            let _ = exit_tx.send(status);
        });
        Ok(Launched {
            pid,
            stdin: ends.stdin,
            stdout: ends.stdout,
            stderr: ends.stderr,
            pty_master: ends.pty_master,
            exit: exit_rx,
        })
    }

    /// [`Launcher::signal`].
    pub fn signal(&self, pid: i32, signal: i32) -> io::Result<()> {
        self.faults.check(Op::Signal)?;
        if !(0..=SIGRTMAX).contains(&signal) {
            return Err(errno(Errno::EINVAL));
        }
        let mut state = lock(&self.shared.state);
        let tx = state.live.get(&pid).ok_or_else(|| errno(Errno::ESRCH))?;
        if signal == 0 {
            return Ok(());
        }
        // The process task is alive while it is in `live`.
        let _ = tx.send(signal);
        if let Some(record) = state.records.get_mut(&pid) {
            record.signals.push(signal);
        }
        Ok(())
    }

    /// [`Launcher::release`].
    pub fn release(&self, pid: i32) -> io::Result<()> {
        self.faults.check(Op::Release)?;
        let mut state = lock(&self.shared.state);
        let Some(release) = state.held.remove(&pid) else {
            return match state.live.contains_key(&pid) {
                true => Err(errno(Errno::EINVAL)),
                false => Err(errno(Errno::ESRCH)),
            };
        };
        if let Some(record) = state.records.get_mut(&pid) {
            record.held = false;
        }
        // The process task waits on this while it is held.
        let _ = release.send(());
        Ok(())
    }

    /// [`Launcher::handles_signal`].
    pub fn handles_signal(&self, pid: i32, signal: i32) -> io::Result<bool> {
        self.faults.check(Op::HandlesSignal)?;
        let program = {
            let state = lock(&self.shared.state);
            if !state.live.contains_key(&pid) {
                return Err(errno(Errno::ESRCH));
            }
            if state.held.contains_key(&pid) {
                return Ok(false);
            }
            state
                .records
                .get(&pid)
                .and_then(|r| r.request.process.args.first().cloned())
                .ok_or_else(|| errno(Errno::ESRCH))?
        };
        Ok(self.lookup(&program)?.handles(signal))
    }
}

/// Waits while a process is held: `None` once released, or how it died of a signal first (a
/// held process has only the default signal actions).
async fn wait_release(
    release: oneshot::Receiver<()>,
    signals: &mut mpsc::UnboundedReceiver<i32>,
) -> Option<ExitStatus> {
    let defaults = Script::until_signal();
    tokio::pin!(release);
    loop {
        tokio::select! {
            biased;
            Some(signal) = signals.recv() => match defaults.reaction(signal) {
                Reaction::Terminate => return Some(ExitStatus::Signaled(signal)),
                Reaction::Exit(code) => return Some(ExitStatus::Exited(code)),
                Reaction::Ignore => {}
            },
            // A dropped sender means the launcher forgot the hold: run.
            _ = &mut release => return None,
        }
    }
}

#[async_trait::async_trait]
impl Launcher for FakeLauncher {
    async fn launch(&self, request: &LaunchRequest) -> io::Result<Launched> {
        FakeLauncher::launch(self, request)
    }

    async fn release(&self, pid: i32) -> io::Result<()> {
        FakeLauncher::release(self, pid)
    }

    fn signal(&self, pid: i32, signal: i32) -> io::Result<()> {
        FakeLauncher::signal(self, pid, signal)
    }

    fn handles_signal(&self, pid: i32, signal: i32) -> io::Result<bool> {
        FakeLauncher::handles_signal(self, pid, signal)
    }

    /// Scripted processes play on a real pty slave: the size is set on the real terminal.
    fn resize_terminal(&self, master: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
        kata_agent::linux::pty::set_window_size(master, rows, cols)
    }

    fn pin_pid_namespace(&self, pid: i32, target: &Path) -> io::Result<()> {
        self.faults.check(Op::PinNamespace)?;
        if !self.is_live(pid) {
            return Err(errno(Errno::ESRCH));
        }
        if let Some(mounter) = lock(&self.shared.state).mounter.clone() {
            mounter.insert("nsfs", target, "nsfs");
        }
        Ok(())
    }
}
