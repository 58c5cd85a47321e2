//! `FakeLauncher` scripts on paused time, with real pipes and ptys.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_fakes::{FIRST_PID, FakeLauncher, Faults, Op, Reaction, Script};
use agent_testing::read_all;
use kata_agent::host::{ExitStatus, LaunchRequest, ProcessSpec, StdioMode};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::Signal;
use tokio::time::Instant;

fn request(args: &[&str], stdio: StdioMode) -> LaunchRequest {
    LaunchRequest {
        process: ProcessSpec {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            ..ProcessSpec::default()
        },
        stdio,
        pipe_size: 0,
        ..LaunchRequest::default()
    }
}

fn launcher() -> FakeLauncher {
    let l = FakeLauncher::new(Faults::new());
    l.script("true", Script::exit(0));
    l.script("false", Script::exit(1));
    l.script("cat", Script::cat());
    l.script("sleep", Script::until_signal());
    l
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().expect("an errno"))
}

#[tokio::test(start_paused = true)]
async fn exit_codes_and_deterministic_pids() {
    let l = launcher();
    let t = l.launch(&request(&["true"], StdioMode::Null)).unwrap();
    let f = l
        .launch(&request(&["/usr/bin/false", "-x"], StdioMode::Null))
        .unwrap();
    assert_eq!((t.pid, f.pid), (FIRST_PID, FIRST_PID + 1));
    assert_eq!(t.exit.await.unwrap(), ExitStatus::Exited(0));
    assert_eq!(f.exit.await.unwrap(), ExitStatus::Exited(1));
    assert!(l.live().is_empty());
    assert_eq!(
        l.record(FIRST_PID + 1).unwrap().exit,
        Some(ExitStatus::Exited(1))
    );
}

#[tokio::test(start_paused = true)]
async fn launch_failures_take_no_pid() {
    let l = launcher();
    l.script("denied", Script::fail_launch(Errno::EACCES));
    assert_eq!(
        errno(l.launch(&request(&["nope"], StdioMode::Pipes)).unwrap_err()),
        Errno::ENOENT
    );
    assert_eq!(
        errno(
            l.launch(&request(&["denied"], StdioMode::Pipes))
                .unwrap_err()
        ),
        Errno::EACCES
    );
    assert_eq!(
        errno(l.launch(&request(&[], StdioMode::Null)).unwrap_err()),
        Errno::EINVAL
    );
    assert!(l.launches().is_empty());
    assert_eq!(
        l.launch(&request(&["true"], StdioMode::Null)).unwrap().pid,
        FIRST_PID
    );
}

#[tokio::test(start_paused = true)]
async fn sleeps_run_on_tokio_time() {
    let l = launcher();
    l.script(
        "slow",
        Script::exit(0)
            .sleep(Duration::from_secs(30))
            .stdout("done"),
    );
    let start = Instant::now();
    let p = l.launch(&request(&["slow"], StdioMode::Null)).unwrap();
    assert_eq!(p.exit.await.unwrap(), ExitStatus::Exited(0));
    assert_eq!(start.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn default_signals_terminate() {
    let l = launcher();
    let p = l.launch(&request(&["sleep"], StdioMode::Null)).unwrap();
    l.signal(p.pid, 0).unwrap();
    l.signal(p.pid, Signal::SIGSTOP as i32).unwrap();
    l.signal(p.pid, Signal::SIGCONT as i32).unwrap();
    l.signal(p.pid, Signal::SIGWINCH as i32).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(l.is_live(p.pid));
    assert_eq!(errno(l.signal(p.pid, 65).unwrap_err()), Errno::EINVAL);
    l.signal(p.pid, Signal::SIGTERM as i32).unwrap();
    let status = p.exit.await.unwrap();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGTERM));
    assert_eq!(status.code(), 143);
    assert_eq!(
        errno(l.signal(p.pid, libc::SIGKILL).unwrap_err()),
        Errno::ESRCH
    );
    assert_eq!(errno(l.signal(4242, 0).unwrap_err()), Errno::ESRCH);
    let signals = l.record(p.pid).unwrap().signals;
    assert_eq!(
        signals,
        [libc::SIGSTOP, libc::SIGCONT, libc::SIGWINCH, libc::SIGTERM]
    );
}

#[tokio::test(start_paused = true)]
async fn ignored_signals_need_sigkill() {
    let l = launcher();
    l.script(
        "stubborn",
        Script::until_signal()
            .ignore(Signal::SIGTERM)
            .ignore(Signal::SIGKILL),
    );
    let p = l.launch(&request(&["stubborn"], StdioMode::Null)).unwrap();
    l.signal(p.pid, libc::SIGTERM).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(l.is_live(p.pid));
    l.signal(p.pid, libc::SIGKILL).unwrap();
    assert_eq!(p.exit.await.unwrap(), ExitStatus::Signaled(libc::SIGKILL));
}

#[tokio::test(start_paused = true)]
async fn handled_signals_exit_with_a_code() {
    let l = launcher();
    l.script(
        "server",
        Script::until_signal().on_signal(Signal::SIGTERM, Reaction::Exit(0)),
    );
    let p = l.launch(&request(&["server"], StdioMode::Null)).unwrap();
    l.signal(p.pid, libc::SIGTERM).unwrap();
    assert_eq!(p.exit.await.unwrap(), ExitStatus::Exited(0));
}

