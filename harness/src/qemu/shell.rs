//! The harness's debug channel into a real guest: the agent's debug console
//! (`agent.debug_console_vport`), reached over hybrid vsock, one shell per command. Checks of
//! guest state (hostname, files, paths) are answered here.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::QemuError;
use crate::client::hybrid_vsock_stream;

/// The guest vsock port of the debug console the harness enables.
pub const CONSOLE_PORT: u32 = 1026;
/// How long one command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// Output markers; written split in the command so the terminal's echo never matches.
const BEGIN: &str = "HARNESS-BEGIN";
const END: &str = "HARNESS-END";

/// What a command printed (between the markers, without `\r`, trimmed) and its exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellOutput {
    /// Its output.
    pub text: String,
    /// Its exit status.
    pub status: i32,
}

/// Runs `command` in a fresh console shell of the guest behind `vsock_addr`.
pub async fn run(vsock_addr: &str, command: &str) -> Result<ShellOutput, QemuError> {
    tokio::time::timeout(COMMAND_LIMIT, exchange(vsock_addr, command))
        .await
        .map_err(|_| console(format!("no answer to {command:?} within {COMMAND_LIMIT:?}")))?
}

fn console(detail: String) -> QemuError {
    QemuError::Console { detail }
}

async fn exchange(vsock_addr: &str, command: &str) -> Result<ShellOutput, QemuError> {
    let mut stream = hybrid_vsock_stream(vsock_addr, CONSOLE_PORT)
        .await
        .map_err(|e| console(e.to_string()))?;
    let (b1, b2) = BEGIN.split_at(7);
    let (e1, e2) = END.split_at(7);
    let line =
        format!("/bin/busybox echo {b1}''{b2}; {command}; /bin/busybox echo {e1}''{e2}$?; exit\n");
    stream
        .write_all(line.as_bytes())
        .await
        .map_err(|e| console(e.to_string()))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| console(e.to_string()))?;
        seen.extend_from_slice(&buf[..n]);
        if let Some(out) = parse(&String::from_utf8_lossy(&seen)) {
            return Ok(out);
        }
        if n == 0 {
            return Err(console(format!(
                "closed before the command ended: {:?}",
                String::from_utf8_lossy(&seen)
            )));
        }
    }
}

/// The output between the markers and the status after the end marker, once complete.
fn parse(text: &str) -> Option<ShellOutput> {
    let start = text
        .find(&format!("{BEGIN}\r\n"))
        .or_else(|| text.find(&format!("{BEGIN}\n")))?;
    let after = &text[start + BEGIN.len()..];
    let end = after.find(END)?;
    let rest = &after[end + END.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    // The status is complete once a line break follows it.
    if digits.is_empty() || !rest[digits.len()..].starts_with(['\r', '\n']) {
        return None;
    }
    Some(ShellOutput {
        text: after[..end].replace('\r', "").trim().to_owned(),
        status: digits.parse().ok()?,
    })
}

/// `path` in single quotes for the shell, or an error naming it when it cannot be.
pub fn quote(path: &str) -> Result<String, QemuError> {
    if path.contains('\'') || !path.starts_with('/') {
        return Err(console(format!(
            "path {path:?}: must be absolute, without single quotes"
        )));
    }
    Ok(format!("'{path}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_between_markers_with_status_once_complete() {
        let echo =
            "/bin/busybox echo HARNESS''-BEGIN; cat x; /bin/busybox echo HARNESS''-END$?\r\n";
        let done = format!("{echo}HARNESS-BEGIN\r\npod\r\nHARNESS-END0\r\n");
        assert_eq!(
            parse(&done),
            Some(ShellOutput {
                text: "pod".into(),
                status: 0
            })
        );
        assert_eq!(parse(&format!("{echo}HARNESS-BEGIN\r\nHARNESS-END1")), None);
        assert_eq!(parse(echo), None);
        let failed = "HARNESS-BEGIN\nHARNESS-END1\n";
        assert_eq!(parse(failed).unwrap().status, 1);
    }

    #[test]
    fn paths_are_quoted_or_refused() {
        assert_eq!(quote("/a b").unwrap(), "'/a b'");
        assert!(quote("/a'b").is_err());
        assert!(quote("rel").is_err());
    }
}
