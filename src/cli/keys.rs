//! `scrubsnap keys`: key pairs for signed snapshots.

use std::path::PathBuf;

use super::{Context, Failure};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write a new Ed25519 key pair: the private key (mode 0600, never overwritten) signs snapshots in `create --signing-key`, the public key is what restores trust (`--trusted-key`).
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  scrubsnap keys generate --private /etc/scrubsnap/signing.pem --public signing.pub.pem\n  scrubsnap create ... --signing-key /etc/scrubsnap/signing.pem\n  scrubsnap restore --from s3://bucket/app/latest --target ... --trusted-key signing.pub.pem"
)]
pub struct GenerateArgs {
    /// Where to write the private key (PEM, PKCS#8); an existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    private: PathBuf,

    /// Where to write the public key (PEM, SPKI), to give to whoever restores.
    #[arg(long, value_name = "FILE")]
    public: PathBuf,
}

pub async fn run(command: Command, _ctx: &Context) -> Result<(), Failure> {
    match command {
        Command::Generate(args) => {
            let fingerprint =
                scrubsnap::snapshot::signature::generate(&args.private, &args.public).map_err(Failure::config)?;
            tracing::info!(
                key = %fingerprint,
                "wrote the private key {} (keep it with the job that creates snapshots) and the public key {}",
                args.private.display(),
                args.public.display()
            );
            println!("{fingerprint}");
            Ok(())
        }
    }
}
