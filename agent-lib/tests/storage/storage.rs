//! Storage drivers and the refcount table on the fakes: each driver's options and effects,
//! refcounting across owners, all-or-nothing adds, fsGroup, the option parser.

use std::path::{Path, PathBuf};

use agent_testing::pod::Pod;
use agent_testing::storage::ctr;
use kata_agent::host::{AgentFiles, Mounter, NodeKind};
use kata_agent::storage::{
    FsGroupPolicy, MountOptions, StorageContext, StorageError, StorageRequest,
};
use nix::mount::MsFlags;

fn tmpfs(mount_point: &str) -> StorageRequest {
    StorageRequest::new("ephemeral", "tmpfs", "tmpfs", mount_point)
}

#[test]
fn options_split_flags_from_data_and_reject_what_they_do_not_know() {
    let o =
        MountOptions::parse(&["nosuid,nodev", "ro", "size=64m", "mode=1777", "rprivate"]).unwrap();
    assert_eq!(
        o.flags,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RDONLY
    );
    assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
    assert_eq!(o.data_string().as_deref(), Some("size=64m,mode=1777"));
    let o =
        MountOptions::parse(&["trans=virtio,version=9p2000.L,cache=mmap", "nodev", "dax"]).unwrap();
    assert_eq!(o.flags, MsFlags::MS_NODEV);
    assert_eq!(o.data.len(), 4);
    assert_eq!(
        MountOptions::parse(&["rbind"]).unwrap().flags,
        MsFlags::MS_BIND | MsFlags::MS_REC
    );

    for (bad, named) in [
        (vec!["ro", "rw"], "rw"),
        (vec!["nosuid", "suid"], "suid"),
        (vec!["private", "rshared"], "rshared"),
        (vec!["noatime", "relatime"], "relatime"),
        (vec!["size=1m", "size=2m"], "size=2m"),
        (vec!["frobnicate"], "frobnicate"),
        (vec!["loop"], "loop"),
        (vec!["nofail"], "nofail"),
        (vec!["remount"], "remount"),
        (vec!["a=1,,b=2"], ""),
        (
            vec!["io.katacontainers.fs-opt.overlay-rw"],
            "io.katacontainers.fs-opt.overlay-rw",
        ),
    ] {
        match MountOptions::parse(&bad) {
            Err(StorageError::InvalidOption { option, .. }) => {
                assert_eq!(option, named, "{bad:?}")
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let big = format!("x={}", "y".repeat(5000));
    assert!(MountOptions::parse(&[big]).is_err());
    assert!(MountOptions::parse_remount(&["remount", "size=8m"]).is_ok());
}

#[tokio::test(start_paused = true)]
async fn ephemeral_tmpfs_mounts_with_its_options_and_fsgid() {
    let b = Pod::storages().await;
    let req = tmpfs("/run/kata-containers/sandbox/ephemeral/cache").options([
        "nosuid",
        "size=64m",
        "fsgid=1000",
    ]);
    let paths = b.storages.add(&ctr("c1"), &[req], "c1").await.unwrap();
    assert_eq!(
        paths,
        [PathBuf::from(
            "/run/kata-containers/sandbox/ephemeral/cache"
        )]
    );
    let m = b.fake.mounter.top(&paths[0]).unwrap();
    assert_eq!((m.source.as_str(), m.fstype.as_str()), ("tmpfs", "tmpfs"));
    assert_eq!(m.data.as_deref(), Some("size=64m"));
    assert!(m.flags.contains(MsFlags::MS_NOSUID));
    let meta = b.fake.sysfs.meta(&paths[0]).unwrap();
    assert_eq!(meta.gid, 1000);
    assert_ne!(meta.mode & 0o2000, 0, "setgid");

    b.storages.release("c1").unwrap();
    b.assert_clean("after release");
    assert!(
        !b.exists("/run/kata-containers"),
        "mount point and its new parents removed"
    );
    assert!(b.exists("/run"), "what existed before stays");
}

#[tokio::test(start_paused = true)]
async fn a_second_owner_bumps_the_count_and_the_last_release_unmounts() {
    let b = Pod::storages().await;
    let req = tmpfs("/run/kata-containers/sandbox/shared-vol");
    b.storages
        .add(&ctr("a"), std::slice::from_ref(&req), "a")
        .await
        .unwrap();
    b.storages
        .add(&ctr("b"), std::slice::from_ref(&req), "b")
        .await
        .unwrap();
    assert_eq!(
        b.fake
            .mounter
            .depth(Path::new("/run/kata-containers/sandbox/shared-vol")),
        1,
        "mounted once"
    );
    assert_eq!(
        b.storages
            .refcount(Path::new("/run/kata-containers/sandbox/shared-vol")),
        2
    );

    b.storages.release("a").unwrap();
    assert_eq!(
        b.storages
            .refcount(Path::new("/run/kata-containers/sandbox/shared-vol")),
        1
    );
    assert!(
        b.fake
            .mounter
            .top(Path::new("/run/kata-containers/sandbox/shared-vol"))
            .is_some()
    );
    b.storages.release("a").unwrap(); // nothing left of a: no effect
    assert_eq!(
        b.storages
            .refcount(Path::new("/run/kata-containers/sandbox/shared-vol")),
        1
    );
    b.storages.release("b").unwrap();
    b.assert_clean("after both releases");
}

#[tokio::test(start_paused = true)]
async fn shared_storages_stay_until_release_all_which_goes_newest_first() {
    let b = Pod::storages().await;
    let outer = tmpfs("/run/kata-containers/sandbox/outer").shared();
    let inner = tmpfs("/run/kata-containers/sandbox/outer/inner");
    b.storages
        .add(&StorageContext::sandbox(), &[outer], "sandbox")
        .await
        .unwrap();
    b.storages.add(&ctr("c"), &[inner], "c").await.unwrap();
    b.storages.release("sandbox").unwrap();
    assert_eq!(
        b.storages.list().len(),
        2,
        "shared outer kept, inner still used"
    );
    b.storages.release("c").unwrap();
    assert_eq!(b.storages.list().len(), 1);
    b.storages
        .add(
            &ctr("d"),
            &[tmpfs("/run/kata-containers/sandbox/outer/inner2")],
            "d",
        )
        .await
        .unwrap();
    b.storages.release_all().unwrap();
    b.assert_clean("after release_all");
}

#[tokio::test(start_paused = true)]
async fn a_failing_request_undoes_everything_the_call_set_up() {
    let b = Pod::storages().await;
    b.storages
        .add(
            &ctr("x"),
            &[tmpfs("/run/kata-containers/sandbox/kept")],
            "x",
        )
        .await
        .unwrap();
    let before = b.fake.mounter.table();
    let reqs = [
        tmpfs("/run/kata-containers/sandbox/kept"),
        tmpfs("/run/kata-containers/sandbox/new-one"),
        StorageRequest::new("local", "", "", "/run/kata-containers/sandbox/bad")
            .options(["bogus=1"]),
    ];
    let err = b.storages.add(&ctr("y"), &reqs, "y").await.unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidOption { ref option, .. } if option == "bogus=1"),
        "{err}"
    );
    assert_eq!(b.fake.mounter.table(), before);
    assert_eq!(
        b.storages
            .refcount(Path::new("/run/kata-containers/sandbox/kept")),
        1,
        "y's bump given back"
    );
    assert!(!b.exists("/run/kata-containers/sandbox/new-one"));

    // Unknown drivers and bad mount points fail before anything is touched.
    let calls = b.fake.faults.counts();
    for bad in [
        StorageRequest::new("nope", "x", "x", "/run/kata-containers/sandbox/a"),
        tmpfs("relative/path"),
        tmpfs("/run/kata-containers/sandbox/../etc"),
        tmpfs("/"),
    ] {
        let err = b
            .storages
            .add(
                &ctr("z"),
                &[tmpfs("/run/kata-containers/sandbox/z"), bad],
                "z",
            )
            .await
            .unwrap_err();
        assert!(err.is_invalid_input(), "{err}");
    }
    assert_eq!(
        b.fake.faults.counts(),
        calls,
        "no OS call for invalid input"
    );
}

#[tokio::test(start_paused = true)]
async fn hugetlbfs_reserves_its_pages_before_mounting() {
    let b = Pod::storages().await;
    let pool = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
    let req = StorageRequest::new(
        "ephemeral",
        "nodev",
        "hugetlbfs",
        "/run/kata-containers/sandbox/huge",
    )
    .options(["pagesize=2097152,size=8388608"]);
    b.storages
        .add(&ctr("c"), std::slice::from_ref(&req), "c")
        .await
        .unwrap();
    assert_eq!(b.fake.sysfs.contents(pool).unwrap(), b"4");
    let m = b
        .fake
        .mounter
        .top(Path::new("/run/kata-containers/sandbox/huge"))
        .unwrap();
    assert_eq!(m.fstype, "hugetlbfs");
    assert_eq!(m.data.as_deref(), Some("pagesize=2097152,size=8388608"));
    b.storages.release("c").unwrap();
    b.assert_clean("released");

    for bad in [
        vec!["size=8388608"],
        vec!["pagesize=abc,size=1"],
        vec!["pagesize=100,size=1000"],
    ] {
        let req = StorageRequest::new(
            "ephemeral",
            "nodev",
            "hugetlbfs",
            "/run/kata-containers/sandbox/huge",
        )
        .options(bad.clone());
        let err = b.storages.add(&ctr("e"), &[req], "e").await.unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidOption { .. }),
            "{bad:?}: {err}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn hugetlbfs_short_reservation_is_an_error_and_is_rolled_back() {
    let b = Pod::storages().await;
    let pool = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
    b.fake.sysfs.write_file(pool, "1").unwrap();
    // The kernel takes the write but only finds room for 2 pages: the pool file becomes a link
    // to what the kernel reports.
    b.fake.sysfs.on_write(pool, |fake, path, data| {
        if data == b"4" {
            fake.remove(path)?;
            fake.write_file("/run/kata-containers/sandbox/granted", "2")?;
            fake.symlink(path, "/run/kata-containers/sandbox/granted")?;
        }
        Ok(())
    });
    let req = StorageRequest::new(
        "ephemeral",
        "nodev",
        "hugetlbfs",
        "/run/kata-containers/sandbox/huge",
    )
    .options(["pagesize=2097152", "size=8388608"]);
    let err = b.storages.add(&ctr("c"), &[req], "c").await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::HugePages {
                wanted: 4,
                got: 2,
                ..
            }
        ),
        "{err}"
    );
    b.assert_clean("short reservation");
    assert_eq!(b.fake.sysfs.contents(pool).unwrap(), b"1", "pool restored");
    assert!(!b.exists("/run/kata-containers/sandbox/huge"));
}

