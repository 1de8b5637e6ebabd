//! The leak scan: proof, per snapshot, that no original value of a masked
//! column reached it. A stage of create's pipeline of its own, between
//! masking and encoding.
//!
//! While rows are masked, the original values of masked text columns (whole,
//! and their word-like tokens) are remembered as seeded hashes in a Bloom
//! filter of fixed size ([`bloom`]): memory stays bounded whatever the data,
//! and the filter holds no value in the clear. Every field that could carry
//! an original (kept and unruled columns, and the output of maskers whose
//! registry entry says they keep parts of their input) is tested, whole and
//! token by token ([`keys`]); fields of types without words (numbers, dates,
//! times, UUIDs, addresses) are tested whole only. A table dumped after
//! every table with remembered originals is tested as its rows pass
//! ([`probe`]): the filter is complete by then. The probes of rows dumped
//! while it still fills are kept, in memory and then in an unnamed temporary
//! file ([`deferred`]), and looked up at the end; past both budgets a file is
//! read back before publishing ([`readback`]). [`observer`] watches the rows
//! as the mask stage writes them. Any hit blocks publishing; the report
//! names table, column and count, never the value.
//!
//! What it cannot see: originals shorter than 4 characters (or purely
//! numeric ones shorter than 8), values of non-text masked columns, a 6- or
//! 7-digit number from inside a masked text copied into a number column,
//! and copies that were transformed (re-formatted phone numbers, case
//! changes).

pub mod bloom;
mod deferred;
pub mod keys;
pub mod observer;
pub mod origins;
pub mod probe;
pub mod readback;
pub mod run;
pub mod schema;
pub mod verdict;

pub use bloom::{Bloom, Key};
pub use deferred::{Budgets, Queued, SLOT_BYTES, SPILLED_SLOT_BYTES};
pub use keys::Shape;
pub use observer::LeakObserver;
pub use origins::Origins;
pub use probe::{Probe, TableProbe, Tally};

/// Default filter size.
pub const DEFAULT_BYTES: usize = 32 * 1024 * 1024;

/// The leak scan's result, for the manifest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LeakScan {
    /// Distinct original values and tokens remembered (a value whose bits
    /// were all set already is not counted again).
    pub remembered: u64,
    pub filter_bytes: u64,
    /// An upper bound on the filter's false-positive rate per probe, for
    /// the number remembered; each candidate is confirmed exactly, so this
    /// is a cost, never a false alarm.
    pub false_positive_rate: f64,
    pub fields_tested: u64,
    /// (table.column, hits) of a blocking result; empty in a published
    /// snapshot (format version 2 and earlier only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hits: Vec<(String, u64)>,
    /// Distinct keys of kept fields that the filter passed.
    #[serde(default)]
    pub candidates: u64,
    /// Of those, the ones confirmed equal to a remembered original.
    #[serde(default)]
    pub confirmed: u64,
    /// Every kept column holding original values, with what it is: in a
    /// published snapshot, coincidences and acknowledged matches only.
    #[serde(default)]
    pub findings: Vec<verdict::Finding>,
}

/// Why the leak scan could not test a file (a hit is not an error here:
/// it is counted, and create refuses to publish).
#[derive(Debug, thiserror::Error)]
pub enum LeakError {
    #[error("leak scan: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("leak scan: reading {path} back: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("leak scan: {0}")]
    Rows(#[from] crate::mask::rows::RowError),
    #[error("leak scan: the scan of {path} ended abnormally: {source}")]
    Task {
        path: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("leak scan: confirming candidates: {0}")]
    Confirm(#[source] std::io::Error),
}
