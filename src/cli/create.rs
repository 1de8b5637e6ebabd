//! `scrubsnap create`.

use std::path::PathBuf;

use anyhow::anyhow;
use scrubsnap::conn::ProcessEnv;
use scrubsnap::create::{self, CreateOptions, Masking};
use scrubsnap::encode::Codec;
use scrubsnap::plan::TablePatterns;
use scrubsnap::progress::human_bytes;
use scrubsnap::rules::Rules;

use super::common::{connection, parse_duration, KeyArgs, S3Args, S3WriteArgs, TimeoutArgs};
use super::{report, Context, Failure};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  scrubsnap create --source postgresql://app@db.internal/app --dest ./snapshots\n  scrubsnap create --source 'host=db dbname=app' --dest file:///var/snapshots --exclude-table 'audit.*'"
)]
pub struct Args {
    /// Source database: a postgresql:// URL or a key=value string. Falls back to DATABASE_URL, then the PG* variables.
    #[arg(long, env = "SCRUBSNAP_SOURCE", hide_env_values = true)]
    source: Option<String>,

    /// Store to write the snapshot to: a folder path, file:///path or s3://bucket/prefix.
    #[arg(long, env = "SCRUBSNAP_DEST")]
    dest: String,

    /// Break another run's lock on the store even if it has not expired (only when that run is dead).
    #[arg(long)]
    force: bool,

    /// How long the store's run lock lasts unless refreshed; a killed run blocks others for at most this long.
    #[arg(long, value_parser = parse_duration, default_value = "10min", env = "SCRUBSNAP_LOCK_TTL")]
    lock_ttl: std::time::Duration,

    /// Dump only tables matching this glob (schema.table, or table in any schema). Repeatable.
    #[arg(long = "include-table", value_name = "PATTERN", env = "SCRUBSNAP_INCLUDE_TABLE", value_delimiter = ',')]
    include_table: Vec<String>,

    /// Leave out tables matching this glob, structure and rows. Repeatable.
    #[arg(long = "exclude-table", value_name = "PATTERN", env = "SCRUBSNAP_EXCLUDE_TABLE", value_delimiter = ',')]
    exclude_table: Vec<String>,

