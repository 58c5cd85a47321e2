//! Real containers through `LinuxLauncher`: a busybox rootfs in a tempdir, the setup helper from
//! the built `kata-agent` binary, namespaces, mounts, credentials, seccomp, hold/release, exec,
//! ptys, OOM notification, clean failure. Needs root and Debian's busybox-static.
//!
//! Every container runs in its own mount, pid, uts, ipc and network namespaces: nothing touches
//! the host's network or mounts. Tests run one at a time (descriptor and zombie counts are
//! per process).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kata_agent::host::{
    Cgroups, ContainerSetup, ExitStatus, LaunchRequest, LaunchTarget, Launched, Launcher,
    ProcessSpec, StdioMode,
};
use kata_agent::linux::{LinuxCgroups, LinuxLauncher, ReapMode};
use oci_spec::runtime::{Process, Spec};
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

use agent_testing::io::read_all_string;
use agent_testing::rootfs::rootfs;
use agent_testing::skip_unless_root;

static SERIAL: Mutex<()> = Mutex::const_new(());

async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// Takes the serial lock, then returns from the test (saying it is skipped) unless root.
macro_rules! serial_root {
    () => {{
        let guard = serial().await;
        skip_unless_root!("container namespaces and mounts");
        guard
    }};
}

/// The opening of most tests here: [`serial_root!`], a busybox rootfs and a launcher.
macro_rules! set_up {
    () => {{
        let guard = serial_root!();
        (guard, rootfs(), launcher())
    }};
}

fn base_spec(root: &Path, args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": root, "readonly": false},
        "hostname": "ctr",
        "process": {"cwd": "/", "args": args, "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/sys/firmware", "/secret", "/secret.txt"],
            "readonlyPaths": ["/proc/sys", "/ro"]
        }
    })
}

fn setup(spec: Value) -> Arc<ContainerSetup> {
    setup_with(spec, false)
}

fn setup_with(spec: Value, no_pivot_root: bool) -> Arc<ContainerSetup> {
    let spec: Spec = serde_json::from_value(spec).expect("valid spec");
    Arc::new(ContainerSetup {
        id: format!("ctr-{}", std::process::id()),
        spec,
        no_pivot_root,
    })
}

fn program(args: &[&str]) -> ProcessSpec {
    ProcessSpec {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        ..ProcessSpec::default()
    }
}

fn init_request(setup: &Arc<ContainerSetup>, stdio: StdioMode, hold: bool) -> LaunchRequest {
    let args: Vec<&str> = setup
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .map(|a| a.iter().map(String::as_str).collect())
        .unwrap_or_default();
    LaunchRequest {
        process: program(&args),
        stdio,
        pipe_size: 0,
        target: LaunchTarget::ContainerInit(Arc::clone(setup)),
        hold,
    }
}

fn exec_request(
    setup: &Arc<ContainerSetup>,
    init_pid: i32,
    args: &[&str],
    stdio: StdioMode,
) -> LaunchRequest {
    LaunchRequest {
        process: program(args),
        stdio,
        pipe_size: 0,
        target: LaunchTarget::ContainerExec {
            setup: Arc::clone(setup),
            init_pid,
            process: Box::new(Process::default()),
        },
        hold: false,
    }
}

fn launcher() -> LinuxLauncher {
    LinuxLauncher::with_helper(
        ReapMode::Registered,
        PathBuf::from(env!("CARGO_BIN_EXE_kata-agent")),
    )
    .expect("launcher")
}

async fn exit_of(p: Launched) -> ExitStatus {
    tokio::time::timeout(Duration::from_secs(30), p.exit)
        .await
        .expect("exit within 30 s")
        .expect("exit delivered")
}

/// Runs a container init to its end: (stdout, stderr, exit).
async fn run(l: &LinuxLauncher, spec: Value) -> (String, String, ExitStatus) {
    let s = setup(spec);
    let mut p = l
        .launch(&init_request(&s, StdioMode::Pipes, false))
        .unwrap();
    drop(p.stdin.take());
    let out = read_all_string(p.stdout.take().unwrap());
    let err = read_all_string(p.stderr.take().unwrap());
    (out, err, exit_of(p).await)
}

fn our_zombies() -> Vec<i32> {
    let me = std::process::id().to_string();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.first() == Some(&"Z") && f.get(1) == Some(&me.as_str())
        })
        .collect()
}

