//! The version matrix: PostgreSQL 13, 14, 16, 17 and 18 beside the
//! system's 15 (installed by `scripts/install-pg-matrix`), each running the
//! spine round trip (create, then restore and export, rows and schema
//! compared), masking along a foreign key, chunked dumps, a parallel
//! restore and `--clean`; snapshots restored across versions; and pg_dump
//! found by version, with no planner statistics in any snapshot.

use crate::harness::{matrix_dir, scrubsnap_env, store_dir, version_cluster, Cluster, Run};

const KEY: &str = "version-matrix-key-0123456789abcdef";

const RULES: &str = "version: 1\ntables:\n  public.people:\n    columns:\n      email: email\n      name: full_name\n";

/// scrubsnap with pg_dump 18 on PATH after the usual places, so discovery
/// has to choose between it and the system's 15.
fn run(args: &[&str]) -> Run {
    let path = format!("{}:{}", matrix_dir(18).join("bin").display(), std::env::var("PATH").unwrap_or_default());
    scrubsnap_env(args, &[("PATH", &path), ("SCRUBSNAP_KEY", KEY)])
}

/// The major of the pg_dump create should pick for a server of `major`:
/// the smallest of the server's major or newer among the system's
/// (`/usr/lib/postgresql/N`) and the matrix's 18 on PATH.
fn nearest_pg_dump(major: u32) -> u32 {
    let mut have = vec![18];
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        for d in dirs.flatten() {
            if let Ok(n) = d.file_name().to_string_lossy().parse::<u32>() {
                if d.path().join("bin/pg_dump").is_file() {
                    have.push(n);
                }
            }
        }
    }
    have.into_iter().filter(|&n| n >= major).min().unwrap_or(18)
}

fn created(r: &Run) -> String {
    assert_eq!(r.code, 0, "create failed:\n{}", r.all());
    r.stdout.trim().to_string()
}

/// The spine fixture plus a table large enough to be dumped in chunks and a
/// pair of tables joined by a masked key.
fn source(c: &Cluster, prefix: &str) -> String {
    let src = c.fixture_db(prefix);
    c.psql(
        &src,
        "CREATE TABLE public.bulk (id int PRIMARY KEY, pad text);
         INSERT INTO public.bulk SELECT i, md5(i::text) || md5((i * 7)::text) FROM generate_series(1, 40000) i;
         CREATE TABLE public.people (email text PRIMARY KEY, name text NOT NULL);
         CREATE TABLE public.visits (id int PRIMARY KEY, email text NOT NULL REFERENCES public.people);
         INSERT INTO public.people SELECT 'p' || i || '@corp.example', 'Person ' || i FROM generate_series(1, 50) i;
         INSERT INTO public.visits SELECT i, 'p' || (i % 50 + 1) || '@corp.example' FROM generate_series(1, 200) i;
         ANALYZE;",
    );
    src
}

