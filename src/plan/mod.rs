//! The plan stage: what to dump, checked against the live schema before a
//! single row is read. Every problem is reported at once.

pub mod masking;
pub mod selection;
pub mod subset;

pub use selection::{Selection, SelectionError, TablePatterns};
