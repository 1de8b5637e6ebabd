//! What the source holds: tables, partitions, columns, foreign keys,
//! sequences and materialized views, read in the dump's transaction.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::SourceError;
use crate::sql;

/// The kind of a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    /// An ordinary table (including leaf partitions): has rows to dump.
    Table,
    /// A partitioned table: its rows live in its partitions.
    Partitioned,
    /// A foreign table: structure only, like pg_dump.
    Foreign,
    /// A materialized view: refreshed on restore, never copied.
    MatView,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// `format_type()` output, e.g. `character varying(120)`.
    pub type_name: String,
    pub not_null: bool,
    /// Generated columns are computed on restore, so left out of COPY.
    pub generated: bool,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub kind: RelKind,
    /// Direct parents (partitioned tables or inheritance parents).
    pub parents: Vec<u32>,
    pub columns: Vec<Column>,
    /// The planner's estimate, for ordering and progress only.
    pub estimated_rows: i64,
    /// On-disk size (heap and TOAST), to dump the largest tables first.
    pub bytes: i64,
}

impl Table {
    pub fn qualified(&self) -> String {
        sql::qualified(&self.schema, &self.name)
    }
    /// `schema.name` unquoted, for messages and pattern matching.
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
    /// Columns that COPY reads and writes.
    pub fn copy_columns(&self) -> Vec<String> {
        self.columns.iter().filter(|c| !c.generated).map(|c| c.name.clone()).collect()
    }
}

#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub name: String,
    pub table: u32,
    pub references: u32,
    /// Referencing columns, in key order.
    pub columns: Vec<String>,
    /// Referenced columns, in the same order.
    pub ref_columns: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    /// The table that owns it (serial and identity columns).
    pub owner: Option<u32>,
}

/// The catalog of the source, as seen by the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: Vec<Table>,
    pub foreign_keys: Vec<ForeignKey>,
    pub sequences: Vec<Sequence>,
    /// Columns that are part of a primary key or unique index: (table oid, column).
    pub unique_columns: std::collections::HashSet<(u32, String)>,
    /// Columns that are part of a primary key.
    pub primary_columns: std::collections::HashSet<(u32, String)>,
}

const USER_RELATIONS: &str = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass \
                     AND d.objid = c.oid AND d.deptype = 'e')";