fn round_trip(major: u32) {
    let c = version_cluster(major);
    let src = source(c, "spine");
    let dir = store_dir();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).expect("rules");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let url = c.url(&src);
    let id = created(&run(&[
        "create",
        "--source",
        &url,
        "--dest",
        &dest,
        "--rules",
        &rules.to_string_lossy(),
        "--chunk-size",
        "1",
        "-j",
        "2",
    ]));
    let manifest = crate::harness::read_manifest(store.path(), &id);
    let pg_dump = manifest["source"]["pg_dump_version"].as_str().unwrap_or_default().to_string();
    let expected_dump = format!("{}.", nearest_pg_dump(major));
    assert!(
        pg_dump.starts_with(&expected_dump),
        "PostgreSQL {major}: pg_dump {pg_dump} chosen, expected the nearest of the server's major or newer ({expected_dump}x)"
    );
    let bulk = manifest["tables"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == "bulk"))
        .cloned()
        .unwrap_or_default();
    let chunks = bulk["chunks"].as_array().map_or(0, Vec::len);
    if major >= 14 {
        assert!(chunks > 1, "PostgreSQL {major}: a large table is dumped in chunks: {bulk}");
    } else {
        assert!(chunks <= 1, "PostgreSQL 13 has no TID range scans: one file per table: {bulk}");
    }

    // Restore in parallel into a database --create makes.
    let dst = c.unused_db("spine_restored");
    let from = format!("{dest}/{id}");
    let r = run(&["restore", "--from", &from, "--target", &c.url(&dst), "--create", "-j", "2"]);
    assert_eq!(r.code, 0, "PostgreSQL {major}: restore failed:\n{}", r.all());
    let mut source_rows = c.table_digests(&src);
    let masked = ["public.people", "public.visits"];
    for t in masked {
        source_rows.remove(t);
    }
    let mut restored = c.table_digests(&dst);
    for t in masked {
        restored.remove(t);
    }
    assert_eq!(source_rows, restored, "PostgreSQL {major}: rows differ after restore");
    assert_eq!(c.schema_dump(&src), c.schema_dump(&dst), "PostgreSQL {major}: schemas differ after restore");
    assert_eq!(c.sequence_states(&src), c.sequence_states(&dst));
    // Masked along the key: every visit still finds its person, none by an original email.
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM visits v JOIN people p USING (email)"), "200");
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM people WHERE email LIKE '%corp.example'"), "0");

    // The same through export | psql.
    let sql = store.path().join("export.sql");
    let r = run(&["export", "--from", &from, "-o", &sql.to_string_lossy()]);
    assert_eq!(r.code, 0, "export failed:\n{}", r.all());
    let exported = c.fresh_db("spine_exported");
    let out = c.psql_file(&exported, &sql);
    assert!(
        out.status.success(),
        "PostgreSQL {major}: psql could not load the export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(c.table_digests(&dst), c.table_digests(&exported), "PostgreSQL {major}: export differs from restore");

    // Again over the restored copy, with --clean.
    let r = run(&["restore", "--from", &from, "--target", &c.url(&dst), "--clean", "-j", "2"]);
    assert_eq!(r.code, 0, "PostgreSQL {major}: restore --clean failed:\n{}", r.all());
    assert_eq!(c.table_digests(&exported), c.table_digests(&dst));

    // No planner statistics in the snapshot, though pg_dump 18 can write them.
    let scripts: String = ["pre-data", "post-data"]
        .iter()
        .map(|s| std::fs::read_to_string(store.path().join(&id).join(format!("schema/{s}.sql"))).unwrap_or_default())
        .collect();
    assert!(!scripts.contains("pg_restore_attribute_stats") && !scripts.contains("pg_restore_relation_stats"));
    if major >= 18 {
        let out = std::process::Command::new(matrix_dir(18).join("bin/pg_dump"))
            .args(["--statistics-only", "-d", &url])
            .output()
            .expect("pg_dump 18");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("pg_restore_attribute_stats"),
            "pg_dump 18 writes statistics when asked, so leaving them out is a choice worth testing"
        );
    }
}

#[test]
fn postgresql_13() {
    round_trip(13);
}
#[test]
fn postgresql_14() {
    round_trip(14);
}
#[test]
fn postgresql_16() {
    round_trip(16);
}
#[test]
fn postgresql_17() {
    round_trip(17);
}
#[test]
fn postgresql_18() {
    round_trip(18);
}

/// A snapshot of 13 restores into 17 with the same rows; a snapshot of 18
/// is refused by 17 before anything is loaded, and the database --create
/// made is gone again.
#[test]
fn snapshots_restore_into_the_same_or_a_newer_major_only() {
    let (old, mid, new) = (version_cluster(13), version_cluster(17), version_cluster(18));
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let src13 = old.fixture_db("spine");
    let id13 = created(&run(&["create", "--source", &old.url(&src13), "--dest", &dest, "--no-rules"]));
    let into17 = mid.unused_db("from13");
    let r = run(&["restore", "--from", &format!("{dest}/{id13}"), "--target", &mid.url(&into17), "--create"]);
    assert_eq!(r.code, 0, "13 into 17:\n{}", r.all());
    assert_eq!(old.table_digests(&src13), mid.table_digests(&into17), "13 into 17: same rows");

    let src18 = new.fixture_db("spine");
    let id18 = created(&run(&["create", "--source", &new.url(&src18), "--dest", &dest, "--no-rules"]));
    let into18 = new.unused_db("from18");
    let r = run(&["restore", "--from", &format!("{dest}/{id18}"), "--target", &new.url(&into18), "--create"]);
    assert_eq!(r.code, 0, "18 into 18:\n{}", r.all());
    assert_eq!(new.table_digests(&src18), new.table_digests(&into18));

    let refused = mid.unused_db("from18");
    let r = run(&["restore", "--from", &format!("{dest}/{id18}"), "--target", &mid.url(&refused), "--create"]);
    assert_eq!(r.code, 1, "18 into 17 is refused as a usage error:\n{}", r.all());
    assert!(r.stderr.contains("PostgreSQL 18") && r.stderr.contains("PostgreSQL 17"), "{}", r.stderr);
    let exists = mid.psql("postgres", &format!("SELECT count(*) FROM pg_database WHERE datname = '{refused}'"));
    assert_eq!(exists, "0", "the database --create made is dropped again");
}