#[tokio::test(start_paused = true)]
async fn local_creates_a_directory_with_mode_and_group() {
    let b = Pod::storages().await;
    let req = StorageRequest::new(
        "local",
        "local",
        "local",
        "/run/kata-containers/sandbox/local/vol",
    )
    .options(["mode=0777", "fsgid=2000"]);
    b.storages.add(&ctr("c"), &[req], "c").await.unwrap();
    let meta = b
        .fake
        .sysfs
        .meta("/run/kata-containers/sandbox/local/vol")
        .unwrap();
    assert_eq!(
        (meta.kind, meta.mode, meta.gid),
        (NodeKind::Dir, 0o2777, 2000)
    );
    assert!(b.fake.mounter.table().is_empty(), "no mount");
    b.fake
        .sysfs
        .write_file("/run/kata-containers/sandbox/local/vol/data", "x")
        .unwrap();
    b.storages.release("c").unwrap();
    assert!(
        !b.exists("/run/kata-containers"),
        "directory and contents removed"
    );

    let err = b
        .storages
        .add(
            &ctr("c"),
            &[
                StorageRequest::new("local", "", "", "/run/kata-containers/sandbox/v")
                    .options(["mode=99"]),
            ],
            "c",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidOption { ref option, .. } if option == "mode=99"));
}

