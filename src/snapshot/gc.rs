//! Collecting the blobs no snapshot refers to any more, after `prune`.
//!
//! Safe against a create running at the same time, by two rules:
//!
//! - **The run lock.** Blobs are deleted only while this run holds the
//!   store's run lock, the one every create holds from start to publish. A
//!   create cannot start meanwhile, and a create that was running is not
//!   collected against: if its lock is held, nothing is collected (the next
//!   prune does it). A create confirms it still holds its lock just before
//!   it publishes; had its lock expired and been taken over (by a prune,
//!   say), it publishes nothing.
//! - **A grace period.** A blob written less than the grace period ago is
//!   never deleted, whatever refers to it: it may belong to a create that
//!   broke the lock (`--force`) or to a snapshot still being written.
//!
//! The set of referenced blobs is read from every complete snapshot's
//! manifest after the snapshots were deleted; if any manifest cannot be
//! read, nothing is collected, since its blobs are unknown.

use std::collections::HashSet;
use std::time::Duration;

use super::lock::{LockError, RunLock};
use super::{list_all, SnapshotError, BLOBS};
use crate::store::{ObjectMeta, Store};

/// What a collection did (or, in a dry run, would do).
#[derive(Debug, Default, Clone)]
pub struct Collected {
    /// Blobs deleted (or to delete).
    pub deleted: Vec<ObjectMeta>,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub young: u64,
    /// Referenced blobs.
    pub referenced: u64,
}

/// Why nothing was collected.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("the manifest of snapshot {0} cannot be read, so which data files it needs is unknown; nothing was collected (fix or delete that snapshot)")]
    Unreadable(String),
}

/// Deletes the blobs no complete snapshot refers to and older than
/// `grace`; in a dry run, says which. `Ok(None)`: a create holds the run
/// lock, so nothing was collected.
pub async fn collect(
    store: &dyn Store,
    grace: Duration,
    dry_run: bool,
    lock_ttl: Duration,
) -> Result<Option<Collected>, GcError> {
    let lock = match dry_run {
        true => None,
        false => match RunLock::acquire(store, lock_ttl, false).await {
            Ok(lock) => Some(lock),
            Err(LockError::Held { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        },
    };
    let result = sweep(store, grace, dry_run, lock).await;
    result.map(Some)
}

async fn sweep(
    store: &dyn Store,
    grace: Duration,
    dry_run: bool,
    mut lock: Option<RunLock>,
) -> Result<Collected, GcError> {
    let found = async {
        let (listed, unreadable) = list_all(store).await?;
        if let Some((id, _)) = unreadable.into_iter().next() {
            return Err(GcError::Unreadable(id));
        }
        let referenced: HashSet<String> =
            listed.iter().flat_map(|s| s.manifest.files.iter().filter(|f| f.blob).map(|f| f.key(&s.id))).collect();
        let blobs = store.list(BLOBS).await.map_err(SnapshotError::from)?;
        Ok::<_, GcError>((referenced, blobs))
    };
    let (referenced, blobs) = match found.await {
        Ok(f) => f,
        Err(e) => {
            if let Some(lock) = lock {
                lock.release(store).await;
            }
            return Err(e);
        }
    };
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::hours(24));
    let mut out = Collected { referenced: referenced.len() as u64, ..Collected::default() };
    for b in blobs {
        if referenced.contains(&b.key) {
            continue;
        }
        match b.modified {
            Some(t) if t < cutoff => out.deleted.push(b),
            _ => out.young += 1,
        }
    }
    if dry_run {
        return Ok(out);
    }
    let deleted = delete(store, &out.deleted, lock.as_mut()).await;
    if let Some(lock) = lock {
        lock.release(store).await;
    }
    deleted.map(|()| out)
}

/// Deletes `blobs`, refreshing the lock as it goes.
async fn delete(store: &dyn Store, blobs: &[ObjectMeta], mut lock: Option<&mut RunLock>) -> Result<(), GcError> {
    let mut last = std::time::Instant::now();
    for b in blobs {
        if let Some(lock) = lock.as_deref_mut() {
            if last.elapsed() >= lock.refresh_every() {
                lock.refresh(store).await?;
                last = std::time::Instant::now();
            }
        }
        store.delete(&b.key).await.map_err(SnapshotError::from)?;
    }
    Ok(())
}
