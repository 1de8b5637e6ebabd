//! The `latest` pointer: a small object naming the newest published
//! snapshot of a store.
//!
//! It is written after the snapshot's manifest, with a conditional write
//! (If-None-Match when absent, If-Match on the version read), so two
//! overlapping runs cannot interleave, and it never moves backwards: a run
//! that finishes after a newer snapshot was published leaves it alone.

use serde::{Deserialize, Serialize};

use super::SnapshotError;
use crate::store::{compare_and_swap, Store, StoreError};

/// The pointer's key in the store.
pub const LATEST: &str = "latest";

/// What the pointer holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pointer {
    pub snapshot_id: String,
    pub published_at: chrono::DateTime<chrono::Utc>,
}

/// What [`advance`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advanced {
    Moved,
    /// A newer snapshot was already `latest`; the pointer was left on it.
    KeptNewer(String),
}

/// The snapshot id `latest` names, if the store has a readable pointer.
pub async fn read(store: &dyn Store) -> Result<Option<String>, StoreError> {
    let Some(t) = store.get_tagged(LATEST).await? else { return Ok(None) };
    Ok(serde_json::from_slice::<Pointer>(&t.data).ok().map(|p| p.snapshot_id))
}

/// The id `latest` resolves to among `complete` (newest first): the
/// pointer's snapshot, or the newest when there is no pointer or it names a
/// snapshot that is gone; the same rule as [`super::resolve`].
pub async fn current(store: &dyn Store, complete: &[super::Listed]) -> Result<Option<String>, StoreError> {
    let pointer = read(store).await?;
    Ok(pointer.filter(|id| complete.iter().any(|s| &s.id == id)).or_else(|| complete.first().map(|s| s.id.clone())))
}

/// Points `latest` at `id` unless a newer snapshot is already there.
pub async fn advance(store: &dyn Store, id: &str) -> Result<Advanced, SnapshotError> {
    let body = Pointer { snapshot_id: id.to_string(), published_at: chrono::Utc::now() };
    let json = serde_json::to_vec_pretty(&body)
        .map_err(|e| SnapshotError::BadManifest { id: id.to_string(), reason: e.to_string() })?;
    let swapped = compare_and_swap(store, LATEST, &json, 20, |current| {
        match current.and_then(|c| serde_json::from_slice::<Pointer>(&c.data).ok()) {
            Some(p) if p.snapshot_id.as_str() > id => Err(p.snapshot_id),
            _ => Ok(()),
        }
    })
    .await?;
    Ok(match swapped {
        Ok(_) => Advanced::Moved,
        Err(newer) => Advanced::KeptNewer(newer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    #[tokio::test]
    async fn moves_forward_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        assert_eq!(read(&store).await.unwrap(), None);
        assert_eq!(advance(&store, "20260101T000000.000Z").await.unwrap(), Advanced::Moved);
        assert_eq!(advance(&store, "20260301T000000.000Z").await.unwrap(), Advanced::Moved);
        assert_eq!(
            advance(&store, "20260201T000000.000Z").await.unwrap(),
            Advanced::KeptNewer("20260301T000000.000Z".into())
        );
        assert_eq!(read(&store).await.unwrap().as_deref(), Some("20260301T000000.000Z"));
    }
}
