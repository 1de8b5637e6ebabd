//! `scrubsnap list`.

use clap::ValueEnum;
use scrubsnap::progress::human_bytes;
use scrubsnap::snapshot;

use super::common::S3Args;
use super::{Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store: a folder path or file:///path.
    #[arg(long, env = "SCRUBSNAP_DEST")]
    dest: String,

    #[command(flatten)]
    s3: S3Args,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, env = "SCRUBSNAP_LIST_FORMAT")]
    format: Format,

    /// Also show incomplete snapshots (no manifest: running, failed or killed runs).
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub async fn run(args: Args, _ctx: &Context) -> Result<(), Failure> {
    let store = args.s3.open_dest(&args.dest, None).await?;
    let all = snapshot::list(store.as_ref()).await.map_err(Failure::runtime)?;
    let latest = snapshot::latest::current(store.as_ref(), &all).await.map_err(Failure::runtime)?;
    let is_latest = |id: &str| latest.as_deref() == Some(id);
    let mut incomplete = Vec::new();
    if args.all {
        let complete: std::collections::HashSet<&str> = all.iter().map(|s| s.id.as_str()).collect();
        for dir in store.list_dirs("").await.map_err(Failure::runtime)? {
            if snapshot::looks_like_id(&dir) && !complete.contains(dir.as_str()) {
                incomplete.push(dir);
            }
        }
        incomplete.sort();
        incomplete.reverse();
    }
    let added = snapshot::added_bytes(&all);
    let mut signers = Vec::with_capacity(all.len());
    for s in &all {
        signers.push(snapshot::signed_by(store.as_ref(), &s.id).await.map_err(Failure::runtime)?);
    }
    match args.format {
        Format::Json => {
            let mut items: Vec<serde_json::Value> = all
                .iter()
                .zip(&signers)
                .zip(&added)
                .map(|((s, signer), added)| {
                    let masking = s.manifest.masking.as_ref();
                    serde_json::json!({
                        "signed": signer.is_some(),
                        "signing_key": signer,
                        "id": s.id,
                        "complete": true,
                        "latest": is_latest(&s.id),
                        "created_at": s.manifest.created_at,
                        "database": s.manifest.source.database,
                        "bytes": s.manifest.total_bytes(),
                        "added_bytes": added,
                        "tables": s.manifest.tables.len(),
                        "rows": s.manifest.total_rows(),
                        "rules_sha256": masking.map(|m| m.rules_sha256.clone()),
                        "key_fingerprint": masking.map(|m| m.key_fingerprint.clone()),
                    })
                })
                .collect();
            items.extend(incomplete.iter().map(|id| serde_json::json!({"id": id, "complete": false, "latest": false})));
            let text = serde_json::to_string_pretty(&items).map_err(Failure::runtime)?;
            println!("{text}");
        }
        Format::Text => {
            println!(
                "{:<29}  {:<20}  {:>10}  {:>10}  {:>6}  {:>12}  {:<12}  {:<16}  DATABASE",
                "ID", "CREATED (UTC)", "SIZE", "ADDED", "TABLES", "ROWS", "RULES", "KEY"
            );
            for (s, added) in all.iter().zip(&added) {
                let masking = s.manifest.masking.as_ref();
                println!(
                    "{:<29}  {:<20}  {:>10}  {:>10}  {:>6}  {:>12}  {:<12}  {:<16}  {}",
                    if is_latest(&s.id) { format!("{} (latest)", s.id) } else { s.id.clone() },
                    s.manifest.created_at.format("%Y-%m-%d %H:%M:%S"),
                    human_bytes(s.manifest.total_bytes()),
                    human_bytes(*added),
                    s.manifest.tables.len(),
                    s.manifest.total_rows(),
                    masking
                        .map(|m| m.rules_sha256.chars().take(12).collect::<String>())
                        .unwrap_or_else(|| "UNMASKED".into()),
                    masking.map(|m| m.key_fingerprint.clone()).unwrap_or_else(|| "-".into()),
                    s.manifest.source.database
                );
            }
            for id in &incomplete {
                println!("{id:<29}  (incomplete: no manifest)");
            }
            if !all.is_empty() {
                let size: u64 = all.iter().map(|s| s.manifest.total_bytes()).sum();
                let stored: u64 = added.iter().sum();
                println!(
                    "{} snapshot(s) of {} in all, stored in {} (ADDED: what each adds to the snapshots before it)",
                    all.len(),
                    human_bytes(size),
                    human_bytes(stored)
                );
            }
        }
    }
    Ok(())
}
