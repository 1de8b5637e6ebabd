//! Runs pg_dump for the schema scripts, under the exported snapshot.
//!
//! pg_dump connects with the same settings as our session, passed as libpq
//! environment variables (the password in `PGPASSWORD`, never on the command
//! line). Owners, privileges, tablespaces, security labels and subscriptions
//! are left out: a snapshot is restored by developers into databases that
//! have none of production's roles, tablespaces or replication peers.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::SourceError;
use crate::conn::ConnSpec;
use crate::pgtools::Tool;

/// Which part of the schema to dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    PreData,
    PostData,
    /// The whole schema with `--clean --if-exists`, from which the DROP
    /// statements are kept.
    Clean,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::PreData => "pre-data",
            Section::PostData => "post-data",
            Section::Clean => "clean",
        }
    }
}

/// Everything pg_dump needs besides the section.
pub struct PgDump<'a> {
    pub tool: &'a Tool,
    pub spec: &'a ConnSpec,
    pub snapshot_id: &'a str,
    /// Exact `--exclude-table` patterns.
    pub exclude: &'a [String],
    /// Environment variables pg_dump must not see (the masking key's).
    pub hide_env: &'a [String],
    pub lock_timeout: Option<Duration>,
}

impl PgDump<'_> {
    fn command(&self, section: Section) -> Command {
        let mut cmd = Command::new(&self.tool.path);
        // pg_dump gets the connection settings and nothing secret of ours:
        // not the masking key (under whatever name it is configured), no
        // SCRUBSNAP_* setting, no cloud credentials.
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            let secret =
                name.starts_with("SCRUBSNAP_") || name.starts_with("AWS_") || self.hide_env.iter().any(|h| *h == name);
            if name.starts_with("PG") || secret {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.spec.libpq_env());
        cmd.arg("--format=plain")
            .arg(format!("--snapshot={}", self.snapshot_id))
            .arg("--no-password")
            .arg("--no-owner")
            .arg("--no-privileges")
            .arg("--no-tablespaces")
            .arg("--no-security-labels")
            .arg("--no-subscriptions")
            .arg("--no-publications")
            // Our COPY data is UTF-8 (the driver's client encoding); the
            // scripts must say the same, whatever the database's encoding.
            .arg("--encoding=UTF8");
        // pg_dump 18 can write the planner's statistics (most common
        // values, histogram bounds: column values); a snapshot never holds them.
        if self.tool.major >= 18 {
            cmd.arg("--no-statistics");
        }
        match section {
            Section::PreData => {
                cmd.arg("--section=pre-data");
            }
            Section::PostData => {
                cmd.arg("--section=post-data");
            }
            Section::Clean => {
                cmd.arg("--schema-only").arg("--clean").arg("--if-exists");
            }
        }
        if let Some(t) = self.lock_timeout {
            cmd.arg(format!("--lock-wait-timeout={}", t.as_millis().max(1)));
        }
        for p in self.exclude {
            cmd.arg(format!("--exclude-table={p}"));
        }
        // Dropped unfinished, it is asked to stop (SIGTERM, see `Running`).
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Runs pg_dump for `section` and returns its output.
    pub async fn run(&self, section: Section) -> Result<Vec<u8>, SourceError> {
        let mut out = Vec::new();
        self.run_into(section, &mut out).await?;
        if section == Section::Clean {
            out = clean_statements(&out);
        }
        Ok(out)
    }

    async fn run_into<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        section: Section,
        sink: &mut W,
    ) -> Result<(), SourceError> {
        let fail = |stderr: String| SourceError::PgDump { section: section.name().to_string(), stderr };
        let mut child = Running(
            self.command(section)
                .spawn()
                .map_err(|e| fail(format!("cannot start {}: {e}", self.tool.path.display())))?,
        );
        let mut stdout = child.0.stdout.take().ok_or_else(|| fail("no stdout".into()))?;
        let mut stderr = child.0.stderr.take().ok_or_else(|| fail("no stderr".into()))?;
        let read_err = async {
            // Keep the first 64 KiB, but drain the rest so pg_dump never
            // blocks on a full stderr pipe.
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 8192];
            loop {
                match stderr.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if buf.len() < 64 * 1024 {
                            buf.extend_from_slice(&chunk[..n]);
                        }
                    }
                }
            }
            String::from_utf8_lossy(&buf).trim().to_string()
        };
        let copy = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = stdout.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                sink.write_all(&buf[..n]).await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let (copied, err_text) = tokio::join!(copy, read_err);
        let status = child.0.wait().await.map_err(|e| fail(e.to_string()))?;
        if !status.success() {
            return Err(fail(if err_text.is_empty() { format!("exited with {status}") } else { err_text }));
        }
        copied.map_err(|e| fail(format!("reading its output: {e}")))?;
        if !err_text.is_empty() {
            tracing::warn!(section = section.name(), "pg_dump: {err_text}");
        }
        Ok(())
    }
}

/// A pg_dump that is asked to stop with SIGTERM when dropped unfinished (a
/// run stopped, or failed elsewhere). pg_dump then cancels its own
/// statement (a wait for a table lock) before it exits; SIGKILL would leave
/// that statement waiting in the server.
struct Running(tokio::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let pid = self.0.id().and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
    }
}

/// Keeps the header and the DROP statements of a `--clean --if-exists`
/// schema dump: pg_dump writes all drops first, then the first object's
/// `-- Name:` block starts the creates.
pub fn clean_statements(dump: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(dump);
    let mut out = String::new();
    let mut restrict_key: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare.starts_with("-- Name: ") || bare.starts_with("-- Data for Name: ") {
            break;
        }
        if let Some(k) = bare.strip_prefix("\\restrict ") {
            restrict_key = Some(k.trim().to_string());
        }
        out.push_str(line);
    }
    // Cut the trailing "--\n" that opened the first create block.
    while out.ends_with("--\n") {
        out.truncate(out.len() - 3);
    }
    if let Some(k) = restrict_key {
        out.push_str(&format!("\n\\unrestrict {k}\n"));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_keeps_the_drops() {
        let dump = "--\n-- PostgreSQL database dump\n--\n\n\\restrict K1\n\nSET x = 0;\n\nDROP TABLE IF EXISTS public.t;\nDROP SCHEMA IF EXISTS app;\n--\n-- Name: app; Type: SCHEMA; Schema: -; Owner: -\n--\n\nCREATE SCHEMA app;\n\n\\unrestrict K1\n";
        let out = String::from_utf8(clean_statements(dump.as_bytes())).unwrap();
        assert!(out.contains("DROP SCHEMA IF EXISTS app;"));
        assert!(!out.contains("CREATE SCHEMA"));
        assert!(out.trim_end().ends_with("\\unrestrict K1"));
        let parsed = crate::schema_script::parse("clean.sql", out.as_bytes()).unwrap();
        assert!(parsed.restricted);
    }
}
