//! ReseedRandomDev: host entropy for the guest's random pool.

use super::error::GuestError;
use crate::host::System;

/// Feeds `data` to the kernel's pool, credits it and reseeds the CRNG. Empty data is refused
/// (`data`), as Kata refuses it.
pub fn reseed(system: &dyn System, data: &[u8]) -> Result<(), GuestError> {
    if data.is_empty() {
        return Err(GuestError::invalid("data", "no entropy data"));
    }
    tracing::info!(len = data.len(), "reseeding the random device");
    system
        .reseed_random(data)
        .map_err(GuestError::io("reseed /dev/random"))
}
