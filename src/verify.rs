//! `verify`: proof that a snapshot is whole and loads.
//!
//! Without a database: the manifest is read, every file's size and SHA-256
//! checked, and every data file decompressed to count its rows against the
//! manifest. With `--restore-into`: the snapshot is restored into a scratch
//! database created for the purpose (every primary key, unique index,
//! foreign key, NOT NULL and CHECK constraint is validated as post-data
//! creates it), each table's row count is compared with the manifest, and
//! the scratch database is dropped.

use crate::conn::{self, ConnSpec, Env};
use crate::progress::Progress;
use crate::restore::{self, RestoreError, RestoreOptions};
use crate::snapshot::{self, Listed};
use crate::sql;
use crate::store::Store;
use tokio_util::sync::CancellationToken;

/// What verification found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verified {
    pub files: usize,
    pub tables: usize,
    pub rows: u64,
    /// The scratch database, when a restore was part of it.
    pub restored_into: Option<String>,
    /// Constraints the source itself holds as NOT VALID (not checked by PostgreSQL on restore either).
    pub not_valid_constraints: u64,
}

/// Checks files, checksums and row counts, reading each file once: its
/// SHA-256 is taken on the bytes whose rows are counted.
pub async fn files(store: &dyn Store, snap: &Listed) -> Result<Verified, RestoreError> {
    snapshot::check_listing(store, snap).await?;
    let mut v = Verified { files: snap.manifest.files.len(), ..Default::default() };
    let data: std::collections::HashSet<&str> =
        snap.manifest.tables.iter().flat_map(|t| t.data_files().into_iter().map(|(p, _)| p)).collect();
    for f in snap.manifest.files.iter().filter(|f| !data.contains(f.path.as_str())) {
        snapshot::get_checked(store, snap, &f.path).await?;
    }
    for t in snap.manifest.tables.iter().filter(|t| t.has_data()) {
        for (path, expected) in t.data_files() {
            let (reader, checked, codec) = snapshot::open_data(store, snap, path).await?;
            let mut chunks = crate::encode::decompress_stream(reader, codec, 4);
            let mut rows = 0u64;
            while let Some(c) = chunks.recv().await {
                let c = c.map_err(|e| RestoreError::Load { what: format!("reading {path}"), reason: e.to_string() })?;
                rows += c.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            checked.result()?;
            if rows != expected {
                return Err(RestoreError::Load {
                    what: format!("checking {path}"),
                    reason: format!("it holds {rows} rows, the manifest says {expected}"),
                });
            }
            v.rows += rows;
        }
        v.tables += 1;
    }
    Ok(v)
}

/// Restores into a new scratch database on the server of `server`, checks
/// row counts, and drops the database (unless `keep`). When `cancel` fires
/// the restore stops, and the database is dropped all the same.
pub async fn restore_into(
    store: &dyn Store,
    snap: &Listed,
    server: &ConnSpec,
    env: &dyn Env,
    keep: bool,
    cancel: &CancellationToken,
    progress: &Progress,
) -> Result<Verified, RestoreError> {
    let mut v = restore::until_cancelled(cancel, files(store, snap)).await??;
    let scratch = format!("scrubsnap_verify_{}", snap.id.to_ascii_lowercase().replace(['.', ':'], "_"));
    let admin = conn::connect(server, env).await?;
    for statement in [
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", sql::ident(&scratch)),
        format!("CREATE DATABASE {}", sql::ident(&scratch)),
    ] {
        admin.batch_execute(&statement).await.map_err(|e| RestoreError::Load {
            what: format!("creating scratch database {scratch}"),
            reason: conn::describe_pg_error(&e),
        })?;
    }
    let target = server.with_dbname(&scratch);
    let result = async {
        let opts = RestoreOptions { cancel: cancel.clone(), ..RestoreOptions::default() };
        restore::restore(store, snap, &target, env, &opts, progress).await?;
        let client = conn::connect(&target, env).await?;
        for t in &snap.manifest.tables {
            let row =
                client.query_one(&format!("SELECT count(*) FROM ONLY {}", t.qualified()), &[]).await.map_err(|e| {
                    RestoreError::Load {
                        what: format!("counting {}.{}", t.schema, t.name),
                        reason: conn::describe_pg_error(&e),
                    }
                })?;
            let n: i64 = restore::column(&row, 0, "counting rows")?;
            if n as u64 != t.rows {
                return Err(RestoreError::Load {
                    what: format!("checking {}.{}", t.schema, t.name),
                    reason: format!("{n} rows after restore, the manifest says {}", t.rows),
                });
            }
        }
        let row = client
            .query_one("SELECT count(*) FROM pg_catalog.pg_constraint WHERE NOT convalidated", &[])
            .await
            .map_err(|e| RestoreError::Load {
            what: "listing constraints".into(),
            reason: conn::describe_pg_error(&e),
        })?;
        restore::column::<i64>(&row, 0, "listing constraints")
    };
    let result = restore::until_cancelled(cancel, result).await.and_then(|r| r);
    if !keep {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", sql::ident(&scratch))).await;
    }
    v.not_valid_constraints = result? as u64;
    v.restored_into = Some(scratch);
    Ok(v)
}