impl Catalog {
    /// Reads the catalog. Extension member objects and system schemas are
    /// left out, as pg_dump does.
    pub async fn read(client: &Client) -> Result<Self, SourceError> {
        let rows = client
            .query(
                &format!(
                    "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, \
                            GREATEST(c.reltuples, 0)::int8, \
                            CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind IN ('r', 'p', 'f', 'm') AND c.relpersistence <> 't' AND {USER_RELATIONS} \
                     ORDER BY n.nspname, c.relname"
                ),
                &[],
            )
            .await
            .map_err(|e| SourceError::query("reading the list of tables", &e))?;
        let mut tables = Vec::with_capacity(rows.len());
        for r in rows {
            let kind = match r.get::<_, String>(3).as_str() {
                "r" => RelKind::Table,
                "p" => RelKind::Partitioned,
                "f" => RelKind::Foreign,
                _ => RelKind::MatView,
            };
            tables.push(Table {
                oid: r.get(0),
                schema: r.get(1),
                name: r.get(2),
                kind,
                parents: Vec::new(),
                columns: Vec::new(),
                estimated_rows: r.get(4),
                bytes: r.get(5),
            });
        }
        let index: HashMap<u32, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();

        let rows = client
            .query("SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits ORDER BY inhrelid, inhseqno", &[])
            .await
            .map_err(|e| SourceError::query("reading partitions", &e))?;
        for r in rows {
            let (child, parent): (u32, u32) = (r.get(0), r.get(1));
            if let Some(&i) = index.get(&child) {
                tables[i].parents.push(parent);
            }
        }

        let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
        let rows = client
            .query(
                "SELECT a.attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                        a.attnotnull, a.attgenerated <> '' \
                 FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attrelid, a.attnum",
                &[&oids],
            )
            .await
            .map_err(|e| SourceError::query("reading columns", &e))?;
        for r in rows {
            let oid: u32 = r.get(0);
            if let Some(&i) = index.get(&oid) {
                tables[i].columns.push(Column {
                    name: r.get(1),
                    type_name: r.get(2),
                    not_null: r.get(3),
                    generated: r.get(4),
                });
            }
        }

        let rows = client
            .query(
                "SELECT c.conname::text, c.conrelid, c.confrelid, \
                   ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i) \
                         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i), \
                   ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i) \
                         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) \
                 FROM pg_catalog.pg_constraint c \
                 WHERE c.contype = 'f' AND c.conrelid = ANY($1) ORDER BY c.conrelid, c.conname",
                &[&oids],
            )
            .await
            .map_err(|e| SourceError::query("reading foreign keys", &e))?;
        let foreign_keys = rows
            .into_iter()
            .map(|r| ForeignKey {
                name: r.get(0),
                table: r.get(1),
                references: r.get(2),
                columns: r.get(3),
                ref_columns: r.get(4),
            })
            .collect();

        let rows = client
            .query(
                "SELECT i.indrelid, a.attname::text, i.indisprimary FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indisunique AND i.indrelid = ANY($1)",
                &[&oids],
            )
            .await
            .map_err(|e| SourceError::query("reading unique indexes", &e))?;
        let primary_columns =
            rows.iter().filter(|r| r.get::<_, bool>(2)).map(|r| (r.get::<_, u32>(0), r.get::<_, String>(1))).collect();
        let unique_columns = rows.into_iter().map(|r| (r.get::<_, u32>(0), r.get::<_, String>(1))).collect();

        let rows = client
            .query(
                &format!(
                    "SELECT n.nspname::text, c.relname::text, \
                            (SELECT d.refobjid FROM pg_catalog.pg_depend d \
                             WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid \
                               AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind = 'S' AND c.relpersistence <> 't' AND {USER_RELATIONS} \
                     ORDER BY n.nspname, c.relname"
                ),
                &[],
            )
            .await
            .map_err(|e| SourceError::query("reading sequences", &e))?;
        let sequences =
            rows.into_iter().map(|r| Sequence { schema: r.get(0), name: r.get(1), owner: r.get(2) }).collect();

        Ok(Catalog { tables, foreign_keys, sequences, unique_columns, primary_columns })
    }

    /// The table with this oid.
    pub fn table(&self, oid: u32) -> Option<&Table> {
        self.tables.iter().find(|t| t.oid == oid)
    }

    /// A table and all its ancestors (partitioned parents, inheritance
    /// parents), nearest first.
    pub fn lineage(&self, oid: u32) -> Vec<&Table> {
        let mut out = Vec::new();
        let mut queue = std::collections::VecDeque::from([oid]);
        let mut seen = std::collections::HashSet::new();
        while let Some(o) = queue.pop_front() {
            if !seen.insert(o) {
                continue;
            }
            if let Some(t) = self.table(o) {
                out.push(t);
                queue.extend(t.parents.iter().copied());
            }
        }
        out
    }

    /// Oids of the table and every table below it (its partitions, theirs...).
    pub fn descendants(&self, oid: u32) -> Vec<u32> {
        self.tables.iter().filter(|t| self.lineage(t.oid).iter().any(|a| a.oid == oid)).map(|t| t.oid).collect()
    }
}

/// Reads a sequence's current state.
pub async fn sequence_state(client: &Client, seq: &Sequence) -> Result<(i64, bool), SourceError> {
    let row = client
        .query_one(&format!("SELECT last_value, is_called FROM {}", sql::qualified(&seq.schema, &seq.name)), &[])
        .await
        .map_err(|e| SourceError::query(format!("reading sequence {}.{}", seq.schema, seq.name), &e))?;
    Ok((row.get(0), row.get(1)))
}

/// Whether the database has large objects, which snapshots do not carry.
/// The number of heap pages of a table, as of the snapshot.
pub async fn relation_pages(client: &Client, t: &Table) -> Result<u64, SourceError> {
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_relation_size($1::oid::regclass) / pg_catalog.current_setting('block_size')::int8",
            &[&t.oid],
        )
        .await
        .map_err(|e| SourceError::query(format!("reading the size of table {}", t.display_name()), &e))?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

pub async fn has_large_objects(client: &Client) -> Result<bool, SourceError> {
    let row = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata)", &[])
        .await
        .map_err(|e| SourceError::query("checking for large objects", &e))?;
    Ok(row.get(0))
}