fn our_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned))
                    == Some(me.clone())
            })
        })
        .collect()
}

fn fds() -> BTreeSet<String> {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect()
}

#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn a_held_init_runs_only_after_release() {
    let (_g, root, l) = set_up!();
    let s = setup(base_spec(
        root.path(),
        &["sh", "-c", "echo hello; hostname; exit 7"],
    ));
    let mut p = l.launch(&init_request(&s, StdioMode::Pipes, true)).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        Path::new(&format!("/proc/{}", p.pid)).exists(),
        "held init is alive"
    );
    let stat = fs::read_to_string(format!("/proc/{}/cmdline", p.pid)).unwrap();
    assert!(
        stat.starts_with("kata-agent\0init"),
        "still the helper: {stat:?}"
    );
    l.release(p.pid).unwrap();
    drop(p.stdin.take());
    assert_eq!(read_all_string(p.stdout.take().unwrap()), "hello\nctr\n");
    assert_eq!(exit_of(p).await, ExitStatus::Exited(7));
    let again = l.release(12345).unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn an_exec_sees_the_container_and_a_tty_works() {
    let (_g, root, l) = set_up!();
    let s = setup(base_spec(root.path(), &["sleep", "1000"]));
    let init = l.launch(&init_request(&s, StdioMode::Null, false)).unwrap();

    let mut e = l
        .launch(&exec_request(
            &s,
            init.pid,
            &[
                "sh",
                "-c",
                "hostname; cat /marker; ls /proc | grep -c '^[0-9]'",
            ],
            StdioMode::Pipes,
        ))
        .unwrap();
    drop(e.stdin.take());
    let out = read_all_string(e.stdout.take().unwrap());
    assert_eq!(exit_of(e).await, ExitStatus::Exited(0));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["ctr", "inside"], "{out}");
    // The container's pid namespace: sleep, sh, ls (and grep) only.
    assert!(lines[2].parse::<u32>().unwrap() <= 4, "{out}");

    let mut t = l
        .launch(&exec_request(
            &s,
            init.pid,
            &[
                "sh",
                "-c",
                "test -t 0 && test -t 1 && echo is-a-tty; stty size",
            ],
            StdioMode::Pty,
        ))
        .unwrap();
    let out = read_all_string(t.pty_master.take().unwrap());
    assert!(out.contains("is-a-tty"), "{out:?}");
    assert_eq!(exit_of(t).await, ExitStatus::Exited(0));

    l.signal(init.pid, libc::SIGKILL).unwrap();
    assert_eq!(exit_of(init).await, ExitStatus::Signaled(libc::SIGKILL));
    // The init is gone: an exec is refused.
    let err = l
        .launch(&exec_request(&s, 999_999, &["true"], StdioMode::Null))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
}

#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn no_pivot_root_moves_the_root_and_an_exec_follows() {
    let (_g, root, l) = set_up!();
    let s = setup_with(base_spec(root.path(), &["sleep", "1000"]), true);
    let init = l.launch(&init_request(&s, StdioMode::Null, false)).unwrap();
    let mut e = l
        .launch(&exec_request(
            &s,
            init.pid,
            &["sh", "-c", "cat /marker; ls /"],
            StdioMode::Pipes,
        ))
        .unwrap();
    drop(e.stdin.take());
    let out = read_all_string(e.stdout.take().unwrap());
    assert_eq!(exit_of(e).await, ExitStatus::Exited(0));
    assert!(out.starts_with("inside\n"), "{out}");
    assert!(out.contains("secret.txt"), "the container root: {out}");
    l.signal(init.pid, libc::SIGKILL).unwrap();
    exit_of(init).await;
}

