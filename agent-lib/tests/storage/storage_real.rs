//! Storage drivers on the real kernel, as root, in a private mount namespace on a dedicated
//! thread: tmpfs (ephemeral), overlay and bind mounts through [`LinuxMounter`], then release.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agent_testing::ns::on_thread_in;
use agent_testing::storage;
use kata_agent::device::DeviceWatcher;
use kata_agent::host::Mounter;
use kata_agent::linux::LinuxMounter;
use kata_agent::storage::{StorageContext, StorageRequest, Storages};
use nix::sched::CloneFlags;

/// Real storages confined below the test's folder `base`.
fn real_storages(base: &Path) -> Storages {
    storage::real_storages(base, Arc::new(DeviceWatcher::new()), Duration::from_secs(1))
}

fn mounted(path: &Path) -> bool {
    LinuxMounter::new().is_mounted(path).unwrap()
}

#[test]
#[ignore = "needs root: mounts tmpfs, overlay and bind in a private mount namespace"]
fn tmpfs_overlay_and_bind_mount_and_release_on_the_real_kernel() {
    agent_testing::skip_unless_root!("mount(2)");
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_owned();
    on_thread_in(CloneFlags::CLONE_NEWNS, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let storages = real_storages(&base);
            let p = |s: &str| base.join(s);
            std::fs::create_dir_all(p("lower")).unwrap();
            std::fs::write(p("lower/hello"), "lower").unwrap();
            std::fs::create_dir_all(p("src")).unwrap();
            std::fs::write(p("src/file"), "bound").unwrap();
            let s = |x: PathBuf| x.to_string_lossy().into_owned();
            let reqs = [
                StorageRequest::new("ephemeral", "tmpfs", "tmpfs", p("eph/vol")).options([
                    "nosuid",
                    "size=1m",
                    "fsgid=1234",
                ]),
                StorageRequest::new("ephemeral", "tmpfs", "tmpfs", p("ovl")),
                StorageRequest::new("overlayfs", "overlay", "overlay", p("merged"))
                    .options([
                        format!("lowerdir={}", s(p("lower"))),
                        format!("upperdir={}", s(p("ovl/upper"))),
                        format!("workdir={}", s(p("ovl/work"))),
                    ])
                    .driver_options([
                        format!(
                            "io.katacontainers.volume.overlayfs.create_directory={}",
                            s(p("ovl/upper"))
                        ),
                        format!(
                            "io.katacontainers.volume.overlayfs.create_directory={}",
                            s(p("ovl/work"))
                        ),
                    ]),
                StorageRequest::new("bind", &s(p("src/file")), "bind", p("bound/file"))
                    .options(["ro"]),
            ];
            storages
                .add(&StorageContext::container("c"), &reqs, "c")
                .await
                .unwrap();

            use std::os::unix::fs::MetadataExt;
            let eph = std::fs::metadata(p("eph/vol")).unwrap();
            assert_eq!(eph.gid(), 1234);
            assert_ne!(eph.mode() & 0o2000, 0);
            let line = LinuxMounter::new()
                .mounts()
                .unwrap()
                .into_iter()
                .find(|m| m.target == p("eph/vol"))
                .unwrap();
            assert!(
                line.options.contains("nosuid") && line.options.contains("size=1024k"),
                "{line:?}"
            );
            assert_eq!(std::fs::read_to_string(p("merged/hello")).unwrap(), "lower");
            std::fs::write(p("merged/new"), "upper").unwrap();
            assert_eq!(
                std::fs::read_to_string(p("ovl/upper/new")).unwrap(),
                "upper"
            );
            assert_eq!(std::fs::read_to_string(p("bound/file")).unwrap(), "bound");
            assert!(
                std::fs::write(p("bound/file"), "x").is_err(),
                "read-only bind"
            );

            // Bad options fail before mounting; nothing changes.
            let bad =
                StorageRequest::new("ephemeral", "tmpfs", "tmpfs", p("bad")).options(["ro", "rw"]);
            assert!(
                storages
                    .add(&StorageContext::sandbox(), &[bad], "s")
                    .await
                    .is_err()
            );
            assert!(!p("bad").exists());

            storages.release("c").unwrap();
            for m in ["eph/vol", "ovl", "merged", "bound/file"] {
                assert!(!mounted(&p(m)), "{m} still mounted");
            }
            assert!(!p("eph").exists() && !p("merged").exists() && !p("bound").exists());
        });
    });
}
