//! GetGuestDetails: the memory block size, memory hotplug by probe, and what this agent
//! supports.

use std::path::Path;

use super::error::GuestError;
use crate::host::{Sysfs, System};

/// The memory block size, hexadecimal bytes.
pub const MEMORY_BLOCK_SIZE_PATH: &str = "/sys/devices/system/memory/block_size_bytes";
/// Present when the kernel takes memory hot-added by writing its address (MemHotplugByProbe).
pub const MEMORY_PROBE_PATH: &str = "/sys/devices/system/memory/probe";

/// The features this build has beyond the base protocol, sorted, as Kata lists its build
/// features: seccomp filters are always compiled in (seccompiler), the policy engine never.
pub const EXTRA_FEATURES: [&str; 1] = ["seccomp"];

/// What GetGuestDetails asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetailsRequest {
    /// Report the memory block size.
    pub mem_block_size: bool,
    /// Report whether memory hotplug by probe is supported.
    pub mem_hotplug_probe: bool,
}

/// The agent's side of GetGuestDetails.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentDetails {
    /// The agent's version.
    pub version: String,
    /// The agent is the guest's init (PID 1).
    pub init_daemon: bool,
    /// The device types CreateContainer handles.
    pub device_handlers: Vec<String>,
    /// The storage drivers, sorted.
    pub storage_handlers: Vec<String>,
    /// Container seccomp profiles are applied.
    pub supports_seccomp: bool,
    /// Optional features of this build.
    pub extra_features: Vec<String>,
}

/// The answer of GetGuestDetails.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestDetails {
    /// Memory block size in bytes; 0 when not asked or when the kernel has no memory blocks.
    pub mem_block_size_bytes: u64,
    /// Whether `/sys/devices/system/memory/probe` exists (false when not asked).
    pub support_mem_hotplug_probe: bool,
    /// The agent.
    pub agent: AgentDetails,
}

/// Reads what `req` asks for, as Kata does: a missing block-size file is 0, an empty or
/// non-hexadecimal one an error; the probe file's existence.
pub fn memory_details(sysfs: &dyn Sysfs, req: DetailsRequest) -> Result<(u64, bool), GuestError> {
    let mut size = 0;
    if req.mem_block_size {
        match sysfs.read_string(Path::new(MEMORY_BLOCK_SIZE_PATH)) {
            Ok(text) => size = parse_block_size(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(GuestError::io(format!("read {MEMORY_BLOCK_SIZE_PATH}"))(e)),
        }
    }
    let probe = req.mem_hotplug_probe && sysfs.stat(Path::new(MEMORY_PROBE_PATH)).is_ok();
    Ok((size, probe))
}

/// `block_size_bytes` is hexadecimal without a `0x` (`8000000`).
pub fn parse_block_size(text: &str) -> Result<u64, GuestError> {
    let text = text.trim();
    let invalid = || GuestError::Io {
        op: format!("parse {MEMORY_BLOCK_SIZE_PATH}"),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{text:?} is not a hexadecimal size"),
        ),
    };
    if text.is_empty() {
        return Err(invalid());
    }
    u64::from_str_radix(text, 16).map_err(|_| invalid())
}

/// Whether the agent runs as the guest's init, as the process seam reports it.
pub fn is_init_daemon(system: &dyn System) -> bool {
    system.process_id() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_are_hexadecimal() {
        assert_eq!(parse_block_size("8000000\n").unwrap(), 128 << 20);
        assert_eq!(parse_block_size("80000000").unwrap(), 2 << 30);
        assert!(parse_block_size("").is_err());
        assert!(parse_block_size("0x10").is_err());
        assert!(parse_block_size("zz").is_err());
    }
}
