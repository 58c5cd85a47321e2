//! A busybox root filesystem in a tempdir, for real containers. Needs Debian's busybox-static.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::PathBuf;

/// The busybox applets linked into the rootfs's /bin.
pub const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "hostname", "ls", "sleep", "id", "grep", "readlink", "mkdir", "touch",
    "true", "false", "head", "tail", "stty", "wc", "test", "tty", "mount", "kill", "dd",
];

/// The static busybox of the host.
pub fn busybox() -> PathBuf {
    ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox not found: apt-get install busybox-static")
}

/// A busybox rootfs in a new tempdir: /marker ("inside\n"), /ro (for readonly paths),
/// /secret and /secret.txt (for masked paths), /data, /etc/passwd, a 1777 /tmp.
pub fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("kata-ctr-")
        .tempdir()
        .unwrap();
    populate(dir.path());
    dir
}

/// Fills `root` (an existing folder) with the busybox rootfs of [`rootfs`].
pub fn populate(root: &std::path::Path) {
    for d in [
        "bin", "proc", "sys", "dev", "etc", "tmp", "ro", "data", "secret",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(root.join("marker"), "inside\n").unwrap();
    fs::write(root.join("secret/key"), "hidden\n").unwrap();
    fs::write(root.join("secret.txt"), "hidden\n").unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
}
