//! Streams one table's rows out of the source with `COPY ... TO STDOUT`
//! (text format): the source stage's output is a byte stream of COPY text
//! per table or chunk. What happens to it next is the pipeline's business
//! (`src/create/`, a stage above this one).

use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::catalog::Table;
use super::SourceError;
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

/// A range of heap pages of a table: one chunk of a table dumped in parts.
/// `end: None` runs to the end of the table, so rows on pages added after
/// the size was read are never missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pages {
    pub start: u64,
    pub end: Option<u64>,
}

impl Pages {
    /// Splits `pages` pages into at most `parts` ranges on a fixed grid:
    /// every range but the last (open-ended) is a power of two of pages
    /// long and starts at a multiple of it. A table that grows or shrinks a
    /// little keeps its boundaries, so its unchanged chunks come out with
    /// the same bytes; they move only when the table about doubles or
    /// halves.
    pub fn split(pages: u64, parts: u64) -> Vec<Pages> {
        let parts = parts.clamp(1, pages.max(1));
        let step = pages.div_ceil(parts).max(1).next_power_of_two();
        let n = pages.div_ceil(step).max(1);
        (0..n).map(|i| Pages { start: i * step, end: (i + 1 < n).then_some((i + 1) * step) }).collect()
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

/// The rows of one table (or chunk) coming out of the source: batches of
/// COPY text of about 64 KiB on a bounded channel, read by a task of its own.
pub struct CopyOut {
    /// The batches, in order; closed at the end of the rows or on error.
    pub batches: mpsc::Receiver<Bytes>,
    reader: AbortOnDrop<Result<(), SourceError>>,
    table: String,
}

/// Starts `COPY ... TO STDOUT` for `sql` (see [`copy_out_sql`]) and streams
/// its rows. The reader is a task of its own, so that it runs on a worker
/// thread next to the connection's driver: each message the driver passes
/// on then wakes it there, not across threads. It ends with the returned
/// value, even when that is dropped unfinished.
pub async fn start(client: &Client, table: &Table, sql: &str) -> Result<CopyOut, SourceError> {
    let name = table.display_name();
    let stream = client.copy_out(sql).await.map_err(|e| SourceError::query(format!("reading table {name}"), &e))?;
    let (tx, batches) = mpsc::channel::<Bytes>(DEPTH);
    let reader_name = name.clone();
    let reader = AbortOnDrop(tokio::spawn(async move {
        let name = reader_name;
        futures_util::pin_mut!(stream);
        let mut batch = BytesMut::with_capacity(BATCH);
        while let Some(chunk) =
            stream.try_next().await.map_err(|e| SourceError::query(format!("reading table {name}"), &e))?
        {
            if chunk.len() >= BATCH {
                // A large row goes on as it is, without a copy into the batch.
                if !batch.is_empty() && tx.send(batch.split().freeze()).await.is_err() {
                    return Ok(());
                }
                if tx.send(chunk).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            batch.extend_from_slice(&chunk);
            if batch.len() >= BATCH {
                let full = batch.split().freeze();
                if tx.send(full).await.is_err() {
                    // The consumer stopped; its error is reported there.
                    return Ok(());
                }
                batch.reserve(BATCH);
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(batch.freeze()).await;
        }
        Ok::<(), SourceError>(())
    }));
    Ok(CopyOut { batches, reader, table: name })
}

/// The end of a table's rows: whether every row was read.
pub struct CopyEnd {
    reader: AbortOnDrop<Result<(), SourceError>>,
    table: String,
}

impl CopyOut {
    /// The table, as messages name it.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Splits the stream into its batches and its end, so that the batches
    /// can go to another thread.
    pub fn split(self) -> (mpsc::Receiver<Bytes>, CopyEnd) {
        (self.batches, CopyEnd { reader: self.reader, table: self.table })
    }
}

impl CopyEnd {
    /// Waits for the reader: an error reading the source, if any.
    pub async fn finish(mut self) -> Result<(), SourceError> {
        match (&mut self.reader.0).await {
            Ok(r) => r,
            Err(source) => Err(SourceError::Reader { table: self.table.clone(), source }),
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
        // Boundaries stay put while the table grows by a little.
        let before = Pages::split(1000, 4);
        let after = Pages::split(1010, 4);
        assert_eq!(before, after);
        assert_eq!(before.len(), 4);
        assert!(before.iter().all(|p| p.start % 256 == 0));
        assert!(Pages::split(1000, 3).len() <= 3);
        assert_eq!(Pages { start: 8, end: None }.condition(), "ctid >= '(8,0)'::tid");
    }
}
