//! `scrubsnap prune`: deletes old snapshots, never the newest nor the one `latest` names,
//! cleans up incomplete ones left by failed or killed runs, then deletes the
//! data files (blobs) no remaining snapshot refers to ([`snapshot::gc`]).

use std::time::Duration;

use scrubsnap::progress::human_bytes;
use scrubsnap::snapshot;

use super::common::parse_duration;
use super::common::S3Args;
use super::{Context, Failure};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  scrubsnap prune --dest ./snapshots --keep-last 7 --dry-run\n  scrubsnap prune --dest ./snapshots --keep-last 3 --older-than 30d"
)]
pub struct Args {
    /// The store.
    #[arg(long, env = "SCRUBSNAP_DEST")]
    dest: String,

    #[command(flatten)]
    s3: S3Args,

    /// Keep this many newest complete snapshots (at least 1: the one `latest` names is never deleted).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), env = "SCRUBSNAP_KEEP_LAST")]
    keep_last: u32,

    /// Delete older snapshots only if they are older than this (e.g. 30d).
    #[arg(long, value_parser = parse_duration, env = "SCRUBSNAP_OLDER_THAN")]
    older_than: Option<Duration>,

    /// Incomplete snapshots (no manifest), unfinished uploads and unreferenced data files older than this are removed; younger ones may belong to a create still running.
    #[arg(long, value_parser = parse_duration, default_value = "24h", env = "SCRUBSNAP_INCOMPLETE_GRACE")]
    incomplete_grace: Duration,

    /// How long the run lock prune holds while it deletes data files lasts unless refreshed.
    #[arg(long, value_parser = parse_duration, default_value = "10min", env = "SCRUBSNAP_LOCK_TTL")]
    lock_ttl: Duration,

    /// Say what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: Args, _ctx: &Context) -> Result<(), Failure> {
    let store = args.s3.open_dest(&args.dest, None).await?;
    let now = chrono::Utc::now();
    let complete = snapshot::list(store.as_ref()).await.map_err(Failure::runtime)?;
    let latest = snapshot::latest::current(store.as_ref(), &complete).await.map_err(Failure::runtime)?;
    let mut doomed: Vec<(String, &'static str)> = Vec::new();
    for (i, s) in complete.iter().enumerate() {
        if i < args.keep_last as usize || latest.as_deref() == Some(s.id.as_str()) {
            continue;
        }
        let old_enough = match args.older_than {
            None => true,
            Some(age) => chrono::Duration::from_std(age).map(|a| s.manifest.created_at < now - a).unwrap_or(false),
        };
        if old_enough {
            doomed.push((s.id.clone(), "complete"));
        }
    }
    let complete_ids: std::collections::HashSet<&str> = complete.iter().map(|s| s.id.as_str()).collect();
    let grace = chrono::Duration::from_std(args.incomplete_grace).unwrap_or(chrono::Duration::hours(24));
    for dir in store.list_dirs("").await.map_err(Failure::runtime)? {
        if complete_ids.contains(dir.as_str()) || !snapshot::looks_like_id(&dir) {
            continue;
        }
        let started = chrono::NaiveDateTime::parse_from_str(&dir, "%Y%m%dT%H%M%S%.3fZ").map(|t| t.and_utc());
        if started.is_ok_and(|t| t < now - grace) {
            doomed.push((dir, "incomplete"));
        }
    }
    if !args.dry_run {
        // Multipart uploads of killed runs (S3): invisible, but billed.
        let aborted = store.abort_stale_uploads("", Some(now - grace)).await.map_err(Failure::runtime)?;
        if aborted > 0 {
            println!("aborted {aborted} unfinished upload(s) older than the grace period");
        }
    }
    for (id, kind) in &doomed {
        if args.dry_run {
            println!("would delete {id} ({kind})");
        } else {
            // The manifest first: the snapshot is gone from listings at once.
            store.delete(&format!("{id}/{}", snapshot::MANIFEST)).await.map_err(Failure::runtime)?;
            store.delete_prefix(id).await.map_err(Failure::runtime)?;
            println!("deleted {id} ({kind})");
        }
    }
    collect(store.as_ref(), &args).await?;
    tracing::info!(
        deleted = if args.dry_run { 0 } else { doomed.len() },
        kept = complete.len().min(args.keep_last as usize),
        dry_run = args.dry_run,
        "prune: {} snapshot(s) {}",
        doomed.len(),
        if args.dry_run { "would be deleted" } else { "deleted" }
    );
    Ok(())
}

/// Deletes (or lists) the data files no remaining snapshot refers to.
async fn collect(store: &dyn scrubsnap::store::Store, args: &Args) -> Result<(), Failure> {
    let collected = snapshot::gc::collect(store, args.incomplete_grace, args.dry_run, args.lock_ttl)
        .await
        .map_err(Failure::runtime)?;
    let Some(c) = collected else {
        println!("a create is running on this store: unreferenced data files are left for the next prune");
        return Ok(());
    };
    let bytes: u64 = c.deleted.iter().map(|b| b.size).sum();
    let verb = if args.dry_run { "would delete" } else { "deleted" };
    if !c.deleted.is_empty() || c.young > 0 {
        println!(
            "{verb} {} data file(s) no snapshot refers to ({}); {} younger than the grace period kept",
            c.deleted.len(),
            human_bytes(bytes),
            c.young
        );
    }
    tracing::info!(
        deleted = c.deleted.len(),
        deleted_bytes = bytes,
        young = c.young,
        referenced = c.referenced,
        dry_run = args.dry_run,
        "prune: unreferenced data files"
    );
    Ok(())
}
