//! The manifest: the last file of a snapshot, and the proof of what it holds.
//!
//! A folder without `manifest.json` is not a snapshot. The manifest lists
//! every file with its size and SHA-256, the tables with their columns and
//! row counts, and the sequence values. It holds no secret: no host, user or
//! password, no cell value.

use serde::{Deserialize, Serialize};

use crate::encode::Codec;

/// Name of the manifest object inside a snapshot.
pub const MANIFEST: &str = "manifest.json";
/// Identifies the document type.
pub const FORMAT: &str = "scrubsnap-snapshot";
/// Bumped on any change a reader of an older version could misread.
/// Version 2 added tables dumped in chunks; version 3 the leak scan's
/// confirmed findings and acknowledgements (`may_contain`); version 4 data
/// files stored once per content under `blobs/` and the zstd codec. A
/// snapshot is written with the lowest version that holds it, so older
/// tools read what they can.
pub const FORMAT_VERSION: u32 = 4;
/// The version of a snapshot that needs nothing newer than version 1.
pub const FORMAT_VERSION_UNCHUNKED: u32 = 1;
/// The version of a chunked snapshot without version 3's fields.
pub const FORMAT_VERSION_CHUNKED: u32 = 2;
/// The version with the leak scan's findings, before blobs.
pub const FORMAT_VERSION_LEAK_SCAN: u32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub tool_version: String,
    pub snapshot_id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub duration_ms: u64,
    pub source: SourceInfo,
    pub schema: SchemaFiles,
    /// Every file of the snapshot except the manifest itself.
    pub files: Vec<FileEntry>,
    pub tables: Vec<TableEntry>,
    pub sequences: Vec<SequenceEntry>,
    /// Materialized views, refreshed by the post-data script on restore.
    pub materialized_views: Vec<String>,
    /// How the data was masked; `null` for a run with `--no-rules`.
    pub masking: Option<MaskingInfo>,
}

/// What masking was applied. Holds no key, only its fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingInfo {
    /// SHA-256 over the rules files.
    pub rules_sha256: String,
    /// Snapshots with the same fingerprint share a key and map values identically.
    pub key_fingerprint: String,
    pub ephemeral_key: bool,
    /// Every column: masked (with masker, domain and why), kept, uncovered, or without rows.
    pub columns: Vec<crate::plan::masking::ColumnCoverage>,
    /// The leak scan's result; `null` when skipped with `--no-leak-scan`.
    pub leak_scan: Option<crate::leak::LeakScan>,
    /// The slice dumped, when the rules have `subset:` (format version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<SubsetInfo>,
}

/// A snapshot that is a slice of the source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsetInfo {
    /// (table, condition) of every root, as written.
    pub roots: Vec<(String, String)>,
    /// Every table with rows: how its rows were chosen, estimated and kept.
    pub tables: Vec<crate::plan::subset::SubsetTable>,
}

impl MaskingInfo {
    /// Whether it holds what only version 3 readers know.
    fn needs_version_3(&self) -> bool {
        self.leak_scan.is_some()
            || self.subset.is_some()
            || self.columns.iter().any(|c| {
                matches!(&c.coverage, crate::plan::masking::Coverage::Kept { may_contain, .. } if !may_contain.is_empty())
            })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInfo {
    pub server_version: String,
    pub server_version_num: i32,
    pub database: String,
    pub pg_dump_version: String,
}

/// The schema scripts written by `pg_dump`, as plain SQL.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaFiles {
    /// Types, tables, functions... (`--section=pre-data`).
    pub pre_data: String,
    /// Indexes, constraints, triggers, materialized view refreshes (`--section=post-data`).
    pub post_data: String,
    /// `DROP ... IF EXISTS` for everything the snapshot creates (restore `--clean`).
    pub clean: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The file's name in the snapshot (what the tables refer to).
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// How a data file is compressed (format version 4; before, `.gz`
    /// in its name said gzip). `None` for the schema scripts, plain SQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<Codec>,
    /// Stored once for every snapshot that holds the same bytes, under
    /// `blobs/sha256/` by its checksum ([`blob_key`]), not in the
    /// snapshot's folder (format version 4).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blob: bool,
}

/// The key of a shared data file: `blobs/sha256/ab/abcd….copy.gz`.
pub fn blob_key(sha256: &str, codec: Option<Codec>) -> String {
    let ext = codec.map_or("", Codec::extension);
    format!("{}sha256/{}/{sha256}{ext}", super::BLOBS, sha256.get(..2).unwrap_or("00"))
}

impl FileEntry {
    /// How the file is compressed: as recorded, or, in older snapshots, as
    /// its name says; `None`: not compressed.
    pub fn codec(&self) -> Option<Codec> {
        self.codec.or_else(|| Codec::from_path(&self.path))
    }

