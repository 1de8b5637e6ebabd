//! Records the commit the binary is built from, for `scrubsnap --version`:
//! `SCRUBSNAP_BUILD_COMMIT` if set (a package built from a source tarball),
//! else `git rev-parse --short=12 HEAD` (with `-dirty` for local changes),
//! else "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=SCRUBSNAP_BUILD_COMMIT");
    let commit = std::env::var("SCRUBSNAP_BUILD_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let head = git(&["rev-parse", "--short=12", "HEAD"])?;
        // Rebuild when HEAD moves (a commit, a checkout).
        if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
            println!("cargo:rerun-if-changed={dir}/HEAD");
            if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
                println!("cargo:rerun-if-changed={dir}/{r}");
            }
            println!("cargo:rerun-if-changed={dir}/index");
        }
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Some(if dirty { format!("{head}-dirty") } else { head })
    });
    println!("cargo:rustc-env=SCRUBSNAP_COMMIT={}", commit.unwrap_or_else(|| "unknown".into()));
}
