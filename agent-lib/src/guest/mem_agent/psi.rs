//! Pressure stall information: how much of a period tasks stalled on memory.

use std::path::Path;

use tokio::time::Instant;

use crate::host::Sysfs;

/// The `total` of the `some` line of a PSI file (microseconds stalled since boot).
pub fn some_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()
}

/// Reads `path` through the seam and takes its `some` total.
pub fn read_some_total(sysfs: &dyn Sysfs, path: &Path) -> Option<u64> {
    let text = sysfs.read_string(path).ok()?;
    some_total(&text)
}

/// Stall percentages over successive periods (Kata's `psi::Period`).
#[derive(Clone, Copy, Debug)]
pub struct PsiPeriod {
    last_total: Option<u64>,
    last_at: Instant,
}

impl PsiPeriod {
    /// Starts a period at `at` with the stall total then.
    pub fn start(total: Option<u64>, at: Instant) -> Self {
        PsiPeriod {
            last_total: total,
            last_at: at,
        }
    }

    /// The percentage of time stalled since the last call (or the start), and a new period
    /// from now. Unknown totals or no time passed read as 0%, as in Kata.
    pub fn percent(&mut self, total: Option<u64>, now: Instant) -> u64 {
        let elapsed_us = now.saturating_duration_since(self.last_at).as_micros();
        let percent = match (self.last_total, total) {
            (Some(before), Some(after)) if after > before && elapsed_us > 0 => {
                let stalled = u128::from(after - before) * 100;
                u64::try_from(stalled / elapsed_us).unwrap_or(u64::MAX)
            }
            _ => 0,
        };
        self.last_total = total;
        self.last_at = now;
        percent
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_some_total_is_read() {
        let text = "some avg10=0.00 avg60=0.00 avg300=0.00 total=37820\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=28881\n";
        assert_eq!(some_total(text), Some(37820));
        assert_eq!(some_total("full total=1\n"), None);
        assert_eq!(some_total("some avg10=1.00 total=x\n"), None);
    }

    #[test]
    fn percentages_cover_the_time_since_the_last_reading() {
        let t0 = Instant::now();
        let mut period = PsiPeriod::start(Some(1_000_000), t0);
        // 2 s stalled in 10 s: 20%.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(period.percent(Some(3_000_000), t1), 20);
        // Nothing stalled since.
        assert_eq!(
            period.percent(Some(3_000_000), t1 + Duration::from_secs(5)),
            0
        );
        assert_eq!(period.percent(None, t1 + Duration::from_secs(6)), 0);
    }
}
