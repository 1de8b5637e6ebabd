//! Snapshots in a store: naming, writing, publishing, listing, verifying.
//!
//! A snapshot is the folder `<id>/` of a store. Its files are written first;
//! the manifest, with a checksum per file, is written last. Readers look only
//! at folders that have a manifest, so a failed or running create is never
//! listed and never `latest`.

pub mod cache;
pub mod gc;
pub mod latest;
pub mod lock;
pub mod manifest;
pub mod signature;
mod stage;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

pub use manifest::{blob_key, FileEntry, Manifest, SequenceEntry, TableEntry, MANIFEST};
pub use stage::{stage, verify, Staged};

use crate::encode::Codec;
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
    #[error("snapshot '{id}' is refused, nothing was loaded: {reason}")]
    Untrusted { id: String, reason: signature::Refusal },
}

/// Which signatures a reader accepts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Trusted public keys; none: signatures are not checked.
    pub keys: Vec<signature::Trusted>,
    /// Load an unsigned snapshot all the same (with a warning).
    pub allow_unsigned: bool,
}

/// What was established about a snapshot's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Signed by this trusted key.
    Signed(String),
    /// Unsigned, loaded on purpose (`--allow-unsigned`).
    UnsignedAllowed,
    /// No trusted key is configured: the origin is not checked.
    Unchecked,
}

/// Checks a snapshot's signature against the trusted keys, on the exact
/// bytes of its manifest, and that those bytes are the manifest `snap`
/// holds. With no trusted key configured nothing is checked.
pub async fn authenticate(store: &dyn Store, snap: &Listed, trust: &Trust) -> Result<Provenance, SnapshotError> {
    if trust.keys.is_empty() {
        return Ok(Provenance::Unchecked);
    }
    let refuse = |reason| SnapshotError::Untrusted { id: snap.id.clone(), reason };
    let manifest = store.get(&format!("{}/{MANIFEST}", snap.id)).await?;
    let sig = match store.get(&format!("{}/{}", snap.id, signature::SIGNATURE)).await {
        Ok(b) => Some(b),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    match signature::check(&manifest, sig.as_deref(), &trust.keys) {
        Ok(key) => {
            let read: Result<Manifest, _> = serde_json::from_slice(&manifest);
            let same =
                read.ok().and_then(|m| serde_json::to_value(m).ok()) == serde_json::to_value(&snap.manifest).ok();
            match same {
                true => Ok(Provenance::Signed(key)),
                false => Err(refuse(signature::Refusal::Mismatch)),
            }
        }
        Err(signature::Refusal::Unsigned) if trust.allow_unsigned => Ok(Provenance::UnsignedAllowed),
        Err(reason) => Err(refuse(reason)),
    }
}

/// Who signed a snapshot, as its signature file claims (`None`: unsigned).
pub async fn signed_by(store: &dyn Store, id: &str) -> Result<Option<String>, SnapshotError> {
    match store.get(&format!("{id}/{}", signature::SIGNATURE)).await {
        Ok(b) => Ok(Some(signature::claimed_key(&b).unwrap_or_else(|| "(unreadable signature)".into()))),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A new snapshot id: UTC time to the millisecond, so ids sort by time.
pub fn new_id(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// Whether a folder name looks like a snapshot id.
pub fn looks_like_id(name: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(name, "%Y%m%dT%H%M%S%.3fZ").is_ok()
}

pub use crate::store::BLOBS;

/// What a run stored: data files new to the store, and those the store
/// already held (same bytes, written by an earlier snapshot).
#[derive(Debug, Default)]
pub struct Stored {
    pub new_files: std::sync::atomic::AtomicU64,
    pub new_bytes: std::sync::atomic::AtomicU64,
    pub reused_files: std::sync::atomic::AtomicU64,
    pub reused_bytes: std::sync::atomic::AtomicU64,
    /// Keys of the blobs this run added (removed again if it fails).
    added: std::sync::Mutex<Vec<String>>,
}

impl Stored {
    fn count(&self, bytes: u64, reused: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let (files, total) = match reused {
            true => (&self.reused_files, &self.reused_bytes),
            false => (&self.new_files, &self.new_bytes),
        };
        files.fetch_add(1, Relaxed);
        total.fetch_add(bytes, Relaxed);
    }

    /// (new files, new bytes, reused files, reused bytes).
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.new_files.load(Relaxed),
            self.new_bytes.load(Relaxed),
            self.reused_files.load(Relaxed),
            self.reused_bytes.load(Relaxed),
        )
    }
}

/// Where a file's bytes go while it is written.
enum Sink {
    /// Straight into its object in the snapshot's folder.
    Object(Box<dyn ObjectWriter>),
    /// Into a local file, until its checksum names its blob.
    Spool { file: tokio::io::BufWriter<tokio::fs::File>, path: tempfile::TempPath, codec: Codec },
}

/// Streams one file into the store, counting and hashing what is stored.
/// A data file is spooled and stored as a blob under its checksum, unless
/// the store holds those bytes already.
pub struct FileWriter<'a> {
    sink: Sink,
    store: &'a dyn Store,
    stored: std::sync::Arc<Stored>,
    path: String,
    hasher: Sha256,
    bytes: u64,
}

impl FileWriter<'_> {
    pub async fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        match &mut self.sink {
            Sink::Object(w) => w.write(buf).await,
            Sink::Spool { file, .. } => {
                use tokio::io::AsyncWriteExt;
                let store = self.store.describe();
                file.write_all(buf).await.map_err(|source| StoreError::Io {
                    op: "spooling",
                    store,
                    key: self.path.clone(),
                    source,
                })
            }
        }
    }

    pub async fn finish(self) -> Result<FileEntry, StoreError> {
        let sha256 = hex::encode(self.hasher.finalize());
        let (codec, blob) = match self.sink {
            Sink::Object(w) => {
                w.finish().await?;
                (Codec::from_path(&self.path), false)
            }
            Sink::Spool { file, path, codec } => {
                let key = manifest::blob_key(&sha256, Some(codec));
                let reused = store_blob(self.store, file, &path, &key, self.bytes, &self.path, &self.stored).await?;
                self.stored.count(self.bytes, reused);
                (Some(codec), true)
            }
        };
        Ok(FileEntry { path: self.path, bytes: self.bytes, sha256, codec, blob })
    }

    pub async fn abort(self) {
        match self.sink {
            Sink::Object(w) => w.abort().await,
            // The spool file is removed when its path is dropped.
            Sink::Spool { .. } => {}
        }
    }
}

