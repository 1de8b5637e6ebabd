//! gzip compression and decompression on worker threads.
//!
//! Files are standard gzip (`zcat` reads them). Memory is bounded: each
//! stream holds one input batch, the compressor's window and one output
//! chunk, whatever the table or row size.

use std::io::{Read, Write};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::sync::mpsc;

use crate::mask::rows::RowMasker;
use crate::store::ObjectReader;

/// Compressed output is handed on in chunks of about this size.
pub const CHUNK: usize = 256 * 1024;

/// Counts taken while compressing one COPY stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompressStats {
    /// Rows (COPY text ends every row with a newline; newlines inside values
    /// are escaped, so this count is exact).
    pub rows: u64,
    /// Uncompressed bytes.
    pub raw_bytes: u64,
}

/// Compresses what arrives on `input` and sends gzip chunks to `output`.
/// Runs on a blocking thread. Ends when `input` closes; fails if `output`
/// is dropped.
pub fn compress_stream(
    mut input: mpsc::Receiver<Bytes>,
    output: mpsc::Sender<Vec<u8>>,
    level: u32,
    mut masker: Option<RowMasker>,
    on_progress: &(dyn Fn(CompressStats) + Send + Sync),
) -> std::io::Result<CompressStats> {
    let mut stats = CompressStats::default();
    let mut enc = GzEncoder::new(Vec::with_capacity(CHUNK * 2), Compression::new(level));
    let closed = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the writer stopped");
    let mut masked = Vec::new();
    while let Some(batch) = input.blocking_recv() {
        let batch: &[u8] = match masker.as_mut() {
            Some(m) if m.passes_rows_through() => {
                m.probe_rows(&batch).map_err(std::io::Error::other)?;
                &batch
            }
            Some(m) => {
                masked.clear();
                m.process(&batch, &mut masked).map_err(std::io::Error::other)?;
                &masked
            }
            None => &batch,
        };
        stats.rows += memchr_count(batch);
        stats.raw_bytes += batch.len() as u64;
        // A batch holding one huge value goes in by slices, so that its
        // compressed form is handed on as it grows instead of piling up.
        for slice in batch.chunks(CHUNK) {
            enc.write_all(slice)?;
            if enc.get_ref().len() >= CHUNK {
                let chunk = std::mem::replace(enc.get_mut(), Vec::with_capacity(CHUNK * 2));
                output.blocking_send(chunk).map_err(|_| closed())?;
                on_progress(stats);
            }
        }
    }
    if let Some(m) = masker.as_mut() {
        m.finish().map_err(std::io::Error::other)?;
    }
    let rest = enc.finish()?;
    if !rest.is_empty() {
        output.blocking_send(rest).map_err(|_| closed())?;
    }
    on_progress(stats);
    Ok(stats)
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Decompresses a gzip object (one or more members) on a blocking thread,
/// sending chunks of at most [`CHUNK`] bytes. Must be called inside the
/// runtime. An error is sent as the last item.
pub fn decompress_stream(reader: ObjectReader, depth: usize) -> mpsc::Receiver<std::io::Result<Bytes>> {
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
    async fn round_trip_through_both_threads() {
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let worker = tokio::task::spawn_blocking(move || compress_stream(in_rx, out_tx, 6, None, &|_| {}));
        let mut expected = Vec::new();
        let feeder = tokio::spawn(async move {
            for i in 0..20_000u32 {
                let line = format!("{i}\tname {i}\t\\N\n");
                in_tx.send(Bytes::from(line)).await.unwrap();
            }
        });
        for i in 0..20_000u32 {
            expected.extend_from_slice(format!("{i}\tname {i}\t\\N\n").as_bytes());
        }
        let mut gz = Vec::new();
        while let Some(c) = out_rx.recv().await {
            gz.extend_from_slice(&c);
        }
        feeder.await.unwrap();
        let stats = worker.await.unwrap().unwrap();
        assert_eq!(stats.rows, 20_000);
        assert_eq!(stats.raw_bytes, expected.len() as u64);
        // Two members back to back still decode as one stream.
        let mut two = gz.clone();
        two.extend_from_slice(&gz);
        let reader: ObjectReader = Box::pin(std::io::Cursor::new(two));
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
        let reader: ObjectReader = Box::pin(std::io::Cursor::new(b"\x1f\x8b\x08\x00garbage".to_vec()));
        let mut rx = decompress_stream(reader, 2);
        let mut saw_error = false;
        while let Some(c) = rx.recv().await {
            saw_error |= c.is_err();
        }
        assert!(saw_error);
    }
}
