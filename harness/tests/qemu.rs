//! The scenarios marked `real_vm: true` on a real guest: `harness run --vmm qemu` boots Debian's
//! cloud kernel under QEMU (TCG) with the release agent as PID 1 and drives it over hybrid vsock
//! through vhost-device-vsock. Needs root, network for the one-off kernel download, QEMU,
//! vhost-device-vsock, busybox-static and e2fsprogs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's target folder.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// The release agent, brought up to date first (a no-op in CI: `.ci/run` builds it before the
/// tests, and the performance gate reuses it).
fn release_agent() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "kata-agent",
            "--bin",
            "kata-agent",
        ])
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo build --release -p kata-agent failed"
    );
    target_dir().join("release/kata-agent")
}

/// The CI slice, three boots. `blk-container-volume`: Check, CreateSandbox, a busybox container
/// whose volume is a virtio-blk disk hot-plugged (QMP) while CreateContainer waits, execs with
/// exit codes 0 and 1, mounts read back from the guest. `cgroup-v2-real`: the guest on cgroup
/// v2 only, UpdateContainer limits read back from its cgroup files, freeze and thaw, an OOM kill
/// reported by GetOOMEvent. `blk-coldplug-bridge`: a disk on the QEMU command line behind a
/// PCI-PCI bridge, mounted as a volume. Each also runs on the fake VMM with no trace difference.
#[test]
#[ignore = "needs root, qemu and vhost-device-vsock: a real guest"]
fn the_ci_slice_passes_on_a_real_guest() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--vmm", "qemu", "--agent"])
        .arg(release_agent())
        .arg("--cache")
        .arg(target_dir().join("qemu-cache"))
        .arg(scenarios.join("blk-container-volume.yaml"))
        .arg(scenarios.join("cgroup-v2-real.yaml"))
        .arg(scenarios.join("blk-coldplug-bridge.yaml"))
        .output()
        .expect("harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "harness run --vmm qemu failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("3 passed, 0 failed"), "{stdout}");
    for name in [
        "blk-container-volume",
        "cgroup-v2-real",
        "blk-coldplug-bridge",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("ok   {name} ")))
            .unwrap_or_else(|| panic!("no ok line for {name}:\n{stdout}"));
        assert!(line.contains("boot to first Check"), "{line}");
        assert!(line.contains("agent as PID 1"), "{line}");
        // The agent's own figures: it listened before its deferred start work was done.
        assert!(line.contains("process start to listening"), "{line}");
        assert!(line.contains(", to ready "), "{line}");
        assert!(line.contains("powered off after DestroySandbox"), "{line}");
    }
    for what in ["agent start steps: ", "agent deferred steps: "] {
        assert_eq!(stdout.matches(what).count(), 3, "{what}\n{stdout}");
    }
    let blk = stdout
        .lines()
        .find(|l| l.starts_with("ok   blk-container-volume "))
        .unwrap_or_default();
    assert!(blk.contains("exec "), "{blk}");
    // Every check of the slice is answered in the guest (mounts, paths, cgroup files): nothing
    // is skipped, and both traces match the fake VMM's.
    assert!(
        !stdout
            .lines()
            .any(|l| l.trim_start().starts_with("skipped")),
        "{stdout}"
    );
    assert!(stdout.contains("15 step(s) run, 0 skipped"), "{stdout}");
    assert_eq!(
        stdout
            .matches("parity with the fake VMM: 0 differences")
            .count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains("parity: 0 difference(s)"), "{stdout}");
}

#[test]
fn qemu_backend_refuses_a_missing_agent_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--vmm", "qemu", "--agent"])
        .arg(dir.path().join("no-agent"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/container-exec-real.yaml"))
        .output()
        .expect("harness runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--agent"), "{stderr}");
}
