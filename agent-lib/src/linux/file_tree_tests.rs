//! CopyFile on the real kernel: the attacks a container or host can try against the shared
//! directory, each in a private mount namespace on a fresh tmpfs. Every case checks that the
//! request is refused and that nothing outside the shared directory changed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;

use super::*;
use crate::guest::{CopyFileRequest, CopyOutcome, GuestError, SHARED_DIR, copy_file};
use crate::linux::test_support::{in_mount_ns, require_root};

/// A tmpfs holding the guest's `/run/kata-containers/shared/containers` and, beside it, an
/// `outside` directory with a file the attacks aim at.
struct Guest {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Guest {
    fn new() -> Guest {
        let dir = tempfile::tempdir().unwrap();
        mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=755"),
        )
        .expect("mount tmpfs");
        let root = dir.path().to_owned();
        fs::create_dir_all(root.join(SHARED_DIR.trim_start_matches('/'))).unwrap();
        fs::create_dir_all(root.join("outside")).unwrap();
        fs::write(root.join("outside/victim"), b"precious").unwrap();
        Guest { _dir: dir, root }
    }

    fn tree(&self) -> LinuxFileTree {
        LinuxFileTree::new(&self.root)
    }

    /// The host path of the guest's shared directory entry `rel`.
    fn shared(&self, rel: &str) -> PathBuf {
        self.root.join(SHARED_DIR.trim_start_matches('/')).join(rel)
    }

    fn outside(&self) -> PathBuf {
        self.root.join("outside")
    }

    /// Every entry under `outside` with its contents (links: their targets).
    fn outside_state(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut state = BTreeMap::new();
        let mut stack = vec![self.outside()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = fs::symlink_metadata(&path).unwrap();
                let data = if meta.is_dir() {
                    stack.push(path.clone());
                    b"<dir>".to_vec()
                } else if meta.file_type().is_symlink() {
                    fs::read_link(&path)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes()
                } else {
                    fs::read(&path).unwrap()
                };
                state.insert(path, [data, meta.mode().to_le_bytes().to_vec()].concat());
            }
        }
        state
    }
}

fn chunk(rel: &str, size: i64, offset: i64, data: &[u8]) -> CopyFileRequest {
    CopyFileRequest {
        path: format!("{SHARED_DIR}/{rel}"),
        file_size: size,
        file_mode: 0o100_644,
        dir_mode: 0o755,
        uid: 0,
        gid: 0,
        offset,
        data: data.to_vec(),
    }
}

