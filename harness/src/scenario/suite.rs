//! Scenario files on disk and their snapshots (`<dir>/snapshots/<stem>.snap`, insta's format).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::FormatError;
use super::format::Scenario;

/// The scenario files of `path`: itself if it is a file, else its `*.yaml`/`*.yml`, sorted.
pub fn scenario_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// A scenario's name: its file stem.
pub fn name_of(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads and parses a scenario file.
pub fn load(file: &Path) -> Result<Scenario, FormatError> {
    let text = fs::read_to_string(file).map_err(|error| FormatError::Read {
        path: file.to_owned(),
        error,
    })?;
    Scenario::parse(&name_of(file), &text).map_err(|error| FormatError::File {
        path: file.to_owned(),
        error: Box::new(error),
    })
}

/// Where the snapshot of `file` lives.
pub fn snapshot_path(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("."));
    dir.join("snapshots")
        .join(format!("{}.snap", name_of(file)))
}

/// The contents of an insta snapshot file, without its `---` header.
pub fn read_snapshot(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let body = match text.strip_prefix("---\n") {
        Some(rest) => rest.split_once("\n---\n").map_or(rest, |(_, body)| body),
        None => &text,
    };
    Some(body.to_owned())
}

/// How a trace compares with its snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// Same text.
    Matches,
    /// Different: the first differing line.
    Differs(String),
    /// No snapshot yet.
    Missing,
}

/// Compares the trace text of `file` with its snapshot.
pub fn compare(file: &Path, trace: &str) -> SnapshotStatus {
    match read_snapshot(&snapshot_path(file)) {
        None => SnapshotStatus::Missing,
        Some(snap) if snap.trim_end() == trace.trim_end() => SnapshotStatus::Matches,
        Some(snap) => SnapshotStatus::Differs(first_difference(&snap, trace)),
    }
}

/// The first line where `a` and `b` differ, as `line N: - a / + b`.
pub fn first_difference(a: &str, b: &str) -> String {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (None, None) => return "none".into(),
            (x, y) => {
                return format!(
                    "line {n}:\n    - {}\n    + {}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                );
            }
        }
    }
}
