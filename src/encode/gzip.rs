//! gzip: compression as the pipeline feeds it, and decompression on a
//! worker thread.
//!
//! Files are standard gzip (`zcat` reads them). Memory is bounded: each
//! stream holds one input batch, the compressor's window and one output
//! chunk, whatever the table or row size.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::sync::mpsc;

/// Compressed output is handed on in chunks of about this size.
pub const CHUNK: usize = 256 * 1024;

/// A gzip stream being written: bytes in, compressed chunks out as they
/// fill. Knows bytes only, not rows or tables.
pub struct Compressor {
    enc: GzEncoder<Vec<u8>>,
}

impl Compressor {
    /// A stream at `level` (0 stores, 9 is smallest).
    pub fn new(level: u32) -> Self {
        Compressor { enc: GzEncoder::new(Vec::with_capacity(CHUNK * 2), Compression::new(level)) }
    }

    /// Compresses `bytes`, handing each compressed chunk of about [`CHUNK`]
    /// bytes to `emit` as soon as it fills. A large input goes in by slices,
    /// so that its compressed form is handed on as it grows instead of
    /// piling up.
    pub fn write(&mut self, bytes: &[u8], mut emit: impl FnMut(Vec<u8>) -> std::io::Result<()>) -> std::io::Result<()> {
        for slice in bytes.chunks(CHUNK) {
            self.enc.write_all(slice)?;
            if self.enc.get_ref().len() >= CHUNK {
                emit(std::mem::replace(self.enc.get_mut(), Vec::with_capacity(CHUNK * 2)))?;
            }
        }
        Ok(())
    }

    /// Ends the stream; returns what is left to write.
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        self.enc.finish()
    }
}

/// Decompresses a gzip object (one or more members) on a blocking thread,
/// sending chunks of at most [`CHUNK`] bytes. Must be called inside the
/// runtime. An error is sent as the last item.
pub fn decompress_stream(
    reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    depth: usize,
) -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(depth);
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    tokio::task::spawn_blocking(move || {
        let mut dec = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(CHUNK, bridge));
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            // Fill the chunk before sending: fewer, larger messages.
            while filled < CHUNK {
                match dec.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if filled == 0 {
                return;
            }
            buf.truncate(filled);
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return;
            }
            if filled < CHUNK {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trip_and_two_members() {
        let mut expected = Vec::new();
        for i in 0..20_000u32 {
            expected.extend_from_slice(format!("{i}\tname {i}\t\\N\n").as_bytes());
        }
        let mut gz = Vec::new();
        let mut c = Compressor::new(6);
        for line in expected.split_inclusive(|&b| b == b'\n') {
            c.write(line, |chunk| {
                gz.extend_from_slice(&chunk);
                Ok(())
            })
            .unwrap();
        }
        gz.extend_from_slice(&c.finish().unwrap());
        // Two members back to back still decode as one stream.
        let mut two = gz.clone();
        two.extend_from_slice(&gz);
        let reader = Box::pin(std::io::Cursor::new(two));
        let mut rx = decompress_stream(reader, 2);
        let mut out = Vec::new();
        while let Some(c) = rx.recv().await {
            out.extend_from_slice(&c.unwrap());
        }
        assert_eq!(out.len(), expected.len() * 2);
        assert_eq!(&out[..expected.len()], &expected[..]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupt_input_is_an_error() {
        let reader = Box::pin(std::io::Cursor::new(b"\x1f\x8b\x08\x00garbage".to_vec()));
        let mut rx = decompress_stream(reader, 2);
        let mut saw_error = false;
        while let Some(c) = rx.recv().await {
            saw_error |= c.is_err();
        }
        assert!(saw_error);
    }
}
