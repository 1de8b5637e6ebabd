//! The mask stage: turning original values into fake ones.
//!
//! A [`Masker`] knows values, not tables: it gets one non-NULL value and a
//! [`Seeder`] for its (key, domain, spec) and returns the fake value, or
//! NULL, or an error that never quotes the value. [`registry`] is the one
//! list of maskers: `--help`, `scrubsnap maskers`, the docs and the JSON
//! Schema all come from it. [`rows`] applies a table's maskers to COPY text.

pub mod containers;
pub mod key;
pub mod maskers;
pub mod registry;
pub mod rows;

pub use key::{KeyError, KeyForm, MaskKey, Permutation, Seeder};

/// A masker failed on one value. The reason never contains the value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct MaskError(pub String);

crate::error::message_error!(
    /// A masker's options are wrong, or it cannot be built for the column. Names the option, never a value.
    OptionError
);

/// The broad type of a column, from `format_type()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeClass {
    Text,
    Integer,
    Numeric,
    Float,
    Date,
    Timestamp,
    Uuid,
    Inet,
    Json,
    Boolean,
    Bytea,
    /// The geometric `point` type.
    Point,
    /// The `hstore` extension's type.
    Hstore,
    /// A composite (row) type; its fields are in [`ColumnInfo::fields`].
    Composite,
    Other,
}

impl TypeClass {
    pub fn name(self) -> &'static str {
        match self {
            TypeClass::Text => "text",
            TypeClass::Integer => "integer",
            TypeClass::Numeric => "numeric",
            TypeClass::Float => "float",
            TypeClass::Date => "date",
            TypeClass::Timestamp => "timestamp",
            TypeClass::Uuid => "uuid",
            TypeClass::Inet => "inet",
            TypeClass::Json => "json",
            TypeClass::Boolean => "boolean",
            TypeClass::Bytea => "bytea",
            TypeClass::Point => "point",
            TypeClass::Hstore => "hstore",
            TypeClass::Composite => "composite",
            TypeClass::Other => "other",
        }
    }
}

/// What a masker is told about the column it will mask.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    /// `format_type()` output, e.g. `character varying(40)`.
    pub type_name: String,
    pub class: TypeClass,
    /// Longest value the column takes, in characters (`varchar(n)`, `char(n)`).
    pub max_chars: Option<usize>,
    /// Integer range of the column type (smallint, integer, bigint).
    pub int_range: Option<(i128, i128)>,
    pub not_null: bool,
    /// Part of a primary key or unique index.
    pub unique: bool,
    /// For an array column (`text[]`, `varchar(20)[][]`): its element type.
    /// The column's own class is then [`TypeClass::Other`].
    pub element: Option<Box<ColumnInfo>>,
    /// For a composite column: its fields' names and types, in order.
    pub fields: Vec<(String, String)>,
}

