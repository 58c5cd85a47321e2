//! Kernel modules in load order: each module's dependencies are read from the `depends=`
//! string of its `.modinfo` section (the package ships no modules.dep) and loaded first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::QemuError;

/// The modules a guest needs: virtio over PCI, vsock, virtio-blk, virtio-net.
pub const GUEST_MODULES: &[&str] = &[
    "virtio_pci",
    "vmw_vsock_virtio_transport",
    "virtio_blk",
    "virtio_net",
];

/// The `.ko` files under `dir`, by module name (`-` read as `_`).
fn index(dir: &Path) -> Result<BTreeMap<String, PathBuf>, QemuError> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| QemuError::io(&d, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".ko"))
            {
                found.insert(name.replace('-', "_"), path);
            }
        }
    }
    Ok(found)
}

/// The names in the `depends=` entry of a module's `.modinfo` strings.
pub fn depends(module: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(at) = module.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let rest = &module[at + KEY.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace('-', "_"))
        .collect()
}

/// The files of `wanted` and everything they depend on, dependencies first.
pub fn load_order(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>, QemuError> {
    let index = index(modules_dir)?;
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    for name in wanted {
        visit(name, &index, &mut done, &mut BTreeSet::new(), &mut order)?;
    }
    Ok(order)
}

fn visit(
    name: &str,
    index: &BTreeMap<String, PathBuf>,
    done: &mut BTreeSet<String>,
    stack: &mut BTreeSet<String>,
    order: &mut Vec<PathBuf>,
) -> Result<(), QemuError> {
    if done.contains(name) {
        return Ok(());
    }
    if !stack.insert(name.to_owned()) {
        return Err(QemuError::Kernel {
            detail: format!("module dependency cycle through {name}"),
        });
    }
    let path = index.get(name).ok_or_else(|| QemuError::Kernel {
        detail: format!("module {name} not found (built into the kernel, or missing)"),
    })?;
    let bytes = std::fs::read(path).map_err(|e| QemuError::io(path, e))?;
    for dep in depends(&bytes) {
        visit(&dep, index, done, stack, order)?;
    }
    stack.remove(name);
    done.insert(name.to_owned());
    order.push(path.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_are_read_from_modinfo_strings() {
        let blob = b"\x7fELF junk\0license=GPL\0depends=virtio,virtio_ring,vsock-x\0name=a\0";
        assert_eq!(depends(blob), ["virtio", "virtio_ring", "vsock_x"]);
        assert!(depends(b"\0depends=\0name=b\0").is_empty());
        assert!(depends(b"nothing here").is_empty());
    }

    #[test]
    fn dependencies_load_first() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("kernel/drivers");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("top.ko"), b"\0depends=mid,base\0").unwrap();
        std::fs::write(sub.join("mid.ko"), b"\0depends=base\0").unwrap();
        std::fs::write(sub.join("base.ko"), b"\0depends=\0").unwrap();
        let order = load_order(dir.path(), &["top"]).unwrap();
        let names: Vec<_> = order
            .iter()
            .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["base", "mid", "top"]);
        let err = load_order(dir.path(), &["absent"]).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }
}
