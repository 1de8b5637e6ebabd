//! One table (or chunk of one) through the data path, stage after stage:
//!
//! source (COPY text) → mask (ruled fields only) → leak probe → encode
//! (gzip or zstd) → store (a data file, kept once per content).
//!
//! Three things run at once, joined by bounded channels: the COPY reader
//! ([`source::copy_out`]), a blocking thread that masks, probes and
//! compresses each batch in turn, and the store writer. Memory is bounded
//! by the channels, not by the table's size, and a slow store slows the
//! reader down.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::CreateError;
use crate::encode::Compressor;
use crate::leak::LeakObserver;
use crate::mask::rows::{RowError, RowMasker, TableMask};
use crate::snapshot::{FileEntry, FileWriter};
use crate::source::copy_out::CopyOut;

/// Compressed chunks in flight between the compressing thread and the store.
const DEPTH: usize = 4;

/// Counts of one stream of COPY text, taken as it is encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Rows (COPY text ends every row with a newline; newlines inside values
    /// are escaped, so this count is exact).
    pub rows: u64,
    /// Uncompressed bytes, as written (masked).
    pub raw_bytes: u64,
}

/// What happens to the rows between the source and the encoder.
pub struct Stages {
    /// The maskers of the table's ruled columns (`None`: nothing masked).
    pub mask: Option<TableMask>,
    /// The leak scan's eyes on the rows (`None`: no scan).
    pub leak: Option<LeakObserver>,
    /// The codec and its level (checked when the run was set up).
    pub codec: crate::encode::Codec,
    pub level: i32,
}

/// A dumped part: its file and counts.
pub struct Part {
    pub file: FileEntry,
    pub stats: Stats,
}

/// Why a part's rows could not be turned into its file.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A value could not be masked, or the stream ended inside a row.
    #[error(transparent)]
    Mask(#[from] RowError),
    #[error("compressing: {0}")]
    Encode(#[source] std::io::Error),
    /// The store writer stopped taking chunks (its own error says why).
    #[error("the store writer stopped")]
    Closed,
}

/// Dumps the rows `copy` streams into `file`, through `stages`. On error
/// the file is aborted.
pub async fn dump_part(
    copy: CopyOut,
    file: FileWriter<'_>,
    stages: Stages,
    on_progress: impl Fn(Stats) + Send + 'static,
) -> Result<Part, CreateError> {
    let table = copy.table().to_string();
    let (batches, copy_end) = copy.split();
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let name = table.clone();
    let transform = tokio::task::spawn_blocking(move || transform(batches, out_tx, stages, &name, &on_progress));
    let (read, (write, file)) = tokio::join!(copy_end.finish(), store(out_rx, file));
    let transformed = transform.await.map_err(|source| CreateError::Task { table: table.clone(), source });
    // A failure to mask explains a failed read or write better than the
    // broken pipe it caused there.
    let failed = |source| CreateError::Pipeline { table: table.clone(), source };
    let outcome = match transformed {
        Ok(Err(e)) if !matches!(e, PipelineError::Closed) => Err(failed(e)),
        t => read.map_err(CreateError::from).and(write).and_then(|()| t?.map_err(failed)),
    };
    match outcome {
        Ok(stats) => Ok(Part { file: file.finish().await?, stats }),
        Err(e) => {
            file.abort().await;
            Err(e)
        }
    }
}

/// Runs on a blocking thread: each batch of COPY text is masked (the leak
/// observer watching), or only probed when nothing is masked, then
/// compressed; compressed chunks go to `output`.
fn transform(
    mut input: mpsc::Receiver<Bytes>,
    output: mpsc::Sender<Vec<u8>>,
    stages: Stages,
    table: &str,
    on_progress: &dyn Fn(Stats),
) -> Result<Stats, PipelineError> {
    let Stages { mask, leak, codec, level } = stages;
    let mut rows = Rows::new(mask, leak);
    let mut encoder = Compressor::new(codec, level).map_err(|e| PipelineError::Encode(std::io::Error::other(e)))?;
    let mut stats = Stats::default();
    let mut masked = Vec::new();
    while let Some(batch) = input.blocking_recv() {
        let batch = rows.process(&batch, &mut masked)?;
        stats.rows += memchr::memchr_iter(b'\n', batch).count() as u64;
        stats.raw_bytes += batch.len() as u64;
        encoder
            .write(batch, |chunk| {
                output.blocking_send(chunk).map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
                on_progress(stats);
                Ok(())
            })
            .map_err(encode_error)?;
    }
    rows.finish(table)?;
    let rest = encoder.finish().map_err(encode_error)?;
    if !rest.is_empty() {
        output.blocking_send(rest).map_err(|_| PipelineError::Closed)?;
    }
    on_progress(stats);
    Ok(stats)
}

fn encode_error(e: std::io::Error) -> PipelineError {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => PipelineError::Closed,
        _ => PipelineError::Encode(e),
    }
}

/// The mask and leak stages of one stream: rows are split into fields only
/// when something looks at them.
pub(crate) enum Rows {
    /// Neither masked nor probed: batches go on as they came.
    Pass,
    /// Nothing masked, rows probed as they pass.
    Probed(LeakObserver),
    Masked(RowMasker),
    MaskedProbed(RowMasker<LeakObserver>),
}

impl Rows {
    pub(crate) fn new(mask: Option<TableMask>, leak: Option<LeakObserver>) -> Self {
        match (mask.filter(|m| !m.columns.is_empty()), leak) {
            (None, None) => Rows::Pass,
            (None, Some(leak)) => Rows::Probed(leak),
            (Some(mask), None) => Rows::Masked(RowMasker::new(mask)),
            (Some(mask), Some(leak)) => Rows::MaskedProbed(RowMasker::observed(mask, leak)),
        }
    }

    /// The batch as it goes to the encoder: `batch` itself, or its masked
    /// rows written into `masked`.
    pub(crate) fn process<'a>(&mut self, batch: &'a [u8], masked: &'a mut Vec<u8>) -> Result<&'a [u8], RowError> {
        match self {
            Rows::Pass => Ok(batch),
            Rows::Probed(leak) => {
                leak.observe_rows(batch);
                Ok(batch)
            }
            Rows::Masked(m) => {
                masked.clear();
                m.process(batch, masked)?;
                Ok(masked)
            }
            Rows::MaskedProbed(m) => {
                masked.clear();
                m.process(batch, masked)?;
                Ok(masked)
            }
        }
    }

    /// Ends the stream of `table`: a last row without its newline is an error.
    pub(crate) fn finish(&mut self, table: &str) -> Result<(), RowError> {
        match self {
            Rows::Pass => Ok(()),
            Rows::Probed(leak) => leak.finish(table),
            Rows::Masked(m) => m.finish(),
            Rows::MaskedProbed(m) => m.finish(),
        }
    }
}

/// Writes the compressed chunks into the snapshot file; gives the file back
/// to be finished or aborted.
async fn store<'a>(
    mut chunks: mpsc::Receiver<Vec<u8>>,
    mut file: FileWriter<'a>,
) -> (Result<(), CreateError>, FileWriter<'a>) {
    while let Some(chunk) = chunks.recv().await {
        if let Err(e) = file.write(&chunk).await {
            // Unblock the compressing thread (and through it the reader).
            chunks.close();
            return (Err(e.into()), file);
        }
    }
    (Ok(()), file)
}
