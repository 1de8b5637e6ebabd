//! Reading every file of a snapshot once: checking it ([`verify`]), or
//! downloading it from a remote store into a local folder, or the pull
//! cache for blobs, to restore from ([`stage`]).
//!
//! Each distinct object is read once however many files of the manifest
//! name it (empty tables share one), hashed on the way, and written under
//! a temporary name that becomes its real one only when size and SHA-256
//! match the manifest.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cache::BlobCache;
use super::{FileEntry, Listed, SnapshotError};
use crate::store::{Store, StoreError};

/// What staging a snapshot did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Staged {
    pub downloaded_files: u64,
    pub downloaded_bytes: u64,
    /// Blobs found in the pull cache, checked, and used.
    pub cached_files: u64,
    pub cached_bytes: u64,
    /// Cached blobs that were damaged and downloaded again.
    pub refetched: u64,
}

/// Checks every file's size and SHA-256 against the manifest. Reports every
/// damaged or missing file at once.
pub async fn verify(store: &dyn Store, snap: &Listed) -> Result<(), SnapshotError> {
    check_files(store, snap, None, None, 4, None).await.map(|_| ())
}

/// Downloads every file of a snapshot once, `jobs` at a time, into `dir`
/// (where a [`crate::store::LocalStore`] over `dir` finds them by their
/// keys), or, for blobs when there is a cache, into the cache unless it
/// holds them already; checks each size and SHA-256 on the way as
/// [`verify`] does. Restoring from a remote store then reads the copies.
pub async fn stage(
    store: &dyn Store,
    snap: &Listed,
    dir: &Path,
    cache: Option<&BlobCache>,
    jobs: usize,
    progress: Option<&crate::progress::Progress>,
) -> Result<Staged, SnapshotError> {
    check_files(store, snap, Some(dir), cache, jobs, progress).await
}

/// How one object ended.
enum Outcome {
    Downloaded { bytes: u64, refetched: bool },
    Cached(u64),
    Checked,
    Problem(String),
}

async fn check_files(
    store: &dyn Store,
    snap: &Listed,
    copy_to: Option<&Path>,
    cache: Option<&BlobCache>,
    jobs: usize,
    progress: Option<&crate::progress::Progress>,
) -> Result<Staged, SnapshotError> {
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&FileEntry> = snap.manifest.files.iter().filter(|f| seen.insert(f.key(&snap.id))).collect();
    let checks = unique.into_iter().map(|f| async move {
        let key = f.key(&snap.id);
        let dest = match (copy_to, cache) {
            (_, Some(cache)) if f.blob => Some(cache.path_of(&key)),
            (Some(dir), _) => Some(dir.join(&key)),
            (None, _) => None,
        };
        let mut refetched = false;
        if let (Some(dest), Some(_)) = (&dest, cache.filter(|_| f.blob)) {
            match cached(dest, f).await {
                Ok(true) => {
                    if let Some(p) = progress {
                        p.add(f.bytes);
                    }
                    return Ok(Outcome::Cached(f.bytes));
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(file = %f.path, "a cached copy is damaged ({e}); downloading it again");
                    refetched = true;
                }
            }
        }
        let checked = check_file(store, &key, f, dest.as_deref()).await?;
        if let Some(p) = progress {
            p.add(f.bytes);
        }
        match checked {
            Some(problem) => Ok::<_, StoreError>(Outcome::Problem(problem)),
            None if dest.is_some() => Ok(Outcome::Downloaded { bytes: f.bytes, refetched }),
            None => Ok(Outcome::Checked),
        }
    });
    let results: Vec<Result<Outcome, StoreError>> =
        futures_util::stream::iter(checks).buffer_unordered(jobs.max(1)).collect().await;
    let mut problems = Vec::new();
    let mut staged = Staged::default();
    for r in results {
        match r? {
            Outcome::Problem(p) => problems.push(p),
            Outcome::Downloaded { bytes, refetched } => {
                staged.downloaded_files += 1;
                staged.downloaded_bytes += bytes;
                staged.refetched += u64::from(refetched);
            }
            Outcome::Cached(bytes) => {
                staged.cached_files += 1;
                staged.cached_bytes += bytes;
            }
            Outcome::Checked => {}
        }
    }
    if problems.is_empty() {
        Ok(staged)
    } else {
        // By path (files are numbered in table order), whichever finished first.
        problems.sort();
        Err(SnapshotError::Damaged { id: snap.id.clone(), problems: problems.join("; ") })
    }
}

/// Whether the cache holds `f` intact at `path` (then marked as used); an
/// error when it holds a damaged copy (then removed).
async fn cached(path: &Path, f: &FileEntry) -> Result<bool, String> {
    let path = path.to_path_buf();
    let (bytes, sha256) = (f.bytes, f.sha256.clone());
    let checked = tokio::task::spawn_blocking(move || -> Result<bool, String> {
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.to_string()),
        };
        let mut hasher = Sha256::new();
        let n = std::io::copy(&mut file, &mut hasher).map_err(|e| e.to_string())?;
        if n != bytes || hex::encode(hasher.finalize()) != sha256 {
            let _ = std::fs::remove_file(&path);
            return Err("its size or SHA-256 does not match".into());
        }
        BlobCache::touch(&path).map_err(|e| e.to_string())?;
        Ok(true)
    });
    checked.await.map_err(|e| e.to_string())?
}

/// Reads one object (copying it to `dest`, under a temporary name until it
/// is checked), returning what is wrong with it, if anything.
async fn check_file(
    store: &dyn Store,
    key: &str,
    f: &FileEntry,
    dest: Option<&Path>,
) -> Result<Option<String>, StoreError> {
    let mut reader = match store.open(key).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Ok(Some(format!("{} is missing", f.path))),
        Err(e) => return Err(e),
    };
    let local = |op: &'static str, dest: &Path| {
        let (store, key) = (format!("{}", dest.display()), key.to_string());
        move |source| StoreError::Io { op, store, key, source }
    };
    let mut copy = match dest {
        Some(dest) => Some(spool(dest).await.map_err(local("creating", dest))?),
        None => None,
    };
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).await.map_err(|source| StoreError::Io {
            op: "reading",
            store: store.describe(),
            key: key.to_string(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
        if let (Some((file, _)), Some(dest)) = (copy.as_mut(), dest) {
            file.write_all(&buf[..n]).await.map_err(local("writing", dest))?;
        }
    }
    let sum = hex::encode(hasher.finalize());
    let problem = if bytes != f.bytes {
        Some(format!("{} has {} bytes, the manifest says {}", f.path, bytes, f.bytes))
    } else if sum != f.sha256 {
        Some(format!("{} does not match its SHA-256 checksum", f.path))
    } else {
        None
    };
    if let (Some((mut file, temp)), Some(dest), None) = (copy, dest, &problem) {
        file.flush().await.map_err(local("writing", dest))?;
        drop(file);
        temp.persist(dest).map_err(|e| local("writing", dest)(e.error))?;
    }
    Ok(problem)
}

/// A temporary file next to `dest` (0600, in 0700 folders).
async fn spool(dest: &Path) -> std::io::Result<(tokio::fs::File, tempfile::TempPath)> {
    let parent = dest.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let temp = tokio::task::spawn_blocking(move || {
        crate::store::private_dirs(&parent)?;
        tempfile::Builder::new().prefix(".download-").tempfile_in(&parent)
    })
    .await
    .map_err(std::io::Error::other)??;
    let (file, path) = temp.into_parts();
    Ok((tokio::fs::File::from_std(file), path))
}
