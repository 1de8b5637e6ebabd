//! Snapshots in a store: naming, writing, publishing, listing, verifying.
//!
//! A snapshot is the folder `<id>/` of a store. Its files are written first;
//! the manifest, with a checksum per file, is written last. Readers look only
//! at folders that have a manifest, so a failed or running create is never
//! listed and never `latest`.

pub mod latest;
pub mod lock;
pub mod manifest;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

pub use manifest::{FileEntry, Manifest, SequenceEntry, TableEntry, MANIFEST};

use crate::store::{ObjectWriter, Store, StoreError};

/// Errors reading or writing snapshots.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no snapshot in {0} (a snapshot is a folder with a manifest.json)")]
    Empty(String),
    #[error("no snapshot '{id}' in {store}")]
    NotFound { store: String, id: String },
    #[error("the manifest of snapshot '{id}' is not valid: {reason}")]
    BadManifest { id: String, reason: String },
    #[error(
        "snapshot '{id}' has format version {found}; this scrubsnap reads version {supported} (upgrade scrubsnap)"
    )]
    Version { id: String, found: u32, supported: u32 },
    #[error("snapshot '{id}' is damaged, nothing was loaded: {problems}")]
    Damaged { id: String, problems: String },
}

/// A new snapshot id: UTC time to the millisecond, so ids sort by time.
pub fn new_id(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// Whether a folder name looks like a snapshot id.
pub fn looks_like_id(name: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(name, "%Y%m%dT%H%M%S%.3fZ").is_ok()
}

/// Streams one file into the store, counting and hashing what is stored.
pub struct FileWriter {
    inner: Box<dyn ObjectWriter>,
    path: String,
    hasher: Sha256,
    bytes: u64,
}

impl FileWriter {
    pub async fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        self.inner.write(buf).await
    }

    pub async fn finish(self) -> Result<FileEntry, StoreError> {
        self.inner.finish().await?;
        Ok(FileEntry { path: self.path, bytes: self.bytes, sha256: hex::encode(self.hasher.finalize()) })
    }

    pub async fn abort(self) {
        self.inner.abort().await;
    }
}

/// Writes the files of one new snapshot; publishes it with [`Self::publish`].
pub struct SnapshotWriter<'a> {
    store: &'a dyn Store,
    id: String,
    files: Vec<FileEntry>,
}

impl<'a> SnapshotWriter<'a> {
    pub fn new(store: &'a dyn Store, id: String) -> Self {
        SnapshotWriter { store, id, files: Vec::new() }
    }

