//! The Debian package: built with `scripts/package --dev` (cargo-deb, from
//! the debug build the tests already made), installed on this machine with
//! dpkg, and used as an operator would: `scrubsnap --version`, `man
//! scrubsnap`, the completions and units in place, and a create and a
//! restore with the installed binary. Needs root (dpkg); without it the
//! test fails and says so.

use std::path::Path;
use std::process::Command;

use crate::harness::{cluster, store_dir};

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn the_debian_package_installs_and_its_binary_works() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (ok, text) = run(Command::new("id").arg("-u"));
    assert!(ok && text.trim() == "0", "installing the package needs root (dpkg -i); run the tests as root, as CI does");
    let (ok, text) = run(Command::new(root.join("scripts/package")).arg("--dev"));
    assert!(ok, "scripts/package --dev failed:\n{text}");
    let deb = std::fs::read_dir(root.join("target/debian"))
        .expect("target/debian")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .expect("a .deb in target/debian");
    let (ok, text) = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(ok && text.contains("Depends:") && text.contains("postgresql-client"), "{text}");
    let (ok, text) = run(Command::new("dpkg").args(["-i"]).arg(&deb));
    assert!(ok, "dpkg -i {} failed:\n{text}", deb.display());

    let (ok, version) = run(Command::new("/usr/bin/scrubsnap").arg("--version"));
    assert!(ok && version.starts_with("scrubsnap 0.") && version.contains("(commit "), "{version}");
    let (ok, page) = run(Command::new("man").args(["-P", "cat", "scrubsnap"]).env("MANWIDTH", "80"));
    assert!(ok && page.contains("scrubsnap") && page.to_lowercase().contains("restore"), "man scrubsnap:\n{page}");
    for installed in [
        "/usr/share/bash-completion/completions/scrubsnap",
        "/usr/share/zsh/vendor-completions/_scrubsnap",
        "/usr/share/fish/vendor_completions.d/scrubsnap.fish",
        "/usr/share/doc/scrubsnap/examples/scrubsnap.service",
        "/usr/share/scrubsnap/scrubsnap-nightly.sh",
        "/etc/scrubsnap",
    ] {
        assert!(Path::new(installed).exists(), "{installed} is installed");
    }
    let units = ["/lib/systemd/system/scrubsnap.timer", "/usr/lib/systemd/system/scrubsnap.timer"];
    assert!(units.iter().any(|u| Path::new(u).exists()), "the timer unit is installed");
    let (_, user) = run(Command::new("getent").args(["passwd", "scrubsnap"]));
    assert!(user.starts_with("scrubsnap:"), "the package adds the scrubsnap user: {user}");

    // A create and a restore with the installed binary and the system's pg_dump.
    let c = cluster();
    let src = c.fixture_db("spine");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let (ok, out) = run(Command::new("/usr/bin/scrubsnap").args([
        "create",
        "--no-rules",
        "--source",
        &c.url(&src),
        "--dest",
        &dest,
    ]));
    assert!(ok, "create with the installed binary:\n{out}");
    let dst = c.unused_db("package_dst");
    let (ok, out) = run(Command::new("/usr/bin/scrubsnap").args([
        "restore",
        "--from",
        &format!("{dest}/latest"),
        "--target",
        &c.url(&dst),
        "--create",
    ]));
    assert!(ok, "restore with the installed binary:\n{out}");
    assert_eq!(c.table_digests(&src), c.table_digests(&dst));
}
