//! Option groups shared by several commands.

use std::time::Duration;

use clap::Args;
use scrubsnap::conn::{ConnSpec, ProcessEnv};

use super::Failure;

/// Parses a duration such as `30s`, `5min`, `250ms` or `0` (no limit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    // Days are the natural unit for retention; humantime spells them "days".
    if let Some(d) = s.strip_suffix('d').and_then(|n| n.parse::<u64>().ok()) {
        return Ok(Duration::from_secs(d * 86_400));
    }
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (examples: 30s, 5min, 250ms, 0 for no limit)"))
}

/// A size: a number of bytes with an optional unit, K, M, G or T (powers
/// of 1024; `KiB`, `MB`... are read the same).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let n: u64 = number.parse().map_err(|_| format!("'{s}' is not a size (examples: 500M, 20G, 1T)"))?;
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches('B').trim_end_matches('I') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("'{s}': unknown unit (use K, M, G or T)")),
    };
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("'{s}' is too large"))
}

/// Connection timeouts for our own sessions.
#[derive(Debug, Clone, Args)]
pub struct TimeoutArgs {
    /// Longest any single statement may run (0: no limit). A big table's COPY is one statement.
    #[arg(long, value_parser = parse_duration, default_value = "0", env = "SCRUBSNAP_STATEMENT_TIMEOUT")]
    pub statement_timeout: Duration,

    /// Longest to wait for a table lock before giving up (0: wait forever).
    #[arg(long, value_parser = parse_duration, default_value = "60s", env = "SCRUBSNAP_LOCK_TIMEOUT")]
    pub lock_timeout: Duration,
}

impl TimeoutArgs {
    pub fn timeouts(&self) -> scrubsnap::source::session::Timeouts {
        let nz = |d: Duration| (!d.is_zero()).then_some(d);
        scrubsnap::source::session::Timeouts { statement: nz(self.statement_timeout), lock: nz(self.lock_timeout) }
    }
}

/// Resolves a connection option: the flag (or its env var), else
/// `DATABASE_URL`, else the `PG*` variables alone.
pub fn connection(value: Option<&str>, what: &str) -> Result<ConnSpec, Failure> {
    let from_env = std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty());
    let input = value.map(str::to_string).or(from_env).unwrap_or_default();
    ConnSpec::parse(&input, &ProcessEnv).map_err(|e| Failure::config(anyhow::anyhow!("{what}: {e}")))
}

/// Where the masking key comes from.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Environment variable that holds the masking key (at least 16 bytes).
    #[arg(long, value_name = "NAME", default_value = "SCRUBSNAP_KEY", env = "SCRUBSNAP_KEY_ENV")]
    pub key_env: String,

    /// Read the masking key from this file instead.
    #[arg(long, value_name = "FILE", conflicts_with = "ephemeral_key", env = "SCRUBSNAP_KEY_FILE")]
    pub key_file: Option<std::path::PathBuf>,

    /// Use a random key for this run only: values match within the snapshot, never across snapshots.
    #[arg(long)]
    pub ephemeral_key: bool,
}

impl KeyArgs {
    pub fn load(&self) -> Result<scrubsnap::mask::MaskKey, Failure> {
        use scrubsnap::mask::{KeyError, KeyForm, MaskKey};
        let from_env = std::env::var_os(&self.key_env)
            .filter(|v| !v.is_empty())
            .map(|v| zeroize::Zeroizing::new(v.into_encoded_bytes()));
        if self.ephemeral_key && from_env.is_some() {
            return Err(Failure::config(anyhow::anyhow!(
                "--ephemeral-key and a configured key ({}) exclude each other: unset the variable, or drop --ephemeral-key",
                self.key_env
            )));
        }
        let configured = if let Some(path) = &self.key_file {
            warn_if_readable_by_others(path, "key file");
            let bytes = std::fs::read(path)
                .map(zeroize::Zeroizing::new)
                .map_err(|e| KeyError::File { path: path.display().to_string(), reason: e.to_string() })
                .map_err(Failure::config)?;
            MaskKey::configured(&bytes)
        } else if let Some(v) = &from_env {
            MaskKey::configured(v)
        } else if self.ephemeral_key {
            return Ok(MaskKey::ephemeral());
        } else {
            Err(KeyError::Missing(self.key_env.clone()))
        };
        let (key, form) = configured.map_err(Failure::config)?;
        if form == KeyForm::Passphrase {
            tracing::warn!(
                "the masking key is a text passphrase: random bytes are stronger (hex or base64 of at least 16 random bytes, e.g. `openssl rand -hex 32`); changing the key changes every masked value"
            );
        }
        Ok(key)
    }
}

