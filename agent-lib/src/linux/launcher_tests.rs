use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

use super::*;
use crate::host::{ExitStatus, ProcessSpec};
use crate::linux::test_support::current_thread_runtime;

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn request(args: &[&str], stdio: StdioMode) -> LaunchRequest {
    LaunchRequest {
        process: ProcessSpec {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![PATH.to_owned()],
            cwd: "/".into(),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            additional_gids: Vec::new(),
        },
        stdio,
        pipe_size: 0,
        ..LaunchRequest::default()
    }
}

fn launcher() -> LinuxLauncher {
    LinuxLauncher::new(ReapMode::Registered).expect("launcher")
}

/// Reads a descriptor to its end (a pty master ends with EIO once the slave is gone).
fn read_all(fd: OwnedFd) -> String {
    let mut file = File::from(fd);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn exit_of(exit: tokio::sync::oneshot::Receiver<ExitStatus>) -> ExitStatus {
    tokio::time::timeout(Duration::from_secs(20), exit)
        .await
        .expect("exit within 20 s")
        .expect("exit delivered")
}

fn fd_names(listing: &str) -> BTreeSet<String> {
    listing.split_whitespace().map(str::to_owned).collect()
}

fn is_cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: F_GETFD on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    flags & libc::FD_CLOEXEC != 0
}

/// Our children that are zombies, from /proc/<pid>/stat.
fn zombie_children(candidates: Option<&[i32]>) -> Vec<i32> {
    let me = std::process::id() as i32;
    let pids: Vec<i32> = match candidates {
        Some(pids) => pids.to_vec(),
        None => fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
    };
    pids.into_iter()
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
            state == Some("Z") && ppid == Some(me)
        })
        .collect()
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Re-runs the calling test alone in a fresh test process (for checks that need the whole
/// process: `ReapMode::All`, fd counts, zombie scans). Returns `true` in that child process,
/// where the caller runs the body; in the parent it asserts that the child passed.
fn isolated(test: &str) -> bool {
    const ENV: &str = "KATA_AGENT_ISOLATED_TEST";
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let name = format!("{module}::{test}");
    if std::env::var(ENV).as_deref() == Ok(name.as_str()) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name.as_str(),
            "--exact",
            "--include-ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(ENV, &name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "isolated {name} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "isolated {name} did not run:\n{stdout}"
    );
    false
}

#[tokio::test]
async fn pipes_carry_output_and_the_exit_code() {
    let l = launcher();
    let mut req = request(
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        StdioMode::Pipes,
    );
    req.pipe_size = 1 << 16;
    let p = l.launch(&req).unwrap();
    assert!(p.pty_master.is_none());
    for fd in [&p.stdin, &p.stdout, &p.stderr] {
        assert!(is_cloexec(fd.as_ref().unwrap()));
    }
    drop(p.stdin);
    assert_eq!(read_all(p.stdout.unwrap()), "out\n");
    assert_eq!(read_all(p.stderr.unwrap()), "err\n");
    let status = exit_of(p.exit).await;
    assert_eq!(status, ExitStatus::Exited(3));
    assert_eq!(status.code(), 3);
    assert_eq!(l.reaper().pending(), 0);
}

#[tokio::test]
async fn a_signal_death_is_reported_as_signaled() {
    let l = launcher();
    let p = l
        .launch(&request(&["sh", "-c", "kill -TERM $$"], StdioMode::Null))
        .unwrap();
    assert!(p.stdout.is_none() && p.pty_master.is_none());
    let status = exit_of(p.exit).await;
    assert_eq!(status, ExitStatus::Signaled(libc::SIGTERM));
    assert_eq!(status.code(), 143);
}

#[tokio::test]
async fn stdin_round_trips_through_cat() {
    let l = launcher();
    let p = l.launch(&request(&["cat"], StdioMode::Pipes)).unwrap();
    let mut stdin = File::from(p.stdin.unwrap());
    stdin.write_all(b"hello\nworld\n").unwrap();
    drop(stdin);
    assert_eq!(read_all(p.stdout.unwrap()), "hello\nworld\n");
    assert_eq!(exit_of(p.exit).await, ExitStatus::Exited(0));
}

#[tokio::test]
async fn environment_and_cwd_are_the_requested_ones() {
    let l = launcher();
    let mut req = request(
        &["sh", "-c", "pwd; echo \"$FOO\"; env | wc -l"],
        StdioMode::Pipes,
    );
    req.process.env.push("FOO=a=b".into());
    req.process.env.push("NOEQUALS".into());
    req.process.cwd = "/tmp".into();
    let p = l.launch(&req).unwrap();
    // PWD, SHLVL and _ come from sh itself.
    let out = read_all(p.stdout.unwrap());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["/tmp", "a=b"]);
    assert!(lines[2].trim().parse::<usize>().unwrap() <= 5, "{out}");
    assert_eq!(exit_of(p.exit).await, ExitStatus::Exited(0));
}

