//! `FakeLauncher` held launches, container targets, `release` and `handles_signal`.

use std::sync::Arc;
use std::time::Duration;

use agent_fakes::{FakeLauncher, Faults, Op, Reaction, Script};
use kata_agent::host::{ContainerSetup, ExitStatus, LaunchRequest, LaunchTarget, ProcessSpec};
use nix::errno::Errno;
use nix::sys::signal::Signal;

fn launcher() -> FakeLauncher {
    let l = FakeLauncher::new(Faults::new());
    l.script("true", Script::exit(0));
    l.script("sleep", Script::until_signal());
    l.script(
        "trap",
        Script::until_signal().on_signal(Signal::SIGTERM, Reaction::Exit(7)),
    );
    l
}

fn setup() -> Arc<ContainerSetup> {
    Arc::new(ContainerSetup {
        id: "c1".into(),
        spec: oci_spec::runtime::Spec::default(),
        no_pivot_root: false,
    })
}

fn held(program: &str, target: LaunchTarget) -> LaunchRequest {
    LaunchRequest {
        process: ProcessSpec {
            args: vec![program.to_owned()],
            ..ProcessSpec::default()
        },
        target,
        hold: true,
        ..LaunchRequest::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_held_process_runs_only_once_released() {
    let l = launcher();
    let launched = l
        .launch(&held("true", LaunchTarget::ContainerInit(setup())))
        .unwrap();
    let pid = launched.pid;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(l.is_live(pid), "a held process must not run its script");
    let record = l.record(pid).unwrap();
    assert!(record.held);
    assert!(matches!(record.request.target, LaunchTarget::ContainerInit(ref s) if s.id == "c1"));
    l.release(pid).unwrap();
    assert!(!l.record(pid).unwrap().held);
    assert_eq!(launched.exit.await.unwrap(), ExitStatus::Exited(0));
    assert_eq!(
        l.release(pid).unwrap_err().raw_os_error(),
        Some(libc::ESRCH)
    );
}

#[tokio::test(start_paused = true)]
async fn release_and_handles_signal_semantics() {
    let l = launcher();
    let launched = l.launch(&held("trap", LaunchTarget::Host)).unwrap();
    let pid = launched.pid;
    // Held: the program's handlers are not installed yet.
    assert!(!l.handles_signal(pid, libc::SIGTERM).unwrap());
    l.release(pid).unwrap();
    assert_eq!(
        l.release(pid).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    tokio::task::yield_now().await;
    assert!(l.handles_signal(pid, libc::SIGTERM).unwrap());
    l.signal(pid, libc::SIGTERM).unwrap();
    assert_eq!(launched.exit.await.unwrap(), ExitStatus::Exited(7));
    assert_eq!(
        l.handles_signal(pid, libc::SIGTERM)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ESRCH)
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_process_dies_of_default_signal_actions() {
    let l = launcher();
    let launched = l.launch(&held("trap", LaunchTarget::Host)).unwrap();
    // SIGWINCH is ignored by default; SIGTERM kills (the trap is not installed yet).
    l.signal(launched.pid, libc::SIGWINCH).unwrap();
    l.signal(launched.pid, libc::SIGTERM).unwrap();
    assert_eq!(
        launched.exit.await.unwrap(),
        ExitStatus::Signaled(libc::SIGTERM)
    );
}

#[tokio::test(start_paused = true)]
async fn an_exec_needs_a_live_init_and_release_can_be_faulted() {
    let faults = Faults::new();
    let l = FakeLauncher::new(faults.clone());
    l.script("sleep", Script::until_signal());
    let init = l
        .launch(&held("sleep", LaunchTarget::ContainerInit(setup())))
        .unwrap();
    let exec = |init_pid| {
        held(
            "sleep",
            LaunchTarget::ContainerExec {
                setup: setup(),
                init_pid,
                process: Box::default(),
            },
        )
    };
    assert_eq!(
        l.launch(&exec(4242)).unwrap_err().raw_os_error(),
        Some(libc::ESRCH)
    );
    let e = l.launch(&exec(init.pid)).unwrap();
    faults.fail_next(Op::Release, Errno::EIO);
    assert!(l.release(e.pid).is_err());
    assert!(l.record(e.pid).unwrap().held);
    l.release(e.pid).unwrap();
    faults.fail_next(Op::HandlesSignal, Errno::EIO);
    assert!(l.handles_signal(e.pid, libc::SIGTERM).is_err());
    l.signal(e.pid, libc::SIGKILL).unwrap();
    l.signal(init.pid, libc::SIGKILL).unwrap();
    assert_eq!(e.exit.await.unwrap(), ExitStatus::Signaled(9));
    assert_eq!(init.exit.await.unwrap(), ExitStatus::Signaled(9));
}
