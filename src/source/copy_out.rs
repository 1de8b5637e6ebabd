//! Streams one table's rows out of the source with `COPY ... TO STDOUT`
//! (text format), through the compressor, into a snapshot file.
//!
//! Three stages run at once: the COPY reader, the compressor on a blocking
//! thread, and the store writer, joined by bounded channels.

use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::catalog::Table;
use super::SourceError;
use crate::encode::{self, CompressStats};
use crate::mask::rows::{RowMasker, TableMask};
use crate::snapshot::{FileEntry, FileWriter};
use crate::sql;

/// Input batches are about this size: one channel message per batch, not per row.
const BATCH: usize = 64 * 1024;
/// Messages in flight per channel.
const DEPTH: usize = 4;

/// Rows and bytes of one dumped table.
#[derive(Debug, Clone)]
pub struct TableDump {
    pub file: FileEntry,
    pub stats: CompressStats,
}

/// The COPY statement that reads `table`, optionally only the rows matching
/// a filter (a rules file's `where:`).
pub fn copy_out_sql(table: &Table, filter: Option<&str>) -> String {
    match filter {
        None => format!("COPY {}{} TO STDOUT", table.qualified(), sql::column_list(&table.copy_columns())),
        Some(cond) => {
            let cols: Vec<String> = table.copy_columns().iter().map(|c| sql::ident(c)).collect();
            let select = if cols.is_empty() { "".to_string() } else { cols.join(", ") };
            format!("COPY (SELECT {select} FROM ONLY {} WHERE ({cond})) TO STDOUT", table.qualified())
        }
    }
}

/// What happens to a table's rows on the way out.
#[derive(Default)]
pub struct RowHandling<'a> {
    /// The maskers of the table's ruled columns.
    pub mask: Option<TableMask>,
    /// The leak scan's filter, fed with the originals of masked columns.
    pub leak: Option<std::sync::Arc<crate::review::leak::Bloom>>,
    /// Only rows matching this SQL condition (a rules file's `where:`).
    pub filter: Option<&'a str>,
}

/// Dumps `table` into `file`. On error the file is aborted.
pub async fn dump_table(
    client: &Client,
    table: &Table,
    file: FileWriter,
    level: u32,
    rows: RowHandling<'_>,
    on_progress: std::sync::Arc<dyn Fn(CompressStats) + Send + Sync>,
) -> Result<TableDump, SourceError> {
    let name = table.display_name();
    let RowHandling { mask, leak, filter } = rows;
    let stream = client
        .copy_out(&copy_out_sql(table, filter))
        .await
        .map_err(|e| SourceError::query(format!("reading table {name}"), &e))?;
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(DEPTH);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let compressor = tokio::task::spawn_blocking(move || {
        encode::compress_stream(
            in_rx,
            out_tx,
            level,
            mask.map(|m| RowMasker::new(m).with_leak_filter(leak)),
            &*on_progress,
        )
    });

    let read = async {
        futures_util::pin_mut!(stream);
        let mut batch = BytesMut::with_capacity(BATCH);
        while let Some(chunk) =
            stream.try_next().await.map_err(|e| SourceError::query(format!("reading table {name}"), &e))?
        {
            if chunk.len() >= BATCH {
                // A large row goes on as it is, without a copy into the batch.
                if !batch.is_empty() && in_tx.send(batch.split().freeze()).await.is_err() {
                    return Ok(());
                }
                if in_tx.send(chunk).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            batch.extend_from_slice(&chunk);
            if batch.len() >= BATCH {
                let full = batch.split().freeze();
                if in_tx.send(full).await.is_err() {
                    // The compressor stopped; its error is reported below.
                    return Ok(());
                }
                batch.reserve(BATCH);
            }
        }
        if !batch.is_empty() {
            let _ = in_tx.send(batch.freeze()).await;
        }
        drop(in_tx);
        Ok::<(), SourceError>(())
    };
    let mut file = file;
    let write = async {
        while let Some(chunk) = out_rx.recv().await {
            if let Err(e) = file.write(&chunk).await {
                // Unblock the compressor (and through it the reader).
                out_rx.close();
                return Err(e.into());
            }
        }
        Ok::<(), SourceError>(())
    };
    let (read_result, write_result) = tokio::join!(read, write);
    let compressed = compressor.await.map_err(|e| SourceError::Other(format!("compressing table {name}: {e}")));
    // A compressor error (a value that cannot be masked) explains a failed
    // read or write better than the broken pipe it caused there.
    let outcome = match compressed {
        Ok(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(SourceError::Other(format!("table {name}: {e}")))
        }
        compressed => read_result
            .and(write_result)
            .and_then(|()| compressed?.map_err(|e| SourceError::Other(format!("compressing table {name}: {e}")))),
    };
    match outcome {
        Ok(stats) => {
            let entry = file.finish().await?;
            Ok(TableDump { file: entry, stats })
        }
        Err(e) => {
            file.abort().await;
            Err(e)
        }
    }
}