#[tokio::test]
async fn a_pty_is_the_controlling_terminal() {
    let l = launcher();
    let p = l
        .launch(&request(
            &["sh", "-c", "tty && stty size && test -t 0"],
            StdioMode::Pty,
        ))
        .unwrap();
    assert!(p.stdin.is_none() && p.stdout.is_none() && p.stderr.is_none());
    let master = p.pty_master.unwrap();
    assert!(is_cloexec(&master));
    let out = read_all(master);
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert_eq!(exit_of(p.exit).await, ExitStatus::Exited(0), "{out:?}");
}

#[tokio::test]
async fn the_child_inherits_no_descriptor_of_ours() {
    let l = launcher();
    // SAFETY: open returns a new descriptor (deliberately not close-on-exec), owned below.
    let leaky = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(leaky >= 3);
    // SAFETY: `leaky` is a fresh descriptor nobody else owns.
    let leaky = unsafe { OwnedFd::from_raw_fd(leaky) };
    assert!(!is_cloexec(&leaky));
    for stdio in [StdioMode::Pipes, StdioMode::Pty] {
        let p = l.launch(&request(&["ls", "/proc/self/fd"], stdio)).unwrap();
        let out = read_all(p.stdout.or(p.pty_master).unwrap());
        // 3 is the directory ls reads.
        let expected: BTreeSet<String> = ["0", "1", "2", "3"].map(String::from).into();
        assert_eq!(fd_names(&out), expected, "{stdio:?}: {out:?}");
        assert_eq!(exit_of(p.exit).await, ExitStatus::Exited(0));
    }
    drop(leaky);
}