#[tokio::test(start_paused = true)]
async fn overlay_rw_gets_upper_and_work_under_the_container() {
    let b = Pod::storages().await;
    let req = StorageRequest::new(
        "overlayfs",
        "overlay",
        "overlay",
        "/run/kata-containers/c1/rootfs",
    )
    .options([
        "lowerdir=/run/l1:/run/l2",
        "io.katacontainers.fs-opt.overlay-rw",
    ])
    .driver_options(["io.katacontainers.volume.overlayfs.create_directory=/run/extra/dir"]);
    b.storages
        .add(&ctr("c1"), std::slice::from_ref(&req), "c1")
        .await
        .unwrap();
    let m = b
        .fake
        .mounter
        .top(Path::new("/run/kata-containers/c1/rootfs"))
        .unwrap();
    assert_eq!(m.fstype, "overlay");
    assert_eq!(
        m.data.as_deref(),
        Some(
            "lowerdir=/run/l1:/run/l2,upperdir=/run/kata-containers/c1/upper,workdir=/run/kata-containers/c1/work"
        )
    );
    assert!(b.exists("/run/extra/dir"));
    b.storages.release("c1").unwrap();
    b.assert_clean("overlay released");
    assert!(!b.exists("/run/kata-containers/c1/upper") && !b.exists("/run/extra"));

    let err = b
        .storages
        .add(
            &StorageContext::sandbox(),
            std::slice::from_ref(&req),
            "sandbox",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("overlay-rw"), "{err}");
    let bad = req.clone().driver_options(["what=ever"]);
    assert!(
        b.storages
            .add(&ctr("c1"), &[bad], "c1")
            .await
            .unwrap_err()
            .is_invalid_input()
    );
}