    /// A writer for a new snapshot at `now`, with an id no other snapshot
    /// in the store uses (moved on by a millisecond while taken).
    pub async fn start(store: &'a dyn Store, now: chrono::DateTime<chrono::Utc>) -> Result<Self, StoreError> {
        let mut t = now;
        loop {
            let id = new_id(t);
            if store.list(&id).await?.is_empty() {
                return Ok(Self::new(store, id));
            }
            t += chrono::Duration::milliseconds(1);
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The store being written.
    pub fn store(&self) -> &dyn Store {
        self.store
    }

    /// Starts a file at `path` inside the snapshot.
    pub async fn create(&self, path: &str) -> Result<FileWriter, StoreError> {
        let inner = self.store.create(&format!("{}/{}", self.id, path)).await?;
        Ok(FileWriter { inner, path: path.to_string(), hasher: Sha256::new(), bytes: 0 })
    }

    /// Records a finished file for the manifest.
    pub fn add(&mut self, entry: FileEntry) {
        self.files.push(entry);
    }

    /// The files written so far.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Writes the manifest last, which makes the snapshot visible. If that
    /// fails, the files are removed.
    pub async fn publish(mut self, mut manifest: Manifest) -> Result<Manifest, SnapshotError> {
        manifest.files = std::mem::take(&mut self.files);
        manifest.snapshot_id = self.id.clone();
        let written = match serde_json::to_vec_pretty(&manifest) {
            Ok(json) => self.store.put(&format!("{}/{}", self.id, MANIFEST), &json).await.map_err(SnapshotError::from),
            Err(e) => Err(SnapshotError::BadManifest { id: self.id.clone(), reason: e.to_string() }),
        };
        match written {
            Ok(()) => Ok(manifest),
            Err(e) => {
                self.discard().await;
                Err(e)
            }
        }
    }

    /// Removes whatever this run wrote (best effort, after a failure),
    /// and aborts its uploads still open (a run stopped in the middle of a
    /// file).
    pub async fn discard(self) {
        // Uploads first, so that none completes into an object after the
        // files were removed.
        if let Err(e) = self.store.abort_stale_uploads(&self.id, None).await {
            tracing::warn!(snapshot = %self.id, "could not abort the unfinished uploads of the failed run: {e}");
        }
        if let Err(e) = self.store.delete_prefix(&self.id).await {
            tracing::warn!(snapshot = %self.id, "could not remove the files of the failed run: {e}");
        }
    }
}

/// One listed snapshot.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub manifest: Manifest,
}

/// Every complete snapshot, newest first. Folders without a manifest are
/// skipped; a manifest that cannot be read is reported as an error.
pub async fn list(store: &dyn Store) -> Result<Vec<Listed>, SnapshotError> {
    let mut out = Vec::new();
    let mut ids = store.list_dirs("").await?;
    ids.retain(|d| looks_like_id(d));
    ids.sort();
    ids.reverse();
    for id in ids {
        match read_manifest(store, &id).await {
            Ok(manifest) => out.push(Listed { id, manifest }),
            Err(SnapshotError::NotFound { .. }) => continue,
            Err(SnapshotError::Store(e)) => return Err(SnapshotError::Store(e)),
            // One damaged manifest does not hide the other snapshots.
            Err(e) => tracing::warn!("skipping {id}: {e}"),
        }
    }
    Ok(out)
}

/// Reads and checks the manifest of snapshot `id`.
pub async fn read_manifest(store: &dyn Store, id: &str) -> Result<Manifest, SnapshotError> {
    let bytes = match store.get(&format!("{id}/{MANIFEST}")).await {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => {
            return Err(SnapshotError::NotFound { store: store.describe(), id: id.to_string() })
        }
        Err(e) => return Err(e.into()),
    };
    // Check the version before the full shape, so an old reader says
    // "upgrade" rather than "invalid".
    let probe: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| SnapshotError::BadManifest { id: id.to_string(), reason: e.to_string() })?;
    if probe.get("format").and_then(|v| v.as_str()) != Some(manifest::FORMAT) {
        return Err(SnapshotError::BadManifest { id: id.to_string(), reason: "not a scrubsnap manifest".into() });
    }
    let version = probe.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    if version == 0 || version > manifest::FORMAT_VERSION {
        return Err(SnapshotError::Version { id: id.to_string(), found: version, supported: manifest::FORMAT_VERSION });
    }
    let m: Manifest = serde_json::from_value(probe)
        .map_err(|e| SnapshotError::BadManifest { id: id.to_string(), reason: e.to_string() })?;
    if m.snapshot_id != id {
        return Err(SnapshotError::BadManifest {
            id: id.to_string(),
            reason: format!("it names snapshot '{}'", m.snapshot_id),
        });
    }
    for f in &m.files {
        if crate::store::check_key(&f.path).is_err() {
            return Err(SnapshotError::BadManifest { id: id.to_string(), reason: "a file path is not valid".into() });
        }
    }
    // Every file the snapshot refers to must be listed (and so verified).
    let referenced = [m.schema.pre_data.as_str(), m.schema.post_data.as_str(), m.schema.clean.as_str()]
        .into_iter()
        .chain(m.tables.iter().flat_map(|t| t.data_files().into_iter().map(|(f, _)| f)));
    for path in referenced {
        if m.file(path).is_none() {
            return Err(SnapshotError::BadManifest {
                id: id.to_string(),
                reason: format!("{path} is used but not listed with a checksum"),
            });
        }
    }
    for t in m.tables.iter().filter(|t| !t.chunks.is_empty()) {
        let sum = t.chunks.iter().fold(0u64, |a, c| a.saturating_add(c.rows));
        if t.file.is_some() || sum != t.rows {
            return Err(SnapshotError::BadManifest {
                id: id.to_string(),
                reason: format!("the chunks of table {}.{} do not add up", t.schema, t.name),
            });
        }
    }
    Ok(m)
}

