//! `scrubsnap list`.

use anyhow::anyhow;
use clap::ValueEnum;
use scrubsnap::progress::human_bytes;
use scrubsnap::snapshot;
use scrubsnap::store::Location;

use super::{Context, Failure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store: a folder path or file:///path.
    #[arg(long, env = "SCRUBSNAP_DEST")]
    dest: String,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub async fn run(args: Args, _ctx: &Context) -> Result<(), Failure> {
    let location = Location::parse(&args.dest).map_err(|e| Failure::config(anyhow!("--dest: {e}")))?;
    let store = location.open();
    let all = snapshot::list(store.as_ref()).await.map_err(Failure::runtime)?;
    match args.format {
        Format::Json => {
            let items: Vec<serde_json::Value> = all
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "id": s.id,
                        "created_at": s.manifest.created_at,
                        "database": s.manifest.source.database,
                        "bytes": s.manifest.total_bytes(),
                        "tables": s.manifest.tables.len(),
                        "rows": s.manifest.total_rows(),
                    })
                })
                .collect();
            let text = serde_json::to_string_pretty(&items).map_err(Failure::runtime)?;
            println!("{text}");
        }
        Format::Text => {
            println!(
                "{:<22}  {:<20}  {:>10}  {:>6}  {:>12}  DATABASE",
                "ID", "CREATED (UTC)", "SIZE", "TABLES", "ROWS"
            );
            for s in &all {
                println!(
                    "{:<22}  {:<20}  {:>10}  {:>6}  {:>12}  {}",
                    s.id,
                    s.manifest.created_at.format("%Y-%m-%d %H:%M:%S"),
                    human_bytes(s.manifest.total_bytes()),
                    s.manifest.tables.len(),
                    s.manifest.total_rows(),
                    s.manifest.source.database
                );
            }
        }
    }
    Ok(())
}
