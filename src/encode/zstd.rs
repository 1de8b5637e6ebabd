//! zstd blocks: each block of input is one Zstandard frame (with its
//! content size and checksum). Frames back to back are one standard
//! `.zst` file.

/// The levels taken.
pub const LEVELS: std::ops::RangeInclusive<i32> = 1..=19;
/// Chosen by measurement (README, "Compression").
pub const DEFAULT_LEVEL: i32 = 1;

/// A zstd block compressor (its context is kept from block to block).
pub struct Blocks {
    c: zstd::bulk::Compressor<'static>,
}

impl Blocks {
    pub fn new(level: i32) -> std::io::Result<Self> {
        let mut c = zstd::bulk::Compressor::new(level)?;
        c.include_checksum(true)?;
        c.include_contentsize(true)?;
        Ok(Blocks { c })
    }

    /// Appends `block` as one frame to `out`.
    pub fn compress(&mut self, block: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        let start = out.len();
        out.resize(start + zstd::zstd_safe::compress_bound(block.len()), 0);
        let n = self.c.compress_to_buffer(block, &mut out[start..])?;
        out.truncate(start + n);
        Ok(())
    }
}
