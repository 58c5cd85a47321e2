//! watchable-bind on paused time: the initial copy, changes copied every 2 s, removals, the
//! 16-entry and 1 MiB limits (bind mount instead), and the poller stopping at release.

use std::path::Path;
use std::time::Duration;

use agent_fakes::Op;
use agent_testing::pod::Pod;
use agent_testing::storage::ctr;
use kata_agent::host::NodeKind;
use kata_agent::storage::{StorageRequest, WATCH_MAX_BYTES, WATCH_MAX_ENTRIES};

const ROOT: &str = "/run/kata-containers/shared/containers/watchable";
const TARGET: &str = "/run/kata-containers/shared/containers/watchable/c1-config";

fn watch() -> StorageRequest {
    StorageRequest::new("watchable-bind", "/run/src", "bind", TARGET)
}

async fn tick() {
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::yield_now().await;
}

#[tokio::test(start_paused = true)]
async fn changes_are_copied_every_two_seconds_until_release() {
    let b = Pod::storages().await;
    b.fake.sysfs.write_file("/run/src/app.conf", "v1").unwrap();
    b.fake.sysfs.write_file("/run/src/sub/key", "k").unwrap();
    b.fake.sysfs.symlink("/run/src/link", "app.conf").unwrap();
    b.storages.add(&ctr("c1"), &[watch()], "c1").await.unwrap();

    let root = b.fake.mounter.top(Path::new(ROOT)).unwrap();
    assert_eq!(root.fstype, "tmpfs");
    let copy = |p: &str| b.fake.sysfs.contents(format!("{TARGET}/{p}"));
    assert_eq!(copy("app.conf").unwrap(), b"v1");
    assert_eq!(copy("sub/key").unwrap(), b"k");
    assert_eq!(
        b.fake.sysfs.meta(format!("{TARGET}/link")).unwrap().kind,
        NodeKind::Symlink
    );

    b.fake.sysfs.write_file("/run/src/app.conf", "v2").unwrap();
    b.fake.sysfs.write_file("/run/src/new", "n").unwrap();
    b.fake.sysfs.remove("/run/src/sub").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(copy("app.conf").unwrap(), b"v1", "not before the poll");
    tick().await;
    assert_eq!(copy("app.conf").unwrap(), b"v2");
    assert_eq!(copy("new").unwrap(), b"n");
    assert!(
        b.fake.sysfs.meta(format!("{TARGET}/sub")).is_none(),
        "removal mirrored"
    );

    b.storages.release("c1").unwrap();
    assert!(b.fake.sysfs.meta(TARGET).is_none(), "copy removed");
    assert!(
        b.fake.mounter.top(Path::new(ROOT)).is_some(),
        "shared root stays"
    );
    let reads = b.fake.faults.calls(Op::SysfsLstat);
    b.fake.sysfs.write_file("/run/src/app.conf", "v3").unwrap();
    tick().await;
    tick().await;
    assert_eq!(b.fake.faults.calls(Op::SysfsLstat), reads, "poller stopped");
    b.storages.release_all().unwrap();
    b.assert_clean("all released");
}

#[tokio::test(start_paused = true)]
async fn too_many_entries_or_bytes_become_a_bind_mount() {
    let b = Pod::storages().await;
    for i in 0..WATCH_MAX_ENTRIES + 1 {
        b.fake
            .sysfs
            .write_file(format!("/run/src/f{i}"), "x")
            .unwrap();
    }
    b.storages.add(&ctr("c1"), &[watch()], "c1").await.unwrap();
    let m = b.fake.mounter.top(Path::new(TARGET)).unwrap();
    assert_eq!((m.source.as_str(), m.fstype.as_str()), ("/run/src", "none"));
    b.storages.release("c1").unwrap();
    assert!(b.fake.mounter.top(Path::new(TARGET)).is_none());

    // Growing past 1 MiB while watched: the poller switches to a bind mount and stops.
    b.fake.sysfs.remove("/run/src").unwrap();
    b.fake.sysfs.write_file("/run/src/small", "s").unwrap();
    b.storages.add(&ctr("c2"), &[watch()], "c2").await.unwrap();
    assert!(b.fake.mounter.top(Path::new(TARGET)).is_none());
    b.fake
        .sysfs
        .write_file("/run/src/big", vec![0u8; WATCH_MAX_BYTES as usize + 1])
        .unwrap();
    tick().await;
    assert_eq!(
        b.fake.mounter.top(Path::new(TARGET)).unwrap().source,
        "/run/src"
    );
    let reads = b.fake.faults.calls(Op::SysfsLstat);
    tick().await;
    assert_eq!(
        b.fake.faults.calls(Op::SysfsLstat),
        reads,
        "no more polling"
    );
    b.storages.release_all().unwrap();
    b.assert_clean("released");
}

#[tokio::test(start_paused = true)]
async fn watchable_mount_points_must_be_in_a_watch_root() {
    let b = Pod::storages().await;
    b.fake.sysfs.write_file("/run/src/a", "x").unwrap();
    let bad = StorageRequest::new("watchable-bind", "/run/src", "bind", "/run/elsewhere/x");
    assert!(
        b.storages
            .add(&ctr("c"), &[bad], "c")
            .await
            .unwrap_err()
            .is_invalid_input()
    );
    let rootless = StorageRequest::new(
        "watchable-bind",
        "/run/src",
        "bind",
        "/run/user/1000/run/kata-containers/shared/containers/watchable/x",
    );
    b.storages.add(&ctr("c"), &[rootless], "c").await.unwrap();
    b.storages.release_all().unwrap();
    b.assert_clean("rootless released");
}