fn assert_refused(result: Result<CopyOutcome, GuestError>) {
    match result {
        Err(GuestError::Refused { .. } | GuestError::Invalid { .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn as_root_in_ns(what: &'static str, test: impl FnOnce(Guest) + Send + 'static) {
    require_root(what);
    in_mount_ns(move || test(Guest::new()));
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn a_chunked_copy_lands_atomically_with_its_attributes() {
    as_root_in_ns("CopyFile on tmpfs", |g| {
        let tree = g.tree();
        let mut first = chunk("c1/etc/hosts", 8, 0, b"1234");
        first.file_mode = 0o106_640; // setuid and setgid from the host
        first.uid = 1000;
        first.gid = 2000;
        assert_eq!(copy_file(&tree, &first).unwrap(), CopyOutcome::Partial);
        assert!(
            !g.shared("c1/etc/hosts").exists(),
            "no partial file at the target"
        );
        let second = CopyFileRequest {
            offset: 4,
            data: b"5678".to_vec(),
            ..first.clone()
        };
        assert_eq!(copy_file(&tree, &second).unwrap(), CopyOutcome::Done);
        let target = g.shared("c1/etc/hosts");
        assert_eq!(fs::read(&target).unwrap(), b"12345678");
        let meta = fs::metadata(&target).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1000, 2000));
        assert_eq!(meta.mode() & 0o7777, 0o640, "set-id bits dropped");
        let parent = fs::metadata(g.shared("c1/etc")).unwrap();
        assert_eq!((parent.uid(), parent.gid()), (1000, 2000));
        let leftovers: Vec<_> = fs::read_dir(g.shared("c1/etc")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "the temporary file was renamed away");
    });
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn dot_dot_and_foreign_absolute_paths_are_refused() {
    as_root_in_ns("CopyFile path checks", |g| {
        let before = g.outside_state();
        let tree = g.tree();
        for path in [
            format!("{SHARED_DIR}/../../../outside/victim"),
            format!("{SHARED_DIR}/c1/../../../../outside/new"),
            format!("{}/outside/victim", g.root.display()),
            "/outside/victim".to_owned(),
        ] {
            let req = CopyFileRequest {
                path: path.clone(),
                ..chunk("x", 3, 0, b"bad")
            };
            assert_refused(copy_file(&tree, &req));
        }
        assert_eq!(g.outside_state(), before);
        // The seam refuses a way out by itself too.
        let base = tree.open_base(Path::new(SHARED_DIR)).unwrap();
        let err = base.walk(Path::new("../../../outside"), None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EXDEV), "{err}");
    });
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn a_symlinked_parent_directory_is_refused() {
    as_root_in_ns("CopyFile through a symlinked parent", |g| {
        symlink(g.outside(), g.shared("abs")).unwrap();
        symlink("../../../../outside", g.shared("rel")).unwrap();
        let before = g.outside_state();
        let tree = g.tree();
        for rel in ["abs/victim", "rel/victim", "abs/new/deeper", "rel/new"] {
            assert_refused(copy_file(&tree, &chunk(rel, 3, 0, b"bad")));
            let mut dir = chunk(rel, 0, 0, b"");
            dir.file_mode = 0o040_755;
            assert_refused(copy_file(&tree, &dir));
            let mut link = chunk(rel, 0, 0, b"/etc/shadow");
            link.file_mode = 0o120_777;
            assert_refused(copy_file(&tree, &link));
        }
        assert_eq!(g.outside_state(), before);
    });
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn a_symlink_swapped_in_between_chunks_is_refused() {
    as_root_in_ns("CopyFile with a swapped symlink", |g| {
        let tree = g.tree();
        let before = g.outside_state();
        // The temporary file of a first chunk becomes a link to the victim.
        assert_eq!(
            copy_file(&tree, &chunk("d/f", 8, 0, b"1234")).unwrap(),
            CopyOutcome::Partial
        );
        let temp = fs::read_dir(g.shared("d"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        fs::remove_file(&temp).unwrap();
        symlink(g.outside().join("victim"), &temp).unwrap();
        assert_refused(copy_file(&tree, &chunk("d/f", 8, 4, b"5678")));
        // The parent directory itself becomes a link outside.
        fs::rename(g.shared("d"), g.shared("d.old")).unwrap();
        symlink(g.outside(), g.shared("d")).unwrap();
        assert_refused(copy_file(&tree, &chunk("d/f", 8, 4, b"5678")));
        assert_eq!(g.outside_state(), before);
    });
}

/// Exchanges `a` and `b` (a directory and a link to `outside`) until told to stop.
fn exchange_until(a: PathBuf, b: PathBuf, stop: Arc<AtomicBool>) -> u64 {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    let mut swaps = 0;
    while !stop.load(Ordering::Relaxed) {
        renameat2(AT_FDCWD, &a, AT_FDCWD, &b, RenameFlags::RENAME_EXCHANGE).unwrap();
        swaps += 1;
    }
    swaps
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn a_racing_rename_exchange_never_leads_outside() {
    as_root_in_ns("CopyFile against a RENAME_EXCHANGE race", |g| {
        let tree = g.tree();
        fs::create_dir(g.shared("d")).unwrap();
        symlink(g.outside(), g.shared("swap")).unwrap();
        let before = g.outside_state();
        let stop = Arc::new(AtomicBool::new(false));
        let racer = {
            let (a, b, stop) = (g.shared("d"), g.shared("swap"), stop.clone());
            std::thread::spawn(move || exchange_until(a, b, stop))
        };
        let (mut done, mut refused) = (0, 0);
        for i in 0..2000 {
            // Two chunks: the second resolves everything again while the race goes on.
            let name = format!("d/victim{}", i % 4);
            let results = [
                copy_file(&tree, &chunk(&name, 8, 0, b"1234")),
                copy_file(&tree, &chunk(&name, 8, 4, b"5678")),
            ];
            for result in results {
                match result {
                    Ok(_) => done += 1,
                    Err(GuestError::Refused { .. }) => refused += 1,
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = racer.join().unwrap();
        eprintln!("{swaps} exchanges, {done} chunks stored, {refused} refused");
        assert!(swaps > 0 && refused > 0, "the race did happen");
        assert_eq!(g.outside_state(), before, "nothing outside was touched");
    });
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn a_fifo_at_the_target_or_temporary_name_is_refused_without_blocking() {
    as_root_in_ns("CopyFile against fifos", |g| {
        let tree = g.tree();
        fs::create_dir(g.shared("p")).unwrap();
        nix::unistd::mkfifo(&g.shared("p/target"), Mode::from_bits_truncate(0o644)).unwrap();
        // Find the temporary name of `p/temp` by letting a first chunk create it.
        assert_eq!(
            copy_file(&tree, &chunk("p/temp", 8, 0, b"1234")).unwrap(),
            CopyOutcome::Partial
        );
        let temp = fs::read_dir(g.shared("p"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".kata"))
            })
            .unwrap();
        fs::remove_file(&temp).unwrap();
        nix::unistd::mkfifo(&temp, Mode::from_bits_truncate(0o644)).unwrap();
        let before = g.outside_state();
        let (tx, rx) = std::sync::mpsc::channel();
        let root = g.root.clone();
        std::thread::spawn(move || {
            let tree = LinuxFileTree::new(root);
            let results = [
                copy_file(&tree, &chunk("p/target", 3, 0, b"abc")),
                copy_file(&tree, &chunk("p/temp", 8, 4, b"5678")),
                copy_file(&tree, &chunk("p/temp", 8, 0, b"1234")),
            ];
            let _ = tx.send(results);
        });
        let results = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("CopyFile blocked on a fifo");
        for result in results {
            assert_refused(result);
        }
        let fifo = fs::symlink_metadata(&temp).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
        assert_eq!(g.outside_state(), before);
    });
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn the_seam_refuses_links_and_special_files_by_itself() {
    as_root_in_ns("FileTree refusals", |g| {
        let base = g.tree().open_base(Path::new(SHARED_DIR)).unwrap();
        symlink(g.outside(), g.shared("l")).unwrap();
        let err = base.walk(Path::new("l"), None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        let err = base.open_file(OsStr::new("l"), OpenMode::Read).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        let err = base
            .open_file(OsStr::new("a/b"), OpenMode::Read)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        nix::unistd::mkfifo(&g.shared("f"), Mode::from_bits_truncate(0o600)).unwrap();
        let write = OpenMode::Write {
            mode: 0o644,
            truncate: true,
        };
        let err = base.open_file(OsStr::new("f"), write).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert_eq!(
            base.kind_of(OsStr::new("f")).unwrap(),
            Some(NodeKind::Other)
        );
        assert_eq!(base.kind_of(OsStr::new("none")).unwrap(), None);
    });
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn the_termination_log_is_read_beneath_the_shared_directory_only() {
    as_root_in_ns("termination log reads", |g| {
        let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.1.0",
            "annotations": {
                "io.kubernetes.container.terminationMessagePath": "/dev/termination-log"
            },
            "mounts": [{
                "destination": "/dev/termination-log",
                "source": format!("{SHARED_DIR}/c1-log"),
                "type": "bind",
                "options": ["rbind"]
            }]
        }))
        .unwrap();
        let tree = g.tree();
        let read = |tree: &LinuxFileTree| crate::guest::termination_log(tree, "c1", &spec);
        assert_eq!(read(&tree).unwrap(), "", "not written yet");
        fs::write(g.shared("c1-log"), vec![b'y'; 5000]).unwrap();
        assert_eq!(read(&tree).unwrap().len(), 4096);
        fs::remove_file(g.shared("c1-log")).unwrap();
        symlink(g.outside().join("victim"), g.shared("c1-log")).unwrap();
        match read(&tree) {
            Err(GuestError::Refused { .. }) => {}
            other => panic!("a link to outside was followed: {other:?}"),
        }
        fs::remove_file(g.shared("c1-log")).unwrap();
        nix::unistd::mkfifo(&g.shared("c1-log"), Mode::from_bits_truncate(0o600)).unwrap();
        match read(&tree) {
            Err(GuestError::Refused { .. }) => {}
            other => panic!("a fifo was read: {other:?}"),
        }
    });
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn a_hard_link_at_the_temporary_name_is_never_written() {
    as_root_in_ns("CopyFile against a planted hard link", |g| {
        let tree = g.tree();
        fs::create_dir(g.shared("h")).unwrap();
        // Learn the temporary name of `h/conf` from a first chunk, then plant a hard link to
        // the victim (same filesystem) there, as a container writing the directory could.
        assert_eq!(
            copy_file(&tree, &chunk("h/conf", 8, 0, b"1234")).unwrap(),
            CopyOutcome::Partial
        );
        let temp = fs::read_dir(g.shared("h"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".kata"))
            })
            .unwrap();
        fs::remove_file(&temp).unwrap();
        fs::hard_link(g.outside().join("victim"), &temp).unwrap();
        let before = g.outside_state();
        let owner = fs::metadata(g.outside().join("victim")).unwrap().uid();
        let mut req = chunk("h/conf", 8, 0, b"1234");
        req.uid = 4242;
        assert_refused(copy_file(&tree, &req));
        let mut req = chunk("h/conf", 4, 0, b"abcd");
        req.uid = 4242;
        assert_refused(copy_file(&tree, &req));
        assert_eq!(g.outside_state(), before, "the linked file was written");
        assert_eq!(
            fs::metadata(g.outside().join("victim")).unwrap().uid(),
            owner
        );
        assert!(!g.shared("h/conf").exists());
    });
}
