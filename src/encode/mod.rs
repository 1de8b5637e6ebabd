//! The encode stage: bytes in, gzip out (and back again on restore).
//!
//! It knows bytes only: rows, masks and tables are the stages above. On
//! create the pipeline ([`crate::create`]) feeds a [`Compressor`] on the
//! thread that masks; on restore, export and verify [`decompress_stream`]
//! inflates on a blocking thread of its own, joined to the async reader by
//! a bounded channel, so a slow consumer slows the reader down instead of
//! filling memory.

pub mod gzip;

pub use gzip::{decompress_stream, Compressor, CHUNK};
