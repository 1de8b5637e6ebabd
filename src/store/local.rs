//! The local-folder store.
//!
//! Objects are files under the root folder. A file is written as
//! `<name>.partial`, flushed to disk and renamed into place on `finish`, so a
//! reader never sees a half-written object under its real name.
//!
//! Conditional writes (the `latest` pointer, the run lock) hold an exclusive
//! OS file lock on `.scrubsnap-cas.lock` in the root while they compare and
//! replace, so two processes on one machine (or one NFS server that honours
//! locks) cannot interleave. The tag of an object is its SHA-256.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::fs;
use tokio::io::{AsyncWriteExt, BufWriter};

use sha2::{Digest, Sha256};

use super::{check_key, Condition, ObjectMeta, ObjectReader, ObjectWriter, Store, StoreError, Tagged};

const PARTIAL_SUFFIX: &str = ".partial";
const CAS_LOCK: &str = ".scrubsnap-cas.lock";
/// Files being written before their key is known (a data file before its
/// checksum names its blob), on the store's file system so that storing
/// them is a rename.
const SPOOL: &str = "blobs/.incoming";

/// A folder on the local file system.
pub struct LocalStore {
    root: PathBuf,
    /// Where keys under `blobs/` live, when not under `root` (a restore
    /// reading blobs from its cache).
    blobs: Option<PathBuf>,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> Self {
        LocalStore { root, blobs: None }
    }

    /// A store whose keys under `blobs/` are files under `blobs` instead
    /// (`blobs/sha256/...` is `<blobs>/sha256/...`).
    pub fn with_blobs(root: PathBuf, blobs: PathBuf) -> Self {
        LocalStore { root, blobs: Some(blobs) }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        match (&self.blobs, key.strip_prefix(super::BLOBS)) {
            (Some(dir), Some(rest)) => Ok(dir.join(rest)),
            _ => Ok(self.root.join(key)),
        }
    }

    fn io(&self, op: &'static str, key: &str, source: std::io::Error) -> StoreError {
        StoreError::Io { op, store: self.describe(), key: key.to_string(), source }
    }

    /// Runs `f` while holding the store's exclusive compare-and-swap lock.
    async fn with_cas_lock<T: Send + 'static>(
        &self,
        key: &str,
        f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let lock_path = self.root.join(CAS_LOCK);
        let root = self.root.clone();
        let r = tokio::task::spawn_blocking(move || {
            private_dirs(&root)?;
            let lock = private_file(&lock_path, false)?;
            lock.lock()?;
            let out = f();
            let _ = lock.unlock();
            out
        })
        .await
        .map_err(|e| self.io("locking", key, std::io::Error::other(e.to_string())))?;
        r.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                StoreError::Precondition { store: self.describe(), key: key.to_string() }
            } else {
                self.io("writing", key, e)
            }
        })
    }
}

fn tag_of(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn read_if_exists(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn precondition_failed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::AlreadyExists, "precondition failed")
}

struct LocalWriter {
    file: Option<BufWriter<fs::File>>,
    partial: PathBuf,
    target: PathBuf,
    key: String,
    store: String,
}

