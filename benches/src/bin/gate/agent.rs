//! The release agent binary, started fresh several times: time to the first answered Check and
//! resident memory once idle.
//!
//! Most of the agent's RSS is file pages of its binary, and how many depends on the page
//! cache: a fault maps the cached pages around it too (fault-around). So each start is made
//! in a defined state: **cold**, the binary's pages dropped from the cache first (as at a
//! guest's boot, when nothing has read the binary yet), or **warm**, the whole binary read
//! first (as from an initramfs, the worst case).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::fcntl::PosixFadviseAdvice;

/// How many fresh starts; the medians are reported.
const RUNS: usize = 7;
/// How long the agent idles after its first Check before its RSS is read.
const IDLE: Duration = Duration::from_millis(200);

/// Medians over [`RUNS`] fresh starts.
pub struct Measured {
    /// Spawn to the first answered Check, ms.
    pub start_ms: f64,
    /// VmRSS after [`IDLE`], KiB.
    pub rss_kib: u64,
    /// Its file-backed part (the binary's and libraries' pages), KiB.
    pub rss_file_kib: u64,
    /// Its anonymous part (heap, stacks), KiB.
    pub rss_anon_kib: u64,
}

/// The binary's page-cache state at each start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    /// Its pages dropped from the page cache (`POSIX_FADV_DONTNEED`).
    Cold,
    /// All of it read just before.
    Warm,
}

fn prepare(binary: &Path, cache: Cache) -> anyhow::Result<()> {
    match cache {
        Cache::Cold => {
            let file = std::fs::File::open(binary)?;
            nix::fcntl::posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
                .context("posix_fadvise(DONTNEED)")?;
        }
        Cache::Warm => {
            std::fs::read(binary)?;
        }
    }
    Ok(())
}

/// Starts the agent on a private unix socket [`RUNS`] times, in `cache` state.
pub fn start_and_rss(binary: &Path, cache: Cache) -> anyhow::Result<Measured> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let mut starts = Vec::new();
    let (mut rss, mut file, mut anon) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let sock = dir.path().join(format!("agent{run}.sock"));
        let addr = format!("unix://{}", sock.display());
        prepare(binary, cache)
            .with_context(|| format!("{cache:?} page cache for {}", binary.display()))?;
        let began = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .env("KATA_AGENT_SERVER_ADDR", &addr)
            .env("KATA_AGENT_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let answered = rt.block_on(first_check(&addr, &sock));
        let started = began.elapsed();
        std::thread::sleep(IDLE);
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()));
        let _ = child.kill();
        let _ = child.wait();
        answered?;
        let status = status.context("/proc/<agent>/status")?;
        starts.push(started.as_secs_f64() * 1000.0);
        rss.push(kib(&status, "VmRSS").context("VmRSS")?);
        file.push(kib(&status, "RssFile").context("RssFile")?);
        anon.push(kib(&status, "RssAnon").context("RssAnon")?);
    }
    Ok(Measured {
        start_ms: median(&mut starts),
        rss_kib: median(&mut rss),
        rss_file_kib: median(&mut file),
        rss_anon_kib: median(&mut anon),
    })
}

fn median<T: PartialOrd + Copy>(values: &mut [T]) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

async fn first_check(addr: &str, sock: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if sock.exists()
            && let Ok(client) = agent_harness::AgentClient::connect(addr).await
        {
            agent_benches::calls::check(&client)
                .await
                .context("Check")?;
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the agent did not answer within 10 s");
        }
        // tokio's timer rounds every sleep up to a whole millisecond, which would be most of
        // the figure: a thread sleep polls at the 100 µs asked for.
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// A `Name:   1234 kB` field of /proc/<pid>/status.
fn kib(status: &str, name: &str) -> Option<u64> {
    let fields: BTreeMap<&str, &str> = status.lines().filter_map(|l| l.split_once(':')).collect();
    fields
        .get(name)?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
