//! Credentials of the container process: supplementary groups, gid, uid, and the five
//! capability sets, in the order that lets each step still have the privilege it needs.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use super::Program;
use super::error::{Result, SetupError, Step};

/// The OCI names as `caps` capabilities; unknown names are an error.
pub(super) fn convert(set: &Capabilities) -> Result<CapsHashSet> {
    set.iter()
        .map(|c| {
            // oci-spec prints `CHOWN`; caps parses `CAP_CHOWN`.
            let name = c.to_string();
            let name = if name.starts_with("CAP_") {
                name
            } else {
                format!("CAP_{name}")
            };
            Capability::from_str(&name)
                .map_err(|_| SetupError::spec(format!("unknown capability {name}")))
        })
        .collect()
}

fn caps_step(what: &'static str) -> impl Fn(caps::errors::CapsError) -> SetupError {
    move |e| SetupError::Step {
        step: format!("set the {what} capabilities"),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Switches to the program's user and groups and sets the capabilities. Without capabilities
/// in the spec the kernel's rules apply (root keeps all, others lose all).
pub(super) fn apply(program: &Program, capabilities: Option<&LinuxCapabilities>) -> Result<()> {
    let sets = match capabilities {
        Some(c) => Some((
            c.bounding().as_ref().map(convert).transpose()?,
            c.effective().as_ref().map(convert).transpose()?,
            c.inheritable().as_ref().map(convert).transpose()?,
            c.permitted().as_ref().map(convert).transpose()?,
            c.ambient().as_ref().map(convert).transpose()?,
        )),
        None => None,
    };
    if let Some((bounding, ..)) = &sets {
        // Keep the permitted set across the uid change; the sets are fixed below.
        nix::sys::prctl::set_keepcaps(true).step(|| "keep capabilities".to_owned())?;
        if let Some(bounding) = bounding {
            // The bounding set can only shrink, one capability at a time.
            let now = caps::read(None, CapSet::Bounding).map_err(caps_step("bounding"))?;
            for cap in now.difference(bounding) {
                caps::drop(None, CapSet::Bounding, *cap).map_err(caps_step("bounding"))?;
            }
        }
    }
    // (uid_t)-1 means "unchanged" to setres[ug]id: the process would stay root. The agent
    // refuses it already; the helper never passes it on either way.
    let ids = [program.uid, program.gid].into_iter();
    if ids
        .chain(program.additional_gids.iter().copied())
        .any(|id| id == u32::MAX)
    {
        return Err(SetupError::spec(
            "process.user: id 4294967295 ((uid_t)-1) refused",
        ));
    }
    let groups: Vec<Gid> = program
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    setgroups(&groups).step(|| format!("setgroups {:?}", program.additional_gids))?;
    let gid = Gid::from_raw(program.gid);
    setresgid(gid, gid, gid).step(|| format!("setgid {}", program.gid))?;
    let uid = Uid::from_raw(program.uid);
    setresuid(uid, uid, uid).step(|| format!("setuid {}", program.uid))?;
    let Some((_, effective, inheritable, permitted, ambient)) = sets else {
        return Ok(());
    };
    nix::sys::prctl::set_keepcaps(false).step(|| "reset keepcaps".to_owned())?;
    let empty = CapsHashSet::new();
    // Effective first (a subset of the still-full permitted set), then inheritable, then the
    // permitted set shrinks to what the spec grants; ambient needs permitted and inheritable.
    caps::set(
        None,
        CapSet::Effective,
        effective.as_ref().unwrap_or(&empty),
    )
    .map_err(caps_step("effective"))?;
    caps::set(
        None,
        CapSet::Inheritable,
        inheritable.as_ref().unwrap_or(&empty),
    )
    .map_err(caps_step("inheritable"))?;
    caps::set(
        None,
        CapSet::Permitted,
        permitted.as_ref().unwrap_or(&empty),
    )
    .map_err(caps_step("permitted"))?;
    caps::set(None, CapSet::Ambient, ambient.as_ref().unwrap_or(&empty))
        .map_err(caps_step("ambient"))?;
    Ok(())
}
