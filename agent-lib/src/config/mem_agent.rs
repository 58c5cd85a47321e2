//! The mem-agent settings (`agent.mem_agent_enable` and its 15 knobs): memory-cgroup reclaim
//! and memory compaction driven by PSI. Names and defaults are those of Kata's `mem-agent`
//! crate (`memcg::SingleConfig`, `compact::Config`).

/// The mem-agent configuration; present in [`Config`](super::Config) only when enabled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemAgentConfig {
    /// Memory-cgroup reclaim (`agent.mem_agent_memcg_*`).
    pub memcg: MemcgConfig,
    /// Memory compaction (`agent.mem_agent_compact_*`).
    pub compact: CompactConfig,
}

/// Memory-cgroup reclaim defaults (Kata's `memcg::SingleConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemcgConfig {
    /// `memcg_disable`, default false.
    pub disabled: bool,
    /// `memcg_swap`, default false.
    pub swap: bool,
    /// `memcg_swappiness_max`, default 50.
    pub swappiness_max: u8,
    /// `memcg_period_secs`, default 600.
    pub period_secs: u64,
    /// `memcg_period_psi_percent_limit`, default 1.
    pub period_psi_percent_limit: u8,
    /// `memcg_eviction_psi_percent_limit`, default 1.
    pub eviction_psi_percent_limit: u8,
    /// `memcg_eviction_run_aging_count_min`, default 3.
    pub eviction_run_aging_count_min: u64,
}

impl Default for MemcgConfig {
    fn default() -> Self {
        MemcgConfig {
            disabled: false,
            swap: false,
            swappiness_max: 50,
            period_secs: 10 * 60,
            period_psi_percent_limit: 1,
            eviction_psi_percent_limit: 1,
            eviction_run_aging_count_min: 3,
        }
    }
}

/// The compaction order the kernel's free-page reporting works at (`PAGE_REPORTING_MIN_ORDER`).
const PAGE_REPORTING_MIN_ORDER: u8 = 9;

/// Memory compaction settings (Kata's `compact::Config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactConfig {
    /// `compact_disable`, default false.
    pub disabled: bool,
    /// `compact_period_secs`, default 600.
    pub period_secs: u64,
    /// `compact_period_psi_percent_limit`, default 1.
    pub period_psi_percent_limit: u8,
    /// `compact_psi_percent_limit`, default 5.
    pub compact_psi_percent_limit: u8,
    /// `compact_sec_max`, default 300.
    pub compact_sec_max: i64,
    /// `compact_order`, default 9.
    pub compact_order: u8,
    /// `compact_threshold` in pages, default 1024 (`2 << 9`).
    pub compact_threshold: u64,
    /// `compact_force_times`, default `i64::MAX` (never force a compaction).
    pub compact_force_times: u64,
}

impl Default for CompactConfig {
    fn default() -> Self {
        CompactConfig {
            disabled: false,
            period_secs: 10 * 60,
            period_psi_percent_limit: 1,
            compact_psi_percent_limit: 5,
            compact_sec_max: 5 * 60,
            compact_order: PAGE_REPORTING_MIN_ORDER,
            compact_threshold: 2 << PAGE_REPORTING_MIN_ORDER,
            compact_force_times: i64::MAX as u64,
        }
    }
}

/// One mem-agent knob. Its name is the config-file key; the command-line option is
/// `agent.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Knob {
    MemcgDisable,
    MemcgSwap,
    MemcgSwappinessMax,
    MemcgPeriodSecs,
    MemcgPeriodPsiPercentLimit,
    MemcgEvictionPsiPercentLimit,
    MemcgEvictionRunAgingCountMin,
    CompactDisable,
    CompactPeriodSecs,
    CompactPeriodPsiPercentLimit,
    CompactPsiPercentLimit,
    CompactSecMax,
    CompactOrder,
    CompactThreshold,
    CompactForceTimes,
}

/// A knob's value, typed as the source gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnobValue {
    Bool(bool),
    Int(i128),
}

/// The value type a knob wants, to parse command-line text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnobKind {
    Bool,
    Int,
}

