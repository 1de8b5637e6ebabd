//! Integration tests against a real PostgreSQL server and a real
//! S3-protocol server.
//!
//! One throwaway cluster serves every test of this binary: it is started by
//! `scripts/throwaway-pg` on a free loopback port (as the `postgres` OS user
//! when running as root), unless `SCRUBSNAP_TEST_PG_URL` names a server to
//! use instead. Each test makes its own databases. S3 tests share one
//! `moto_server` (installed by `scripts/setup`), each with its own bucket.
//! A missing PostgreSQL or moto fails the tests with the reason; nothing is
//! skipped.

mod blobs;
mod golden;
mod harness;
mod layers;
mod maskers;
mod masking;
mod ops;
mod package;
mod review;
mod s3;
mod s3_harness;
mod spine;
mod subset;
mod trust;
mod versions;
