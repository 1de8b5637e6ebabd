//! `scrubsnap restore`.

use std::time::Instant;

use scrubsnap::conn::ProcessEnv;
use scrubsnap::restore::{self, RestoreOptions};
use scrubsnap::snapshot;

use super::common::connection;
use super::common::S3Args;
use super::{Context, Failure};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  scrubsnap restore --from ./snapshots/latest --target postgresql://localhost/app_dev --create\n  scrubsnap restore --from ./snapshots/20261122T020000.000Z --target 'dbname=app_dev' --clean"
)]
pub struct Args {
    /// The snapshot: <store>/<snapshot-id> or <store>/latest.
    #[arg(long, env = "SCRUBSNAP_FROM")]
    from: String,

    #[command(flatten)]
    s3: S3Args,

    #[command(flatten)]
    trust: super::common::TrustArgs,

    /// Target database: a postgresql:// URL or a key=value string. Falls back to DATABASE_URL, then the PG* variables.
    #[arg(long, env = "SCRUBSNAP_TARGET", hide_env_values = true)]
    target: Option<String>,

    /// Drop what the snapshot will create before loading.
    #[arg(long)]
    clean: bool,

    /// Create the target database if it does not exist.
    #[arg(long)]
    create: bool,

    /// Connections loading tables and building indexes at once (default: the number of cores). With more than one, a failure drops what the restore created; with 1, everything happens in one transaction and a failure leaves the target untouched.
    #[arg(long, short = 'j', env = "SCRUBSNAP_JOBS", value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: Option<u32>,

    /// Where data files pulled from a remote store are kept, checked, so that the next restore downloads only new ones (default: $XDG_CACHE_HOME/scrubsnap or ~/.cache/scrubsnap).
    #[arg(long, value_name = "DIR", env = "SCRUBSNAP_CACHE_DIR", conflicts_with = "no_cache")]
    cache_dir: Option<std::path::PathBuf>,

    /// The most the pull cache keeps after a restore; the files used longest ago go first (K, M, G, T).
    #[arg(long, value_name = "SIZE", default_value = "20G", value_parser = super::common::parse_size, env = "SCRUBSNAP_CACHE_SIZE")]
    cache_size: u64,

    /// Download every file of a remote snapshot, keep nothing (the files go to a temporary folder, removed after).
    #[arg(long, env = "SCRUBSNAP_NO_CACHE")]
    no_cache: bool,
}

/// The pull cache asked for, if any.
fn cache(args: &Args) -> Option<restore::CacheSettings> {
    if args.no_cache {
        return None;
    }
    let explicit = args.cache_dir.is_some();
    let dir = args.cache_dir.clone().or_else(snapshot::cache::BlobCache::default_dir);
    if dir.is_none() {
        tracing::info!("no pull cache: no --cache-dir and no home folder to put one in");
    }
    dir.map(|dir| restore::CacheSettings { dir, limit: args.cache_size, explicit })
}

pub async fn run(args: Args, ctx: &Context) -> Result<(), Failure> {
    let started = Instant::now();
    let target = connection(args.target.as_deref(), "--target")?;
    let (store, name) = args.s3.open_from(&args.from).await?;
    let snap = snapshot::resolve(store.as_ref(), &name).await.map_err(Failure::runtime)?;
    args.trust.authenticate(store.as_ref(), &snap, true).await?;
    tracing::info!(snapshot = %snap.id, target = %target, "restoring snapshot");
    let jobs = args
        .jobs
        .map(|j| j as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let opts = RestoreOptions {
        clean: args.clean,
        create: args.create,
        jobs,
        cancel: super::common::cancel_on_signal(&ctx.quit),
        cache: cache(&args),
    };
    let stats =
        restore::restore(store.as_ref(), &snap, &target, &ProcessEnv, &opts, &ctx.progress).await.map_err(|e| {
            let context = if e.touched_target() {
                format!("restore of {} into {target} failed", snap.id)
            } else {
                format!("restore of {} into {target} failed; nothing was committed to the target", snap.id)
            };
            Failure::classified(e, context)
        })?;
    tracing::info!(
        snapshot = %snap.id,
        tables = stats.tables,
        rows = stats.rows,
        duration_ms = started.elapsed().as_millis() as u64,
        "snapshot {} restored: {} tables, {} rows in {:.1}s",
        snap.id,
        stats.tables,
        stats.rows,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
