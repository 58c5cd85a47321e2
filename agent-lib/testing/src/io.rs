//! Reading what a process wrote to a descriptor.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;

/// Reads `fd` to its end; a pty master ends with `EIO` once the slave is closed.
pub fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut file = File::from(fd);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return out,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// [`read_all`] as text (lossy UTF-8).
pub fn read_all_string(fd: OwnedFd) -> String {
    String::from_utf8_lossy(&read_all(fd)).into_owned()
}
