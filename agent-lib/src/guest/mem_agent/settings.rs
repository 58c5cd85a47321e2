//! MemAgentMemcgSet and MemAgentCompactSet: partial updates of the mem-agent settings, checked
//! as a whole before anything changes.

use crate::config::{CompactConfig, MemcgConfig};
use crate::guest::GuestError;

/// The kernel's largest `vm.swappiness`.
const SWAPPINESS_MAX: u32 = 200;
/// The largest page order the buddy allocator has on the supported architectures (`MAX_ORDER`).
const ORDER_MAX: u32 = 10;

/// MemAgentMemcgSet: the fields set replace the current values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemcgUpdate {
    /// `disabled`.
    pub disabled: Option<bool>,
    /// `swap`.
    pub swap: Option<bool>,
    /// `swappiness_max`, at most 200.
    pub swappiness_max: Option<u32>,
    /// `period_secs`, not 0.
    pub period_secs: Option<u64>,
    /// `period_psi_percent_limit`, a percentage.
    pub period_psi_percent_limit: Option<u32>,
    /// `eviction_psi_percent_limit`, a percentage.
    pub eviction_psi_percent_limit: Option<u32>,
    /// `eviction_run_aging_count_min`.
    pub eviction_run_aging_count_min: Option<u64>,
}

/// MemAgentCompactSet: the fields set replace the current values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactUpdate {
    /// `disabled`.
    pub disabled: Option<bool>,
    /// `period_secs`, not 0.
    pub period_secs: Option<u64>,
    /// `period_psi_percent_limit`, a percentage.
    pub period_psi_percent_limit: Option<u32>,
    /// `compact_psi_percent_limit`, a percentage.
    pub compact_psi_percent_limit: Option<u32>,
    /// `compact_sec_max`, not negative.
    pub compact_sec_max: Option<i64>,
    /// `compact_order`, at most 10.
    pub compact_order: Option<u32>,
    /// `compact_threshold`, pages.
    pub compact_threshold: Option<u64>,
    /// `compact_force_times`.
    pub compact_force_times: Option<u64>,
}

fn percent(field: &'static str, value: Option<u32>) -> Result<Option<u8>, GuestError> {
    bounded(field, value, 100)
}

fn bounded(field: &'static str, value: Option<u32>, max: u32) -> Result<Option<u8>, GuestError> {
    match value {
        Some(v) if v > max => Err(GuestError::invalid(
            field,
            format!("{v} is more than {max}"),
        )),
        // `max` is at most 200, so the value fits.
        Some(v) => Ok(u8::try_from(v).ok()),
        None => Ok(None),
    }
}

fn period(field: &'static str, value: Option<u64>) -> Result<Option<u64>, GuestError> {
    match value {
        Some(0) => Err(GuestError::invalid(field, "a period of 0 seconds")),
        other => Ok(other),
    }
}

impl MemcgUpdate {
    /// `current` with the update applied, or the first bad field (nothing applied).
    pub fn apply(&self, current: &MemcgConfig) -> Result<MemcgConfig, GuestError> {
        let swappiness = bounded("swappiness_max", self.swappiness_max, SWAPPINESS_MAX)?;
        let period_secs = period("period_secs", self.period_secs)?;
        let period_psi = percent("period_psi_percent_limit", self.period_psi_percent_limit)?;
        let eviction_psi = percent(
            "eviction_psi_percent_limit",
            self.eviction_psi_percent_limit,
        )?;
        let mut next = current.clone();
        next.disabled = self.disabled.unwrap_or(next.disabled);
        next.swap = self.swap.unwrap_or(next.swap);
        next.swappiness_max = swappiness.unwrap_or(next.swappiness_max);
        next.period_secs = period_secs.unwrap_or(next.period_secs);
        next.period_psi_percent_limit = period_psi.unwrap_or(next.period_psi_percent_limit);
        next.eviction_psi_percent_limit = eviction_psi.unwrap_or(next.eviction_psi_percent_limit);
        next.eviction_run_aging_count_min = self
            .eviction_run_aging_count_min
            .unwrap_or(next.eviction_run_aging_count_min);
        Ok(next)
    }
}