    /// The file's key in the store, for snapshot `id`.
    pub fn key(&self, id: &str) -> String {
        match self.blob {
            true => blob_key(&self.sha256, self.codec()),
            false => format!("{id}/{}", self.path),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    pub schema: String,
    pub name: String,
    /// Columns in COPY order (generated columns are left out).
    pub columns: Vec<String>,
    /// The data file, or `None` when only the structure was kept or the
    /// rows are in `chunks`.
    pub file: Option<String>,
    /// Total rows.
    pub rows: u64,
    /// Uncompressed COPY bytes.
    pub raw_bytes: u64,
    /// A large table dumped in parts (ranges of pages), each its own file
    /// with its own row count; empty otherwise (format version 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkEntry>,
}

/// One part of a table dumped in chunks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkEntry {
    pub file: String,
    pub rows: u64,
    pub raw_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceEntry {
    pub schema: String,
    pub name: String,
    pub last_value: i64,
    pub is_called: bool,
}

impl TableEntry {
    /// `"schema"."name"`, quoted for SQL.
    pub fn qualified(&self) -> String {
        crate::sql::qualified(&self.schema, &self.name)
    }

    /// The table's data files with the rows each holds, in order: its one
    /// file, or its chunks; none when only the structure was kept.
    pub fn data_files(&self) -> Vec<(&str, u64)> {
        match &self.file {
            Some(f) if self.chunks.is_empty() => vec![(f.as_str(), self.rows)],
            _ => self.chunks.iter().map(|c| (c.file.as_str(), c.rows)).collect(),
        }
    }

    /// Whether the snapshot holds rows of this table (possibly none).
    pub fn has_data(&self) -> bool {
        self.file.is_some() || !self.chunks.is_empty()
    }
}

/// What a finished create knows about its snapshot, from which the
/// manifest is made.
pub struct Record {
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub duration_ms: u64,
    pub source: SourceInfo,
    pub schema: SchemaFiles,
    pub tables: Vec<TableEntry>,
    pub sequences: Vec<SequenceEntry>,
    pub materialized_views: Vec<String>,
    pub masking: Option<MaskingInfo>,
}

impl Manifest {
    /// The manifest of snapshot `id`. Its files are filled in when it is
    /// published ([`crate::snapshot::SnapshotWriter::publish`]); a snapshot
    /// with chunks is format version 2, one without stays readable by
    /// version 1 readers.
    pub fn new(id: &str, record: Record) -> Manifest {
        let Record { created_at, duration_ms, source, schema, tables, sequences, materialized_views, masking } = record;
        Manifest {
            format: FORMAT.to_string(),
            format_version: if masking.as_ref().is_some_and(MaskingInfo::needs_version_3) {
                FORMAT_VERSION_LEAK_SCAN
            } else if tables.iter().any(|t| !t.chunks.is_empty()) {
                FORMAT_VERSION_CHUNKED
            } else {
                FORMAT_VERSION_UNCHUNKED
            },
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            snapshot_id: id.to_string(),
            created_at,
            duration_ms,
            source,
            schema,
            files: Vec::new(),
            tables,
            sequences,
            materialized_views,
            masking,
        }
    }

    /// The format version the files need: 4 when any is a blob or not
    /// gzip; called once the files are known.
    pub fn settle_version(&mut self) {
        let v4 = self.files.iter().any(|f| f.blob || f.codec.is_some_and(|c| c != Codec::Gzip));
        if v4 {
            self.format_version = FORMAT_VERSION;
        }
    }

    /// Total stored bytes of all files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().fold(0u64, |a, f| a.saturating_add(f.bytes))
    }
    /// Total rows of all tables.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().fold(0u64, |a, t| a.saturating_add(t.rows))
    }
    /// The entry for a file path.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }
}
