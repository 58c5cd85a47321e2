//! Latency percentiles, and where bench results go (`<target dir>/criterion`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Percentiles of a set of latencies, and the throughput they were measured at.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// How many samples.
    pub samples: usize,
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Wall time per operation over the whole run (inverse throughput), µs.
    pub per_op_us: f64,
}

impl Latencies {
    /// The percentiles of `samples`, which took `wall` in all.
    pub fn of(samples: &mut [Duration], wall: Duration) -> Latencies {
        samples.sort_unstable();
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let i = ((samples.len() - 1) as f64 * q).round() as usize;
            samples[i.min(samples.len() - 1)].as_secs_f64() * 1e6
        };
        Latencies {
            samples: samples.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            per_op_us: if samples.is_empty() {
                0.0
            } else {
                wall.as_secs_f64() * 1e6 / samples.len() as f64
            },
        }
    }
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else the one this executable was built in
/// (`<target>/<profile>/[deps/]<exe>`), else `target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return dir.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let profile_dir = exe.parent()?;
            let profile_dir = if profile_dir.ends_with("deps") {
                profile_dir.parent()?
            } else {
                profile_dir
            };
            profile_dir.parent().map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Where criterion writes its results, and the scale bench its summary.
pub fn criterion_dir() -> PathBuf {
    target_dir().join("criterion")
}
