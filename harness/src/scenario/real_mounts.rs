//! A real guest's mount table (`/proc/self/mountinfo`) in the shape the fakes' mount checks
//! use: a bind mount's source is the path it was bound from, not the device under it.

/// One mount, as a mount check sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted.
    pub target: String,
    /// The device (`/dev/vda`, `tmpfs`), or for a bind mount the path it was bound from.
    pub source: String,
    /// The filesystem type.
    pub fstype: String,
    /// Per-mount and superblock options.
    pub options: Vec<String>,
}

struct Raw<'a> {
    dev: &'a str,
    root: &'a str,
    target: String,
    fstype: &'a str,
    source: &'a str,
    options: Vec<String>,
}

/// Parses mountinfo text in order. A mount whose root lies inside the root of an earlier mount
/// of the same device is a bind mount: its source is the latest such mount's target plus the
/// rest of the root.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    let raws: Vec<Raw<'_>> = text.lines().filter_map(parse_line).collect();
    raws.iter()
        .enumerate()
        .map(|(i, m)| MountEntry {
            target: m.target.clone(),
            source: bind_source(&raws[..i], m).unwrap_or_else(|| m.source.to_owned()),
            fstype: m.fstype.to_owned(),
            options: m.options.clone(),
        })
        .collect()
}

fn bind_source(earlier: &[Raw<'_>], m: &Raw<'_>) -> Option<String> {
    // The latest such mount: a bind of a bind names the path it was bound from last.
    earlier
        .iter()
        .rev()
        .filter(|e| e.dev == m.dev && e.target != m.target)
        .find_map(|e| {
            let rest = if e.root == "/" {
                m.root
            } else {
                m.root.strip_prefix(e.root)?
            };
            if !rest.is_empty() && !rest.starts_with('/') {
                return None;
            }
            let base = e.target.trim_end_matches('/');
            let rest = rest.trim_end_matches('/');
            Some(if base.is_empty() && rest.is_empty() {
                "/".to_owned()
            } else {
                format!("{base}{rest}")
            })
        })
}

/// `36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
fn parse_line(line: &str) -> Option<Raw<'_>> {
    let (head, tail) = line.split_once(" - ")?;
    let head: Vec<&str> = head.split(' ').collect();
    let tail: Vec<&str> = tail.split(' ').collect();
    let mut options: Vec<String> = head.get(5)?.split(',').map(unescape).collect();
    options.extend(
        tail.get(2)
            .into_iter()
            .flat_map(|o| o.split(',').map(unescape)),
    );
    Some(Raw {
        dev: head.get(2)?,
        root: head.get(3)?,
        target: unescape(head.get(4)?),
        fstype: tail.first()?,
        source: tail.get(1)?,
        options,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let text = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_mounts_name_the_path_they_were_bound_from() {
        let text = "\
20 1 0:5 / /run rw,nosuid - tmpfs tmpfs rw,mode=755
30 20 0:5 /kata-containers/sandbox/resolv.conf /etc/resolv.conf rw - tmpfs tmpfs rw
31 20 254:0 / /run/kata-containers/sandbox/vol ro,relatime - ext4 /dev/vda ro
32 20 254:0 / /run/kata-containers/c1/data rw - ext4 /dev/vda rw
33 20 0:40 / /run/a\\040b rw - tmpfs tmpfs rw
1 0 0:1 / / rw - rootfs rootfs rw
40 1 0:1 /rootfs /run/shared/c1/rootfs rw - rootfs rootfs rw
41 1 0:1 /rootfs /run/kata-containers/c1/rootfs rw - rootfs rootfs rw";
        let m = parse_mountinfo(text);
        assert_eq!(m[0].source, "tmpfs");
        assert_eq!(m[1].source, "/run/kata-containers/sandbox/resolv.conf");
        assert_eq!(m[2].source, "/dev/vda");
        assert_eq!(m[2].fstype, "ext4");
        assert!(m[2].options.iter().any(|o| o == "ro"));
        assert_eq!(m[3].source, "/run/kata-containers/sandbox/vol");
        assert_eq!(m[4].target, "/run/a b");
        assert_eq!(m[6].source, "/rootfs");
        assert_eq!(m[7].source, "/run/shared/c1/rootfs");
    }
}
