//! The agent ↔ helper protocol: length-prefixed JSON frames on a unix stream socket.
//!
//! ```text
//! agent                                   helper
//!   [1 byte: maps written, go ahead]  →   (raw child, before it executes the helper)
//!   HelperConfig                      →
//!                                     ←   Ready | Failed{step, errno, message}
//!   Go                                →   (at once, or on Launcher::release)
//!                                     ←   end of file (exec done) | Failed{...}
//! ```

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Frames larger than this are refused (a spec is a few KiB; seccomp profiles tens of KiB).
const MAX_FRAME: u32 = 16 << 20;

/// What the helper tells the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Report {
    /// Set up; waiting for `Go` to execute the program.
    Ready,
    /// A step failed; the helper exits.
    Failed {
        /// The failed step and its error, for the agent's error message.
        message: String,
        /// The errno, when the failure was a system call.
        errno: Option<i32>,
    },
}

/// What the agent tells the helper after the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Order {
    /// Execute the program.
    Go,
}

/// Writes one frame.
pub(super) fn send<T: Serialize>(sock: &mut UnixStream, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    sock.write_all(&frame)
}

/// Reads one frame; `Ok(None)` at a clean end of file before the frame starts.
pub(super) fn recv<T: DeserializeOwned>(sock: &mut UnixStream) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match sock.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    sock.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_eof_is_none() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        send(&mut a, &Report::Ready).unwrap();
        let failed = Report::Failed {
            message: "mount proc on /proc: EPERM".into(),
            errno: Some(1),
        };
        send(&mut a, &failed).unwrap();
        drop(a);
        assert_eq!(recv::<Report>(&mut b).unwrap(), Some(Report::Ready));
        assert_eq!(recv::<Report>(&mut b).unwrap(), Some(failed));
        assert_eq!(recv::<Report>(&mut b).unwrap(), None);
    }

    #[test]
    fn a_huge_length_is_refused() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(&u32::MAX.to_le_bytes()).unwrap();
        assert!(recv::<Report>(&mut b).is_err());
    }
}
