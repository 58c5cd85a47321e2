//! A writer of `newc` cpio archives, the format the kernel unpacks as an initramfs.

use std::io::{self, Write};

/// `S_IFDIR`, `S_IFREG`, `S_IFLNK`.
const DIR: u32 = 0o040_000;
const FILE: u32 = 0o100_000;
const LINK: u32 = 0o120_000;

/// An archive being written: entries in the order added, then [`Cpio::finish`].
#[derive(Debug)]
pub struct Cpio<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

impl<W: Write> Cpio<W> {
    /// Starts an archive on `out`.
    pub fn new(out: W) -> Self {
        Cpio {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// A directory (its parents must come first).
    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.entry(path, DIR | (mode & 0o7777), 2, &[])
    }

    /// A regular file.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, FILE | (mode & 0o7777), 1, data)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, LINK | 0o777, 1, target.as_bytes())
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 1, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, data: &[u8]) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file over 4 GiB"))?;
        let namesize = u32::try_from(name.len() + 1)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
        // rdevminor, namesize, check.
        let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, 0];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08x}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rest = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..usize::try_from(rest).unwrap_or(0)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_newc_and_aligned() {
        let mut cpio = Cpio::new(Vec::new());
        cpio.dir("/bin", 0o755).unwrap();
        cpio.file("/bin/x", 0o755, b"abc").unwrap();
        cpio.symlink("/sh", "bin/x").unwrap();
        let out = cpio.finish().unwrap();
        assert_eq!(out.len() % 4, 0);
        assert!(out.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&out);
        // Header (110) + "bin\0" → 114, padded to 116.
        assert_eq!(&out[110..114], b"bin\0");
        assert_eq!(&text[116..122], "070701");
        assert!(text.contains("bin/x\0"));
        assert!(text.contains("abc"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0") || text.contains("TRAILER!!!\0"));
        // The mode field of the directory: S_IFDIR | 0755.
        assert_eq!(&text[14..22], "000041ed");
    }
}
