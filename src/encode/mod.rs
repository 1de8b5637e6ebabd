//! The encode stage: COPY text in, gzip out (and back again on restore).
//!
//! Compression and decompression run on blocking worker threads, connected
//! to the async readers and writers by bounded channels, so a slow store
//! slows the reader down instead of filling memory.

pub mod gzip;

pub use gzip::{compress_stream, decompress_stream, CompressStats};
