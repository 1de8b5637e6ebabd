//! The encode stage: bytes in, compressed bytes out (and back again on
//! restore).
//!
//! It knows bytes only: rows, masks and tables are the stages above. Two
//! codecs, [`Codec::Gzip`] (the default; `zcat` reads the files) and
//! [`Codec::Zstd`] (faster and smaller; `zstd -d` reads them). Both cut the
//! input into blocks of exactly [`BLOCK`] bytes and compress each block on
//! its own (a gzip member, a zstd frame, back to back in one file), so a
//! file's bytes depend only on its contents, never on how the source
//! happened to hand them over: an unchanged table compresses to the same
//! bytes every night, which is what lets a store keep it once.
//!
//! On create the pipeline (`src/create/`, above this stage) feeds a [`Compressor`] on the
//! thread that masks; on restore, export and verify [`decompress_stream`]
//! inflates on a blocking thread of its own, joined to the async reader by
//! a bounded channel, so a slow consumer slows the reader down instead of
//! filling memory.

mod gzip;
mod zstd;

use std::io::Read;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Input bytes per independently compressed block.
pub const BLOCK: usize = 1024 * 1024;
/// Decompressed output is handed on in chunks of at most this size.
pub const CHUNK: usize = 256 * 1024;

/// How a data file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// gzip (deflate): members of 1 MiB of input each, read by `zcat`.
    Gzip,
    /// Zstandard: frames of 1 MiB of input each, read by `zstd -d`.
    Zstd,
}

impl Codec {
    /// The end of a data file's name: `.copy.gz`, `.copy.zst`.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => ".copy.gz",
            Codec::Zstd => ".copy.zst",
        }
    }

    /// The level used when none is given, chosen by measurement (README,
    /// "Compression").
    pub fn default_level(self) -> i32 {
        match self {
            Codec::Gzip => gzip::DEFAULT_LEVEL,
            Codec::Zstd => zstd::DEFAULT_LEVEL,
        }
    }

    /// The levels the codec takes.
    pub fn levels(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Codec::Gzip => gzip::LEVELS,
            Codec::Zstd => zstd::LEVELS,
        }
    }

    /// The codec a data file of an older snapshot (no codec recorded) was
    /// written with, from its name.
    pub fn from_path(path: &str) -> Option<Codec> {
        if path.ends_with(".gz") {
            Some(Codec::Gzip)
        } else if path.ends_with(".zst") {
            Some(Codec::Zstd)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A level the codec does not take.
#[derive(Debug, thiserror::Error)]
#[error("{codec} takes levels {} to {}, not {level}", .codec.levels().start(), .codec.levels().end())]
pub struct BadLevel {
    pub codec: Codec,
    pub level: i32,
}

/// One block compressor of a codec.
enum Engine {
    Gzip(gzip::Blocks),
    Zstd(zstd::Blocks),
}

impl Engine {
    fn compress(&mut self, block: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            Engine::Gzip(g) => g.compress(block, out),
            Engine::Zstd(z) => z.compress(block, out),
        }
    }
}

/// A compressed stream being written: bytes in, compressed blocks out as
/// each [`BLOCK`] of input fills. Knows bytes only, not rows or tables.
pub struct Compressor {
    engine: Engine,
    /// Input of the block being filled.
    pending: Vec<u8>,
    /// Whether any block was written.
    wrote: bool,
}

impl Compressor {
    /// A stream of `codec` at `level`.
    pub fn new(codec: Codec, level: i32) -> Result<Self, BadLevel> {
        if !codec.levels().contains(&level) {
            return Err(BadLevel { codec, level });
        }
        let engine = match codec {
            Codec::Gzip => Engine::Gzip(gzip::Blocks::new(level).ok_or(BadLevel { codec, level })?),
            Codec::Zstd => Engine::Zstd(zstd::Blocks::new(level).map_err(|_| BadLevel { codec, level })?),
        };
        Ok(Compressor { engine, pending: Vec::with_capacity(BLOCK), wrote: false })
    }

    /// Takes `bytes`, handing each compressed block to `emit` as soon as
    /// its input is complete.
    pub fn write(
        &mut self,
        mut bytes: &[u8],
        mut emit: impl FnMut(Vec<u8>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        while !bytes.is_empty() {
            // Whole blocks straight from the input when nothing is pending.
            if self.pending.is_empty() && bytes.len() >= BLOCK {
                let (block, rest) = bytes.split_at(BLOCK);
                emit(self.block(block)?)?;
                bytes = rest;
                continue;
            }
            let take = (BLOCK - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == BLOCK {
                let block = std::mem::take(&mut self.pending);
                let out = self.block(&block);
                self.pending = block;
                self.pending.clear();
                emit(out?)?;
            }
        }
        Ok(())
    }

    fn block(&mut self, input: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.engine.compress(input, &mut out)?;
        self.wrote = true;
        Ok(out)
    }

    /// Ends the stream; returns what is left to write (an empty stream is
    /// one empty block, so that every file is a valid compressed file).
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        if self.pending.is_empty() && self.wrote {
            return Ok(Vec::new());
        }
        let block = std::mem::take(&mut self.pending);
        self.block(&block)
    }
}

/// Decompresses an object of `codec` (one or more members or frames) on a
/// blocking thread, sending chunks of at most [`CHUNK`] bytes. Must be
/// called inside the runtime. An error is sent as the last item.
pub fn decompress_stream(
    reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    codec: Codec,
    depth: usize,
) -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(depth);
    let bridge = std::io::BufReader::with_capacity(CHUNK, tokio_util::io::SyncIoBridge::new(reader));
    tokio::task::spawn_blocking(move || {
        let dec: Box<dyn Read> = match codec {
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(bridge)),
            Codec::Zstd => match ::zstd::stream::read::Decoder::with_buffer(bridge) {
                Ok(d) => Box::new(d),
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            },
        };
        pump(dec, &tx);
    });
    rx
}