#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn namespaces_are_new() {
    let (_g, root, l) = set_up!();
    let kinds = ["mnt", "pid", "uts", "ipc", "net"];
    let script = "for n in mnt pid uts ipc net; do readlink /proc/self/ns/$n; done; echo $$";
    let (out, err, status) = run(&l, base_spec(root.path(), &["sh", "-c", script])).await;
    assert_eq!(status, ExitStatus::Exited(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for (kind, line) in kinds.iter().zip(&lines) {
        let host = fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert_ne!(
            host.to_string_lossy(),
            *line,
            "{kind} namespace is the host's"
        );
        assert!(line.starts_with(kind), "{line}");
    }
    assert_eq!(lines[5], "1", "the init is pid 1 of its namespace");
}

#[tokio::test]
#[ignore = "needs root: creates a user namespace"]
async fn a_user_namespace_gets_its_maps() {
    let _g = serial_root!();
    let max: u64 = fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .map(|s| s.trim().parse().unwrap_or(0))
        .unwrap_or(0);
    if max == 0 {
        eprintln!("SKIPPED: user namespaces are disabled here");
        return;
    }
    let root = rootfs();
    let l = launcher();
    let mut spec = base_spec(
        root.path(),
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u; cat /marker",
        ],
    );
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    let (out, err, status) = run(&l, spec).await;
    assert_eq!(status, ExitStatus::Exited(0), "out: {out}\nerr: {err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "0", "200000", "65536", "0", "200000", "65536", "0", "inside"
        ]
    );
}

#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn capabilities_are_dropped_and_no_new_privs_is_set() {
    let (_g, root, l) = set_up!();
    let mut spec = base_spec(
        root.path(),
        &[
            "sh",
            "-c",
            "grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs)' /proc/self/status",
        ],
    );
    let chown = json!(["CAP_CHOWN"]);
    spec["process"]["capabilities"] = json!({
        "bounding": chown, "effective": chown, "permitted": chown, "inheritable": [], "ambient": []
    });
    spec["process"]["noNewPrivileges"] = json!(true);
    let (out, err, status) = run(&l, spec).await;
    assert_eq!(status, ExitStatus::Exited(0), "{err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} missing in {out}"))
    };
    assert_eq!(field("CapEff:"), "0000000000000001");
    assert_eq!(field("CapPrm:"), "0000000000000001");
    assert_eq!(field("CapBnd:"), "0000000000000001");
    assert_eq!(field("NoNewPrivs:"), "1");
}

#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn seccomp_denies_mkdir_with_eperm() {
    let (_g, root, l) = set_up!();
    for nnp in [false, true] {
        let mut spec = base_spec(
            root.path(),
            &[
                "sh",
                "-c",
                "mkdir /tmp/denied; echo rc=$?; touch /tmp/allowed && echo ok",
            ],
        );
        spec["process"]["noNewPrivileges"] = json!(nnp);
        spec["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                              "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": libc::EPERM}]
        });
        let (out, err, status) = run(&l, spec).await;
        assert_eq!(status, ExitStatus::Exited(0), "nnp={nnp}: {err}");
        assert_eq!(out, "rc=1\nok\n", "nnp={nnp}");
        assert!(err.contains("Operation not permitted"), "nnp={nnp}: {err}");
        assert!(!root.path().join("tmp/denied").exists());
    }
}

#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn masked_readonly_and_ro_bind_paths() {
    let _g = serial_root!();
    let root = rootfs();
    let data = tempfile::tempdir().unwrap();
    let l = launcher();
    let script = "wc -c < /secret.txt; ls /secret | wc -l; \
                  touch /ro/x 2>&1; touch /data/x 2>&1; grep ' /data ' /proc/self/mountinfo";
    let mut spec = base_spec(root.path(), &["sh", "-c", script]);
    spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": data.path(),
        "options": ["rbind", "ro", "nosuid", "nodev"]
    }));
    let (out, err, status) = run(&l, spec).await;
    assert_eq!(status, ExitStatus::Exited(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "masked file reads empty: {out}");
    assert_eq!(lines[1].trim(), "0", "masked dir is empty: {out}");
    assert!(lines[2].contains("Read-only file system"), "{out}");
    assert!(lines[3].contains("Read-only file system"), "{out}");
    let opts = lines[4].split_whitespace().nth(5).unwrap();
    let opts: BTreeSet<&str> = opts.split(',').collect();
    assert!(
        ["ro", "nosuid", "nodev"].iter().all(|o| opts.contains(o)),
        "{out}"
    );
    assert_eq!(fs::read_dir(data.path()).unwrap().count(), 0);
}

