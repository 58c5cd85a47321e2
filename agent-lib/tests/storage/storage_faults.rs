//! Fault injection at every OS call each driver makes: the add fails with an error naming the
//! step, and nothing is left mounted, created or in the table.

use agent_fakes::Op;
use agent_testing::pod::Pod;
use agent_testing::storage::{Bench, ctr};
use kata_agent::storage::StorageRequest;
use nix::errno::Errno;

/// A scenario: its name, what to set up on the fakes, and the requests.
type Scenario = (&'static str, fn(&Bench), Vec<StorageRequest>);

fn scenarios() -> Vec<Scenario> {
    fn none(_: &Bench) {}
    fn src(b: &Bench) {
        b.fake
            .sysfs
            .write_file("/run/kata-containers/sandbox/src/d/f", "x")
            .unwrap();
        b.fake
            .sysfs
            .write_file("/run/kata-containers/sandbox/src/g", "y")
            .unwrap();
    }
    vec![
        (
            "ephemeral",
            none,
            vec![
                StorageRequest::new(
                    "ephemeral",
                    "tmpfs",
                    "tmpfs",
                    "/run/kata-containers/sandbox/a/b",
                )
                .options(["size=1m", "fsgid=5"])
                .fs_group(7, kata_agent::storage::FsGroupPolicy::Always),
            ],
        ),
        (
            "hugetlbfs",
            none,
            vec![
                StorageRequest::new(
                    "ephemeral",
                    "nodev",
                    "hugetlbfs",
                    "/run/kata-containers/sandbox/h",
                )
                .options(["pagesize=2097152,size=4194304"]),
            ],
        ),
        (
            "local",
            none,
            vec![
                StorageRequest::new("local", "", "", "/run/kata-containers/sandbox/l/m")
                    .options(["mode=0750", "fsgid=9"]),
            ],
        ),
        (
            "overlayfs",
            none,
            vec![
                StorageRequest::new(
                    "overlayfs",
                    "overlay",
                    "overlay",
                    "/run/kata-containers/c/rootfs",
                )
                .options(["lowerdir=/run/x", "io.katacontainers.fs-opt.overlay-rw"])
                .driver_options(["io.katacontainers.volume.overlayfs.create_directory=/run/mk"]),
            ],
        ),
        (
            "bind",
            src,
            vec![
                StorageRequest::new(
                    "bind",
                    "/run/kata-containers/sandbox/src/g",
                    "bind",
                    "/run/kata-containers/sandbox/b/file",
                )
                .options(["ro", "rslave"]),
            ],
        ),
        (
            "virtio-fs + 9p",
            none,
            vec![
                StorageRequest::new(
                    "virtio-fs",
                    "kataShared",
                    "virtiofs",
                    "/run/kata-containers/sandbox/v",
                ),
                StorageRequest::new("9p", "tag", "9p", "/run/kata-containers/sandbox/p"),
            ],
        ),
        (
            "watchable-bind",
            src,
            vec![StorageRequest::new(
                "watchable-bind",
                "/run/kata-containers/sandbox/src",
                "bind",
                "/run/kata-containers/shared/containers/watchable/c-cfg",
            )],
        ),
    ]
}

#[tokio::test(start_paused = true)]
async fn every_os_call_of_every_driver_fails_cleanly() {
    for (name, setup, requests) in scenarios() {
        // Count the calls of a clean run.
        let b = Pod::storages().await;
        setup(&b);
        b.fake.baseline();
        let before = b.fake.faults.counts();
        b.storages
            .add(&ctr("c"), &requests, "c")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let points = b.fake.faults.points_since(&before);
        assert!(!points.is_empty(), "{name}");
        b.storages.release_all().unwrap();
        b.assert_clean(name);

        for point in points {
            if matches!(point.op, Op::SysfsStat | Op::Mounts) {
                // Existence checks: a failure reads as "absent", which is not an error.
                continue;
            }
            let b = Pod::storages().await;
            setup(&b);
            b.fake.baseline();
            let nodes_before = snapshot(&b);
            b.fake.faults.fail_nth(point.op, point.nth, Errno::EIO);
            let result = b.storages.add(&ctr("c"), &requests, "c").await;
            b.fake.faults.clear();
            let what = format!("{name}, {point}");
            match result {
                Err(e) => assert!(!e.to_string().is_empty(), "{what}"),
                // A failure the driver tolerates (a copy retried by the poller).
                Ok(_) => {
                    b.storages.release_all().unwrap();
                }
            }
            b.assert_clean(&what);
            assert_eq!(snapshot(&b), nodes_before, "{what}: files left behind");
        }
    }
}

/// Every path under /run, with its kind.
fn snapshot(b: &Bench) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/run")];
    while let Some(p) = stack.pop() {
        if let Some(meta) = b.fake.sysfs.meta(&p) {
            out.push(format!("{} {:?}", p.display(), meta.kind));
            if meta.kind == kata_agent::host::NodeKind::Dir {
                let names =
                    kata_agent::host::Sysfs::read_dir(&*b.fake.sysfs, &p).unwrap_or_default();
                stack.extend(names.into_iter().map(|n| p.join(n)));
            }
        }
    }
    out.sort();
    out
}
