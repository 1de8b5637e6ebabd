//! `export`: one plain SQL stream that stock `psql` loads into an empty
//! database: pre-data, a `COPY ... FROM stdin` block per table, sequence
//! values, post-data.
//!
//! Safe for psql whatever the snapshot holds: every file is first copied
//! once into a private temporary folder, checked on the way, and the stream
//! is written from those checked copies only; the whole stream is wrapped
//! in `\restrict` with a fresh random key (whatever pg_dump wrote), so psql
//! refuses any meta-command hidden in the scripts or object names; and
//! every data line that could read as the end of a COPY block (`\.`) is
//! written again in canonical form, so data cannot leave its COPY block.

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::copy_text::{self, RowSplitter};
use crate::encode;
use crate::restore::{self, RestoreError};
use crate::schema_script;
use crate::snapshot::{self, Listed};
use crate::sql;
use crate::store::{LocalStore, Store};

/// Writes the SQL stream of `snap` to `out`. Every file is checked first,
/// so nothing is written for a damaged snapshot.
pub async fn export<W: AsyncWrite + Unpin>(store: &dyn Store, snap: &Listed, out: &mut W) -> Result<(), RestoreError> {
    let dir = tempfile::tempdir().map_err(|e| RestoreError::Load {
        what: "creating a temporary folder for the snapshot's files".into(),
        reason: e.to_string(),
    })?;
    snapshot::stage(store, snap, dir.path(), None, 4, None).await?;
    let staged = LocalStore::new(dir.path().to_path_buf());
    write(&staged, snap, out).await
}

/// Writes the stream from checked copies of the files.
async fn write<W: AsyncWrite + Unpin>(store: &dyn Store, snap: &Listed, out: &mut W) -> Result<(), RestoreError> {
    let scripts = restore::read_scripts(store, snap).await?;
    let key = schema_script::new_restrict_key();
    let io = |e: std::io::Error| RestoreError::Load { what: "writing the SQL stream".into(), reason: e.to_string() };

    let m = &snap.manifest;
    // The restrict line comes first, before any text taken from the
    // snapshot, and that text is kept to one comment line.
    let clean = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
    let head = format!(
        "\\restrict {key}\n\n--\n-- scrubsnap export of snapshot {} (database {}, PostgreSQL {}, created {})\n-- Load into an empty database: psql -v ON_ERROR_STOP=1 --single-transaction -d DB -f FILE\n--\n\n",
        clean(&m.snapshot_id),
        clean(&m.source.database),
        clean(&m.source.server_version),
        m.created_at.to_rfc3339()
    );
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
            copy_block(store, snap, path, out).await?;
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
    out.write_all(format!("\n\\unrestrict {key}\n").as_bytes()).await.map_err(io)?;
    out.flush().await.map_err(io)?;
    Ok(())
}

/// Writes one data file's rows, checked, with any line that could end the
/// COPY block written again in canonical form.
async fn copy_block<W: AsyncWrite + Unpin>(
    store: &dyn Store,
    snap: &Listed,
    path: &str,
    out: &mut W,
) -> Result<(), RestoreError> {
    let io = |e: std::io::Error| RestoreError::Load { what: "writing the SQL stream".into(), reason: e.to_string() };
    let (reader, checked, codec) = snapshot::open_data(store, snap, path).await?;
    let mut chunks = encode::decompress_stream(reader, codec, 4);
    let mut rows = RowSplitter::default();
    let mut buf = Vec::with_capacity(encode::CHUNK + 1024);
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.map_err(|e| RestoreError::Load { what: format!("reading {path}"), reason: e.to_string() })?;
        buf.clear();
        let _ = rows.split(&chunk, |row| {
            if row.starts_with(b"\\.") {
                copy_text::reencode_row(row, &mut buf);
            } else {
                buf.extend_from_slice(row);
                buf.push(b'\n');
            }
            Ok::<(), std::convert::Infallible>(())
        });
        out.write_all(&buf).await.map_err(io)?;
    }
    if rows.in_row() {
        return Err(RestoreError::Load { what: format!("reading {path}"), reason: "it ends inside a row".into() });
    }
    checked.result()?;
    Ok(())
}