/// Stores a spooled file under `key` unless the store has an object of
/// that size there already (the same bytes: the key is their checksum);
/// returns whether it did.
async fn store_blob(
    store: &dyn Store,
    mut file: tokio::io::BufWriter<tokio::fs::File>,
    spooled: &std::path::Path,
    key: &str,
    bytes: u64,
    path: &str,
    stored: &Stored,
) -> Result<bool, StoreError> {
    use tokio::io::AsyncWriteExt;
    let io = |source| StoreError::Io { op: "spooling", store: store.describe(), key: path.to_string(), source };
    file.flush().await.map_err(io)?;
    if store.head(key).await? == Some(bytes) {
        return Ok(true);
    }
    if store.is_local() {
        // Moved into place: on disk before its name is.
        file.get_mut().sync_all().await.map_err(io)?;
    }
    drop(file);
    // Noted first, so that a run stopped during the upload removes it too.
    if let Ok(mut added) = stored.added.lock() {
        added.push(key.to_string());
    }
    store.put_file(key, spooled).await?;
    Ok(false)
}

/// Writes the files of one new snapshot; publishes it with [`Self::publish`].
pub struct SnapshotWriter<'a> {
    store: &'a dyn Store,
    id: String,
    files: Vec<FileEntry>,
    stored: std::sync::Arc<Stored>,
}

impl<'a> SnapshotWriter<'a> {
    pub fn new(store: &'a dyn Store, id: String) -> Self {
        SnapshotWriter { store, id, files: Vec::new(), stored: Default::default() }
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

    /// What this run stored so far, and what it found stored already.
    pub fn stored(&self) -> &Stored {
        &self.stored
    }

    /// Starts a file at `path` inside the snapshot's folder (a schema
    /// script).
    pub async fn create(&self, path: &str) -> Result<FileWriter<'a>, StoreError> {
        let inner = self.store.create(&format!("{}/{}", self.id, path)).await?;
        Ok(self.writer(Sink::Object(inner), path))
    }

