//! A guard on each inbound connection that checks ttrpc frame headers before ttrpc reads them.
//!
//! ttrpc itself answers many malformed frames and keeps the connection, and reads (then drops)
//! an oversized body whole: a client announcing 4 GiB makes the agent read 4 GiB. The guard
//! instead fails the connection's reads at the first header that no ttrpc client sends, so that
//! connection closes while the others go on.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// ttrpc's frame header: length u32 BE, stream id u32 BE, type u8, flags u8.
const HEADER_LEN: usize = 10;
/// ttrpc's limit on a frame body.
const MAX_BODY: u32 = 4 << 20;
const TYPE_REQUEST: u8 = 1;
const TYPE_DATA: u8 = 3;

/// Wraps a connection; reads fail with `InvalidData` once a bad frame header is seen.
#[derive(Debug)]
pub struct FrameGuard<S> {
    inner: S,
    header: [u8; HEADER_LEN],
    header_len: usize,
    /// Body bytes of the current frame still to pass through.
    body_left: u32,
    failed: bool,
}

impl<S> FrameGuard<S> {
    /// Guards `inner`.
    pub fn new(inner: S) -> Self {
        FrameGuard {
            inner,
            header: [0; HEADER_LEN],
            header_len: 0,
            body_left: 0,
            failed: false,
        }
    }

    /// Checks the bytes that just arrived, in order.
    fn inspect(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = data.len().min(self.body_left as usize);
                self.body_left -= n as u32;
                data = &data[n..];
                continue;
            }
            let n = data.len().min(HEADER_LEN - self.header_len);
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == HEADER_LEN {
                self.header_len = 0;
                self.body_left = check_header(&self.header)?;
            }
        }
        Ok(())
    }
}

/// The body length of a valid client frame header, or why it is not one.
fn check_header(header: &[u8; HEADER_LEN]) -> io::Result<u32> {
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let stream = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let kind = header[8];
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    if length > MAX_BODY {
        return Err(bad(format!(
            "ttrpc frame of {length} bytes exceeds {MAX_BODY}"
        )));
    }
    if kind != TYPE_REQUEST && kind != TYPE_DATA {
        return Err(bad(format!(
            "ttrpc frame type {kind} is not sent by clients"
        )));
    }
    if stream.is_multiple_of(2) {
        return Err(bad(format!(
            "ttrpc stream id {stream} is not a client stream"
        )));
    }
    Ok(length)
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.failed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "connection closed after a malformed frame",
            )));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Err(e) = this.inspect(&buf.filled()[before..]) {
                    this.failed = true;
                    tracing::warn!(error = %e, "closing a connection that sent a malformed frame");
                    buf.set_filled(before);
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn header(length: u32, stream: u32, kind: u8) -> Vec<u8> {
        let mut h = length.to_be_bytes().to_vec();
        h.extend(stream.to_be_bytes());
        h.extend([kind, 0]);
        h
    }

    async fn read_all(frames: Vec<u8>) -> io::Result<Vec<u8>> {
        let (mut client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            // Dribble the bytes in small pieces so headers straddle reads.
            for chunk in frames.chunks(3) {
                if client.write_all(chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut guarded = FrameGuard::new(server);
        let mut out = Vec::new();
        let result = guarded.read_to_end(&mut out).await.map(|_| out);
        writer.abort();
        result
    }

    #[tokio::test]
    async fn valid_frames_pass_through_unchanged() {
        let mut frames = header(5, 1, TYPE_REQUEST);
        frames.extend(b"hello");
        frames.extend(header(0, 3, TYPE_DATA));
        frames.extend(header(2, 3, TYPE_DATA));
        frames.extend([0xff, 0x00]);
        assert_eq!(read_all(frames.clone()).await.unwrap(), frames);
    }

    #[tokio::test]
    async fn bad_headers_fail_the_read() {
        for bad in [
            header(MAX_BODY + 1, 1, TYPE_REQUEST),
            header(1, 1, 2),
            header(1, 1, 0x7f),
            header(1, 2, TYPE_REQUEST),
            header(1, 0, TYPE_REQUEST),
        ] {
            let mut frames = header(1, 1, TYPE_REQUEST);
            frames.push(0);
            frames.extend(bad);
            let err = read_all(frames).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }
}
