//! The source session: one `REPEATABLE READ, READ ONLY` transaction whose
//! snapshot is exported, so that pg_dump and every reader see the database
//! at one instant.

use std::time::Duration;

use tokio_postgres::Client;

use super::SourceError;
use crate::conn::{self, ConnSpec, Env};

/// Timeouts applied to our own sessions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// `statement_timeout`; `None` for no limit.
    pub statement: Option<Duration>,
    /// `lock_timeout`; `None` to wait forever.
    pub lock: Option<Duration>,
}

/// The open transaction on the source.
pub struct SourceSession {
    pub client: Client,
    pub snapshot_id: String,
    pub server_version: String,
    pub server_version_num: i32,
    pub database: String,
    pub timeouts: Timeouts,
}

/// Session settings that make `COPY ... TO STDOUT` text exact and loadable
/// anywhere: what pg_dump sets for the same reason.
/// (`synchronize_seqscans = off`: a table's scan starts at its first page
/// even while another scan of it runs, so an unchanged table's rows come
/// in the same order, and its data file with the same bytes, every time.)
pub const DUMP_SETTINGS: &str = "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3; \
     SET bytea_output = hex; SET row_security = off; SET idle_in_transaction_session_timeout = 0; \
     SET synchronize_seqscans = off";

impl SourceSession {
    /// Connects and starts the transaction. `row_security = off` makes a
    /// table whose rows a policy would hide fail loudly instead.
    pub async fn open(spec: &ConnSpec, env: &dyn Env, timeouts: Timeouts) -> Result<Self, SourceError> {
        let client = conn::connect(spec, env).await?;
        let setup = format!(
            "{DUMP_SETTINGS}; SET statement_timeout = {}; SET lock_timeout = {}; \
             BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            millis(timeouts.statement),
            millis(timeouts.lock)
        );
        client.batch_execute(&setup).await.map_err(|e| SourceError::query("starting the read-only transaction", &e))?;
        let row = client
            .query_one(
                "SELECT pg_catalog.pg_export_snapshot(), pg_catalog.current_setting('server_version'), \
                 pg_catalog.current_setting('server_version_num')::int, pg_catalog.current_database()::text",
                &[],
            )
            .await
            .map_err(|e| SourceError::query("exporting the snapshot", &e))?;
        let what = "exporting the snapshot";
        warn_if_plain(&client, spec).await;
        Ok(SourceSession {
            snapshot_id: super::catalog::get(&row, 0, what)?,
            server_version: super::catalog::get(&row, 1, what)?,
            server_version_num: super::catalog::get(&row, 2, what)?,
            database: super::catalog::get(&row, 3, what)?,
            client,
            timeouts,
        })
    }

    /// The server's major version (15 for 15.4).
    pub fn server_major(&self) -> u32 {
        (self.server_version_num / 10000) as u32
    }

    /// Takes `ACCESS SHARE` locks on the tables to be read, as pg_dump does,
    /// so no `TRUNCATE` or DDL can change them while we read.
    pub async fn lock(&self, qualified_names: &[String]) -> Result<(), SourceError> {
        for chunk in qualified_names.chunks(200) {
            let sql = format!("LOCK TABLE {} IN ACCESS SHARE MODE", chunk.join(", "));
            self.client.batch_execute(&sql).await.map_err(|e| {
                let what = match e.code().map(|c| c.code()) {
                    Some("42501") => {
                        "locking the tables to dump: the role lacks a privilege on one of them (reading a table needs SELECT on it; GRANT SELECT ON ALL TABLES IN SCHEMA ... TO the role, or on PostgreSQL 14+ GRANT pg_read_all_data TO it)"
                    }
                    Some("55P03") => {
                        "locking the tables to dump: another session holds a conflicting lock (it waited --lock-timeout)"
                    }
                    _ => "locking the tables to dump",
                };
                SourceError::query(what, &e)
            })?;
        }
        Ok(())
    }

    /// Opens a worker connection that reads the same snapshot, for dumping
    /// tables in parallel. Only valid while this session's transaction is open.
    pub async fn worker(&self, spec: &ConnSpec, env: &dyn Env) -> Result<Client, SourceError> {
        let client = conn::connect(spec, env).await?;
        let setup = format!(
            "{DUMP_SETTINGS}; SET statement_timeout = {}; SET lock_timeout = {}; \
             BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
            millis(self.timeouts.statement),
            millis(self.timeouts.lock),
            crate::sql::literal(&self.snapshot_id)
        );
        client.batch_execute(&setup).await.map_err(|e| SourceError::query("starting a worker on the snapshot", &e))?;
        Ok(client)
    }

    /// Ends the transaction (read-only: nothing to commit).
    pub async fn close(self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}

/// Warns when a TCP connection under the default `sslmode=prefer` ended up
/// without TLS: production data would cross the network in the clear.
async fn warn_if_plain(client: &Client, spec: &ConnSpec) {
    if spec.sslmode != conn::SslMode::Prefer || spec.hosts.iter().all(|h| h.starts_with('/')) {
        return;
    }
    let ssl = client
        .query_opt("SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()", &[])
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<_, bool>(0).ok());
    if ssl == Some(false) {
        tracing::warn!(
            source = %spec,
            "the source connection is not encrypted: sslmode=prefer (the default) fell back to plain TCP because the server offers no TLS; set sslmode=require or verify-full to refuse that"
        );
    }
}

/// `'1234ms'` or `0` (no limit), for SET.
pub fn millis(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("'{}ms'", d.as_millis().max(1)),
        None => "0".to_string(),
    }
}