#[tokio::test(start_paused = true)]
async fn signals_interrupt_steps() {
    let l = launcher();
    l.script("nap", Script::exit(0).sleep(Duration::from_secs(3600)));
    let p = l.launch(&request(&["nap"], StdioMode::Null)).unwrap();
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    l.signal(p.pid, libc::SIGINT).unwrap();
    assert_eq!(p.exit.await.unwrap(), ExitStatus::Signaled(libc::SIGINT));
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn pipes_carry_stdout_and_stderr() {
    let l = launcher();
    l.script(
        "talk",
        Script::exit(2).stdout("to out\n").stderr("to err\n"),
    );
    let mut req = request(&["talk"], StdioMode::Pipes);
    req.pipe_size = 128 * 1024;
    let p = l.launch(&req).unwrap();
    let (stdout, stderr) = (p.stdout.unwrap(), p.stderr.unwrap());
    for fd in [&stdout, &stderr, p.stdin.as_ref().unwrap()] {
        let flags = FdFlag::from_bits_retain(fcntl(fd.as_fd(), FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));
    }
    assert_eq!(
        fcntl(stdout.as_fd(), FcntlArg::F_GETPIPE_SZ).unwrap(),
        128 * 1024
    );
    assert!(p.pty_master.is_none());
    assert_eq!(p.exit.await.unwrap(), ExitStatus::Exited(2));
    assert_eq!(read_all(stdout), b"to out\n");
    assert_eq!(read_all(stderr), b"to err\n");
}

#[tokio::test(start_paused = true)]
async fn cat_echoes_stdin_until_eof() {
    let l = launcher();
    let p = l.launch(&request(&["cat"], StdioMode::Pipes)).unwrap();
    let mut stdin = File::from(p.stdin.unwrap());
    stdin.write_all(b"hello, ").unwrap();
    stdin.write_all(b"world").unwrap();
    drop(stdin);
    assert_eq!(p.exit.await.unwrap(), ExitStatus::Exited(0));
    assert_eq!(read_all(p.stdout.unwrap()), b"hello, world");
}

#[tokio::test(start_paused = true)]
async fn writing_to_a_closed_pipe_is_sigpipe() {
    let l = launcher();
    l.script("yes", Script::exit(0).stdout(vec![b'y'; 1 << 20]));
    let p = l.launch(&request(&["yes"], StdioMode::Pipes)).unwrap();
    drop(p.stdout);
    assert_eq!(p.exit.await.unwrap(), ExitStatus::Signaled(libc::SIGPIPE));
}

#[tokio::test(start_paused = true)]
async fn pty_output_goes_through_the_line_discipline() {
    let l = launcher();
    l.script("hi", Script::exit(0).stdout("hi\n").stderr("err\n"));
    let p = l.launch(&request(&["hi"], StdioMode::Pty)).unwrap();
    assert!(p.stdin.is_none() && p.stdout.is_none() && p.stderr.is_none());
    let master = p.pty_master.unwrap();
    let flags = FdFlag::from_bits_retain(fcntl(master.as_fd(), FcntlArg::F_GETFD).unwrap());
    assert!(flags.contains(FdFlag::FD_CLOEXEC));
    assert_eq!(p.exit.await.unwrap(), ExitStatus::Exited(0));
    assert_eq!(read_all(master), b"hi\r\nerr\r\n");
}

#[tokio::test(start_paused = true)]
async fn pty_cat_reads_lines_until_eof_char() {
    let l = launcher();
    let p = l.launch(&request(&["cat"], StdioMode::Pty)).unwrap();
    let mut master = File::from(p.pty_master.unwrap());
    master.write_all(b"abc\n\x04").unwrap();
    assert_eq!(p.exit.await.unwrap(), ExitStatus::Exited(0));
    let out = read_all(master.into());
    // The terminal echoes the line, then cat writes it back.
    assert_eq!(out, b"abc\r\nabc\r\n");
}

#[tokio::test(start_paused = true)]
async fn exit_hooks_run_before_exit_resolves() {
    let l = launcher();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook_seen = Arc::clone(&seen);
    l.on_exit(move |pid, status| hook_seen.lock().unwrap().push((pid, status)));
    let p = l.launch(&request(&["sleep"], StdioMode::Null)).unwrap();
    assert_eq!(l.live(), [p.pid]);
    l.signal(p.pid, libc::SIGKILL).unwrap();
    p.exit.await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [(p.pid, ExitStatus::Signaled(libc::SIGKILL))]
    );
}

#[tokio::test(start_paused = true)]
async fn injected_faults_change_nothing() {
    let faults = Faults::new();
    let l = FakeLauncher::new(faults.clone());
    l.script("sleep", Script::until_signal());
    faults.fail_next(Op::Launch, Errno::EAGAIN);
    assert_eq!(
        errno(
            l.launch(&request(&["sleep"], StdioMode::Pipes))
                .unwrap_err()
        ),
        Errno::EAGAIN
    );
    assert!(l.launches().is_empty());
    let p = l.launch(&request(&["sleep"], StdioMode::Null)).unwrap();
    faults.fail_next(Op::Signal, Errno::EPERM);
    assert_eq!(
        errno(l.signal(p.pid, libc::SIGKILL).unwrap_err()),
        Errno::EPERM
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(l.is_live(p.pid));
    assert!(l.record(p.pid).unwrap().signals.is_empty());
    assert_eq!(faults.calls(Op::Launch), 2);
}

#[test]
fn launch_outside_a_runtime_is_an_error() {
    let l = launcher();
    assert!(l.launch(&request(&["true"], StdioMode::Null)).is_err());
    assert!(l.live().is_empty());
}
