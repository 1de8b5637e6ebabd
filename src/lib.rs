//! scrubsnap: sanitized, consistent snapshots of PostgreSQL databases.
//!
//! The data path of `create` reads as the pipeline it is, one module a
//! stage, composed in [`create`]:
//!
//! - [`source`]: the read-only snapshot transaction, the catalog, pg_dump for
//!   the schema, and `COPY ... TO STDOUT`: a stream of COPY text per table or
//!   chunk ([`copy_text`] splits it into rows and fields);
//! - [`plan`]: what to dump and how each column is masked, from the
//!   [`rules`] checked against the live schema before a single row is read;
//! - [`mask`]: the key, the registry of maskers, and the masking of each
//!   row's ruled fields (the others pass through as bytes);
//! - [`leak`]: the leak scan, which remembers the originals of masked
//!   columns and probes what was written, and blocks publishing on a hit;
//! - [`encode`]: gzip (bytes only);
//! - [`store`]: a local folder or S3, behind one trait;
//! - [`snapshot`]: ids, the manifest written last, the `latest` pointer, the
//!   run lock, listing and verification.
//!
//! The way back reads the same stages in reverse: [`restore`], [`export`]
//! and [`verify`] read a snapshot's files from the store, check them,
//! decompress them and load them. [`review`] holds the security reviewer's
//! commands (`check`, `rules init`). Library errors are typed and say what
//! kind of failure they are ([`error::Fault`]); the `scrubsnap` binary is a
//! thin command layer over this library that maps the kind to the exit code.

pub mod conn;
pub mod copy_text;
pub mod create;
pub mod encode;
pub mod error;
pub mod export;
pub mod leak;
pub mod mask;
pub mod pgtools;
pub mod plan;
pub mod progress;
pub mod restore;
pub mod review;
pub mod rules;
pub mod schema_script;
pub mod snapshot;
pub mod source;
pub mod sql;
pub mod store;
pub mod verify;