#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn a_failed_mount_is_a_clear_error_and_leaves_nothing() {
    let (_g, root, l) = set_up!();
    // A first launch makes the sealed helper image, which the launcher keeps.
    let (_, _, status) = run(&l, base_spec(root.path(), &["true"])).await;
    assert_eq!(status, ExitStatus::Exited(0));

    let fds_before = fds();
    let mounts_before = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let children_before = our_children();
    let mut spec = base_spec(root.path(), &["true"]);
    spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/bad", "type": "nosuchfs", "source": "none"
    }));
    let s = setup(spec);
    let err = l
        .launch(&init_request(&s, StdioMode::Pipes, true))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("mount nosuchfs on /bad"), "{msg}");
    assert!(msg.contains("No such device"), "{msg}");
    assert_eq!(l.reaper().pending(), 0, "no registered child left");
    assert_eq!(our_children(), children_before, "no process left");
    assert_eq!(fds(), fds_before, "no descriptor left");
    assert_eq!(
        fs::read_to_string("/proc/self/mountinfo").unwrap(),
        mounts_before,
        "no mount left"
    );
    // A missing program is reported the same way, at launch.
    let s = setup(base_spec(root.path(), &["no-such-program"]));
    let err = l
        .launch(&init_request(&s, StdioMode::Null, false))
        .unwrap_err();
    assert!(err.to_string().contains("exec no-such-program"), "{err}");
    assert_eq!(fds(), fds_before, "no descriptor left");
    assert_eq!(l.reaper().pending(), 0);
}

#[tokio::test]
#[ignore = "needs root: creates a memory cgroup and a container"]
async fn an_oom_kill_is_reported_by_watch_oom() {
    let _g = serial_root!();
    let cgroups = LinuxCgroups::detect();
    let path = format!("kata-agent-test-oom-{}", std::process::id());
    cgroups.create(&path).unwrap();
    let cleanup = scopeguard(&cgroups, &path);
    let resources = serde_json::from_value(json!({"memory": {"limit": 32 << 20}})).unwrap();
    cgroups.set(&path, &resources).unwrap();
    let mut oom = cgroups.watch_oom(&path).unwrap();

    let root = rootfs();
    let l = launcher();
    let s = setup(base_spec(
        root.path(),
        &["sh", "-c", "head -c 300m /dev/zero | tail; echo survived"],
    ));
    let mut p = l.launch(&init_request(&s, StdioMode::Pipes, true)).unwrap();
    cgroups.add_process(&path, p.pid).unwrap();
    l.release(p.pid).unwrap();
    drop(p.stdin.take());
    let _ = read_all_string(p.stdout.take().unwrap());
    let _ = exit_of(p).await;
    let got = tokio::time::timeout(Duration::from_secs(10), oom.recv()).await;
    assert_eq!(got.expect("an OOM event within 10 s"), Some(()));
    drop(cleanup);
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while oom.recv().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the channel closes once the cgroup is removed");
}

/// Destroys the test cgroup on drop (also on failure).
fn scopeguard<'a>(cgroups: &'a LinuxCgroups, path: &'a str) -> impl Drop + 'a {
    struct Guard<'a>(&'a LinuxCgroups, &'a str);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            for _ in 0..50 {
                if self.0.destroy(self.1).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Guard(cgroups, path)
}

#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn a_thousand_short_execs_leave_no_zombie() {
    let (_g, root, l) = set_up!();
    let s = setup(base_spec(root.path(), &["sleep", "1000"]));
    let init = l.launch(&init_request(&s, StdioMode::Null, false)).unwrap();
    for i in 0..1000 {
        let e = l
            .launch(&exec_request(&s, init.pid, &["true"], StdioMode::Null))
            .unwrap_or_else(|e| panic!("exec {i}: {e}"));
        assert_eq!(exit_of(e).await, ExitStatus::Exited(0), "exec {i}");
    }
    l.signal(init.pid, libc::SIGKILL).unwrap();
    exit_of(init).await;
    assert_eq!(l.reaper().pending(), 0);
    assert_eq!(our_zombies(), Vec::<i32>::new());
}