impl ColumnInfo {
    /// Classifies a `format_type()` string.
    pub fn from_type(type_name: &str, not_null: bool, unique: bool) -> Self {
        let t = type_name.trim();
        let base = t.split('(').next().unwrap_or(t).trim();
        let array = t.ends_with("[]");
        let element = array.then(|| {
            let base = t.trim_end_matches("[]").trim();
            Box::new(ColumnInfo::from_type(base, false, unique))
        });
        let class = if array {
            TypeClass::Other
        } else {
            match base {
                "text" | "character varying" | "character" | "varchar" | "char" | "citext" | "name" | "bpchar" => {
                    TypeClass::Text
                }
                "smallint" | "integer" | "bigint" => TypeClass::Integer,
                "numeric" | "decimal" | "money" => TypeClass::Numeric,
                "real" | "double precision" => TypeClass::Float,
                "date" => TypeClass::Date,
                "timestamp without time zone" | "timestamp with time zone" => TypeClass::Timestamp,
                "uuid" => TypeClass::Uuid,
                "inet" | "cidr" => TypeClass::Inet,
                "json" | "jsonb" => TypeClass::Json,
                "boolean" => TypeClass::Boolean,
                "bytea" => TypeClass::Bytea,
                "point" => TypeClass::Point,
                _ if base == "hstore" || base.ends_with(".hstore") => TypeClass::Hstore,
                _ if base.starts_with("timestamp") => TypeClass::Timestamp,
                _ => TypeClass::Other,
            }
        };
        let max_chars = if class == TypeClass::Text && (base == "character varying" || base == "character") {
            t.split('(').nth(1).and_then(|r| r.trim_end_matches(')').parse().ok())
        } else if class == TypeClass::Text && base == "name" {
            Some(63)
        } else {
            None
        };
        let int_range = match base {
            "smallint" if !array => Some((i128::from(i16::MIN), i128::from(i16::MAX))),
            "integer" if !array => Some((i128::from(i32::MIN), i128::from(i32::MAX))),
            "bigint" if !array => Some((i128::from(i64::MIN), i128::from(i64::MAX))),
            _ => None,
        };
        ColumnInfo {
            type_name: t.to_string(),
            class,
            max_chars,
            int_range,
            not_null,
            unique,
            element,
            fields: Vec::new(),
        }
    }

    /// A column of a composite type with these fields (name, type).
    pub fn composite(type_name: &str, not_null: bool, fields: Vec<(String, String)>) -> Self {
        ColumnInfo { class: TypeClass::Composite, fields, ..ColumnInfo::from_type(type_name, not_null, false) }
    }
}

/// Masks one value of a column.
pub trait Masker: Send + Sync {
    /// Masks one non-NULL value. `None` means NULL.
    fn mask(&self, value: &str, seeder: &Seeder) -> Result<Option<String>, MaskError>;

    /// For a masker that can be part of a `person:` group (names, email,
    /// username): the fake person `value` stands for, drawn exactly as
    /// [`Masker::mask`] draws its names, so the group's seed column masks
    /// as it would alone. `None`: not a person part.
    fn person(&self, _value: &str, _seeder: &Seeder) -> Option<Person> {
        None
    }

    /// Masks `value` as a part of `person` (its names from the person, any
    /// tag that keeps it unique from the value itself). `None`: not a
    /// person part.
    fn mask_person(
        &self,
        _value: &str,
        _seeder: &Seeder,
        _person: &Person,
    ) -> Option<Result<Option<String>, MaskError>> {
        None
    }

    /// For a `from_row` template: its parts, naming other columns of the
    /// row. `None` for every masker that masks a value on its own.
    fn row_parts(&self) -> Option<&[maskers::RowPart]> {
        None
    }
}

/// A fake person: the names every column of a `person:` group is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Person {
    pub first: &'static str,
    pub last: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_types() {
        let c = ColumnInfo::from_type("character varying(40)", true, false);
        assert_eq!((c.class, c.max_chars), (TypeClass::Text, Some(40)));
        assert_eq!(ColumnInfo::from_type("character(2)", false, false).max_chars, Some(2));
        assert_eq!(ColumnInfo::from_type("bigint", false, false).class, TypeClass::Integer);
        assert_eq!(ColumnInfo::from_type("timestamp(3) with time zone", false, false).class, TypeClass::Timestamp);
        assert_eq!(ColumnInfo::from_type("text[]", false, false).class, TypeClass::Other);
        let a = ColumnInfo::from_type("character varying(20)[]", false, true);
        let e = a.element.expect("an array has an element type");
        assert_eq!((e.class, e.max_chars, e.unique), (TypeClass::Text, Some(20), true));
        assert_eq!(
            ColumnInfo::from_type("integer[][]", false, false).element.map(|e| e.class),
            Some(TypeClass::Integer)
        );
        assert_eq!(ColumnInfo::from_type("numeric(12,2)", false, false).class, TypeClass::Numeric);
        assert_eq!(ColumnInfo::from_type("smallint", false, false).int_range, Some((-32768, 32767)));
    }
}
