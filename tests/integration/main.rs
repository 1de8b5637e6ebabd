//! Integration tests against a real PostgreSQL server.
//!
//! One throwaway cluster serves every test of this binary: it is started by
//! `scripts/throwaway-pg` on a free loopback port (as the `postgres` OS user
//! when running as root), unless `SCRUBSNAP_TEST_PG_URL` names a server to
//! use instead. Each test makes its own databases. A missing PostgreSQL
//! fails the tests with the reason; nothing is skipped.

mod harness;
mod masking;
mod ops;
mod review;
mod spine;
