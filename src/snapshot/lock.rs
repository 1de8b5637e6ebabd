//! The run lock: one `create` at a time per store.
//!
//! A small object (`create.lock`) names the run that holds it and when the
//! lock expires. It is taken with a conditional write, refreshed by the
//! holder while it runs, and released at the end. A run that finds an
//! unexpired lock refuses to start; an expired one (a killed run) is taken
//! over, and so is one whose holder ran on this host (same boot and PID
//! namespace) and is no longer running (a retry after a crash); `--force`
//! breaks a lock that has not expired.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{compare_and_swap, Condition, Store, StoreError};

/// The lock's key in the store.
pub const LOCK: &str = "create.lock";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Body {
    token: String,
    host: String,
    pid: u32,
    started_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    /// Where `pid` means something: the boot and the PID namespace of the
    /// holder, so that only a run that shares them judges whether it lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    processes: Option<String>,
}

/// This machine's boot and PID namespace, as a run on it sees them; `None`
/// where they cannot be read (not Linux).
fn processes() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{} {}", boot.trim(), ns.display()))
}

/// Whether the lock's holder ran in this run's process space and is gone:
/// same host, boot and PID namespace, and no process with its pid.
fn holder_is_dead(held: &Body) -> bool {
    held.host == hostname()
        && held.processes.is_some()
        && held.processes == processes()
        && held.pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{}", held.pid)).exists()
}

/// Why the lock could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another create is running on {store} (host {host}, pid {pid}, started {started_at}, lock expires {expires_at}); \
         wait for it, or pass --force if that run is dead"
    )]
    Held {
        store: String,
        host: String,
        pid: u32,
        started_at: chrono::DateTime<chrono::Utc>,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("the run lock on {0} was taken over by another run (--force?) while this run was writing")]
    Lost(String),
    #[error("the run lock: {0}")]
    Store(#[from] StoreError),
}

/// A held lock. Refresh it at least every `ttl / 3`; release it at the end.
#[derive(Debug)]
pub struct RunLock {
    body: Body,
    tag: String,
    ttl: Duration,
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

impl RunLock {
    /// Takes the lock, or says who holds it.
    pub async fn acquire(store: &dyn Store, ttl: Duration, force: bool) -> Result<RunLock, LockError> {
        let now = chrono::Utc::now();
        let body = Body {
            token: hex::encode(rand::random::<[u8; 16]>()),
            host: hostname(),
            pid: std::process::id(),
            started_at: now,
            expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(10)),
            processes: processes(),
        };
        let json = serde_json::to_vec_pretty(&body).map_err(|e| StoreError::Io {
            op: "writing",
            store: store.describe(),
            key: LOCK.into(),
            source: std::io::Error::other(e),
        })?;
        let taken = compare_and_swap(store, LOCK, &json, 10, |current| {
            let Some(current) = current else { return Ok(()) };
            match serde_json::from_slice::<Body>(&current.data) {
                Ok(held) if held.expires_at > chrono::Utc::now() && !force && holder_is_dead(&held) => {
                    tracing::warn!(
                        host = %held.host,
                        pid = held.pid,
                        started_at = %held.started_at,
                        "taking over the run lock of a run on this host whose process is gone (pid {} is not running)",
                        held.pid
                    );
                    Ok(())
                }
                Ok(held) if held.expires_at > chrono::Utc::now() && !force => Err(LockError::Held {
                    store: store.describe(),
                    host: held.host,
                    pid: held.pid,
                    started_at: held.started_at,
                    expires_at: held.expires_at,
                }),
                Ok(held) => {
                    tracing::warn!(
                        host = %held.host,
                        pid = held.pid,
                        started_at = %held.started_at,
                        "{} the run lock of another run",
                        if held.expires_at > chrono::Utc::now() { "--force: breaking" } else { "taking over the expired" }
                    );
                    Ok(())
                }
                Err(_) => {
                    tracing::warn!("replacing an unreadable run lock");
                    Ok(())
                }
            }
        })
        .await?;
        Ok(RunLock { body, tag: taken?, ttl })
    }

    /// When this run took the lock.
    pub fn taken_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.body.started_at
    }

    /// How often to call [`Self::refresh`].
    pub fn refresh_every(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_secs(1))
    }

    /// Moves the expiry on; fails with [`LockError::Lost`] if another run
    /// took the lock.
    pub async fn refresh(&mut self, store: &dyn Store) -> Result<(), LockError> {
        let mut body = self.body.clone();
        body.expires_at =
            chrono::Utc::now() + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::minutes(10));
        let json = serde_json::to_vec_pretty(&body).map_err(|e| StoreError::Io {
            op: "writing",
            store: store.describe(),
            key: LOCK.into(),
            source: e.into(),
        })?;
        match store.put_if(LOCK, &json, Condition::Matches(self.tag.clone())).await {
            Ok(tag) => {
                self.tag = tag;
                self.body = body;
                Ok(())
            }
            Err(StoreError::Precondition { .. }) => Err(LockError::Lost(store.describe())),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lock up (if it is still ours).
    pub async fn release(self, store: &dyn Store) {
        match store.delete_if(LOCK, &self.tag).await {
            Ok(()) => {}
            Err(StoreError::Precondition { .. }) => tracing::warn!("the run lock was taken over by another run"),
            Err(e) => tracing::warn!("could not release the run lock (it expires by itself): {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;

    #[tokio::test]
    async fn one_holder_expiry_and_force() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf());
        let mut first = RunLock::acquire(&store, Duration::from_secs(60), false).await.unwrap();
        let err = RunLock::acquire(&store, Duration::from_secs(60), false).await.unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        first.refresh(&store).await.unwrap();
        let forced = RunLock::acquire(&store, Duration::from_secs(60), true).await.unwrap();
        assert!(matches!(first.refresh(&store).await, Err(LockError::Lost(_))));
        forced.release(&store).await;
        // An expired lock is taken over without --force.
        let short = RunLock::acquire(&store, Duration::from_millis(1), false).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let next = RunLock::acquire(&store, Duration::from_secs(60), false).await.unwrap();
        short.release(&store).await; // not ours any more: leaves it
        assert!(store.get_tagged(LOCK).await.unwrap().is_some());
        next.release(&store).await;
        assert!(store.get_tagged(LOCK).await.unwrap().is_none());
    }
}