    /// Keep the structure of matching tables but not their rows. Repeatable.
    #[arg(
        long = "schema-only-table",
        value_name = "PATTERN",
        env = "SCRUBSNAP_SCHEMA_ONLY_TABLE",
        value_delimiter = ','
    )]
    schema_only_table: Vec<String>,

    /// The pg_dump to use (default: the server's major version, found by itself).
    #[arg(long, value_name = "PATH", env = "SCRUBSNAP_PG_DUMP")]
    pg_dump: Option<PathBuf>,

    /// Tables dumped at once, each on its own connection reading the same snapshot (default: the number of cores).
    #[arg(long, short = 'j', env = "SCRUBSNAP_JOBS", value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: Option<u32>,

    /// How data files are compressed: gzip (read by zcat and every tool) or zstd (faster to write and read, a little smaller).
    #[arg(long, value_enum, default_value_t = Codec::Gzip, env = "SCRUBSNAP_COMPRESSION")]
    compression: Codec,

    /// Compression level: gzip 0 (store) to 12, default 5; zstd 1 to 19, default 1. The defaults were chosen by measurement (README, "Compression").
    #[arg(long, value_name = "N", env = "SCRUBSNAP_COMPRESS_LEVEL", allow_negative_numbers = true)]
    compress_level: Option<i32>,

    /// Tables larger than this many MiB are dumped in chunks of about this size, in parallel (PostgreSQL 14+); a masked value counts as 400 bytes. Default: a quarter of each job's share of the work, between 32 and 1024.
    #[arg(long, value_name = "MiB", env = "SCRUBSNAP_CHUNK_SIZE", value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    chunk_size: Option<u64>,

    /// The rules file: which masker applies to which column (see `scrubsnap maskers`).
    #[arg(long, value_name = "FILE", env = "SCRUBSNAP_RULES", conflicts_with = "no_rules")]
    rules: Option<PathBuf>,

    /// Dump without masking: the snapshot holds the source's data as is.
    #[arg(long, env = "SCRUBSNAP_NO_RULES")]
    no_rules: bool,

    /// Before publishing, restore the snapshot into a scratch database on this server (dropped after); publish only if it loads with every constraint.
    #[arg(long, value_name = "CONN", env = "SCRUBSNAP_VERIFY_RESTORE", hide_env_values = true)]
    verify_restore: Option<String>,

    /// Skip the leak scan (it tests every kept field of the snapshot for original values before publishing).
    #[arg(long, env = "SCRUBSNAP_NO_LEAK_SCAN")]
    no_leak_scan: bool,

    /// Memory for the leak scan's filter, in MiB. Every candidate it passes is confirmed exactly, so a crowded filter costs time, never a false alarm. Half as much again holds the probes of tables dumped before the filter is complete; past that, they go to a temporary file (--leak-scan-spill).
    #[arg(long, value_name = "MIB", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096), env = "SCRUBSNAP_LEAK_SCAN_MEMORY")]
    leak_scan_memory: u32,

    /// Disk for the leak scan's probes past its memory, in MiB, in an unnamed temporary file (TMPDIR; 21 bytes a probe, no values); past that, files are read back before publishing. 0: never use the disk.
    #[arg(long, value_name = "MIB", default_value_t = 1024, env = "SCRUBSNAP_LEAK_SCAN_SPILL")]
    leak_scan_spill: u64,

    /// Sign the snapshot's manifest with this Ed25519 private key (PEM, from `scrubsnap keys generate`): restores with the public key as --trusted-key then refuse anything else.
    #[arg(long, value_name = "FILE", env = "SCRUBSNAP_SIGNING_KEY_FILE")]
    signing_key: Option<PathBuf>,

    #[command(flatten)]
    key: KeyArgs,

    #[command(flatten)]
    s3: S3Args,

    #[command(flatten)]
    s3_write: S3WriteArgs,

    #[command(flatten)]
    timeouts: TimeoutArgs,

    /// Print what would be dumped (every table, how its rows are chosen, the planner's estimate and, with `subset:`, the exact rows kept) and stop: nothing is written.
    #[arg(long)]
    dry_run: bool,

    /// Write a JSON summary of the run here (on success and on failure).
    #[arg(long, value_name = "FILE", env = "SCRUBSNAP_REPORT")]
    report: Option<PathBuf>,

    /// Write Prometheus metrics here (node_exporter textfile format), on success and on failure.
    #[arg(long, value_name = "FILE", env = "SCRUBSNAP_METRICS_FILE")]
    metrics_file: Option<PathBuf>,
}

pub async fn run(args: Args, ctx: &Context) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    let report = args.report.clone();
    let metrics = args.metrics_file.clone();
    let dest = args.dest.clone();
    if args.dry_run {
        let opts = options(args, ctx)?;
        let lines =
            create::dry_run(&opts, &ProcessEnv).await.map_err(|e| Failure::classified(e, "create --dry-run failed"))?;
        print!("{}", render_plan(&lines));
        return Ok(());
    }
    let mut warnings = Vec::new();
    if args.no_rules {
        warnings.push("--no-rules: nothing was masked".to_string());
    }
    let result = create(args, ctx).await;
    if report.is_some() || metrics.is_some() {
        let (manifest, error, exit_code) = match &result {
            Ok(m) => (Some(m), None, 0),
            Err(f) => (None, Some(f.message()), f.status().code()),
        };
        if let Some(m) = manifest.and_then(|m| m.masking.as_ref()) {
            let uncovered = m
                .columns
                .iter()
                .filter(|c| matches!(c.coverage, scrubsnap::plan::masking::Coverage::Uncovered))
                .count();
            if uncovered > 0 {
                warnings.push(format!("{uncovered} column(s) have no rule and were copied as they are"));
            }
        }
        let outcome =
            report::Outcome { dest: &dest, manifest, error, exit_code, duration: started.elapsed(), warnings };
        if let Some(p) = &report {
            if let Err(e) = report::write_report(p, &outcome) {
                tracing::error!("cannot write the report {}: {e}", p.display());
            }
        }
        if let Some(p) = &metrics {
            if let Err(e) = report::write_metrics(p, &outcome) {
                tracing::error!("cannot write the metrics file {}: {e}", p.display());
            }
        }
    }
    result.map(|_| ())
}

