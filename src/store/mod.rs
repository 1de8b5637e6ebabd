//! Stores: where snapshots live.
//!
//! A store is a flat key space (`<snapshot-id>/data/0001_public_orders.copy.gz`)
//! behind a small interface: create an object by streaming into it, read one
//! back as a stream, list keys, delete, and replace a small object only if it
//! is still what was read (for the `latest` pointer and the run lock). The
//! local folder is the default; S3 sits behind the same [`Store`] trait.
//!
//! An object becomes visible only when its writer is finished; an aborted
//! writer leaves nothing behind.

mod local;
pub mod s3;

use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};

pub use local::{private_dirs, private_file, LocalStore};
pub use s3::{S3Options, S3Store, S3Url};

/// The folder of a store where data files are kept once per content,
/// shared by every snapshot (`blobs/sha256/ab/abcd….copy.gz`).
pub const BLOBS: &str = "blobs/";

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
    #[error("'{key}' in {store} was changed by another run")]
    Precondition { store: String, key: String },
}

/// A small object with its version tag (an ETag on S3, a checksum locally).
#[derive(Debug, Clone)]
pub struct Tagged {
    pub data: Vec<u8>,
    pub tag: String,
}

/// When a conditional write may replace an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Only if there is no such object (If-None-Match: *).
    Absent,
    /// Only if the object still has this tag (If-Match).
    Matches(String),
    /// Always.
    Any,
}

/// Metadata of a listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// When it was last written, where the store says.
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
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
    /// Whether objects are files on this machine, cheap to read twice.
    fn is_local(&self) -> bool {
        false
    }
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

    /// The size of an object, or `None` if there is none.
    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError>;

    /// A folder on this machine where files can be written before their
    /// key is known (a content-addressed blob), such that [`Self::put_file`]
    /// from it is cheap; `None`: the system's temporary folder.
    fn spool_dir(&self) -> Option<PathBuf> {
        None
    }

    /// Stores the local file `path` (which may be consumed: moved, or
    /// deleted after upload) as `key`.
    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<(), StoreError> {
        let io = |source| StoreError::Io { op: "reading", store: self.describe(), key: key.to_string(), source };
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let mut w = self.create(key).await?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    w.abort().await;
                    return Err(io(e));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = w.write(&buf[..n]).await {
                w.abort().await;
                return Err(e);
            }
        }
        w.finish().await
    }

    /// Deletes everything under `prefix` (a snapshot's folder).
    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        for o in self.list(prefix).await? {
            self.delete(&o.key).await?;
        }
        Ok(())
    }

    /// Reads a small object with its version tag; `None` if it does not exist.
    async fn get_tagged(&self, key: &str) -> Result<Option<Tagged>, StoreError>;

    /// Writes a small object if `cond` holds, else fails with
    /// [`StoreError::Precondition`]; atomic against other writers. Returns
    /// the new object's tag.
    async fn put_if(&self, key: &str, data: &[u8], cond: Condition) -> Result<String, StoreError>;

    /// Deletes a small object if it still has `tag`.
    async fn delete_if(&self, key: &str, tag: &str) -> Result<(), StoreError>;

    /// Aborts unfinished uploads under `prefix` started before `before`
    /// (all when `None`); stores without such uploads have none.
    async fn abort_stale_uploads(
        &self,
        _prefix: &str,
        _before: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<usize, StoreError> {
        Ok(0)
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

/// Replaces the small object `key` with `data` by compare-and-swap: reads
/// it, asks `decide` whether to replace it (`Ok`) or stop (`Err`), and writes
/// only if nobody changed it in between (If-None-Match / If-Match), reading
/// again when somebody did, up to `attempts` times. Returns the new tag, or
/// what `decide` stopped with.
pub async fn compare_and_swap<S: Send>(
    store: &dyn Store,
    key: &str,
    data: &[u8],
    attempts: usize,
    mut decide: impl FnMut(Option<&Tagged>) -> Result<(), S> + Send,
) -> Result<Result<String, S>, StoreError> {
    for _ in 0..attempts {
        let current = store.get_tagged(key).await?;
        if let Err(stop) = decide(current.as_ref()) {
            return Ok(Err(stop));
        }
        let cond = current.map_or(Condition::Absent, |c| Condition::Matches(c.tag));
        match store.put_if(key, data, cond).await {
            Ok(tag) => return Ok(Ok(tag)),
            // Another writer got there between our read and write.
            Err(StoreError::Precondition { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Precondition { store: store.describe(), key: key.to_string() })
}

/// Where a store is, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3(S3Url),
}

/// A bad `--dest` / `--from` value.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("bad S3 location: {0}")]
    S3(#[from] s3::BadS3Url),
    #[error("unsupported store URL scheme '{0}' (use a folder path, file:///path or s3://bucket/prefix)")]
    Scheme(String),
    #[error("empty store location")]
    Empty,
}

impl Location {
    /// Parses a folder path, `file://` URL or `s3://bucket/prefix`.
    pub fn parse(s: &str) -> Result<Self, LocationError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(LocationError::Empty);
        }
        if s.starts_with("s3://") {
            return S3Url::parse(s).map(Location::S3).map_err(LocationError::S3);
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

    /// Opens the store (for S3: builds the client; no request is made yet).
    pub async fn open(&self, s3: &S3Options) -> Result<Box<dyn Store>, StoreError> {
        Ok(match self {
            Location::Local(p) => Box::new(LocalStore::new(p.clone())),
            Location::S3(url) => Box::new(S3Store::connect(url.clone(), s3.clone()).await?),
        })
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
        assert_eq!(
            Location::parse("s3://bkt/p/").unwrap(),
            Location::S3(S3Url { bucket: "bkt".into(), prefix: "p/".into() })
        );
        assert!(matches!(Location::parse("s3://B/p"), Err(LocationError::S3(_))));
        let (loc, name) = Location::parse_snapshot_ref("s3://bkt/nightly/latest").unwrap();
        assert_eq!(loc, Location::S3(S3Url { bucket: "bkt".into(), prefix: "nightly/".into() }));
        assert_eq!(name, "latest");
        let (loc, _) = Location::parse_snapshot_ref("s3://bkt/latest").unwrap();
        assert_eq!(loc, Location::S3(S3Url { bucket: "bkt".into(), prefix: "".into() }));
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
