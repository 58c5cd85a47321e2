//! A small QMP client: the greeting, `qmp_capabilities`, then commands one at a time
//! (asynchronous events in between are skipped).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::QemuError;

/// A QMP session.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to `path` (retrying while QEMU creates it) and negotiates capabilities.
    pub fn connect(path: &Path, limit: Duration) -> Result<Qmp, QemuError> {
        let until = Instant::now() + limit;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= until => return Err(QemuError::io(path, e)),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| QemuError::io(path, e))?;
        let writer = stream.try_clone().map_err(|e| QemuError::io(path, e))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.message()?;
        if greeting.get("QMP").is_none() {
            return Err(QemuError::Qmp {
                command: "greeting".into(),
                detail: greeting.to_string(),
            });
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments`; its `return` value, or its `error` as an error.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, QemuError> {
        let request = json!({ "execute": command, "arguments": arguments });
        let fail = |detail: String| QemuError::Qmp {
            command: command.to_owned(),
            detail,
        };
        writeln!(self.writer, "{request}").map_err(|e| fail(e.to_string()))?;
        loop {
            let reply = self.message()?;
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                return Err(fail(err.to_string()));
            }
            tracing::debug!(event = %reply, "qmp event");
        }
    }

    fn message(&mut self) -> Result<Value, QemuError> {
        let mut line = String::new();
        let fail = |detail: String| QemuError::Qmp {
            command: "read".into(),
            detail,
        };
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            return Err(fail("QEMU closed the QMP socket".into()));
        }
        serde_json::from_str(&line).map_err(|e| fail(format!("{e}: {line:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn negotiates_then_skips_events_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut lines = BufReader::new(stream).lines();
            writeln!(out, r#"{{"QMP": {{"version": {{}}}}}}"#).unwrap();
            let caps = lines.next().unwrap().unwrap();
            assert!(caps.contains("qmp_capabilities"), "{caps}");
            writeln!(out, r#"{{"return": {{}}}}"#).unwrap();
            let add = lines.next().unwrap().unwrap();
            assert!(add.contains("\"bus\":\"rp1\""), "{add}");
            writeln!(out, r#"{{"event": "DEVICE_ADDED"}}"#).unwrap();
            writeln!(out, r#"{{"return": {{"ok": 1}}}}"#).unwrap();
            lines.next().unwrap().unwrap();
            writeln!(
                out,
                r#"{{"error": {{"class": "GenericError", "desc": "no"}}}}"#
            )
            .unwrap();
        });
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        let ret = qmp
            .execute("device_add", json!({ "driver": "x", "bus": "rp1" }))
            .unwrap();
        assert_eq!(ret, json!({ "ok": 1 }));
        let err = qmp.execute("device_del", json!({ "id": "x" })).unwrap_err();
        assert!(err.to_string().contains("device_del"), "{err}");
        server.join().unwrap();
    }
}
