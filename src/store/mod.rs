//! Stores: where snapshots live.
//!
//! A store is a flat key space (`<snapshot-id>/data/0001_public_orders.copy.gz`)
//! behind a small interface: create an object by streaming into it, read one
//! back as a stream, list keys, delete. The local folder is the default; S3
//! plugs in behind the same [`Store`] trait.
//!
//! An object becomes visible only when its writer is finished; an aborted
//! writer leaves nothing behind.

mod local;

use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

pub use local::LocalStore;

/// A readable object.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// What can go wrong in a store. Names the key and the store, never contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("'{key}' not found in {store}")]
    NotFound { store: String, key: String },
    #[error("{op} '{key}' in {store}: {source}")]
    Io {
        op: &'static str,
        store: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use {store}: {reason}")]
    Unusable { store: String, reason: String },
    #[error("invalid object key '{0}'")]
    BadKey(String),
}

/// Metadata of a listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
}

/// Streams bytes into one object. `finish` makes it visible; dropping it
/// without `finish` (or calling `abort`) leaves no object.
#[async_trait]
pub trait ObjectWriter: Send {
    async fn write(&mut self, buf: &[u8]) -> Result<(), StoreError>;
    async fn finish(self: Box<Self>) -> Result<(), StoreError>;
    async fn abort(self: Box<Self>);
}

/// A place that holds snapshots.
#[async_trait]
pub trait Store: Send + Sync {
    /// A human-readable name for messages (a path or URL, no credentials).
    fn describe(&self) -> String;
    /// Checks that the store exists and can be written, before any work starts.
    async fn check_writable(&self) -> Result<(), StoreError>;
    /// Starts a new object.
    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError>;
    /// Opens an object for streaming reads.
    async fn open(&self, key: &str) -> Result<ObjectReader, StoreError>;
    /// Every object under `prefix` (recursive).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;
    /// The names directly under `prefix` that have objects below them.
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Deletes one object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes everything under `prefix` (a snapshot's folder).
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        for o in self.list(prefix).await? {
            self.delete(&o.key).await?;
        }
        Ok(())
    }

    /// Writes a small object in one go.
    async fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        let mut w = self.create(key).await?;
        if let Err(e) = w.write(data).await {
            w.abort().await;
            return Err(e);
        }
        w.finish().await
    }

    /// Reads a small object whole (manifests, schema files).
    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let mut r = self.open(key).await?;
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).await.map_err(|source| StoreError::Io {
            op: "reading",
            store: self.describe(),
            key: key.to_string(),
            source,
        })?;
        Ok(buf)
    }
}

/// Where a store is, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
}

/// A bad `--dest` / `--from` value.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("the S3 store is not available in this build yet; use a local folder")]
    S3NotYet,
    #[error("unsupported store URL scheme '{0}' (use a folder path or file:///path)")]
    Scheme(String),
    #[error("empty store location")]
    Empty,
}

impl Location {
    /// Parses a folder path or `file://` URL.
    pub fn parse(s: &str) -> Result<Self, LocationError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(LocationError::Empty);
        }
        if s.starts_with("s3://") {
            return Err(LocationError::S3NotYet);
        }
        if let Some(path) = s.strip_prefix("file://") {
            let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned();
            return Ok(Location::Local(PathBuf::from(decoded)));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(LocationError::Scheme(scheme.chars().take(20).collect()));
        }
        Ok(Location::Local(PathBuf::from(s)))
    }

    /// Splits `<store>/<snapshot>` into the store and the last component
    /// (a snapshot id or `latest`).
    pub fn parse_snapshot_ref(s: &str) -> Result<(Self, String), LocationError> {
        let trimmed = s.trim().trim_end_matches('/');
        let (store, name) = match trimmed.rsplit_once('/') {
            Some((store, name)) if !name.is_empty() => (if store.is_empty() { "/" } else { store }, name),
            _ => (".", trimmed),
        };
        let store = if store == "file:" || store == "file:/" { "/" } else { store };
        if name.is_empty() {
            return Err(LocationError::Empty);
        }
        Ok((Self::parse(store)?, name.to_string()))
    }

    /// Opens the store.
    pub fn open(&self) -> Box<dyn Store> {
        match self {
            Location::Local(p) => Box::new(LocalStore::new(p.clone())),
        }
    }
}

/// Checks a key: relative, `/`-separated, no `.`/`..` parts.
pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && !key.starts_with('/')
        && key.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
        && !key.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadKey(key.chars().take(200).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(Location::parse("./snaps").unwrap(), Location::Local("./snaps".into()));
        assert_eq!(Location::parse("file:///var/snaps").unwrap(), Location::Local("/var/snaps".into()));
        assert!(matches!(Location::parse("s3://b/p"), Err(LocationError::S3NotYet)));
        assert!(matches!(Location::parse("ftp://x"), Err(LocationError::Scheme(_))));
        let (loc, name) = Location::parse_snapshot_ref("./snaps/latest").unwrap();
        assert_eq!((loc, name.as_str()), (Location::Local("./snaps".into()), "latest"));
        let (loc, name) = Location::parse_snapshot_ref("file:///var/snaps/20260101T000000.000Z/").unwrap();
        assert_eq!((loc, name.as_str()), (Location::Local("/var/snaps".into()), "20260101T000000.000Z"));
        let (loc, name) = Location::parse_snapshot_ref("latest").unwrap();
        assert_eq!((loc, name.as_str()), (Location::Local(".".into()), "latest"));
    }

    #[test]
    fn keys() {
        assert!(check_key("a/b.gz").is_ok());
        for bad in ["", "/a", "a/../b", "a//b", "./a"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
