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

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Rows and bytes of one dumped table.
#[derive(Debug, Clone)]
pub struct TableDump {
    pub file: FileEntry,
    pub stats: CompressStats,
}

/// A range of heap pages of a table: one chunk of a table dumped in parts.
/// `end: None` runs to the end of the table, so rows on pages added after
/// the size was read are never missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pages {
    pub start: u64,
    pub end: Option<u64>,
}

impl Pages {
    /// Splits `pages` pages into `parts` ranges of about equal size; the
    /// last one is open-ended.
    pub fn split(pages: u64, parts: u64) -> Vec<Pages> {
        let parts = parts.clamp(1, pages.max(1));
        let step = pages.div_ceil(parts).max(1);
        (0..parts).map(|i| Pages { start: i * step, end: (i + 1 < parts).then_some((i + 1) * step) }).collect()
    }

    fn condition(&self) -> String {
        // ctid ranges are scanned by a TID range scan (PostgreSQL 14+): each
        // chunk reads only its own pages.
        match self.end {
            Some(end) => format!("ctid >= '({},0)'::tid AND ctid < '({end},0)'::tid", self.start),
            None => format!("ctid >= '({},0)'::tid", self.start),
        }
    }
}

/// The COPY statement that reads `table`, optionally only the rows matching
/// a filter (a rules file's `where:`) and only those on some pages (a chunk).
pub fn copy_out_sql(table: &Table, filter: Option<&str>, pages: Option<Pages>) -> String {
    let mut conditions: Vec<String> = Vec::new();
    if let Some(p) = pages {
        conditions.push(p.condition());
    }
    if let Some(cond) = filter {
        conditions.push(format!("({cond})"));
    }
    if conditions.is_empty() {
        return format!("COPY {}{} TO STDOUT", table.qualified(), sql::column_list(&table.copy_columns()));
    }
    let cols: Vec<String> = table.copy_columns().iter().map(|c| sql::ident(c)).collect();
    format!(
        "COPY (SELECT {} FROM ONLY {} WHERE {}) TO STDOUT",
        cols.join(", "),
        table.qualified(),
        conditions.join(" AND ")
    )
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
    /// Only the rows on these pages (one chunk of a table dumped in parts).
    pub pages: Option<Pages>,
    /// Probe the output for the leak scan as it passes.
    pub inline: Option<std::sync::Arc<crate::review::leak::Inline>>,
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
    let RowHandling { mask, leak, filter, pages, inline } = rows;
    // Rows are split into fields only when something looks at them.
    let masker = match (mask, &inline) {
        (None, None) => None,
        (mask, _) => {
            let plan = mask.unwrap_or_else(|| TableMask { table: name.clone(), columns: Vec::new() });
            Some(RowMasker::new(plan).with_leak_filter(leak).with_inline_probe(inline))
        }
    };
    let stream = client
        .copy_out(&copy_out_sql(table, filter, pages))
        .await
        .map_err(|e| SourceError::query(format!("reading table {name}"), &e))?;
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(DEPTH);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let compressor =
        tokio::task::spawn_blocking(move || encode::compress_stream(in_rx, out_tx, level, masker, &*on_progress));

    // The reader is a task of its own, so that it runs on a worker thread
    // next to the connection's driver task: each message the driver passes
    // on then wakes it there, not across threads. It ends with this
    // function, even when the function is dropped unfinished.
    let reader_name = name.clone();
    let mut reader = AbortOnDrop(tokio::spawn(async move {
        let name = reader_name;
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
    }));
    let read = async {
        match (&mut reader.0).await {
            Ok(r) => r,
            Err(e) => Err(SourceError::Other(format!("reading table {name}: {e}"))),
        }
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

#[cfg(test)]
mod tests {
    use super::Pages;

    #[test]
    fn page_ranges_cover_the_table_and_the_last_is_open() {
        let r = Pages::split(10, 3);
        assert_eq!(
            r,
            vec![Pages { start: 0, end: Some(4) }, Pages { start: 4, end: Some(8) }, Pages { start: 8, end: None }]
        );
        assert_eq!(Pages::split(0, 4), vec![Pages { start: 0, end: None }]);
        assert_eq!(Pages::split(2, 8).len(), 2);
        assert_eq!(Pages { start: 8, end: None }.condition(), "ctid >= '(8,0)'::tid");
    }
}