#[tokio::test(start_paused = true)]
async fn virtio_fs_keeps_the_premount_and_9p_gets_its_defaults() {
    let b = Pod::storages().await;
    let shared = "/run/kata-containers/shared/containers";
    let req = StorageRequest::new("virtio-fs", "kataShared", "virtiofs", shared);
    b.storages
        .add(
            &StorageContext::sandbox(),
            std::slice::from_ref(&req),
            "sandbox",
        )
        .await
        .unwrap();
    let m = b.fake.mounter.top(Path::new(shared)).unwrap();
    assert_eq!(
        (m.source.as_str(), m.fstype.as_str()),
        ("kataShared", "virtiofs")
    );
    b.storages.release_all().unwrap();
    b.assert_clean("virtio-fs released");

    // A premount (made before the agent) is kept, and not unmounted on release.
    b.fake
        .mounter
        .mount(&kata_agent::host::MountSpec::new(
            "kataShared",
            shared,
            "virtiofs",
        ))
        .unwrap();
    b.fake.baseline();
    let calls = b.fake.faults.calls(agent_fakes::Op::Mount);
    b.storages
        .add(&StorageContext::sandbox(), &[req], "sandbox")
        .await
        .unwrap();
    b.storages.release_all().unwrap();
    assert_eq!(b.fake.faults.calls(agent_fakes::Op::Mount), calls);
    assert_eq!(b.fake.mounter.depth(Path::new(shared)), 1);

    let req = StorageRequest::new("9p", "kataShared", "9p", "/run/kata-containers/sandbox/9p")
        .options(["nodev", "msize=8192"]);
    b.storages.add(&ctr("c"), &[req], "c").await.unwrap();
    let m = b
        .fake
        .mounter
        .top(Path::new("/run/kata-containers/sandbox/9p"))
        .unwrap();
    assert_eq!(m.fstype, "9p");
    assert_eq!(
        m.data.as_deref(),
        Some("msize=8192,trans=virtio,version=9p2000.L")
    );
    let bad = StorageRequest::new("9p", "tag", "9p", "/run/kata-containers/sandbox/9q")
        .options(["trans=tcp"]);
    assert!(
        b.storages
            .add(&ctr("c"), &[bad], "c")
            .await
            .unwrap_err()
            .is_invalid_input()
    );
}