/// Warns when a file holding a key can be read by its group or by others.
pub fn warn_if_readable_by_others(path: &std::path::Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "the {what} {} can be read by other users (mode {:o}): chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
}

/// Which snapshot signatures a reader accepts (restore, verify, export).
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// A public key whose signatures are trusted (PEM, from `scrubsnap keys generate`). Repeatable: two keys at once make rotation possible. With any, an unsigned or altered snapshot, or one signed by another key, is refused.
    #[arg(long = "trusted-key", value_name = "FILE", env = "SCRUBSNAP_TRUSTED_KEYS", value_delimiter = ',')]
    pub trusted_keys: Vec<std::path::PathBuf>,

    /// Load an unsigned snapshot even though trusted keys are configured (with a warning).
    #[arg(long, env = "SCRUBSNAP_ALLOW_UNSIGNED")]
    pub allow_unsigned: bool,
}

impl TrustArgs {
    /// Loads the trusted keys.
    pub fn trust(&self) -> Result<scrubsnap::snapshot::Trust, Failure> {
        let keys = self
            .trusted_keys
            .iter()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| scrubsnap::snapshot::signature::load_trusted(p).map_err(Failure::config))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(scrubsnap::snapshot::Trust { keys, allow_unsigned: self.allow_unsigned })
    }

    /// Checks the snapshot's origin before anything of it is used: refuses
    /// (exit 2) what the trusted keys do not vouch for, and says what was
    /// established; `loads` (restore, export) warns when nothing is checked.
    pub async fn authenticate(
        &self,
        store: &dyn scrubsnap::store::Store,
        snap: &scrubsnap::snapshot::Listed,
        loads: bool,
    ) -> Result<(), Failure> {
        use scrubsnap::snapshot::Provenance;
        let trust = self.trust()?;
        match scrubsnap::snapshot::authenticate(store, snap, &trust).await.map_err(Failure::runtime)? {
            Provenance::Signed(key) => tracing::info!(snapshot = %snap.id, key = %key, "signed by a trusted key"),
            Provenance::UnsignedAllowed => tracing::warn!(
                snapshot = %snap.id,
                "--allow-unsigned: the snapshot is not signed, and its origin is not checked"
            ),
            Provenance::Unchecked if loads => tracing::warn!(
                snapshot = %snap.id,
                "the snapshot's origin is not checked (no --trusted-key): whoever can write the store decides what runs on this database"
            ),
            Provenance::Unchecked => {}
        }
        Ok(())
    }
}

/// How to reach an S3 store (ignored for a local folder).
#[derive(Debug, Clone, Args)]
pub struct S3Args {
    /// Endpoint of an S3-compatible server (MinIO, Ceph, R2...). Default: AWS, or AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL", env = "SCRUBSNAP_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Path-style addressing (http://host/bucket/key), which most S3-compatible servers need.
    #[arg(long, env = "SCRUBSNAP_S3_PATH_STYLE")]
    pub s3_path_style: bool,

    /// Region of the bucket. Default: the AWS chain (AWS_REGION, the profile, instance metadata).
    #[arg(long, value_name = "REGION", env = "SCRUBSNAP_S3_REGION")]
    pub s3_region: Option<String>,

