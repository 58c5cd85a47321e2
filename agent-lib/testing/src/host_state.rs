//! What the host shows of a real agent's containers (cgroupfs, /proc, mountinfo), and the
//! last-resort cleanup of what a failed test may have left there.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the cgroup controllers are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `(state, ppid)` from `/proc/<pid>/stat`.
pub fn stat_state(pid: i32) -> Option<(char, String)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.to_owned()))
}

/// utime + stime of `pid`, in clock ticks.
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3 (index 0), utime 14 and stime 15.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The folders of cgroup `cid` (the agent's default path, `/<cid>`) under every controller.
pub fn cgroup_dirs(cid: &str) -> Vec<PathBuf> {
    let Ok(controllers) = fs::read_dir(CGROUP_ROOT) else {
        return Vec::new();
    };
    controllers
        .flatten()
        .map(|c| c.path().join(cid))
        .filter(|p| p.is_dir())
        .collect()
}

/// A file of `cid`'s cgroup under `controller`, trimmed.
pub fn cgroup_file(controller: &str, cid: &str, file: &str) -> String {
    let path = Path::new(CGROUP_ROOT).join(controller).join(cid).join(file);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The processes in `cid`'s cgroup (memory controller).
pub fn cgroup_pids(cid: &str) -> Vec<i32> {
    cgroup_file("memory", cid, "cgroup.procs")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Thaws, kills every member of and removes `cid`'s cgroup under every controller.
pub fn kill_cgroup(cid: &str) {
    let dirs = cgroup_dirs(cid);
    if dirs.is_empty() {
        return;
    }
    let freezer = Path::new(CGROUP_ROOT)
        .join("freezer")
        .join(cid)
        .join("freezer.state");
    let _ = fs::write(freezer, "THAWED");
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in dirs {
        while dir.exists() && Instant::now() < deadline {
            let mut procs = String::new();
            if let Ok(mut f) = File::open(dir.join("cgroup.procs")) {
                let _ = f.read_to_string(&mut procs);
            }
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) on a pid; no memory is involved.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if fs::remove_dir(&dir).is_err() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Lazily unmounts, in the host's namespace, everything mounted under `roots`.
pub fn detach_mounts_under(roots: &[PathBuf]) {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut targets: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(PathBuf::from)
        .filter(|t| roots.iter().any(|r| t.starts_with(r)))
        .collect();
    // Deepest first.
    targets.sort_by_key(|t| std::cmp::Reverse(t.components().count()));
    for target in targets {
        eprintln!(
            "cleanup: unmounting {} left in the host namespace",
            target.display()
        );
        let _ = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH);
    }
}