/// Resolves `latest` (the pointer; without one, the newest complete
/// snapshot) or an id to a snapshot and its manifest.
pub async fn resolve(store: &dyn Store, name: &str) -> Result<Listed, SnapshotError> {
    if name == "latest" {
        if let Some(id) = latest::read(store).await? {
            match read_manifest(store, &id).await {
                Ok(manifest) => return Ok(Listed { id, manifest }),
                Err(SnapshotError::NotFound { .. }) => {
                    tracing::warn!("`latest` names {id}, which is gone; using the newest complete snapshot")
                }
                Err(e) => return Err(e),
            }
        }
        let all = list(store).await?;
        return all.into_iter().next().ok_or_else(|| SnapshotError::Empty(store.describe()));
    }
    let manifest = read_manifest(store, name).await?;
    Ok(Listed { id: name.to_string(), manifest })
}

/// Checks every file's size and SHA-256 against the manifest. Reports every
/// damaged or missing file at once.
pub async fn verify(store: &dyn Store, snap: &Listed) -> Result<(), SnapshotError> {
    check_files(store, snap, None, 4).await
}

/// Downloads every file of a snapshot once, `jobs` at a time, into
/// `dir/<id>/` (where a [`crate::store::LocalStore`] over `dir`
/// finds them), checking each size and SHA-256 on the way as [`verify`]
/// does. Restoring from a remote store then reads the copies instead of
/// downloading every object a second time.
pub async fn stage(store: &dyn Store, snap: &Listed, dir: &std::path::Path, jobs: usize) -> Result<(), SnapshotError> {
    check_files(store, snap, Some(dir), jobs).await
}

async fn check_files(
    store: &dyn Store,
    snap: &Listed,
    copy_to: Option<&std::path::Path>,
    jobs: usize,
) -> Result<(), SnapshotError> {
    use futures_util::StreamExt;
    let checks = snap.manifest.files.iter().map(|f| check_file(store, &snap.id, f, copy_to));
    let results: Vec<Result<Option<String>, StoreError>> =
        futures_util::stream::iter(checks).buffer_unordered(jobs.max(1)).collect().await;
    let mut problems = Vec::new();
    for r in results {
        if let Some(problem) = r? {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        // By path (files are numbered in table order), whichever finished first.
        problems.sort();
        Err(SnapshotError::Damaged { id: snap.id.clone(), problems: problems.join("; ") })
    }
}

/// Reads one file (and copies it under `copy_to`), returning what is wrong
/// with it, if anything.
async fn check_file(
    store: &dyn Store,
    id: &str,
    f: &FileEntry,
    copy_to: Option<&std::path::Path>,
) -> Result<Option<String>, StoreError> {
    use tokio::io::AsyncWriteExt;
    let key = format!("{id}/{}", f.path);
    let mut reader = match store.open(&key).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Ok(Some(format!("{} is missing", f.path))),
        Err(e) => return Err(e),
    };
    let io = |op: &'static str, store: String, key: &str| {
        let key = key.to_string();
        move |source| StoreError::Io { op, store, key, source }
    };
    let mut copy = match copy_to {
        Some(dir) => {
            let path = dir.join(id).join(&f.path);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io("creating", format!("{}", dir.display()), &key))?;
            }
            Some(tokio::fs::File::create(&path).await.map_err(io("creating", format!("{}", dir.display()), &key))?)
        }
        None => None,
    };
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).await.map_err(io("reading", store.describe(), &key))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
        if let (Some(file), Some(dir)) = (copy.as_mut(), copy_to) {
            file.write_all(&buf[..n]).await.map_err(io("writing", format!("{}", dir.display()), &key))?;
        }
    }
    if let (Some(mut file), Some(dir)) = (copy, copy_to) {
        file.flush().await.map_err(io("writing", format!("{}", dir.display()), &key))?;
    }
    let sum = hex::encode(hasher.finalize());
    Ok(if bytes != f.bytes {
        Some(format!("{} has {} bytes, the manifest says {}", f.path, bytes, f.bytes))
    } else if sum != f.sha256 {
        Some(format!("{} does not match its SHA-256 checksum", f.path))
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_sort_by_time_and_are_recognised() {
        let a = new_id(chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
        let b = new_id(chrono::Utc.with_ymd_and_hms(2026, 11, 2, 3, 4, 5).unwrap());
        assert_eq!(a, "20260102T030405.000Z");
        assert!(a < b);
        assert!(looks_like_id(&a));
        assert!(!looks_like_id("notes"));
    }
}
