//! `scrubsnap export`.

use std::path::PathBuf;

use anyhow::anyhow;
use scrubsnap::snapshot;
use tokio::io::AsyncWriteExt;

use super::common::S3Args;
use super::{Context, Failure};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  scrubsnap export --from ./snapshots/latest -o app.sql && psql -v ON_ERROR_STOP=1 -d app_dev -f app.sql\n  scrubsnap export --from ./snapshots/latest | psql -v ON_ERROR_STOP=1 -d app_dev"
)]
pub struct Args {
    /// The snapshot: <store>/<snapshot-id> or <store>/latest.
    #[arg(long, env = "SCRUBSNAP_FROM")]
    from: String,

    #[command(flatten)]
    s3: S3Args,

    #[command(flatten)]
    trust: super::common::TrustArgs,

    /// Write to this file instead of standard output (written whole or not at all).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn run(args: Args, ctx: &Context) -> Result<(), Failure> {
    let (store, name) = args.s3.open_from(&args.from).await?;
    let snap = snapshot::resolve(store.as_ref(), &name).await.map_err(Failure::runtime)?;
    args.trust.authenticate(store.as_ref(), &snap, true).await?;
    match args.output {
        None => {
            let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
            scrubsnap::export::export(store.as_ref(), &snap, &mut out).await.map_err(Failure::runtime)?;
            out.flush().await.map_err(Failure::runtime)?;
        }
        Some(path) => {
            let mut partial = path.clone().into_os_string();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            // Readable by this user only: an export holds the snapshot's data.
            let file = scrubsnap::store::private_file(&partial, true)
                .map(tokio::fs::File::from_std)
                .map_err(|e| Failure::runtime(anyhow!("cannot create {}: {e}", partial.display())))?;
            let mut out = tokio::io::BufWriter::new(file);
            let cancel = super::common::cancel_on_signal(&ctx.quit);
            let written = async {
                scrubsnap::export::export(store.as_ref(), &snap, &mut out).await?;
                out.flush().await.map_err(|e| anyhow!("writing {}: {e}", partial.display()))?;
                tokio::fs::rename(&partial, &path).await.map_err(|e| anyhow!("renaming to {}: {e}", path.display()))?;
                Ok::<(), anyhow::Error>(())
            };
            // SIGINT or SIGTERM: the partial file goes, as after a failure.
            let written = tokio::select! {
                biased;
                () = cancel.cancelled() => Err(anyhow!("interrupted by a signal; {} was removed", partial.display())),
                r = written => r,
            };
            if let Err(e) = written {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(Failure::runtime(e));
            }
            tracing::info!(snapshot = %snap.id, file = %path.display(), "exported");
        }
    }
    Ok(())
}