/// An exec (forked directly, no setup helper) with the process's own credentials, capabilities,
/// rlimits, `noNewPrivileges`, working directory and the container's seccomp profile; only fds
/// 0..=2 reach it.
#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn an_exec_gets_its_credentials_limits_seccomp_and_only_three_fds() {
    let (_g, root, l) = set_up!();
    let mut spec = base_spec(root.path(), &["sleep", "1000"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": libc::EPERM}]
    });
    let s = setup(spec);
    let init = l.launch(&init_request(&s, StdioMode::Null, false)).unwrap();
    let chown = json!(["CAP_CHOWN"]);
    let process: Process = serde_json::from_value(json!({
        "cwd": "/tmp", "args": ["sh"], "user": {"uid": 1000, "gid": 1000},
        "capabilities": {"bounding": chown, "effective": chown, "permitted": chown,
                         "inheritable": chown, "ambient": chown},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}],
        "noNewPrivileges": true
    }))
    .unwrap();
    let script = "id -u; id -g; id -G; ulimit -n; pwd; \
                  grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status; \
                  ls /proc/self/fd; mkdir /tmp/denied; echo rc=$?";
    let mut request = exec_request(&s, init.pid, &["sh", "-c", script], StdioMode::Pipes);
    request.process.uid = 1000;
    request.process.gid = 1000;
    request.process.additional_gids = vec![1000, 5];
    request.process.cwd = "/tmp".into();
    if let LaunchTarget::ContainerExec { process: p, .. } = &mut request.target {
        **p = process;
    }
    let mut e = l.launch(&request).unwrap();
    drop(e.stdin.take());
    let out = read_all_string(e.stdout.take().unwrap());
    let err = read_all_string(e.stderr.take().unwrap());
    assert_eq!(exit_of(e).await, ExitStatus::Exited(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..5],
        ["1000", "1000", "1000 5", "100", "/tmp"],
        "{out}"
    );
    let caps: Vec<&str> = lines[5..9]
        .iter()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(
        caps,
        ["0000000000000001"; 3]
            .iter()
            .copied()
            .chain(["1"])
            .collect::<Vec<_>>(),
        "{out}"
    );
    // ls's own directory descriptor is 3: nothing else of the agent's is open.
    assert_eq!(lines[9..13], ["0", "1", "2", "3"], "{out}");
    assert_eq!(lines[13], "rc=1", "{out}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(!root.path().join("tmp/denied").exists());
    l.signal(init.pid, libc::SIGKILL).unwrap();
    exit_of(init).await;
    assert_eq!(l.reaper().pending(), 0);
}

/// A failing exec names the failed step with its errno, and leaves no process, zombie or
/// descriptor; a held exec runs only after its release.
#[tokio::test]
#[ignore = "needs root: creates container namespaces and mounts"]
async fn an_exec_failure_names_its_step_and_a_held_exec_waits() {
    let (_g, root, l) = set_up!();
    let s = setup(base_spec(root.path(), &["sleep", "1000"]));
    let init = l.launch(&init_request(&s, StdioMode::Null, false)).unwrap();
    // The launcher keeps what every exec shares (the agent's pid namespace) from the first.
    let first = l
        .launch(&exec_request(&s, init.pid, &["true"], StdioMode::Null))
        .unwrap();
    assert_eq!(exit_of(first).await, ExitStatus::Exited(0));
    let fds_before = fds();
    let mut request = exec_request(&s, init.pid, &["true"], StdioMode::Pipes);
    request.process.cwd = "/nowhere".into();
    let err = l.launch(&request).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("chdir /nowhere"), "{err}");
    let err = l
        .launch(&exec_request(
            &s,
            init.pid,
            &["no-such-program"],
            StdioMode::Null,
        ))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("exec no-such-program: not found in PATH /bin"),
        "{err}"
    );
    assert_eq!(fds(), fds_before, "no descriptor left");
    assert_eq!(l.reaper().pending(), 1, "only the init");
    assert_eq!(our_zombies(), Vec::<i32>::new());

    let mut request = exec_request(
        &s,
        init.pid,
        &["sh", "-c", "echo released"],
        StdioMode::Pipes,
    );
    request.hold = true;
    let mut e = l.launch(&request).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cmdline = fs::read(format!("/proc/{}/cmdline", e.pid)).unwrap();
    let ours = fs::read("/proc/self/cmdline").unwrap();
    assert_eq!(
        cmdline, ours,
        "a held exec has not executed its program yet"
    );
    // No handler of ours would run if the container signalled it before its exec.
    let status = fs::read_to_string(format!("/proc/{}/status", e.pid)).unwrap();
    let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:"));
    assert_eq!(caught.map(str::trim), Some("0000000000000000"), "{status}");
    l.release(e.pid).unwrap();
    drop(e.stdin.take());
    assert_eq!(read_all_string(e.stdout.take().unwrap()), "released\n");
    assert_eq!(exit_of(e).await, ExitStatus::Exited(0));
    l.signal(init.pid, libc::SIGKILL).unwrap();
    exit_of(init).await;
}
