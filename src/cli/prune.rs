//! `scrubsnap prune`: deletes old snapshots, never the newest (`latest`),
//! and cleans up incomplete ones left by failed or killed runs.

use std::time::Duration;

use anyhow::anyhow;
use scrubsnap::snapshot;
use scrubsnap::store::Location;

use super::common::parse_duration;
use super::{Context, Failure};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  scrubsnap prune --dest ./snapshots --keep-last 7 --dry-run\n  scrubsnap prune --dest ./snapshots --keep-last 3 --older-than 30d"
)]
pub struct Args {
    /// The store.
    #[arg(long, env = "SCRUBSNAP_DEST")]
    dest: String,

    /// Keep this many newest complete snapshots (at least 1: the one `latest` names is never deleted).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), env = "SCRUBSNAP_KEEP_LAST")]
    keep_last: u32,

    /// Delete older snapshots only if they are older than this (e.g. 30d).
    #[arg(long, value_parser = parse_duration, env = "SCRUBSNAP_OLDER_THAN")]
    older_than: Option<Duration>,

    /// Incomplete snapshots (no manifest) older than this are removed; younger ones may still be written.
    #[arg(long, value_parser = parse_duration, default_value = "24h", env = "SCRUBSNAP_INCOMPLETE_GRACE")]
    incomplete_grace: Duration,

    /// Say what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: Args, _ctx: &Context) -> Result<(), Failure> {
    let location = Location::parse(&args.dest).map_err(|e| Failure::config(anyhow!("--dest: {e}")))?;
    let store = location.open();
    let now = chrono::Utc::now();
    let complete = snapshot::list(store.as_ref()).await.map_err(Failure::runtime)?;
    let mut doomed: Vec<(String, &'static str)> = Vec::new();
    for (i, s) in complete.iter().enumerate() {
        if i < args.keep_last as usize {
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
    for (id, kind) in &doomed {
        if args.dry_run {
            println!("would delete {id} ({kind})");
        } else {
            store.delete_prefix(id).await.map_err(Failure::runtime)?;
            println!("deleted {id} ({kind})");
        }
    }
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
