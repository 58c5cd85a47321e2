//! What the children of a direct exec tell the agent: fixed-size records on their socket, each a
//! step code, an errno and a detail (an index, or the process's pid). Written with one
//! `write(2)` of a stack buffer, so a child reports without allocating.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;

/// The size of one record on the wire.
pub(super) const RECORD_LEN: usize = 12;

/// A step of the children, by code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Step {
    /// Not a failure: the pid of the process an intermediate forked (in `detail`).
    Pid = 0,
    /// Not a failure: everything up to the exec is done; a held process waits for `Go`.
    Ready,
    NonDumpable,
    JoinCgroup,
    JoinPidNs,
    ForkIntoPidNs,
    Stdio,
    Session,
    Ctty,
    Rlimit,
    OomScoreAdj,
    Label,
    JoinNamespaces,
    EnterRoot,
    Chroot,
    Seccomp,
    KeepCaps,
    Bounding,
    Setgroups,
    Setgid,
    Setuid,
    Capset,
    Ambient,
    NoNewPrivs,
    Chdir,
    WaitGo,
    NotFound,
    Exec,
}

const STEPS: [Step; 28] = [
    Step::Pid,
    Step::Ready,
    Step::NonDumpable,
    Step::JoinCgroup,
    Step::JoinPidNs,
    Step::ForkIntoPidNs,
    Step::Stdio,
    Step::Session,
    Step::Ctty,
    Step::Rlimit,
    Step::OomScoreAdj,
    Step::Label,
    Step::JoinNamespaces,
    Step::EnterRoot,
    Step::Chroot,
    Step::Seccomp,
    Step::KeepCaps,
    Step::Bounding,
    Step::Setgroups,
    Step::Setgid,
    Step::Setuid,
    Step::Capset,
    Step::Ambient,
    Step::NoNewPrivs,
    Step::Chdir,
    Step::WaitGo,
    Step::NotFound,
    Step::Exec,
];

/// One record: a step, its errno (0 for the non-failures) and a detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) step: Step,
    pub(super) errno: i32,
    pub(super) detail: i32,
}

impl Record {
    /// The wire form, native endian (both ends are this machine).
    pub(super) fn encode(self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[..4].copy_from_slice(&(self.step as u32).to_ne_bytes());
        out[4..8].copy_from_slice(&self.errno.to_ne_bytes());
        out[8..].copy_from_slice(&self.detail.to_ne_bytes());
        out
    }

    fn decode(bytes: &[u8; RECORD_LEN]) -> io::Result<Record> {
        let word = |i: usize| [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        let code = u32::from_ne_bytes(word(0));
        let step = usize::try_from(code)
            .ok()
            .and_then(|i| STEPS.get(i).copied())
            .ok_or_else(|| io::Error::other(format!("exec child: unknown step code {code}")))?;
        Ok(Record {
            step,
            errno: i32::from_ne_bytes(word(4)),
            detail: i32::from_ne_bytes(word(8)),
        })
    }
}

/// The next record on `sock`, or `None` at end of file (every child end closed: the children
/// exited or the program was executed).
pub(super) fn read(sock: &mut UnixStream) -> io::Result<Option<Record>> {
    let mut buf = [0u8; RECORD_LEN];
    let mut got = 0;
    while got < RECORD_LEN {
        match sock.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::other("exec child: a truncated report")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Record::decode(&buf).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_round_trips_and_unknown_codes_are_refused() {
        for (i, step) in STEPS.iter().enumerate() {
            assert_eq!(*step as usize, i, "{step:?} is out of order");
            let r = Record {
                step: *step,
                errno: libc::EPERM,
                detail: -3,
            };
            assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        }
        let mut bad = [0u8; RECORD_LEN];
        bad[..4].copy_from_slice(&99u32.to_ne_bytes());
        assert!(Record::decode(&bad).is_err());
    }

    #[test]
    fn a_truncated_record_is_an_error_and_eof_is_none() {
        use std::io::Write;
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.write_all(&[1, 0, 0]).unwrap();
        drop(b);
        assert!(read(&mut a).is_err());
        let (mut a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert!(read(&mut a).unwrap().is_none());
    }
}
