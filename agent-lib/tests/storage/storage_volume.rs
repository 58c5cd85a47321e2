//! Volume RPC operations on the fakes: stats, resize, ephemeral remounts, virtio-fs refresh,
//! and the decoding of Kata's `Storage` message.

use std::path::Path;

use agent_fakes::{FakeHost, Op, Script};
use agent_protos::{agent, types};
use kata_agent::host::{FsStats, MountSpec};
use kata_agent::storage::{self, FsGroupPolicy, StorageError, StorageRequest};

#[test]
fn volume_stats_report_bytes_and_inodes() {
    let fake = FakeHost::new();
    fake.sysfs.mkdir_p("/run/vol/sub").unwrap();
    fake.system.set_filesystem(
        "/run/vol",
        FsStats {
            block_size: 4096,
            blocks: 100,
            blocks_free: 40,
            blocks_available: 30,
            files: 1000,
            files_free: 900,
        },
    );
    let stats = storage::volume_stats(&fake.host(), Path::new("/run/vol/sub")).unwrap();
    assert_eq!(
        (stats.bytes.total, stats.bytes.available, stats.bytes.used),
        (409_600, 163_840, 245_760)
    );
    assert_eq!(
        (
            stats.inodes.total,
            stats.inodes.available,
            stats.inodes.used
        ),
        (1000, 900, 100)
    );
    let err = storage::volume_stats(&fake.host(), Path::new("/run/none")).unwrap_err();
    assert!(matches!(err, StorageError::NoVolume(_)), "{err}");
}

#[tokio::test(start_paused = true)]
async fn resize_grows_ext4_and_xfs_and_refuses_the_rest() {
    let fake = FakeHost::new();
    let host = fake.host();
    host.mounter
        .mount(&MountSpec::new("/dev/vda", "/run/e", "ext4"))
        .unwrap();
    host.mounter
        .mount(&MountSpec::new("/dev/vdb", "/run/x", "xfs"))
        .unwrap();
    host.mounter
        .mount(&MountSpec::new("tmpfs", "/run/t", "tmpfs"))
        .unwrap();
    fake.launcher.script("resize2fs", Script::exit(0));
    fake.launcher.script("xfs_growfs", Script::exit(1));
    storage::resize_volume(&host, Path::new("/run/e"))
        .await
        .unwrap();
    let err = storage::resize_volume(&host, Path::new("/run/x"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("xfs_growfs failed: exit code 1"),
        "{err}"
    );
    let err = storage::resize_volume(&host, Path::new("/run/t"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Unsupported(_)), "{err}");
    let err = storage::resize_volume(&host, Path::new("/run/nothing"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NoVolume(_)), "{err}");
    assert_eq!(fake.faults.calls(Op::Launch), 2);
}

#[test]
fn ephemeral_mounts_are_remounted_and_other_drivers_refused() {
    const EPH: &str = "/run/kata-containers/sandbox/ephemeral/eph";
    let fake = FakeHost::new();
    let host = fake.host();
    let roots = storage::MountRoots::default();
    host.mounter
        .mount(&MountSpec::new("tmpfs", EPH, "tmpfs").data("size=10m"))
        .unwrap();
    let grow = StorageRequest::new("ephemeral", "tmpfs", "tmpfs", EPH)
        .options(["remount", "size=20m", "fsgid=3"]);
    storage::update_ephemeral_mounts(&host, &roots, &[grow]).unwrap();
    let m = fake.mounter.top(Path::new(EPH)).unwrap();
    assert_eq!(m.data.as_deref(), Some("size=20m"));
    assert_eq!(
        fake.mounter.depth(Path::new(EPH)),
        1,
        "remounted, not stacked"
    );

    let other = StorageRequest::new("local", "", "", EPH);
    let err = storage::update_ephemeral_mounts(&host, &roots, &[other]).unwrap_err();
    assert!(matches!(err, StorageError::Unsupported(_)), "{err}");
    let absent = StorageRequest::new(
        "ephemeral",
        "tmpfs",
        "tmpfs",
        "/run/kata-containers/sandbox/ephemeral/none",
    )
    .options(["size=1m"]);
    let err = storage::update_ephemeral_mounts(&host, &roots, &[absent]).unwrap_err();
    assert!(matches!(err, StorageError::NoVolume(_)), "{err}");
    // A mount point outside the agent's directories is refused before anything is remounted.
    host.mounter
        .mount(&MountSpec::new("tmpfs", "/etc", "tmpfs").data("size=1m"))
        .unwrap();
    let etc = StorageRequest::new("ephemeral", "tmpfs", "tmpfs", "/etc").options(["size=2m"]);
    let err = storage::update_ephemeral_mounts(&host, &roots, &[etc]).unwrap_err();
    assert!(
        err.is_invalid_input() && err.to_string().contains("/etc"),
        "{err}"
    );
    let m = fake.mounter.top(Path::new("/etc")).unwrap();
    assert_eq!(m.data.as_deref(), Some("size=1m"), "/etc was remounted");
}

#[test]
fn stale_virtiofs_share_mounts_are_stated() {
    let fake = FakeHost::new();
    let host = fake.host();
    let shared = "/run/kata-containers/shared/containers";
    fake.sysfs.mkdir_p(format!("{shared}/c1-vol")).unwrap();
    host.mounter
        .mount(&MountSpec::bind(
            format!("{shared}/x"),
            format!("{shared}/c1-vol"),
        ))
        .unwrap();
    host.mounter
        .mount(&MountSpec::bind("/a", format!("{shared}/gone")))
        .unwrap();
    host.mounter
        .mount(&MountSpec::new("tmpfs", "/run/other", "tmpfs"))
        .unwrap();
    let before = fake.faults.calls(Op::SysfsStat);
    storage::remove_stale_virtiofs_share_mounts(&host).unwrap();
    assert_eq!(fake.faults.calls(Op::SysfsStat) - before, 2);
}

#[test]
fn storage_messages_decode_into_requests() {
    let msg = agent::Storage {
        driver: "local".into(),
        driver_options: vec!["a=b".into()],
        source: "src".into(),
        fstype: "tmpfs".into(),
        options: vec!["mode=0777".into()],
        mount_point: "/run/x".into(),
        fs_group: Some(agent::FSGroup {
            group_id: 42,
            group_change_policy: types::FSGroupChangePolicy::OnRootMismatch.into(),
            ..Default::default()
        })
        .into(),
        shared: true,
        ..Default::default()
    };
    let req = kata_agent::rpc::decode_storage(&msg);
    assert_eq!(req.mount_point, Path::new("/run/x"));
    let group = req.fs_group.unwrap();
    assert_eq!(
        (group.gid, group.policy),
        (42, FsGroupPolicy::OnRootMismatch)
    );
    assert!(req.shared);
    assert_eq!(
        kata_agent::rpc::decode_storage(&agent::Storage::default()).fs_group,
        None
    );
}
