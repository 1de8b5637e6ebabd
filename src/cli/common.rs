//! Option groups shared by several commands.

use std::time::Duration;

use clap::Args;
use scrubsnap::conn::{ConnSpec, ProcessEnv};

use super::Failure;

/// Parses a duration such as `30s`, `5min`, `250ms` or `0` (no limit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
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