impl LocalWriter {
    fn io(&self, op: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Io { op, store: self.store.clone(), key: self.key.clone(), source }
    }
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        let file = self.file.as_mut().ok_or_else(|| StoreError::Io {
            op: "writing",
            store: self.store.clone(),
            key: self.key.clone(),
            source: std::io::Error::other("writer already closed"),
        })?;
        let r = file.write_all(buf).await;
        r.map_err(|e| self.io("writing", e))
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        let Some(mut file) = self.file.take() else {
            return Err(self.io("finishing", std::io::Error::other("writer already closed")));
        };
        let flushed = async {
            file.flush().await?;
            file.get_mut().sync_all().await?;
            drop(file);
            fs::rename(&self.partial, &self.target).await
        }
        .await;
        if let Err(e) = flushed {
            let _ = fs::remove_file(&self.partial).await;
            return Err(self.io("finishing", e));
        }
        Ok(())
    }

    async fn abort(mut self: Box<Self>) {
        self.file.take();
        let _ = fs::remove_file(&self.partial).await;
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        // Dropped without finish: remove the partial file.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("local folder {}", self.root.display())
    }

    fn is_local(&self) -> bool {
        true
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        let unusable = |reason: String| StoreError::Unusable { store: self.describe(), reason };
        if let Ok(meta) = fs::metadata(&self.root).await {
            if !meta.is_dir() {
                return Err(unusable("it exists and is not a folder".into()));
            }
        }
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || private_dirs(&root))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| unusable(format!("cannot create the folder: {e}")))?;
        let probe = self.root.join(format!(".scrubsnap-write-test-{}", std::process::id()));
        fs::write(&probe, b"ok").await.map_err(|e| unusable(format!("cannot write in the folder: {e}")))?;
        let _ = fs::remove_file(&probe).await;
        Ok(())
    }

    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let target = self.path(key)?;
        let mut partial = target.clone().into_os_string();
        partial.push(PARTIAL_SUFFIX);
        let partial = PathBuf::from(partial);
        let (dir, path) = (target.parent().map(Path::to_path_buf), partial.clone());
        let file = tokio::task::spawn_blocking(move || {
            if let Some(dir) = dir {
                private_dirs(&dir)?;
            }
            private_file(&path, true)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| self.io("creating", key, e))?;
        let file = fs::File::from_std(file);
        Ok(Box::new(LocalWriter {
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            partial,
            target,
            key: key.to_string(),
            store: self.describe(),
        }))
    }

    async fn open(&self, key: &str) -> Result<ObjectReader, StoreError> {
        let path = self.path(key)?;
        match fs::File::open(&path).await {
            Ok(f) => Ok(Box::pin(tokio::io::BufReader::with_capacity(256 * 1024, f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound { store: self.describe(), key: key.to_string() })
            }
            Err(e) => Err(self.io("opening", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut out = Vec::new();
        let start = if prefix.is_empty() { self.root.clone() } else { self.path(prefix.trim_end_matches('/'))? };
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let mut rd = match fs::read_dir(&dir).await {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io("listing", prefix, e)),
            };
            while let Some(entry) = rd.next_entry().await.map_err(|e| self.io("listing", prefix, e))? {
                let ft = entry.file_type().await.map_err(|e| self.io("listing", prefix, e))?;
                let path = entry.path();
                if ft.is_dir() {
                    stack.push(path);
                } else if ft.is_file() {
                    let name = path.to_string_lossy();
                    if name.ends_with(PARTIAL_SUFFIX)
                        || name.contains("/.scrubsnap-write-test-")
                        || name.ends_with(CAS_LOCK)
                        || path.starts_with(self.root.join(SPOOL))
                    {
                        continue;
                    }
                    let meta = entry.metadata().await.ok();
                    let size = meta.as_ref().map_or(0, |m| m.len());
                    let modified = meta.and_then(|m| m.modified().ok()).map(chrono::DateTime::<chrono::Utc>::from);
                    if let Some(key) = relative_key(&self.root, &path) {
                        out.push(ObjectMeta { key, size, modified });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dir = if prefix.is_empty() { self.root.clone() } else { self.path(prefix.trim_end_matches('/'))? };
        let mut out = Vec::new();
        let mut rd = match fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(self.io("listing", prefix, e)),
        };
        while let Some(entry) = rd.next_entry().await.map_err(|e| self.io("listing", prefix, e))? {
            if entry.file_type().await.map(|t| t.is_dir()).unwrap_or(false) {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let path = self.path(key)?;
        match fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("reading", key, e)),
        }
    }

    fn spool_dir(&self) -> Option<PathBuf> {
        Some(self.root.join(SPOOL))
    }

    /// Moves the file into place (it was written and synced in the spool
    /// folder on the same file system); copies it when it is elsewhere.
    async fn put_file(&self, key: &str, from: &Path) -> Result<(), StoreError> {
        let target = self.path(key)?;
        let from = from.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = target.parent() {
                private_dirs(dir)?;
            }
            match std::fs::rename(&from, &target) {
                Ok(()) => Ok(()),
                // Another file system: copy, sync, rename.
                Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                    let mut partial = target.clone().into_os_string();
                    partial.push(PARTIAL_SUFFIX);
                    let partial = PathBuf::from(partial);
                    let mut out = private_file(&partial, true)?;
                    std::io::copy(&mut std::fs::File::open(&from)?, &mut out)?;
                    out.sync_all()?;
                    std::fs::rename(&partial, &target)?;
                    std::fs::remove_file(&from)
                }
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| self.io("writing", key, e))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let path = self.path(prefix.trim_end_matches('/'))?;
        match fs::remove_dir_all(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("deleting", prefix, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.io("deleting", key, e)),
        }
        // Remove folders left empty, up to the root.
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.root || !d.starts_with(&self.root) || fs::remove_dir(&d).await.is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        Ok(())
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<Tagged>, StoreError> {
        let path = self.path(key)?;
        let data = read_if_exists(&path).map_err(|e| self.io("reading", key, e))?;
        Ok(data.map(|data| Tagged { tag: tag_of(&data), data }))
    }

    async fn put_if(&self, key: &str, data: &[u8], cond: Condition) -> Result<String, StoreError> {
        let path = self.path(key)?;
        let tag = tag_of(data);
        let data = data.to_vec();
        self.with_cas_lock(key, move || {
            let current = read_if_exists(&path)?;
            let ok = match (&cond, &current) {
                (Condition::Any, _) | (Condition::Absent, None) => true,
                (Condition::Matches(tag), Some(cur)) => &tag_of(cur) == tag,
                _ => false,
            };
            if !ok {
                return Err(precondition_failed());
            }
            if let Some(parent) = path.parent() {
                private_dirs(parent)?;
            }
            let mut partial = path.clone().into_os_string();
            partial.push(PARTIAL_SUFFIX);
            let partial = PathBuf::from(partial);
            {
                use std::io::Write;
                let mut file = private_file(&partial, true)?;
                file.write_all(&data)?;
                file.sync_all()?;
            }
            std::fs::rename(&partial, &path)
        })
        .await?;
        Ok(tag)
    }

    async fn delete_if(&self, key: &str, tag: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let tag = tag.to_string();
        self.with_cas_lock(key, move || match read_if_exists(&path)? {
            Some(cur) if tag_of(&cur) == tag => std::fs::remove_file(&path),
            Some(_) => Err(precondition_failed()),
            None => Ok(()),
        })
        .await
    }
}

fn relative_key(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    Some(parts.join("/"))
}

/// Creates a folder and its missing parents, readable by this user only
/// (0700): a snapshot holds a database's structure and data.
pub fn private_dirs(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Opens a file for writing, created readable and writable by this user
/// only (0600); `truncate` empties an existing one.
pub fn private_file(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().create(true).write(true).truncate(truncate).mode(0o600).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("s"));
        store.check_writable().await.unwrap();
        store.put("a/b/c.txt", b"hello").await.unwrap();
        store.put("a/d.txt", b"x").await.unwrap();
        assert_eq!(store.get("a/b/c.txt").await.unwrap(), b"hello");
        let keys: Vec<_> = store.list("a").await.unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(keys, vec!["a/b/c.txt", "a/d.txt"]);
        assert_eq!(store.list_dirs("").await.unwrap(), vec!["a"]);
        store.delete("a/b/c.txt").await.unwrap();
        store.delete("a/b/c.txt").await.unwrap();
        assert!(matches!(store.open("a/b/c.txt").await, Err(StoreError::NotFound { .. })));
        let mut r = store.open("a/d.txt").await.unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "x");
    }

    #[tokio::test]
    async fn unfinished_objects_are_invisible() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        let mut w = store.create("x/y").await.unwrap();
        w.write(b"partial").await.unwrap();
        assert!(store.list("").await.unwrap().is_empty());
        w.abort().await;
        let w = store.create("x/z").await.unwrap();
        drop(w);
        assert!(store.list("").await.unwrap().is_empty());
        assert!(!dir.path().join("x/y.partial").exists());
        assert!(!dir.path().join("x/z.partial").exists());
    }

    #[tokio::test]
    async fn a_file_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("file");
        std::fs::write(&f, b"").unwrap();
        let err = LocalStore::new(f).check_writable().await.unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
    }
}