#[tokio::test(start_paused = true)]
async fn bind_read_only_is_remounted_and_a_file_source_gets_a_file_mount_point() {
    let b = Pod::storages().await;
    b.fake
        .sysfs
        .write_file("/run/kata-containers/sandbox/src/file", "hello")
        .unwrap();
    let dir = StorageRequest::new(
        "bind",
        "/run/kata-containers/sandbox/src",
        "bind",
        "/run/kata-containers/sandbox/dst",
    )
    .options(["ro", "rprivate"]);
    let file = StorageRequest::new(
        "bind",
        "/run/kata-containers/sandbox/src/file",
        "bind",
        "/run/kata-containers/sandbox/dst-file",
    );
    b.storages.add(&ctr("c"), &[dir, file], "c").await.unwrap();
    let m = b
        .fake
        .mounter
        .top(Path::new("/run/kata-containers/sandbox/dst"))
        .unwrap();
    assert!(
        m.is_readonly() && m.flags.contains(MsFlags::MS_PRIVATE),
        "{m:?}"
    );
    assert_eq!(
        b.fake.sysfs.kind("/run/kata-containers/sandbox/dst-file"),
        Some(NodeKind::File)
    );
    b.storages.release("c").unwrap();
    b.assert_clean("bind released");
    assert!(
        !b.exists("/run/kata-containers/sandbox/dst-file")
            && !b.exists("/run/kata-containers/sandbox/dst")
    );

    let missing = StorageRequest::new(
        "bind",
        "/run/kata-containers/sandbox/nothing",
        "bind",
        "/run/kata-containers/sandbox/x",
    );
    let err = b
        .storages
        .add(&ctr("c"), &[missing], "c")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("inspect bind source /run/kata-containers/sandbox/nothing"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn fs_group_always_walks_the_volume_and_on_root_mismatch_may_skip() {
    let b = Pod::storages().await;
    b.fake
        .sysfs
        .write_file("/run/kata-containers/sandbox/src/a/file", "x")
        .unwrap();
    b.fake
        .sysfs
        .symlink("/run/kata-containers/sandbox/src/link", "/etc/passwd")
        .unwrap();
    let req = StorageRequest::new(
        "bind",
        "/run/kata-containers/sandbox/src",
        "bind",
        "/run/kata-containers/sandbox/vol",
    )
    .fs_group(3000, FsGroupPolicy::Always);
    b.storages.add(&ctr("c"), &[req], "c").await.unwrap();
    // The fake bind mount does not alias trees; ownership lands on the mount point itself.
    let root = b
        .fake
        .sysfs
        .meta("/run/kata-containers/sandbox/vol")
        .unwrap();
    assert_eq!((root.gid, root.mode & 0o2770), (3000, 0o2770));
    b.storages.release("c").unwrap();

    // Children are walked, links skipped.
    let sysfs: &dyn AgentFiles = &*b.fake.sysfs;
    sysfs
        .create_dir_all(Path::new("/run/kata-containers/sandbox/vol2/d"))
        .unwrap();
    sysfs
        .create_file(
            Path::new("/run/kata-containers/sandbox/vol2/d/f"),
            b"x",
            0o600,
        )
        .unwrap();
    sysfs
        .symlink(
            Path::new("/etc/shadow"),
            Path::new("/run/kata-containers/sandbox/vol2/l"),
        )
        .unwrap();
    let req = StorageRequest::new(
        "bind",
        "/run/kata-containers/sandbox/src",
        "bind",
        "/run/kata-containers/sandbox/vol2",
    )
    .options(["ro"])
    .fs_group(3001, FsGroupPolicy::OnRootMismatch);
    b.storages
        .add(&ctr("c"), std::slice::from_ref(&req), "c")
        .await
        .unwrap();
    let f = b
        .fake
        .sysfs
        .meta("/run/kata-containers/sandbox/vol2/d/f")
        .unwrap();
    assert_eq!((f.gid, f.mode), (3001, 0o640));
    assert_eq!(
        b.fake
            .sysfs
            .meta("/run/kata-containers/sandbox/vol2/l")
            .unwrap()
            .gid,
        0,
        "link untouched"
    );
    b.storages.release("c").unwrap();

    // The root already matches: nothing is changed.
    let chowns = b.fake.faults.calls(agent_fakes::Op::SysfsChown);
    b.storages.add(&ctr("c"), &[req], "c").await.unwrap();
    assert_eq!(b.fake.faults.calls(agent_fakes::Op::SysfsChown), chowns);
}
