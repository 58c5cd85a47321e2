use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::*;
use crate::linux::test_support::{in_mount_ns, require_root};

const SAMPLE: &str = "\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
41 28 0:36 / /dev/shm rw,nosuid,nodev shared:3 master:1 - tmpfs tmpfs rw,size=65536k,inode64
77 28 0:40 / /mnt/with\\040space\\011tab rw,relatime - tmpfs my\\134src rw
";

#[test]
fn parses_mountinfo_lines() {
    let entries = parse_mountinfo(SAMPLE.as_bytes());
    assert_eq!(entries.len(), 4);
    assert_eq!(
        entries[0],
        MountEntry {
            source: "sysfs".into(),
            target: "/sys".into(),
            fstype: "sysfs".into(),
            options: "rw,nosuid,nodev,noexec,relatime".into(),
        }
    );
    assert_eq!(entries[1].source, "/dev/vda");
    assert_eq!(entries[1].target, Path::new("/"));
    // Optional fields are skipped; superblock options follow the mount's, without rw/ro.
    assert_eq!(entries[2].fstype, "tmpfs");
    assert_eq!(entries[2].options, "rw,nosuid,nodev,size=65536k,inode64");
}

#[test]
fn decodes_octal_escapes() {
    let entries = parse_mountinfo(SAMPLE.as_bytes());
    assert_eq!(entries[3].target, Path::new("/mnt/with space\ttab"));
    assert_eq!(entries[3].source, "my\\src");
    assert_eq!(unescape(b"a\\012b"), b"a\nb");
    // Not an escape: kept verbatim, never a panic.
    assert_eq!(unescape(b"a\\9xy\\"), b"a\\9xy\\");
    assert_eq!(unescape(b"\\04"), b"\\04");
    assert_eq!(unescape(b"\\777"), b"\\777");
}

#[test]
fn skips_malformed_lines() {
    let text = b"garbage\n1 2 3 4 5 - x\n\n1 2 0:1 / /ok rw - tmpfs none rw\n1 2 3 / /no-sep rw\n";
    let entries = parse_mountinfo(text);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target, Path::new("/ok"));
    assert_eq!(entries[0].options, "rw");
}

#[test]
fn non_utf8_target_is_kept_as_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let entries = parse_mountinfo(b"1 2 0:1 / /bad\xff rw - tmpfs none rw\n");
    assert_eq!(entries[0].target.as_os_str().as_bytes(), b"/bad\xff");
}

#[test]
fn reads_the_real_mount_table() {
    let mounts = LinuxMounter::new().mounts().expect("mountinfo");
    assert!(mounts.iter().any(|m| m.target == Path::new("/")));
}

#[test]
#[ignore = "needs root: mount(2) in a private mount namespace"]
fn tmpfs_bind_readonly_bind_and_umount() {
    require_root("mount(2)");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().to_owned();
    in_mount_ns(move || {
        let m = LinuxMounter::new();
        let tmpfs = base.join("tmpfs");
        let bind = base.join("bind");
        let ro = base.join("ro");
        for d in [&tmpfs, &bind, &ro] {
            std::fs::create_dir(d).unwrap();
        }

        m.mount(
            &MountSpec::new("kata-test", &tmpfs, "tmpfs")
                .flags(MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
                .data("size=4m,mode=755"),
        )
        .unwrap();
        assert!(m.is_mounted(&tmpfs).unwrap());
        let entry = m
            .mounts()
            .unwrap()
            .into_iter()
            .find(|e| e.target == tmpfs)
            .unwrap();
        assert_eq!(entry.fstype, "tmpfs");
        assert_eq!(entry.source, "kata-test");
        assert!(entry.options.contains("nosuid") && entry.options.contains("size=4096k"));

        std::fs::write(tmpfs.join("f"), b"hello").unwrap();
        m.bind(&tmpfs, &bind, false).unwrap();
        assert_eq!(std::fs::read(bind.join("f")).unwrap(), b"hello");
        std::fs::write(bind.join("g"), b"via bind").unwrap();
        assert_eq!(std::fs::read(tmpfs.join("g")).unwrap(), b"via bind");

        m.bind(&tmpfs, &ro, true).unwrap();
        let err = std::fs::write(ro.join("h"), b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
        let ro_entry = m
            .mounts()
            .unwrap()
            .into_iter()
            .find(|e| e.target == ro)
            .unwrap();
        assert!(
            ro_entry.options.split(',').any(|o| o == "ro"),
            "{ro_entry:?}"
        );
        std::fs::write(tmpfs.join("h"), b"source stays writable").unwrap();

        // Errors keep their errno.
        let err = m
            .umount(&base.join("not-a-mount"), MntFlags::empty())
            .unwrap_err();
        assert!(err.raw_os_error().is_some(), "{err:?}");

        for d in [&ro, &bind, &tmpfs] {
            m.umount(d, MntFlags::empty()).unwrap();
            assert!(!m.is_mounted(d).unwrap());
        }
        assert!(!tmpfs.join("f").exists());
    });
}
