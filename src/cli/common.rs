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
        use scrubsnap::mask::{KeyError, MaskKey};
        let key = if let Some(path) = &self.key_file {
            let bytes = std::fs::read(path)
                .map_err(|e| KeyError::File { path: path.display().to_string(), reason: e.to_string() })
                .map_err(Failure::config)?;
            MaskKey::from_material(&bytes)
        } else if let Some(v) = std::env::var_os(&self.key_env).filter(|v| !v.is_empty()) {
            MaskKey::from_material(v.as_encoded_bytes())
        } else if self.ephemeral_key {
            Ok(MaskKey::ephemeral())
        } else {
            Err(KeyError::Missing(self.key_env.clone()))
        };
        key.map_err(Failure::config)
    }
}