impl Knob {
    pub(crate) const ALL: [Knob; 15] = [
        Knob::MemcgDisable,
        Knob::MemcgSwap,
        Knob::MemcgSwappinessMax,
        Knob::MemcgPeriodSecs,
        Knob::MemcgPeriodPsiPercentLimit,
        Knob::MemcgEvictionPsiPercentLimit,
        Knob::MemcgEvictionRunAgingCountMin,
        Knob::CompactDisable,
        Knob::CompactPeriodSecs,
        Knob::CompactPeriodPsiPercentLimit,
        Knob::CompactPsiPercentLimit,
        Knob::CompactSecMax,
        Knob::CompactOrder,
        Knob::CompactThreshold,
        Knob::CompactForceTimes,
    ];

    /// The config-file key, e.g. `mem_agent_memcg_swap`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Knob::MemcgDisable => "mem_agent_memcg_disable",
            Knob::MemcgSwap => "mem_agent_memcg_swap",
            Knob::MemcgSwappinessMax => "mem_agent_memcg_swappiness_max",
            Knob::MemcgPeriodSecs => "mem_agent_memcg_period_secs",
            Knob::MemcgPeriodPsiPercentLimit => "mem_agent_memcg_period_psi_percent_limit",
            Knob::MemcgEvictionPsiPercentLimit => "mem_agent_memcg_eviction_psi_percent_limit",
            Knob::MemcgEvictionRunAgingCountMin => "mem_agent_memcg_eviction_run_aging_count_min",
            Knob::CompactDisable => "mem_agent_compact_disable",
            Knob::CompactPeriodSecs => "mem_agent_compact_period_secs",
            Knob::CompactPeriodPsiPercentLimit => "mem_agent_compact_period_psi_percent_limit",
            Knob::CompactPsiPercentLimit => "mem_agent_compact_psi_percent_limit",
            Knob::CompactSecMax => "mem_agent_compact_sec_max",
            Knob::CompactOrder => "mem_agent_compact_order",
            Knob::CompactThreshold => "mem_agent_compact_threshold",
            Knob::CompactForceTimes => "mem_agent_compact_force_times",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Knob> {
        Knob::ALL.into_iter().find(|k| k.name() == name)
    }

    pub(crate) fn kind(self) -> KnobKind {
        match self {
            Knob::MemcgDisable | Knob::MemcgSwap | Knob::CompactDisable => KnobKind::Bool,
            _ => KnobKind::Int,
        }
    }
}

impl MemAgentConfig {
    /// Set one knob, checking the value's type and range; on error nothing changes.
    pub(crate) fn set(&mut self, knob: Knob, value: KnobValue) -> Result<(), String> {
        let m = &mut self.memcg;
        let c = &mut self.compact;
        match knob {
            Knob::MemcgDisable => m.disabled = as_bool(value)?,
            Knob::MemcgSwap => m.swap = as_bool(value)?,
            Knob::MemcgSwappinessMax => m.swappiness_max = as_int(value)?,
            Knob::MemcgPeriodSecs => m.period_secs = as_int(value)?,
            Knob::MemcgPeriodPsiPercentLimit => m.period_psi_percent_limit = as_int(value)?,
            Knob::MemcgEvictionPsiPercentLimit => m.eviction_psi_percent_limit = as_int(value)?,
            Knob::MemcgEvictionRunAgingCountMin => m.eviction_run_aging_count_min = as_int(value)?,
            Knob::CompactDisable => c.disabled = as_bool(value)?,
            Knob::CompactPeriodSecs => c.period_secs = as_int(value)?,
            Knob::CompactPeriodPsiPercentLimit => c.period_psi_percent_limit = as_int(value)?,
            Knob::CompactPsiPercentLimit => c.compact_psi_percent_limit = as_int(value)?,
            Knob::CompactSecMax => c.compact_sec_max = as_int(value)?,
            Knob::CompactOrder => c.compact_order = as_int(value)?,
            Knob::CompactThreshold => c.compact_threshold = as_int(value)?,
            Knob::CompactForceTimes => c.compact_force_times = as_int(value)?,
        }
        Ok(())
    }
}

fn as_bool(value: KnobValue) -> Result<bool, String> {
    match value {
        KnobValue::Bool(b) => Ok(b),
        KnobValue::Int(_) => Err("expected a boolean".into()),
    }
}

fn as_int<T: TryFrom<i128>>(value: KnobValue) -> Result<T, String> {
    match value {
        KnobValue::Int(n) => T::try_from(n).map_err(|_| {
            format!(
                "{n} is out of range for {}",
                std::any::type_name::<T>().rsplit("::").next().unwrap_or("")
            )
        }),
        KnobValue::Bool(_) => Err("expected an integer".into()),
    }
}
