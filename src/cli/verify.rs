//! `scrubsnap verify`.

use scrubsnap::conn::ProcessEnv;
use scrubsnap::snapshot;

use super::common::connection;
use super::common::S3Args;
use super::{Context, Failure};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  scrubsnap verify --from ./snapshots/latest\n  scrubsnap verify --from ./snapshots/latest --restore-into postgresql://ci@scratch-db/postgres"
)]
pub struct Args {
    /// The snapshot: <store>/<snapshot-id> or <store>/latest.
    #[arg(long, env = "SCRUBSNAP_FROM")]
    from: String,

    #[command(flatten)]
    s3: S3Args,

    #[command(flatten)]
    trust: super::common::TrustArgs,

    /// Also restore into a scratch database created on this server (and dropped after), checking every constraint and row count.
    #[arg(long, value_name = "CONN")]
    restore_into: Option<String>,

    /// Keep the scratch database after --restore-into.
    #[arg(long, requires = "restore_into")]
    keep: bool,
}

pub async fn run(args: Args, ctx: &Context) -> Result<(), Failure> {
    let (store, name) = args.s3.open_from(&args.from).await?;
    let snap = snapshot::resolve(store.as_ref(), &name).await.map_err(Failure::runtime)?;
    args.trust.authenticate(store.as_ref(), &snap, args.restore_into.is_some()).await?;
    let verified = match &args.restore_into {
        None => scrubsnap::verify::files(store.as_ref(), &snap).await,
        Some(conn) => {
            let server = connection(Some(conn), "--restore-into")?;
            let cancel = super::common::cancel_on_signal(&ctx.quit);
            scrubsnap::verify::restore_into(
                store.as_ref(),
                &snap,
                &server,
                &ProcessEnv,
                args.keep,
                &cancel,
                &ctx.progress,
            )
            .await
        }
    }
    .map_err(|e| {
        Failure::runtime(anyhow::Error::new(e).context(format!("snapshot {} failed verification", snap.id)))
    })?;
    tracing::info!(
        snapshot = %snap.id,
        files = verified.files,
        tables = verified.tables,
        rows = verified.rows,
        restored = verified.restored_into.is_some(),
        "snapshot {} verified: {} files match their checksums, {} tables and {} rows as the manifest says{}",
        snap.id,
        verified.files,
        verified.tables,
        verified.rows,
        if verified.restored_into.is_some() { "; it restores with every constraint valid" } else { "" }
    );
    if verified.not_valid_constraints > 0 {
        tracing::warn!(
            "{} constraint(s) are NOT VALID in the source and were restored as such",
            verified.not_valid_constraints
        );
    }
    Ok(())
}