#[tokio::test]
async fn bad_requests_fail_cleanly() {
    let l = launcher();
    for program in ["/nonexistent/program", "no-such-program-kata-test"] {
        let err = l
            .launch(&request(&[program], StdioMode::Pipes))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{program}: {err}");
    }
    let mut req = request(&["true"], StdioMode::Pty);
    req.process.cwd = "/nonexistent-cwd".into();
    assert_eq!(l.launch(&req).unwrap_err().kind(), io::ErrorKind::NotFound);
    let err = l.launch(&request(&[], StdioMode::Null)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let err = l.launch(&request(&["a\0b"], StdioMode::Null)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(l.reaper().pending(), 0);
}

#[tokio::test]
async fn signal_reaches_the_process() {
    let l = launcher();
    let p = l
        .launch(&request(&["sleep", "1000"], StdioMode::Null))
        .unwrap();
    l.signal(p.pid, 0).unwrap();
    l.signal(p.pid, libc::SIGKILL).unwrap();
    assert_eq!(exit_of(p.exit).await, ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(
        l.signal(p.pid, 0).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    for pid in [0, -1, -p.pid] {
        assert_eq!(
            l.signal(pid, libc::SIGKILL).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}

#[tokio::test]
async fn many_short_launches_leave_no_zombie() {
    let l = launcher();
    let mut pids = Vec::new();
    let mut exits = Vec::new();
    for _ in 0..200 {
        let p = l.launch(&request(&["true"], StdioMode::Null)).unwrap();
        pids.push(p.pid);
        exits.push(p.exit);
    }
    for exit in exits {
        assert_eq!(exit_of(exit).await, ExitStatus::Exited(0));
    }
    assert_eq!(l.reaper().pending(), 0);
    assert_eq!(zombie_children(Some(&pids)), Vec::<i32>::new());
}

#[tokio::test]
async fn registered_mode_leaves_other_children_alone() {
    let l = launcher();
    let mut other = std::process::Command::new("sh")
        .args(["-c", "exit 7"])
        .spawn()
        .unwrap();
    // Let `other` exit and our reaper run several passes meanwhile.
    for _ in 0..5 {
        let p = l.launch(&request(&["true"], StdioMode::Null)).unwrap();
        assert_eq!(exit_of(p.exit).await, ExitStatus::Exited(0));
        l.reaper().reap_now();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    l.reaper().reap_now();
    assert_eq!(other.wait().unwrap().code(), Some(7));
}

#[test]
fn a_launcher_needs_a_tokio_runtime() {
    assert!(LinuxLauncher::new(ReapMode::Registered).is_err());
}

#[test]
fn the_reaper_task_ends_with_the_reaper() {
    let rt = current_thread_runtime();
    rt.block_on(async {
        let before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let reaper = Reaper::new(ReapMode::Registered).unwrap();
        tokio::task::yield_now().await;
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            before + 1
        );
        drop(reaper);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            before
        );

        let reaper = Reaper::new(ReapMode::Registered).unwrap();
        reaper.shutdown().await;
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            before
        );
    });
}

#[test]
fn failed_launches_leak_no_descriptor_and_no_zombie() {
    if !isolated("failed_launches_leak_no_descriptor_and_no_zombie") {
        return;
    }
    current_thread_runtime().block_on(async {
        let l = launcher();
        // Warm up lazily opened descriptors (tokio's signal pipe, /dev/ptmx paths...).
        let p = l.launch(&request(&["true"], StdioMode::Pty)).unwrap();
        drop(p.pty_master);
        exit_of(p.exit).await;
        let before = open_fds();
        for stdio in [StdioMode::Null, StdioMode::Pipes, StdioMode::Pty] {
            for _ in 0..10 {
                let err = l
                    .launch(&request(&["/nonexistent/program"], stdio))
                    .unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::NotFound);
            }
        }
        assert_eq!(open_fds(), before);
        assert_eq!(zombie_children(None), Vec::<i32>::new());
        assert_eq!(l.reaper().pending(), 0);
    });
}

#[test]
fn all_mode_reaps_launched_children_and_orphans() {
    if !isolated("all_mode_reaps_launched_children_and_orphans") {
        return;
    }
    current_thread_runtime().block_on(async {
        let l = LinuxLauncher::new(ReapMode::All).unwrap();
        assert_eq!(l.reaper().mode(), ReapMode::All);
        assert!(nix::sys::prctl::get_child_subreaper().unwrap());

        // The background sleep is orphaned when sh exits, re-parented to us, and reaped.
        let p = l
            .launch(&request(
                &["sh", "-c", "sleep 0.2 & echo $!; exit 4"],
                StdioMode::Pipes,
            ))
            .unwrap();
        let orphan: i32 = read_all(p.stdout.unwrap()).trim().parse().unwrap();
        assert_eq!(exit_of(p.exit).await, ExitStatus::Exited(4));
        let mut gone = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if !std::path::Path::new(&format!("/proc/{orphan}")).exists() {
                gone = true;
                break;
            }
        }
        assert!(gone, "orphan {orphan} was not reaped");

        let mut exits = Vec::new();
        for i in 0..200 {
            let p = l.launch(&request(
                &["sh", "-c", &format!("exit {}", i % 7)],
                StdioMode::Null,
            ));
            exits.push((i % 7, p.unwrap().exit));
        }
        for (code, exit) in exits {
            assert_eq!(exit_of(exit).await, ExitStatus::Exited(code));
        }
        assert_eq!(zombie_children(None), Vec::<i32>::new());
        assert_eq!(l.reaper().pending(), 0);

        // A failed exec is still reported as such (std waits for that child under our lock).
        let err = l
            .launch(&request(&["/nonexistent/program"], StdioMode::Null))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    });
}

#[tokio::test]
#[ignore = "needs root: setuid, setgid and setgroups"]
async fn credentials_are_the_requested_ones() {
    crate::linux::test_support::require_root("changes credentials of a child");
    let l = launcher();
    let mut req = request(&["sh", "-c", "id -u; id -g; id -G; pwd"], StdioMode::Pipes);
    req.process.uid = 65534;
    req.process.gid = 65534;
    req.process.additional_gids = vec![5, 6];
    req.process.cwd = "/tmp".into();
    let p = l.launch(&req).unwrap();
    let out = read_all(p.stdout.unwrap());
    assert_eq!(out, "65534\n65534\n65534 5 6\n/tmp\n");
    assert_eq!(exit_of(p.exit).await, ExitStatus::Exited(0));

    // Root with no extra groups keeps none of the agent's.
    let p = l.launch(&request(&["id", "-G"], StdioMode::Pipes)).unwrap();
    assert_eq!(read_all(p.stdout.unwrap()), "0\n");
    exit_of(p.exit).await;

    // The working directory is entered as the user: a private one is refused.
    let dir = std::env::temp_dir().join(format!("kata-agent-test-private-{}", std::process::id()));
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    req.process.cwd = dir.clone();
    let err = l.launch(&req).unwrap_err();
    fs::remove_dir(&dir).unwrap();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
}

#[test]
fn handled_signals_come_from_the_status_masks() {
    let status = "Name:\tsh\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000004\n\
                  SigCgt:\t0000000000010002\n";
    assert!(super::signal_handled(status, 2)); // SIGINT caught
    assert!(super::signal_handled(status, 3)); // SIGQUIT ignored
    assert!(super::signal_handled(status, 17)); // SIGCHLD caught
    assert!(!super::signal_handled(status, 15)); // SIGTERM default
    assert!(!super::signal_handled("garbage", 15));
}

#[test]
fn handles_signal_reads_a_live_process() {
    current_thread_runtime().block_on(async {
        let launcher = launcher();
        let child = launcher
            .launch(&request(
                &["sh", "-c", "trap 'exit 0' TERM; sleep 5 & wait"],
                StdioMode::Null,
            ))
            .unwrap();
        // The trap is installed once the shell runs its script; poll briefly for it.
        let mut handled = false;
        for _ in 0..200 {
            handled = launcher.handles_signal(child.pid, libc::SIGTERM).unwrap();
            if handled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(handled, "the shell's TERM trap was not seen");
        assert!(!launcher.handles_signal(child.pid, libc::SIGUSR2).unwrap());
        launcher.signal(child.pid, libc::SIGKILL).unwrap();
        child.exit.await.unwrap();
    });
}
