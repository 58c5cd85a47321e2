//! SetGuestDateTime: the guest's wall clock from the host's.

use super::error::GuestError;
use crate::host::System;

/// Sets the wall clock to `secs` seconds and `usecs` microseconds since the epoch. `usecs`
/// outside `0..1_000_000` and negative seconds are refused, naming the field (`Usec`, `Sec`).
pub fn set_date_time(system: &dyn System, secs: i64, usecs: i64) -> Result<(), GuestError> {
    if secs < 0 {
        return Err(GuestError::invalid(
            "Sec",
            format!("{secs} is before the epoch"),
        ));
    }
    if !(0..1_000_000).contains(&usecs) {
        return Err(GuestError::invalid(
            "Usec",
            format!("{usecs} is not in 0..1000000"),
        ));
    }
    tracing::info!(secs, usecs, "setting the guest time");
    system
        .set_time(secs, usecs)
        .map_err(GuestError::io("settimeofday"))
}