    /// Allow a plain http:// S3 endpoint on another machine (by default only loopback may use http).
    #[arg(long, env = "SCRUBSNAP_S3_ALLOW_HTTP")]
    pub s3_allow_http: bool,
}

/// How objects are written to S3 (create only).
#[derive(Debug, Clone, Args)]
pub struct S3WriteArgs {
    /// Server-side encryption of every object written to S3.
    #[arg(long, value_name = "MODE", value_parser = ["AES256", "aws:kms"], env = "SCRUBSNAP_SSE")]
    pub sse: Option<String>,

    /// KMS key for --sse aws:kms (default: the bucket's AWS-managed key).
    #[arg(long, value_name = "KEY_ID", requires = "sse", env = "SCRUBSNAP_SSE_KMS_KEY_ID")]
    pub sse_kms_key_id: Option<String>,

    /// Storage class of objects written to S3 (e.g. STANDARD_IA, INTELLIGENT_TIERING).
    #[arg(long, value_name = "CLASS", env = "SCRUBSNAP_S3_STORAGE_CLASS")]
    pub s3_storage_class: Option<String>,

    /// Size of multipart upload parts in MiB (at least 5); memory is about part size x (parts in flight + 1) x jobs.
    #[arg(long, value_name = "MIB", default_value_t = 8, value_parser = clap::value_parser!(u32).range(5..=5120), env = "SCRUBSNAP_S3_PART_SIZE")]
    pub s3_part_size: u32,

    /// Parts of one object uploaded at once.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64), env = "SCRUBSNAP_S3_PARTS_IN_FLIGHT")]
    pub s3_parts_in_flight: u32,
}

impl S3WriteArgs {
    /// Settings that contradict each other (which clap cannot say).
    fn check(&self) -> Result<(), String> {
        match (self.sse.as_deref(), &self.sse_kms_key_id) {
            (Some(mode), Some(_)) if mode != "aws:kms" => Err(format!(
                "--sse-kms-key-id (SCRUBSNAP_SSE_KMS_KEY_ID) applies only to --sse aws:kms, not --sse {mode}: the key would be ignored"
            )),
            _ => Ok(()),
        }
    }
}

impl S3Args {
    /// The library options, with the write settings when given.
    pub fn options(&self, write: Option<&S3WriteArgs>) -> scrubsnap::store::S3Options {
        use scrubsnap::store::s3::Sse;
        let mut o = scrubsnap::store::S3Options {
            endpoint: self.s3_endpoint.clone().filter(|s| !s.is_empty()),
            path_style: self.s3_path_style,
            region: self.s3_region.clone().filter(|s| !s.is_empty()),
            allow_http: self.s3_allow_http,
            ..Default::default()
        };
        if let Some(w) = write {
            o.sse = match w.sse.as_deref() {
                Some("AES256") => Some(Sse::Aes256),
                Some(_) => Some(Sse::Kms { key_id: w.sse_kms_key_id.clone() }),
                None => None,
            };
            o.storage_class = w.s3_storage_class.clone();
            o.part_size = w.s3_part_size as usize * 1024 * 1024;
            o.parts_in_flight = w.s3_parts_in_flight as usize;
        }
        o
    }

    /// Refuses a plain http:// endpoint on another machine, unless allowed.
    fn check_endpoint(&self) -> Result<(), Failure> {
        let endpoint = self
            .s3_endpoint
            .clone()
            .filter(|e| !e.is_empty())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        match endpoint {
            Some(e) if !self.s3_allow_http && scrubsnap::store::s3::plain_remote(&e) => Err(Failure::config(anyhow::anyhow!(
                "the S3 endpoint {e} is plain http on another machine: snapshots and signed requests would cross the network unencrypted; use https, or --s3-allow-http (SCRUBSNAP_S3_ALLOW_HTTP) if the network is trusted"
            ))),
            _ => Ok(()),
        }
    }

