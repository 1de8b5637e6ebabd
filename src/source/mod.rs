//! The source stage: reading a PostgreSQL database consistently.
//!
//! [`session`] opens the one read-only, repeatable-read transaction and
//! exports its snapshot; [`catalog`] reads tables, columns, keys and
//! sequences within it; [`pg_dump`] writes the schema scripts under the same
//! snapshot; [`copy_out`] streams each table's rows with `COPY ... TO STDOUT`.

pub mod catalog;
pub mod copy_out;
pub mod pg_dump;
pub mod session;

/// Errors of the source stage. Messages name tables, never cell values.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Connect(#[from] crate::conn::ConnectError),
    #[error("{what}: {reason}")]
    Query { what: String, reason: String },
    #[error(transparent)]
    Tool(#[from] crate::pgtools::ToolError),
    #[error("pg_dump ({section}) failed: {stderr}")]
    PgDump { section: String, stderr: String },
    /// The task reading a table's rows ended abnormally (a panic, or the
    /// runtime shutting down).
    #[error("reading table {table}: the reader stopped: {source}")]
    Reader {
        table: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl SourceError {
    /// A failed statement on the source. A data exception's message is
    /// withheld: it may quote a value ([`crate::conn::describe_source_error`]).
    pub(crate) fn query(what: impl Into<String>, e: &tokio_postgres::Error) -> Self {
        SourceError::Query { what: what.into(), reason: crate::conn::describe_source_error(e) }
    }
}
