//! Finding PostgreSQL's client programs (`pg_dump`) that match the server.
//!
//! pg_dump refuses servers newer than itself, and Debian's `/usr/bin/pg_dump`
//! is a wrapper that picks a version by its own rules. We look for the
//! versioned binary of the server's major version (or newer) in the usual
//! places, and check the version of whatever we run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A located client program and its version.
#[derive(Debug, Clone)]
pub struct Tool {
    pub path: PathBuf,
    /// As the program prints it, e.g. `15.18`.
    pub version: String,
    pub major: u32,
}

/// Why no usable program was found.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{tool} {found} at {path} is older than the server (PostgreSQL {server}); it cannot dump it. Install the client programs of version {server} or newer, or point --pg-dump at one")]
    TooOld { tool: &'static str, path: PathBuf, found: String, server: u32 },
    #[error("cannot run {path}: {reason}")]
    Broken { path: PathBuf, reason: String },
    #[error("no {tool} of version {server} or newer found (looked in {looked}); install the PostgreSQL {server} client programs (Debian: apt-get install postgresql-client-{server}) or name one with --pg-dump")]
    NotFound { tool: &'static str, server: u32, looked: String },
}

/// Runs `<path> --version` and reads the version.
pub fn probe(path: &Path) -> Result<Tool, ToolError> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| ToolError::Broken { path: path.to_path_buf(), reason: e.to_string() })?;
    if !out.status.success() {
        return Err(ToolError::Broken {
            path: path.to_path_buf(),
            reason: format!("--version exited with {}", out.status),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (version, major) = parse_version(&text).ok_or_else(|| ToolError::Broken {
        path: path.to_path_buf(),
        reason: "unrecognised --version output".into(),
    })?;
    Ok(Tool { path: path.to_path_buf(), version, major })
}

/// `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → (`15.18`, 15).
pub fn parse_version(text: &str) -> Option<(String, u32)> {
    let line = text.lines().next()?;
    let after = line.split(')').nth(1)?.trim();
    let version = after.split_whitespace().next()?.to_string();
    let digits: String = version.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major = digits.parse().ok()?;
    Some((version, major))
}

/// Where the usual layouts put the client programs of major version
/// `major`: Debian and Ubuntu, RHEL and Fedora (PGDG), Homebrew (both
/// prefixes), Postgres.app, EnterpriseDB's installer.
fn versioned_dirs(major: u32) -> Vec<PathBuf> {
    [
        format!("/usr/lib/postgresql/{major}/bin"),
        format!("/usr/pgsql-{major}/bin"),
        format!("/opt/homebrew/opt/postgresql@{major}/bin"),
        format!("/usr/local/opt/postgresql@{major}/bin"),
        format!("/Applications/Postgres.app/Contents/Versions/{major}/bin"),
        format!("/opt/PostgreSQL/{major}/bin"),
        format!("/Library/PostgreSQL/{major}/bin"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// Folders without a version in their name: a directory bundled beside
/// this program (`../lib/scrubsnap/bin`, as a package may ship one), then
/// `PATH`, then the usual unversioned prefixes.
fn unversioned_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        dirs.push(exe_dir.join("../lib/scrubsnap/bin"));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&paths));
    }
    dirs.extend(["/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs
}

/// Finds `name` (e.g. `pg_dump`) of the server's major version or newer,
/// preferring the server's own major, then the nearest newer one (the
/// closest to what the server speaks); among equals, the first in the
/// search order. `explicit` (from `--pg-dump`) wins but must still be new
/// enough.
pub fn find(name: &'static str, server_major: u32, explicit: Option<&Path>) -> Result<Tool, ToolError> {
    if let Some(p) = explicit {
        let tool = probe(p)?;
        if tool.major < server_major {
            return Err(ToolError::TooOld { tool: name, path: tool.path, found: tool.version, server: server_major });
        }
        return Ok(tool);
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    for major in server_major..=server_major + 10 {
        candidates.extend(versioned_dirs(major).into_iter().map(|d| d.join(name)));
    }
    candidates.extend(unversioned_dirs().into_iter().map(|d| d.join(name)));
    // Older ones only to say what is there when nothing new enough is.
    for major in (server_major.saturating_sub(12)..server_major).rev() {
        candidates.extend(versioned_dirs(major).into_iter().map(|d| d.join(name)));
    }
    let mut seen = std::collections::HashSet::new();
    let mut best: Option<Tool> = None;
    let mut too_old = None;
    for c in &candidates {
        // Debian's /usr/bin/pg_dump is a wrapper that picks a version by its
        // own rules: the versioned binaries above are what it would run.
        let real = c.canonicalize().unwrap_or_else(|_| c.clone());
        if !c.is_file() || real.ends_with("share/postgresql-common/pg_wrapper") || !seen.insert(real) {
            continue;
        }
        match probe(c) {
            Ok(tool) if tool.major >= server_major => {
                if best.as_ref().is_none_or(|b| tool.major < b.major) {
                    let exact = tool.major == server_major;
                    best = Some(tool);
                    if exact {
                        break;
                    }
                }
            }
            Ok(tool) => {
                if too_old.as_ref().is_none_or(|o: &Tool| tool.major > o.major) {
                    too_old = Some(tool);
                }
            }
            Err(_) => continue,
        }
    }
    if let Some(tool) = best {
        return Ok(tool);
    }
    if let Some(tool) = too_old {
        return Err(ToolError::TooOld { tool: name, path: tool.path, found: tool.version, server: server_major });
    }
    Err(ToolError::NotFound {
        tool: name,
        server: server_major,
        looked: format!(
            "/usr/lib/postgresql/N/bin, /usr/pgsql-N/bin, Homebrew, Postgres.app and /opt/PostgreSQL/N/bin for N from {server_major}, a bin folder bundled beside scrubsnap, and PATH"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(("15.18".to_string(), 15))
        );
        assert_eq!(parse_version("pg_dump (PostgreSQL) 17devel"), Some(("17devel".to_string(), 17)));
        assert_eq!(parse_version("garbage"), None);
    }
}
