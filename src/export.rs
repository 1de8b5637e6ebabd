//! `export`: one plain SQL stream that stock `psql` loads into an empty
//! database: pre-data, a `COPY ... FROM stdin` block per table, sequence
//! values, post-data.
//!
//! When the snapshot's scripts came from a pg_dump that protects its output
//! with `\restrict`, the whole stream is wrapped again with a fresh random
//! key, so psql refuses any meta-command hidden in object names or data.

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::encode;
use crate::restore::{self, RestoreError};
use crate::schema_script;
use crate::snapshot::{self, Listed};
use crate::sql;
use crate::store::Store;

/// Writes the SQL stream of `snap` to `out`. Every checksum is verified
/// first, so nothing is written for a damaged snapshot.
pub async fn export<W: AsyncWrite + Unpin>(store: &dyn Store, snap: &Listed, out: &mut W) -> Result<(), RestoreError> {
    snapshot::verify(store, snap).await?;
    let scripts = restore::read_scripts(store, snap).await?;
    let restricted = scripts.pre_data.restricted || scripts.post_data.restricted;
    let key = schema_script::new_restrict_key();
    let io = |e: std::io::Error| RestoreError::Load { what: "writing the SQL stream".into(), reason: e.to_string() };

    let m = &snap.manifest;
    // The restrict line comes first, before any text taken from the manifest,
    // and that text is kept to one comment line.
    let mut head = String::new();
    if restricted {
        head.push_str(&format!("\\restrict {key}\n\n"));
    }
    let clean = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
    head.push_str(&format!(
        "--\n-- scrubsnap export of snapshot {} (database {}, PostgreSQL {}, created {})\n-- Load into an empty database: psql -v ON_ERROR_STOP=1 --single-transaction -d DB -f FILE\n--\n\n",
        clean(&m.snapshot_id),
        clean(&m.source.database),
        clean(&m.source.server_version),
        m.created_at.to_rfc3339()
    ));
    out.write_all(head.as_bytes()).await.map_err(io)?;
    out.write_all(scripts.pre_data.body.as_bytes()).await.map_err(io)?;
    out.write_all(
        b"\n--\n-- Data\n--\n\nSET DateStyle = ISO;\nSET IntervalStyle = postgres;\nSET extra_float_digits = 3;\n\n",
    )
    .await
    .map_err(io)?;
    for t in m.tables.iter().filter(|t| t.has_data()) {
        out.write_all(format!("{};\n", restore::copy_in_sql(t).replace("FROM STDIN", "FROM stdin")).as_bytes())
            .await
            .map_err(io)?;
        // A chunked table's parts follow one another in one COPY.
        for (path, _) in t.data_files() {
            let reader = store.open(&format!("{}/{}", snap.id, path)).await?;
            let mut chunks = encode::decompress_stream(reader, 4);
            while let Some(chunk) = chunks.recv().await {
                let chunk =
                    chunk.map_err(|e| RestoreError::Load { what: format!("reading {path}"), reason: e.to_string() })?;
                out.write_all(&chunk).await.map_err(io)?;
            }
        }
        out.write_all(b"\\.\n\n").await.map_err(io)?;
    }
    let mut seqs = String::new();
    for s in &m.sequences {
        seqs.push_str(&format!(
            "SELECT pg_catalog.setval({}, {}, {});\n",
            sql::literal(&sql::qualified(&s.schema, &s.name)),
            s.last_value,
            s.is_called
        ));
    }
    seqs.push('\n');
    out.write_all(seqs.as_bytes()).await.map_err(io)?;
    out.write_all(scripts.post_data.body.as_bytes()).await.map_err(io)?;
    if restricted {
        out.write_all(format!("\n\\unrestrict {key}\n").as_bytes()).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    Ok(())
}
