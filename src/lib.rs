//! scrubsnap: sanitized, consistent snapshots of PostgreSQL databases.
//!
//! The data path reads as the pipeline it is:
//!
//! - [`source`]: the read-only snapshot transaction, the catalog, pg_dump for
//!   the schema, `COPY ... TO STDOUT` for the rows;
//! - [`plan`]: what to dump, checked against the live schema first;
//! - [`encode`]: gzip on worker threads;
//! - [`store`]: a local folder (S3 plugs in behind the same trait);
//! - [`snapshot`]: ids, the manifest written last, listing and verification;
//! - [`restore`] and [`export`]: the way back into a database.
//!
//! [`create`] drives the first five stages. The `scrubsnap` binary is a thin
//! command layer over this library.

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
