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
    /// For a column of a composite type: its fields' names and types.
    pub fields: Vec<(String, String)>,
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
    pub unique_columns: ColumnSet,
    /// Columns that are part of a primary key.
    pub primary_columns: ColumnSet,
}

const USER_RELATIONS: &str = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass \
                     AND d.objid = c.oid AND d.deptype = 'e')";

/// A column of a catalog row, or an error naming what was read (a server
/// that is not PostgreSQL, or one that answers in types we do not expect).
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
    what: &str,
) -> Result<T, SourceError> {
    row.try_get(i).map_err(|e| SourceError::Query { what: what.to_string(), reason: e.to_string() })
}

/// Columns as (table oid, column name).
pub type ColumnSet = std::collections::HashSet<(u32, String)>;

impl Catalog {
    /// Reads the catalog. Extension member objects and system schemas are
    /// left out, as pg_dump does.
    pub async fn read(client: &Client) -> Result<Self, SourceError> {
        let mut tables = read_tables(client).await?;
        let index: HashMap<u32, usize> = tables.iter().enumerate().map(|(i, t)| (t.oid, i)).collect();
        read_parents(client, &mut tables, &index).await?;
        let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
        read_columns(client, &mut tables, &index, &oids).await?;
        let foreign_keys = read_foreign_keys(client, &oids).await?;
        let (primary_columns, unique_columns) = read_unique_columns(client, &oids).await?;
        let sequences = read_sequences(client).await?;
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

/// Ordinary, partitioned and foreign tables and materialized views, by schema and name.
async fn read_tables(client: &Client) -> Result<Vec<Table>, SourceError> {
    const WHAT: &str = "reading the list of tables";
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
        .map_err(|e| SourceError::query(WHAT, &e))?;
    let mut tables = Vec::with_capacity(rows.len());
    for r in rows {
        let kind = match get::<String>(&r, 3, WHAT)?.as_str() {
            "r" => RelKind::Table,
            "p" => RelKind::Partitioned,
            "f" => RelKind::Foreign,
            _ => RelKind::MatView,
        };
        tables.push(Table {
            oid: get(&r, 0, WHAT)?,
            schema: get(&r, 1, WHAT)?,
            name: get(&r, 2, WHAT)?,
            kind,
            parents: Vec::new(),
            columns: Vec::new(),
            estimated_rows: get(&r, 4, WHAT)?,
            bytes: get(&r, 5, WHAT)?,
        });
    }
    Ok(tables)
}

/// Each table's parents (partitioned tables, inheritance), in order.
async fn read_parents(client: &Client, tables: &mut [Table], index: &HashMap<u32, usize>) -> Result<(), SourceError> {
    const WHAT: &str = "reading partitions";
    let rows = client
        .query("SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits ORDER BY inhrelid, inhseqno", &[])
        .await
        .map_err(|e| SourceError::query(WHAT, &e))?;
    for r in rows {
        let (child, parent): (u32, u32) = (get(&r, 0, WHAT)?, get(&r, 1, WHAT)?);
        if let Some(&i) = index.get(&child) {
            tables[i].parents.push(parent);
        }
    }
    Ok(())
}

/// Each table's columns, in order.
async fn read_columns(
    client: &Client,
    tables: &mut [Table],
    index: &HashMap<u32, usize>,
    oids: &[u32],
) -> Result<(), SourceError> {
    const WHAT: &str = "reading columns";
    let rows = client
        .query(
            "SELECT a.attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                    a.attnotnull, a.attgenerated <> '', \
                    ARRAY(SELECT f.attname::text FROM pg_catalog.pg_type t \
                          JOIN pg_catalog.pg_attribute f ON f.attrelid = t.typrelid AND f.attnum > 0 AND NOT f.attisdropped \
                          WHERE t.oid = a.atttypid AND t.typtype = 'c' ORDER BY f.attnum), \
                    ARRAY(SELECT pg_catalog.format_type(f.atttypid, f.atttypmod) FROM pg_catalog.pg_type t \
                          JOIN pg_catalog.pg_attribute f ON f.attrelid = t.typrelid AND f.attnum > 0 AND NOT f.attisdropped \
                          WHERE t.oid = a.atttypid AND t.typtype = 'c' ORDER BY f.attnum) \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attrelid, a.attnum",
            &[&oids],
        )
        .await
        .map_err(|e| SourceError::query(WHAT, &e))?;
    for r in rows {
        let oid: u32 = get(&r, 0, WHAT)?;
        if let Some(&i) = index.get(&oid) {
            tables[i].columns.push(Column {
                name: get(&r, 1, WHAT)?,
                type_name: get(&r, 2, WHAT)?,
                not_null: get(&r, 3, WHAT)?,
                generated: get(&r, 4, WHAT)?,
                fields: {
                    let names: Vec<String> = get(&r, 5, WHAT)?;
                    let types: Vec<String> = get(&r, 6, WHAT)?;
                    names.into_iter().zip(types).collect()
                },
            });
        }
    }
    Ok(())
}

/// Foreign keys declared on the tables, with their columns in key order.
async fn read_foreign_keys(client: &Client, oids: &[u32]) -> Result<Vec<ForeignKey>, SourceError> {
    const WHAT: &str = "reading foreign keys";
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
        .map_err(|e| SourceError::query(WHAT, &e))?;
    rows.iter()
        .map(|r| {
            Ok(ForeignKey {
                name: get(r, 0, WHAT)?,
                table: get(r, 1, WHAT)?,
                references: get(r, 2, WHAT)?,
                columns: get(r, 3, WHAT)?,
                ref_columns: get(r, 4, WHAT)?,
            })
        })
        .collect()
}

/// Columns of primary keys, and of every unique index (primary keys included).
async fn read_unique_columns(client: &Client, oids: &[u32]) -> Result<(ColumnSet, ColumnSet), SourceError> {
    const WHAT: &str = "reading unique indexes";
    let rows = client
        .query(
            "SELECT i.indrelid, a.attname::text, i.indisprimary FROM pg_catalog.pg_index i \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indisunique AND i.indrelid = ANY($1)",
            &[&oids],
        )
        .await
        .map_err(|e| SourceError::query(WHAT, &e))?;
    let (mut primary, mut unique) = (ColumnSet::new(), ColumnSet::new());
    for r in &rows {
        let column = (get::<u32>(r, 0, WHAT)?, get::<String>(r, 1, WHAT)?);
        if get::<bool>(r, 2, WHAT)? {
            primary.insert(column.clone());
        }
        unique.insert(column);
    }
    Ok((primary, unique))
}

/// Sequences, with the table that owns each (a serial or identity column).
async fn read_sequences(client: &Client) -> Result<Vec<Sequence>, SourceError> {
    const WHAT: &str = "reading sequences";
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
        .map_err(|e| SourceError::query(WHAT, &e))?;
    rows.iter()
        .map(|r| Ok(Sequence { schema: get(r, 0, WHAT)?, name: get(r, 1, WHAT)?, owner: get(r, 2, WHAT)? }))
        .collect()
}

/// Reads a sequence's current state.
pub async fn sequence_state(client: &Client, seq: &Sequence) -> Result<(i64, bool), SourceError> {
    let row = client
        .query_one(&format!("SELECT last_value, is_called FROM {}", sql::qualified(&seq.schema, &seq.name)), &[])
        .await
        .map_err(|e| SourceError::query(format!("reading sequence {}.{}", seq.schema, seq.name), &e))?;
    let what = "reading a sequence";
    Ok((get(&row, 0, what)?, get(&row, 1, what)?))
}

/// The number of heap pages of a table, as of the snapshot.
pub async fn relation_pages(client: &Client, t: &Table) -> Result<u64, SourceError> {
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_relation_size($1::oid::regclass) / pg_catalog.current_setting('block_size')::int8",
            &[&t.oid],
        )
        .await
        .map_err(|e| SourceError::query(format!("reading the size of table {}", t.display_name()), &e))?;
    Ok(get::<i64>(&row, 0, "reading the size of a table")?.max(0) as u64)
}

/// Whether the database has large objects, which snapshots do not carry.
pub async fn has_large_objects(client: &Client) -> Result<bool, SourceError> {
    let row = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata)", &[])
        .await
        .map_err(|e| SourceError::query("checking for large objects", &e))?;
    get(&row, 0, "checking for large objects")
}
