//! The results of the last bench run: criterion estimates and the scale bench's summary.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use agent_benches::stats::Latencies;
use anyhow::{Context, bail};
use serde::Deserialize;

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// The scale bench's summary.
#[derive(Deserialize)]
pub struct Scale {
    pub one_container: Latencies,
    pub hundred_containers: Latencies,
}

/// Results under `<target>/criterion`, ignoring those written before `$GATE_SINCE`.
pub struct Results {
    dir: PathBuf,
    since: Option<SystemTime>,
}

impl Results {
    pub fn new(dir: PathBuf) -> Self {
        let since = std::env::var("GATE_SINCE")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        Results { dir, since }
    }

    /// The text of `path` if it was written by this run.
    fn read_fresh(&self, path: &Path) -> anyhow::Result<Option<String>> {
        let modified = match std::fs::metadata(path).and_then(|m| m.modified()) {
            Ok(modified) => modified,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| path.display().to_string()),
        };
        if self.since.is_some_and(|since| modified < since) {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        Ok(Some(text))
    }

    /// The median time of criterion bench `id` (`group/function`), ns, if this run measured it.
    pub fn median_ns_if_present(&self, id: &str) -> anyhow::Result<Option<f64>> {
        let path = self.dir.join(id).join("new/estimates.json");
        let Some(text) = self.read_fresh(&path)? else {
            return Ok(None);
        };
        let estimates: Estimates = serde_json::from_str(&text)
            .with_context(|| format!("criterion estimates {}", path.display()))?;
        Ok(Some(estimates.median.point_estimate))
    }

    /// The median time of criterion bench `id`, ns.
    pub fn median_ns(&self, id: &str) -> anyhow::Result<f64> {
        match self.median_ns_if_present(id)? {
            Some(ns) => Ok(ns),
            None => bail!(
                "no fresh result for bench {id} under {} (run the benches first)",
                self.dir.display()
            ),
        }
    }

    /// The scale bench's summary.
    pub fn scale(&self) -> anyhow::Result<Scale> {
        let path = self.dir.join("scale/summary.json");
        let Some(text) = self.read_fresh(&path)? else {
            bail!("no fresh {} (run the scale bench first)", path.display());
        };
        serde_json::from_str(&text).with_context(|| path.display().to_string())
    }
}