    /// Starts a data file named `path`, compressed with `codec`: spooled,
    /// then stored as a blob shared with every snapshot that holds the
    /// same bytes.
    pub async fn create_data(&self, path: &str, codec: Codec) -> Result<FileWriter<'a>, StoreError> {
        let dir = self.store.spool_dir().unwrap_or_else(std::env::temp_dir);
        let io =
            |source| StoreError::Io { op: "spooling", store: self.store.describe(), key: path.to_string(), source };
        let spool = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || {
                crate::store::private_dirs(&dir)?;
                tempfile::Builder::new().prefix("scrubsnap-blob-").tempfile_in(&dir)
            })
            .await
            .map_err(|e| io(std::io::Error::other(e)))?
            .map_err(io)?
        };
        let (file, spooled) = spool.into_parts();
        let file = tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
        Ok(self.writer(Sink::Spool { file, path: spooled, codec }, path))
    }

    fn writer(&self, sink: Sink, path: &str) -> FileWriter<'a> {
        FileWriter {
            sink,
            store: self.store,
            stored: self.stored.clone(),
            path: path.to_string(),
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Records a finished file for the manifest.
    pub fn add(&mut self, entry: FileEntry) {
        self.files.push(entry);
    }

    /// The files written so far.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Writes the manifest last, which makes the snapshot visible; with a
    /// signer, its signature just before, so the snapshot is signed from
    /// the moment it is visible. If that fails, the files are removed.
    pub async fn publish(
        mut self,
        mut manifest: Manifest,
        signer: Option<&signature::SnapshotSigner>,
    ) -> Result<Manifest, SnapshotError> {
        manifest.files = std::mem::take(&mut self.files);
        manifest.snapshot_id = self.id.clone();
        manifest.settle_version();
        let written = match serde_json::to_vec_pretty(&manifest) {
            Ok(json) => {
                let signed = match signer {
                    Some(s) => self.store.put(&format!("{}/{}", self.id, signature::SIGNATURE), &s.sign(&json)).await,
                    None => Ok(()),
                };
                match signed {
                    Ok(()) => {
                        self.store.put(&format!("{}/{}", self.id, MANIFEST), &json).await.map_err(SnapshotError::from)
                    }
                    Err(e) => Err(e.into()),
                }
            }
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
        // The blobs it added: no other snapshot refers to them (no other
        // create runs while this one holds the run lock).
        let added = self.stored.added.lock().map(|mut a| std::mem::take(&mut *a)).unwrap_or_default();
        for key in added {
            if let Err(e) = self.store.delete(&key).await {
                tracing::warn!(snapshot = %self.id, "could not remove a data file of the failed run ({key}): {e}");
            }
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
    let (listed, unreadable) = list_all(store).await?;
    // One damaged manifest does not hide the other snapshots.
    for (id, e) in unreadable {
        tracing::warn!("skipping {id}: {e}");
    }
    Ok(listed)
}

/// Every complete snapshot, newest first, and the snapshots whose
/// manifest cannot be read, with why.
pub async fn list_all(store: &dyn Store) -> Result<(Vec<Listed>, Vec<(String, SnapshotError)>), SnapshotError> {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    let mut ids = store.list_dirs("").await?;
    ids.retain(|d| looks_like_id(d));
    ids.sort();
    ids.reverse();
    for id in ids {
        match read_manifest(store, &id).await {
            Ok(manifest) => out.push(Listed { id, manifest }),
            Err(SnapshotError::NotFound { .. }) => continue,
            Err(SnapshotError::Store(e)) => return Err(SnapshotError::Store(e)),
            Err(e) => unreadable.push((id, e)),
        }
    }
    Ok((out, unreadable))
}

/// For each snapshot of `listed` (newest first, as [`list`] gives them),
/// the bytes it added to the store: its own files, and the blobs no older
/// snapshot still in the store holds.
pub fn added_bytes(listed: &[Listed]) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut added: Vec<u64> = listed
        .iter()
        .rev()
        .map(|s| {
            s.manifest
                .files
                .iter()
                .filter(|f| !f.blob || seen.insert(f.key(&s.id)))
                .fold(0u64, |a, f| a.saturating_add(f.bytes))
        })
        .collect();
    added.reverse();
    added
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
    let mut paths = std::collections::HashSet::new();
    for f in &m.files {
        if crate::store::check_key(&f.path).is_err() {
            return Err(SnapshotError::BadManifest { id: id.to_string(), reason: "a file path is not valid".into() });
        }
        // A blob's key is made of its checksum: only hex digits may go there.
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(SnapshotError::BadManifest {
                id: id.to_string(),
                reason: format!("the checksum of {} is not a SHA-256", f.path),
            });
        }
        if !paths.insert(f.path.as_str()) {
            return Err(SnapshotError::BadManifest {
                id: id.to_string(),
                reason: format!("{} is listed twice", f.path),
            });
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

/// Checks, from a listing of the store (no file is opened), that every
/// file of the manifest is there with its size: a missing or truncated file
/// is named before anything is loaded. Contents are checked as each file
/// is read ([`open_checked`]).
pub async fn check_listing(store: &dyn Store, snap: &Listed) -> Result<(), SnapshotError> {
    let mut listed: std::collections::HashMap<String, u64> =
        store.list(&format!("{}/", snap.id)).await?.into_iter().map(|o| (o.key, o.size)).collect();
    if snap.manifest.files.iter().any(|f| f.blob) {
        listed.extend(store.list(BLOBS).await?.into_iter().map(|o| (o.key, o.size)));
    }
    let mut problems: Vec<String> = snap
        .manifest
        .files
        .iter()
        .filter_map(|f| match listed.get(&f.key(&snap.id)) {
            None => Some(format!("{} is missing", f.path)),
            Some(&size) if size != f.bytes => {
                Some(format!("{} has {size} bytes, the manifest says {}", f.path, f.bytes))
            }
            Some(_) => None,
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort();
    Err(SnapshotError::Damaged { id: snap.id.clone(), problems: problems.join("; ") })
}

/// What a file read through [`open_checked`] turned out to be.
pub struct Checked {
    state: std::sync::Arc<std::sync::Mutex<(Sha256, u64)>>,
    entry: FileEntry,
    id: String,
}

impl Checked {
    /// After the file was read to its end: an error naming it unless it
    /// had exactly the manifest's size and SHA-256. Whatever was done with
    /// its bytes must not be committed when this fails.
    pub fn result(&self) -> Result<(), SnapshotError> {
        let (hasher, bytes) = match self.state.lock() {
            Ok(s) => (s.0.clone(), s.1),
            Err(_) => return Err(self.damaged("could not be checked".into())),
        };
        if bytes != self.entry.bytes {
            return Err(self.damaged(format!("has {bytes} bytes, the manifest says {}", self.entry.bytes)));
        }
        if hex::encode(hasher.finalize()) != self.entry.sha256 {
            return Err(self.damaged("does not match its SHA-256 checksum".into()));
        }
        Ok(())
    }

    fn damaged(&self, what: String) -> SnapshotError {
        SnapshotError::Damaged { id: self.id.clone(), problems: format!("{} {what}", self.entry.path) }
    }
}

/// A reader that hashes what passes through it.
struct Hashing {
    inner: crate::store::ObjectReader,
    state: std::sync::Arc<std::sync::Mutex<(Sha256, u64)>>,
}

impl tokio::io::AsyncRead for Hashing {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.inner.as_mut().poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled {
            let new = &buf.filled()[before..];
            if let Ok(mut state) = self.state.lock() {
                state.0.update(new);
                state.1 += new.len() as u64;
            }
        }
        polled
    }
}

/// Opens a file of a snapshot for one read, hashing it as it is read:
/// the caller uses those bytes only, and asks [`Checked::result`] at the end
/// whether they were the manifest's. No file is opened twice.
pub async fn open_checked(
    store: &dyn Store,
    snap: &Listed,
    path: &str,
) -> Result<(crate::store::ObjectReader, Checked), SnapshotError> {
    let entry = snap.manifest.file(path).cloned().ok_or_else(|| SnapshotError::BadManifest {
        id: snap.id.clone(),
        reason: format!("{path} is used but not listed with a checksum"),
    })?;
    let reader = match store.open(&entry.key(&snap.id)).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => {
            return Err(SnapshotError::Damaged { id: snap.id.clone(), problems: format!("{path} is missing") })
        }
        Err(e) => return Err(e.into()),
    };
    let state = std::sync::Arc::new(std::sync::Mutex::new((Sha256::new(), 0u64)));
    let reader: crate::store::ObjectReader = Box::pin(Hashing { inner: reader, state: state.clone() });
    Ok((reader, Checked { state, entry, id: snap.id.clone() }))
}

/// Opens a data file for one read like [`open_checked`], with the codec
/// it is compressed with.
pub async fn open_data(
    store: &dyn Store,
    snap: &Listed,
    path: &str,
) -> Result<(crate::store::ObjectReader, Checked, Codec), SnapshotError> {
    let (reader, checked) = open_checked(store, snap, path).await?;
    let codec = checked.entry.codec().ok_or_else(|| SnapshotError::BadManifest {
        id: snap.id.clone(),
        reason: format!("{path} is a data file without a codec"),
    })?;
    Ok((reader, checked, codec))
}

/// Reads a small file of a snapshot whole and checks it: the bytes
/// returned are the ones the manifest names.
pub async fn get_checked(store: &dyn Store, snap: &Listed, path: &str) -> Result<Vec<u8>, SnapshotError> {
    let (mut reader, checked) = open_checked(store, snap, path).await?;
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).await.map_err(|source| {
        SnapshotError::Store(StoreError::Io { op: "reading", store: store.describe(), key: path.to_string(), source })
    })?;
    checked.result()?;
    Ok(bytes)
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