/// Reads `dec` to its end in chunks of [`CHUNK`], sending each.
fn pump(mut dec: Box<dyn Read>, tx: &mpsc::Sender<std::io::Result<Bytes>>) {
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
        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() || filled < CHUNK {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..200_000u32 {
            v.extend_from_slice(format!("{i}\tname {}\t\\N\n", i.wrapping_mul(2_654_435_761)).as_bytes());
        }
        v
    }

    fn compress(codec: Codec, data: &[u8], piece: usize) -> Vec<u8> {
        let mut c = Compressor::new(codec, codec.default_level()).unwrap();
        let mut out = Vec::new();
        for p in data.chunks(piece) {
            c.write(p, |b| {
                out.extend_from_slice(&b);
                Ok(())
            })
            .unwrap();
        }
        out.extend_from_slice(&c.finish().unwrap());
        out
    }

    async fn decompress(codec: Codec, data: Vec<u8>) -> std::io::Result<Vec<u8>> {
        let mut rx = decompress_stream(Box::pin(std::io::Cursor::new(data)), codec, 2);
        let mut out = Vec::new();
        while let Some(c) = rx.recv().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trip_whatever_the_pieces_and_the_same_bytes() {
        let data = sample();
        for codec in [Codec::Gzip, Codec::Zstd] {
            let a = compress(codec, &data, 7_919);
            let b = compress(codec, &data, 3 * BLOCK + 5);
            assert_eq!(a, b, "{codec}: the bytes depend on how the input came");
            assert!(a.len() < data.len() / 2);
            assert_eq!(decompress(codec, a).await.unwrap(), data);
            // An empty stream is a valid file of no bytes.
            let empty = compress(codec, &[], 1);
            assert!(!empty.is_empty());
            assert!(decompress(codec, empty).await.unwrap().is_empty());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gzip_files_are_standard_gzip() {
        let data = sample();
        let gz = compress(Codec::Gzip, &data, 100_000);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let zst = compress(Codec::Zstd, &data, 100_000);
        assert_eq!(::zstd::stream::decode_all(&zst[..]).unwrap(), data);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupt_input_is_an_error() {
        for (codec, bad) in
            [(Codec::Gzip, &b"\x1f\x8b\x08\x00garbage"[..]), (Codec::Zstd, &b"\x28\xb5\x2f\xfdgarbage"[..])]
        {
            assert!(decompress(codec, bad.to_vec()).await.is_err(), "{codec}");
        }
        // A file cut short is an error too.
        let gz = compress(Codec::Zstd, &sample(), 100_000);
        assert!(decompress(Codec::Zstd, gz[..gz.len() - 10].to_vec()).await.is_err());
        let gz = compress(Codec::Gzip, &sample(), 100_000);
        assert!(decompress(Codec::Gzip, gz[..gz.len() - 10].to_vec()).await.is_err());
    }

    #[test]
    fn levels_are_checked() {
        assert!(Compressor::new(Codec::Gzip, 13).is_err());
        assert!(Compressor::new(Codec::Zstd, 0).is_err());
        assert!(Compressor::new(Codec::Zstd, 19).is_ok());
    }
}