impl CompactUpdate {
    /// `current` with the update applied, or the first bad field (nothing applied).
    pub fn apply(&self, current: &CompactConfig) -> Result<CompactConfig, GuestError> {
        let period_secs = period("period_secs", self.period_secs)?;
        let period_psi = percent("period_psi_percent_limit", self.period_psi_percent_limit)?;
        let compact_psi = percent("compact_psi_percent_limit", self.compact_psi_percent_limit)?;
        let order = bounded("compact_order", self.compact_order, ORDER_MAX)?;
        if let Some(secs) = self.compact_sec_max.filter(|s| *s < 0) {
            return Err(GuestError::invalid(
                "compact_sec_max",
                format!("{secs} is negative"),
            ));
        }
        let mut next = current.clone();
        next.disabled = self.disabled.unwrap_or(next.disabled);
        next.period_secs = period_secs.unwrap_or(next.period_secs);
        next.period_psi_percent_limit = period_psi.unwrap_or(next.period_psi_percent_limit);
        next.compact_psi_percent_limit = compact_psi.unwrap_or(next.compact_psi_percent_limit);
        next.compact_sec_max = self.compact_sec_max.unwrap_or(next.compact_sec_max);
        next.compact_order = order.unwrap_or(next.compact_order);
        next.compact_threshold = self.compact_threshold.unwrap_or(next.compact_threshold);
        next.compact_force_times = self.compact_force_times.unwrap_or(next.compact_force_times);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(err: GuestError) -> &'static str {
        match err {
            GuestError::Invalid { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn memcg_updates_replace_only_the_fields_set() {
        let current = MemcgConfig::default();
        let next = MemcgUpdate {
            swap: Some(true),
            swappiness_max: Some(80),
            period_secs: Some(60),
            ..MemcgUpdate::default()
        }
        .apply(&current)
        .unwrap();
        assert!(next.swap);
        assert_eq!((next.swappiness_max, next.period_secs), (80, 60));
        assert_eq!(
            next.eviction_psi_percent_limit,
            current.eviction_psi_percent_limit
        );
        assert_eq!(MemcgUpdate::default().apply(&current).unwrap(), current);
    }

    #[test]
    fn bad_memcg_values_name_their_field() {
        let current = MemcgConfig::default();
        let bad = |u: MemcgUpdate| field(u.apply(&current).unwrap_err());
        let with_swap = MemcgUpdate {
            swap: Some(true),
            ..MemcgUpdate::default()
        };
        assert_eq!(
            bad(MemcgUpdate {
                swappiness_max: Some(201),
                ..with_swap
            }),
            "swappiness_max"
        );
        assert_eq!(
            bad(MemcgUpdate {
                period_secs: Some(0),
                ..with_swap
            }),
            "period_secs"
        );
        assert_eq!(
            bad(MemcgUpdate {
                eviction_psi_percent_limit: Some(101),
                ..with_swap
            }),
            "eviction_psi_percent_limit"
        );
    }

    #[test]
    fn compact_updates_are_checked_then_applied() {
        let current = CompactConfig::default();
        let next = CompactUpdate {
            compact_order: Some(4),
            compact_threshold: Some(64),
            disabled: Some(true),
            ..CompactUpdate::default()
        }
        .apply(&current)
        .unwrap();
        assert_eq!((next.compact_order, next.compact_threshold), (4, 64));
        assert!(next.disabled);
        let bad = |u: CompactUpdate| field(u.apply(&current).unwrap_err());
        assert_eq!(
            bad(CompactUpdate {
                compact_order: Some(11),
                ..CompactUpdate::default()
            }),
            "compact_order"
        );
        assert_eq!(
            bad(CompactUpdate {
                compact_sec_max: Some(-1),
                ..CompactUpdate::default()
            }),
            "compact_sec_max"
        );
        assert_eq!(
            bad(CompactUpdate {
                compact_psi_percent_limit: Some(300),
                ..CompactUpdate::default()
            }),
            "compact_psi_percent_limit"
        );
    }
}