    /// Opens the store named by `--dest`.
    pub async fn open_dest(
        &self,
        dest: &str,
        write: Option<&S3WriteArgs>,
    ) -> Result<Box<dyn scrubsnap::store::Store>, Failure> {
        let location =
            scrubsnap::store::Location::parse(dest).map_err(|e| Failure::config(anyhow::anyhow!("--dest: {e}")))?;
        if let Some(w) = write {
            w.check().map_err(|e| Failure::config(anyhow::anyhow!(e)))?;
        }
        if matches!(location, scrubsnap::store::Location::S3(_)) {
            self.check_endpoint()?;
        }
        location.open(&self.options(write)).await.map_err(Failure::runtime)
    }

    /// Opens the store of `--from <store>/<id|latest>`; returns it and the snapshot name.
    pub async fn open_from(&self, from: &str) -> Result<(Box<dyn scrubsnap::store::Store>, String), Failure> {
        let (location, name) = scrubsnap::store::Location::parse_snapshot_ref(from)
            .map_err(|e| Failure::config(anyhow::anyhow!("--from: {e}")))?;
        if matches!(location, scrubsnap::store::Location::S3(_)) {
            self.check_endpoint()?;
        }
        let store = location.open(&self.options(None)).await.map_err(Failure::runtime)?;
        Ok((store, name))
    }
}

/// A token cancelled by the first SIGINT or SIGTERM the process receives,
/// so that the command stops and cleans up after itself (a Jenkins abort
/// sends SIGTERM). A second signal cancels `quit`: the process quits at
/// once, without cleaning up (exit 130). Must be called inside the runtime.
pub fn cancel_on_signal(quit: &tokio_util::sync::CancellationToken) -> tokio_util::sync::CancellationToken {
    let quit = quit.clone();
    let token = tokio_util::sync::CancellationToken::new();
    let Some(mut signals) = Signals::install() else { return token };
    let cancel = token.clone();
    tokio::spawn(async move {
        let Some(name) = signals.next().await else { return };
        tracing::warn!("{name}: stopping and removing what this run wrote (send it again to quit at once)");
        cancel.cancel();
        let Some(name) = signals.next().await else { return };
        tracing::error!("{name} again: quitting without cleaning up");
        quit.cancel();
    });
    token
}

/// SIGINT and SIGTERM, listened to.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Option<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(int), Ok(term)) => Some(Signals { int, term }),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("cannot listen for SIGINT and SIGTERM ({e}); stopping the run will not clean up");
                None
            }
        }
    }

    /// The name of the next signal; `None` once the runtime shuts down.
    async fn next(&mut self) -> Option<&'static str> {
        tokio::select! {
            Some(()) = self.int.recv() => Some("SIGINT"),
            Some(()) = self.term.recv() => Some("SIGTERM"),
            else => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::S3WriteArgs;

    fn write(sse: Option<&str>, key: Option<&str>) -> S3WriteArgs {
        S3WriteArgs {
            sse: sse.map(str::to_string),
            sse_kms_key_id: key.map(str::to_string),
            s3_storage_class: None,
            s3_part_size: 8,
            s3_parts_in_flight: 2,
        }
    }

    #[test]
    fn a_kms_key_goes_only_with_kms_encryption() {
        assert!(write(Some("aws:kms"), Some("alias/snapshots")).check().is_ok());
        assert!(write(Some("aws:kms"), None).check().is_ok());
        assert!(write(Some("AES256"), None).check().is_ok());
        assert!(write(None, None).check().is_ok());
        let e = write(Some("AES256"), Some("alias/snapshots")).check().unwrap_err();
        assert!(e.contains("--sse-kms-key-id") && e.contains("aws:kms") && !e.contains("alias/snapshots"), "{e}");
    }
}