/// The table of `create --dry-run`.
pub fn render_plan(lines: &[scrubsnap::plan::subset::SubsetTable]) -> String {
    let mut out = format!("{:<40}  {:>12}  {:>12}  HOW\n", "TABLE", "ESTIMATED", "KEPT");
    for l in lines {
        out.push_str(&format!(
            "{:<40}  {:>12}  {:>12}  {}\n",
            l.table,
            l.estimated_rows,
            l.kept_rows.map_or_else(|| "all".to_string(), |n| n.to_string()),
            l.reach.describe()
        ));
    }
    out
}

async fn create(args: Args, ctx: &Context) -> Result<scrubsnap::snapshot::Manifest, Failure> {
    let store = args.s3.open_dest(&args.dest, Some(&args.s3_write)).await?;
    let opts = options(args, ctx)?;
    tracing::info!(source = %opts.source, store = %store.describe(), "creating snapshot");
    let manifest = create::create(&opts, store.as_ref(), &ProcessEnv, &ctx.progress)
        .await
        .map_err(|e| Failure::classified(e, "create failed; nothing was published"))?;
    let dumped = manifest.tables.iter().filter(|t| t.has_data()).count();
    tracing::info!(
        snapshot = %manifest.snapshot_id,
        tables = dumped,
        schema_only_tables = manifest.tables.len() - dumped,
        rows = manifest.total_rows(),
        bytes = manifest.total_bytes(),
        duration_ms = manifest.duration_ms,
        "snapshot {} published: {} tables, {} rows, {} written in {:.1}s",
        manifest.snapshot_id,
        dumped,
        manifest.total_rows(),
        human_bytes(manifest.total_bytes()),
        manifest.duration_ms as f64 / 1000.0
    );
    println!("{}", manifest.snapshot_id);
    Ok(manifest)
}

/// The run's settings from the flags: the source, the rules and key, the
/// signing key, and the rest.
fn options(args: Args, ctx: &Context) -> Result<CreateOptions, Failure> {
    let source = connection(args.source.as_deref(), "--source")?;
    let masking = match (&args.rules, args.no_rules) {
        (Some(path), _) => {
            let rules = Rules::load(path).map_err(|e| Failure::config(anyhow!("{e}")))?;
            let key = args.key.load()?;
            tracing::info!(rules = %path.display(), key_fingerprint = %key.fingerprint(), ephemeral_key = key.is_ephemeral(), "masking with rules");
            Some(Masking { rules, key })
        }
        (None, true) => {
            tracing::warn!("--no-rules: nothing is masked; the snapshot holds the source's data as is");
            None
        }
        (None, false) => {
            return Err(Failure::config(anyhow!(
                "create needs --rules FILE (or SCRUBSNAP_RULES); to dump without masking, say --no-rules"
            )))
        }
    };
    let signer = match &args.signing_key {
        Some(path) => {
            super::common::warn_if_readable_by_others(path, "signing key file");
            let signer = scrubsnap::snapshot::signature::SnapshotSigner::load(path).map_err(Failure::config)?;
            tracing::info!(key = %signer.fingerprint, "signing the snapshot");
            Some(std::sync::Arc::new(signer))
        }
        None => None,
    };
    let verify_restore = match &args.verify_restore {
        Some(c) => Some(connection(Some(c), "--verify-restore")?),
        None => None,
    };
    let compress_level = args.compress_level.unwrap_or(args.compression.default_level());
    if !args.compression.levels().contains(&compress_level) {
        let bad = scrubsnap::encode::BadLevel { codec: args.compression, level: compress_level };
        return Err(Failure::config(anyhow!("--compress-level: {bad}")));
    }
    let jobs = args
        .jobs
        .map(|j| j as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    Ok(CreateOptions {
        jobs,
        verify_restore,
        masking,
        leak_scan: (!args.no_leak_scan).then_some(args.leak_scan_memory as usize * 1024 * 1024),
        leak_spill: args.leak_scan_spill.saturating_mul(1024 * 1024),
        source,
        patterns: TablePatterns {
            include: args.include_table,
            exclude: args.exclude_table,
            schema_only: args.schema_only_table,
        },
        pg_dump: args.pg_dump,
        codec: args.compression,
        compress_level,
        timeouts: args.timeouts.timeouts(),
        lock_ttl: args.lock_ttl,
        force: args.force,
        chunk_bytes: args.chunk_size.map(|m| m * 1024 * 1024),
        cancel: super::common::cancel_on_signal(&ctx.quit),
        hide_env: vec![args.key.key_env.clone()],
        signer,
    })
}
