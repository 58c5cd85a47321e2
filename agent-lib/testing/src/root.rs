//! The root check of the real-kernel tests, which are `#[ignore = "needs root: ..."]` and run
//! with `--include-ignored` as root (as CI does).

/// Whether this process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Why a test cannot run without root, and how to run it.
fn needs_root(what: &str) -> String {
    format!("needs root: {what} (run `cargo test -- --include-ignored` as root)")
}

/// The line a test prints when it cannot run without root.
pub fn skip_line(what: &str) -> String {
    format!("skipped: {}", needs_root(what))
}

/// For fixtures that cannot return early: panics saying why unless root.
pub fn require_root(what: &str) {
    assert!(is_root(), "{}", needs_root(what));
}

/// Returns from the calling test, printing `skipped: needs root: <what>`, unless root.
#[macro_export]
macro_rules! skip_unless_root {
    ($what:expr) => {
        if !$crate::root::is_root() {
            eprintln!("{}", $crate::root::skip_line($what));
            return;
        }
    };
}
