//! The pull cache: data files (blobs) downloaded from a remote store and
//! verified, kept on this machine so that the next restore of a snapshot
//! that shares them downloads only what is new.
//!
//! A blob's name is its SHA-256, so a cached file is either the right bytes
//! or damaged, never stale: each is hashed again before a restore uses it,
//! and a damaged one is downloaded again. The cache is bounded: after a
//! restore, the files used longest ago are removed until it fits (a file's
//! modification time is set when it is used). Folders are 0700, files
//! 0600. Restores sharing a cache hold a shared lock on it; eviction runs
//! only when no other restore holds it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::store::{private_dirs, private_file};

/// The cache's lock file, in its root.
const LOCK: &str = ".lock";

/// A cache folder in use (its shared lock held until dropped).
pub struct BlobCache {
    root: PathBuf,
    limit: u64,
    lock: std::fs::File,
}

/// What an eviction removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Evicted {
    pub files: u64,
    pub bytes: u64,
    /// What is left.
    pub kept_bytes: u64,
}

impl BlobCache {
    /// The default folder: `$XDG_CACHE_HOME/scrubsnap`, else
    /// `~/.cache/scrubsnap`; `None` when neither `$XDG_CACHE_HOME` nor the
    /// home folder exists (no home folder is made up).
    pub fn default_dir() -> Option<PathBuf> {
        let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = || {
            let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).map(PathBuf::from)?;
            home.is_dir().then(|| home.join(".cache"))
        };
        xdg.filter(|p| p.is_absolute() && p.is_dir()).or_else(home).map(|d| d.join("scrubsnap"))
    }

    /// Opens (creating) the cache at `root`, holding at most `limit` bytes
    /// after an eviction.
    pub fn open(root: &Path, limit: u64) -> std::io::Result<BlobCache> {
        private_dirs(root)?;
        let lock = private_file(&root.join(LOCK), false)?;
        lock.lock_shared()?;
        Ok(BlobCache { root: root.to_path_buf(), limit, lock })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where keys under `blobs/` are (for [`crate::store::LocalStore::with_blobs`]).
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join(super::BLOBS.trim_end_matches('/'))
    }

    /// The file of a blob's key.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Marks a cached file as just used.
    pub fn touch(path: &Path) -> std::io::Result<()> {
        std::fs::File::options().write(true).open(path)?.set_modified(SystemTime::now())
    }

    /// Removes the files used longest ago until the cache holds at most its
    /// limit; does nothing while another restore uses the cache.
    pub fn evict(&self) -> std::io::Result<Evicted> {
        let mut files = Vec::new();
        walk(&self.blobs_dir(), &mut files)?;
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total <= self.limit {
            return Ok(Evicted { kept_bytes: total, ..Evicted::default() });
        }
        // Our shared lock becomes exclusive only if nobody else holds one.
        match self.lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!("another restore uses the cache; it is trimmed next time");
                return Ok(Evicted { kept_bytes: total, ..Evicted::default() });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        files.sort_by_key(|f| f.2);
        let mut evicted = Evicted::default();
        for (path, size, _) in files {
            if total <= self.limit {
                break;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            total -= size;
            evicted.files += 1;
            evicted.bytes += size;
        }
        evicted.kept_bytes = total;
        self.lock.lock_shared()?;
        Ok(evicted)
    }
}

/// Every file under `dir`: (path, size, last used).
fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64, SystemTime)>) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(&entry.path(), out)?;
        } else if meta.is_file() {
            out.push((entry.path(), meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_until_it_fits() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path(), 25).unwrap();
        let day = std::time::Duration::from_secs(86_400);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let p = cache.path_of(&format!("blobs/sha256/00/{name}"));
            private_dirs(p.parent().unwrap()).unwrap();
            std::fs::write(&p, [0u8; 10]).unwrap();
            let f = std::fs::File::options().write(true).open(&p).unwrap();
            f.set_modified(SystemTime::now() - day * (3 - i as u32)).unwrap();
        }
        // "a" is used now: "b" is the oldest.
        BlobCache::touch(&cache.path_of("blobs/sha256/00/a")).unwrap();
        let e = cache.evict().unwrap();
        assert_eq!((e.files, e.bytes, e.kept_bytes), (1, 10, 20));
        assert!(!cache.path_of("blobs/sha256/00/b").exists());
        assert!(cache.path_of("blobs/sha256/00/a").exists());
        // Another user of the cache: no eviction.
        let other = BlobCache::open(dir.path(), 5).unwrap();
        assert_eq!(other.evict().unwrap().files, 0);
        drop(cache);
        assert_eq!(other.evict().unwrap().files, 2);
    }
}
