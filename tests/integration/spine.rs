//! The spine: create, restore, export and list on a real server.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::harness::{closed_port, cluster, scrubsnap, scrubsnap_env, snapshot_dirs, store_dir};

fn create(src_url: &str, store: &Path, extra: &[&str]) -> crate::harness::Run {
    let dest = store.to_string_lossy().to_string();
    let mut args = vec!["create", "--no-rules", "--source", src_url, "--dest", &dest];
    args.extend_from_slice(extra);
    scrubsnap(&args)
}

fn created_id(run: &crate::harness::Run) -> String {
    assert_eq!(run.code, 0, "create failed:\n{}", run.all());
    run.stdout.trim().to_string()
}

#[test]
fn fixture_round_trips_through_restore_and_export() {
    let c = cluster();
    let src = c.fixture_db("spine");
    let store = store_dir();
    let id = created_id(&create(&c.url(&src), store.path(), &[]));

    // Restore into a database that --create makes.
    let (r, dst) = c.restore_new(store.path(), "latest", "spine_restored");
    let from = format!("{}/latest", store.path().display());
    assert_eq!(r.code, 0, "restore failed:\n{}", r.all());

    let source_tables = c.table_digests(&src);
    assert!(source_tables.len() >= 10, "fixture too small: {source_tables:?}");
    assert_eq!(source_tables, c.table_digests(&dst), "rows differ after restore");
    assert_eq!(c.schema_dump(&src), c.schema_dump(&dst), "schemas differ after restore");
    assert_eq!(c.sequence_states(&src), c.sequence_states(&dst), "sequences differ after restore");

    // The same through export | psql.
    let sql = store.path().join("export.sql");
    let from_id = format!("{}/{id}", store.path().display());
    let r = scrubsnap(&["export", "--from", &from_id, "-o", &sql.to_string_lossy()]);
    assert_eq!(r.code, 0, "export failed:\n{}", r.all());
    let text = std::fs::read_to_string(&sql).expect("export file");
    assert!(text.starts_with("\\restrict "), "the export is protected from its first line");
    let exported = c.fresh_db("spine_exported");
    let out = c.psql_file(&exported, &sql);
    assert!(out.status.success(), "psql could not load the export: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(source_tables, c.table_digests(&exported), "rows differ after export | psql");
    assert_eq!(c.schema_dump(&src), c.schema_dump(&exported), "schemas differ after export | psql");
    assert_eq!(c.sequence_states(&src), c.sequence_states(&exported));

    // Sequences continue where the source stood.
    for db in [&src, &dst, &exported] {
        let next = c.psql(db, "SELECT string_agg(format('%s=%s', sequencename, nextval(format('%I.%I', schemaname, sequencename))), ',' ORDER BY sequencename) FROM pg_sequences");
        assert_eq!(next, c.psql(&src, "SELECT string_agg(format('%s=%s', sequencename, last_value), ',' ORDER BY sequencename) FROM pg_sequences"));
    }

    // Restoring again over the restored copy with --clean gives the same.
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--clean"]);
    assert_eq!(r.code, 0, "restore --clean failed:\n{}", r.all());
    assert_eq!(source_tables, c.table_digests(&dst), "rows differ after restore --clean");

    // Materialized views were refreshed with data.
    let mv = c.psql(&src, "SELECT format('%I.%I', schemaname, matviewname) FROM pg_matviews ORDER BY 1 LIMIT 1");
    if !mv.is_empty() {
        let count = format!("SELECT count(*) FROM {mv}");
        assert_eq!(c.psql(&src, &count), c.psql(&dst, &count));
    }
}

#[test]
fn snapshot_layout_and_manifest() {
    let c = cluster();
    let src = c.fresh_db("layout");
    c.psql(
        &src,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 100) i",
    );
    let store = store_dir();
    let id = created_id(&create(&c.url(&src), store.path(), &[]));
    let manifest = crate::harness::read_manifest(store.path(), &id);
    // Data files shared between snapshots need version 4 readers.
    assert_eq!(manifest["format_version"], 4);
    assert_eq!(manifest["snapshot_id"], id.as_str());
    assert_eq!(manifest["source"]["database"], src.as_str());
    assert_eq!(manifest["tables"][0]["rows"], 100);
    // Every file is listed with its true size and checksum; the files are gzip.
    let files = manifest["files"].as_array().expect("files");
    assert_eq!(files.len(), 4, "three schema scripts and one data file");
    for f in files {
        let path = crate::harness::file_path(store.path(), &id, f["path"].as_str().expect("path"));
        let bytes = std::fs::read(path).expect("file");
        assert_eq!(bytes.len() as u64, f["bytes"].as_u64().expect("bytes"));
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), f["sha256"].as_str().expect("sha"));
    }
    let data = crate::harness::file_path(store.path(), &id, manifest["tables"][0]["file"].as_str().expect("file"));
    assert!(data.starts_with(store.path().join("blobs/sha256")), "{}", data.display());
    let out = std::process::Command::new("gzip").arg("-dc").arg(&data).output().expect("gzip");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 100);
    let text = serde_json::to_string(&manifest).expect("json");
    c.assert_no_password(&text, "the manifest");
}

#[test]
fn concurrent_writers_never_break_foreign_keys() {
    let c = cluster();
    let src = c.fresh_db("consistency");
    // Tables are dumped in name order: the parent first, a big table in the
    // middle that takes a while, the child last.
    c.psql(
        &src,
        "CREATE TABLE a_parent (id bigint PRIMARY KEY);
         CREATE TABLE b_filler (id bigint, pad text);
         CREATE TABLE c_child (id bigserial PRIMARY KEY, parent_id bigint NOT NULL REFERENCES a_parent);
         INSERT INTO b_filler SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 300000) i;",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let url = c.url(&src);
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
                tokio::spawn(conn);
                let mut n: i64 = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    client
                        .batch_execute(&format!(
                            "BEGIN; INSERT INTO a_parent VALUES ({n}); INSERT INTO c_child (parent_id) VALUES ({n}); COMMIT"
                        ))
                        .await
                        .expect("writer");
                }
                n
            })
        })
    };
    // Let the writer get going, then dump while it writes.
    let waited = std::time::Instant::now();
    while c.psql(&src, "SELECT count(*) FROM a_parent") == "0" {
        assert!(waited.elapsed().as_secs() < 30, "the writer never committed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before: i64 = c.psql(&src, "SELECT count(*) FROM a_parent").parse().expect("count");
    let store = store_dir();
    let id = created_id(&create(&c.url(&src), store.path(), &["--jobs", "3"]));
    let after: i64 = c.psql(&src, "SELECT count(*) FROM a_parent").parse().expect("count");
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().expect("writer thread");

    let (r, dst) = c.restore_new(store.path(), &id, "consistency_restored");
    assert_eq!(r.code, 0, "restore failed (foreign key broken?):\n{}", r.all());
    let parents: i64 = c.psql(&dst, "SELECT count(*) FROM a_parent").parse().expect("count");
    let children: i64 = c.psql(&dst, "SELECT count(*) FROM c_child").parse().expect("count");
    assert_eq!(parents, children, "each writer transaction is wholly in the snapshot or not at all");
    assert!(written >= after && after > before, "the writer committed while create ran ({before} -> {after})");
    assert!(
        parents >= before && parents <= after,
        "the snapshot is one instant within the run ({before} <= {parents} <= {after})"
    );
}

#[test]
fn a_flipped_byte_is_named_and_nothing_is_loaded() {
    let c = cluster();
    let src = c.fresh_db("flip");
    c.psql(&src, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i");
    let store = store_dir();
    let id = created_id(&create(&c.url(&src), store.path(), &[]));
    let (path, _) = crate::harness::data_file_sums(store.path(), &id).into_iter().next().expect("a data file");
    let file = crate::harness::file_path(store.path(), &id, &path);
    let mut bytes = std::fs::read(&file).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&file, &bytes).expect("write");

    let dst = c.fresh_db("flip_target");
    let from = format!("{}/latest", store.path().display());
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst)]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains(&path), "the damaged file is named:\n{}", r.stderr);
    assert_eq!(c.user_table_count(&dst), 0, "nothing was loaded");

    // Export refuses too, and writes no file.
    let out = store.path().join("x.sql");
    let r = scrubsnap(&["export", "--from", &from, "-o", &out.to_string_lossy()]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(!out.exists());

    // A missing file is named as well.
    std::fs::remove_file(&file).expect("remove");
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
}

#[test]
fn bad_connections_fail_clearly_and_publish_nothing() {
    let c = cluster();
    let src = c.fresh_db("badconn");
    c.psql(&src, "CREATE TABLE t (id int)");
    let store = store_dir();

    let unreachable = format!("postgresql://postgres:pw@127.0.0.1:{}/x?connect_timeout=5", closed_port());
    let r = create(&unreachable, store.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);

    let wrong_pw = format!("postgresql://postgres:WrongSecret123@127.0.0.1:{}/{src}", c.port());
    let r = create(&wrong_pw, store.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("password"), "{}", r.stderr);
    assert!(!r.all().contains("WrongSecret123"), "the password is never printed:\n{}", r.all());

    let missing = c.url("no_such_database_here");
    let r = create(&missing, store.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no_such_database_here") && r.stderr.contains("does not exist"), "{}", r.stderr);
    c.assert_no_password(&r.all(), "a connection error");

    // Unparseable connection strings are usage errors.
    let r = create("host=x port=notaport password=Sekr1t", store.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("port") && !r.all().contains("Sekr1t"), "{}", r.stderr);

    // A store that is a file, not a folder.
    let file = store.path().join("not-a-folder");
    std::fs::write(&file, b"x").expect("write");
    let r = create(&c.url(&src), &file, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("not a folder"), "{}", r.stderr);

    // None of these left anything that list would show.
    assert!(snapshot_dirs(store.path()).is_empty(), "{:?}", snapshot_dirs(store.path()));
    let r = scrubsnap(&["list", "--dest", &store.path().to_string_lossy(), "--format", "json"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout.trim(), "[]");
}

#[test]
fn failure_mid_dump_leaves_no_snapshot() {
    let c = cluster();
    let src = c.fresh_db("middump");
    // A row-level security policy with FORCE hides rows even from the owner;
    // with row_security = off the read fails instead of dumping a subset.
    let role = format!("reader_{src}");
    c.psql(
        &src,
        &format!(
            "CREATE TABLE a (id int); INSERT INTO a VALUES (1);
         CREATE ROLE {role} LOGIN PASSWORD 'rlspw';
         CREATE TABLE b (id int); INSERT INTO b VALUES (1), (2);
         ALTER TABLE b ENABLE ROW LEVEL SECURITY; ALTER TABLE b FORCE ROW LEVEL SECURITY;
         CREATE POLICY only_one ON b USING (id = 1);
         GRANT SELECT ON a, b TO {role};"
        ),
    );
    let url = format!("postgresql://{role}:rlspw@127.0.0.1:{}/{src}", c.port());
    let store = store_dir();
    let r = create(&url, store.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("row-level security"), "{}", r.stderr);
    assert!(snapshot_dirs(store.path()).is_empty(), "the partial snapshot was removed");
    c.psql("postgres", &format!("DROP DATABASE \"{src}\""));
    c.psql("postgres", &format!("DROP ROLE {role}"));
}

#[test]
fn restore_refuses_a_non_empty_target_unless_clean() {
    let c = cluster();
    let src = c.fresh_db("clean_src");
    c.psql(
        &src,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'a' FROM generate_series(1, 10) i",
    );
    let store = store_dir();
    created_id(&create(&c.url(&src), store.path(), &[]));
    let from = format!("{}/latest", store.path().display());

    let dst = c.fresh_db("clean_dst");
    c.psql(&dst, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (999, 'local')");
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst)]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("not empty") && r.stderr.contains("--clean"), "{}", r.stderr);
    assert_eq!(c.psql(&dst, "SELECT v FROM t"), "local", "untouched");

    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--clean"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(c.table_digests(&src), c.table_digests(&dst));
    // Again: --clean is repeatable.
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--clean"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(c.table_digests(&src), c.table_digests(&dst));
}

#[test]
fn table_selection() {
    let c = cluster();
    let src = c.fresh_db("select");
    c.psql(
        &src,
        "CREATE SCHEMA audit;
         CREATE TABLE customers (id int PRIMARY KEY, email text);
         CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);
         CREATE TABLE audit.events (id int, what text);
         CREATE TABLE big_log (id int, line text);
         INSERT INTO customers VALUES (1, 'a@b.c'); INSERT INTO orders VALUES (1, 1);
         INSERT INTO audit.events VALUES (1, 'x'); INSERT INTO big_log VALUES (1, 'y');",
    );
    let store = store_dir();
    let id = created_id(&create(
        &c.url(&src),
        store.path(),
        &["--exclude-table", "audit.*", "--schema-only-table", "big_*"],
    ));
    let (r, dst) = c.restore_new(store.path(), &id, "select_dst");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(c.psql(&dst, "SELECT to_regclass('audit.events') IS NULL"), "t", "excluded table absent");
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM big_log"), "0", "structure only");
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM orders"), "1");

    // Leaving out what a kept table refers to is refused up front (exit 1).
    let r = create(
        &c.url(&src),
        store.path(),
        &["--exclude-table", "public.customers", "--schema-only-table", "nothing_matches"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("orders_customer_id_fkey"), "{}", r.stderr);
    let r = create(&c.url(&src), store.path(), &["--include-table", "orders"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("customers"), "{}", r.stderr);
    assert_eq!(snapshot_dirs(store.path()), vec![id]);
}

#[test]
fn list_shows_complete_snapshots_newest_first() {
    let c = cluster();
    let src = c.fresh_db("list");
    c.psql(&src, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 7)");
    let store = store_dir();
    let first = created_id(&create(&c.url(&src), store.path(), &[]));
    let second = created_id(&create(&c.url(&src), store.path(), &[]));
    assert!(first < second, "ids sort by time");
    // A folder without a manifest (a crashed run) is not a snapshot.
    std::fs::create_dir_all(store.path().join("20991231T235959.999Z/data")).expect("mkdir");
    let r = scrubsnap(&["list", "--dest", &store.path().to_string_lossy(), "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let ids: Vec<&str> = v.as_array().expect("array").iter().map(|s| s["id"].as_str().expect("id")).collect();
    assert_eq!(ids, vec![second.as_str(), first.as_str()]);
    assert_eq!(v[0]["rows"], 7);
    let r = scrubsnap(&["list", "--dest", &store.path().to_string_lossy()]);
    assert!(r.stdout.lines().nth(1).is_some_and(|l| l.starts_with(&second)), "{}", r.stdout);

    // latest resolves to the newest complete one.
    let (r, _dst) = c.restore_new(store.path(), "latest", "list_dst");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains(&second), "{}", r.stderr);
}

#[test]
fn old_pg_dump_is_refused_before_anything_is_written() {
    let c = cluster();
    let src = c.fresh_db("oldtool");
    let store = store_dir();
    let fake = store.path().join("pg_dump_96");
    std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let dest = store.path().join("snaps");
    let r = create(&c.url(&src), &dest, &["--pg-dump", &fake.to_string_lossy()]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("older than the server"), "{}", r.stderr);
    assert!(snapshot_dirs(&dest).is_empty());
}

#[test]
fn usage_errors_exit_1_and_json_logs_parse() {
    let r = scrubsnap(&["create", "--no-such-flag"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let r = scrubsnap(&["restore", "--from", "s3://Not_A_Bucket/x/latest", "--target", "host=x"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("bucket name"), "{}", r.stderr);
    let r = scrubsnap(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("create") && r.stdout.contains("restore") && r.stdout.contains("export"));

    let c = cluster();
    let src = c.fresh_db("jsonlog");
    c.psql(&src, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let r = scrubsnap_env(
        &["--log-format", "json", "create", "--no-rules", "--dest", &dest],
        &[("SCRUBSNAP_SOURCE", &c.url(&src))],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(lines.len() >= 3);
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some());
    }
    c.assert_no_password(&r.all(), "the JSON logs");
}

#[test]
fn connection_falls_back_to_pg_variables() {
    let c = cluster();
    let src = c.fresh_db("pgenv");
    c.psql(&src, "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let port = c.port().to_string();
    let r = scrubsnap_env(
        &["create", "--no-rules", "--dest", &dest],
        &[
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", &port),
            ("PGUSER", "postgres"),
            ("PGPASSWORD", c.password()),
            ("PGDATABASE", &src),
            ("PGSSLMODE", "disable"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    // And a key=value string with DATABASE_URL unused.
    let kv =
        format!("host=127.0.0.1 port={port} user=postgres password='{}' dbname={src} sslmode=prefer", c.password());
    let r = scrubsnap(&["create", "--no-rules", "--source", &kv, "--dest", &dest]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = scrubsnap_env(&["create", "--no-rules", "--dest", &dest], &[("DATABASE_URL", &c.url(&src))]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(snapshot_dirs(store.path()).len(), 3);
}

#[test]
fn tls_modes() {
    let c = cluster();
    let src = c.fresh_db("tls");
    c.psql(&src, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    let store = store_dir();
    let ca = c.ca_cert().to_string_lossy().to_string();
    let base = c.url(&src);
    for (query, ok) in [
        ("sslmode=require".to_string(), true),
        (format!("sslmode=verify-ca&sslrootcert={ca}"), true),
        (format!("sslmode=verify-full&sslrootcert={ca}"), true),
        ("sslmode=disable".to_string(), true),
        // No root certificate for a verifying mode: a configuration error.
        ("sslmode=verify-full".to_string(), false),
    ] {
        let r = create(&format!("{base}?{query}"), store.path(), &[]);
        assert_eq!(r.code == 0, ok, "{query}:\n{}", r.all());
        if !ok {
            assert_eq!(r.code, 1, "{query}:\n{}", r.all());
            assert!(r.stderr.contains("sslrootcert"), "{}", r.stderr);
        }
    }
    // A root that did not sign the server's certificate is refused.
    let other = store.path().join("other-ca.crt");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=other", "-keyout"])
        .arg(store.path().join("other.key"))
        .arg("-out")
        .arg(&other)
        .output()
        .expect("openssl");
    assert!(made.status.success());
    let r = create(&format!("{base}?sslmode=verify-ca&sslrootcert={}", other.display()), store.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);
    // The four good modes each published a snapshot.
    assert_eq!(snapshot_dirs(store.path()).len(), 4);
}

#[test]
fn lock_timeout_stops_a_blocked_create() {
    let c = cluster();
    let src = c.fresh_db("locked");
    c.psql(&src, "CREATE TABLE busy (id int)");
    let url = c.url(&src);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let holder = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        client.batch_execute("BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE").await.expect("lock");
        client
    });
    let store = store_dir();
    let started = std::time::Instant::now();
    let r = create(&url, store.path(), &["--lock-timeout", "1s"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("lock"), "{}", r.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(snapshot_dirs(store.path()).is_empty());
    drop(holder);
}

#[test]
fn memory_stays_bounded_by_buffers() {
    // ~120 MB of rows and one 40 MB value; the dump's peak RSS must stay far
    // below the data size (a generous ceiling, not a benchmark).
    let c = cluster();
    let src = c.fresh_db("bigdump");
    c.psql(
        &src,
        "CREATE TABLE wide (id int, pad text);
         INSERT INTO wide SELECT i, repeat(md5(i::text), 16) FROM generate_series(1, 230000) i;
         CREATE TABLE huge_value (id int, v text);
         INSERT INTO huge_value SELECT 1, string_agg(md5(i::text), '') FROM generate_series(1, 1250000) i;",
    );
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let url = c.url(&src);
    let rss_kib = peak_rss_kib(&["create", "--no-rules", "--source", &url, "--dest", &dest]);
    // The 40 MB value is held about twice (driver buffer and compressor
    // input); the 120 MB table streams through fixed buffers.
    assert!(rss_kib < 128 * 1024, "peak RSS {rss_kib} KiB for ~160 MB of data");
    let dst = c.unused_db("bigdump_dst");
    let from = format!("{dest}/latest");
    let target = c.url(&dst);
    let rss_kib = peak_rss_kib(&["restore", "--from", &from, "--target", &target, "--create"]);
    assert!(rss_kib < 64 * 1024, "restore peak RSS {rss_kib} KiB");
    assert_eq!(c.table_digests(&src), c.table_digests(&dst));
}

/// Runs scrubsnap under GNU time and returns its peak RSS.
fn peak_rss_kib(args: &[&str]) -> u64 {
    let time = std::path::Path::new("/usr/bin/time");
    assert!(time.is_file(), "GNU time is needed for this test: apt-get install time (scripts/setup does)");
    let report = tempfile::NamedTempFile::new().expect("temp");
    let out = std::process::Command::new(time)
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(env!("CARGO_BIN_EXE_scrubsnap"))
        .args(args)
        .env("HOME", "/nonexistent-home")
        .env_remove("DATABASE_URL")
        .env_remove("SCRUBSNAP_KEY")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(report.path()).expect("report").trim().lines().last().unwrap_or("").parse().expect("kib")
}

#[test]
fn parallel_dumps_write_the_same_files_as_one_job() {
    let c = cluster();
    let src = c.fixture_db("spine");
    let store = store_dir();
    let one = created_id(&create(&c.url(&src), store.path(), &["--jobs", "1"]));
    let four = created_id(&create(&c.url(&src), store.path(), &["--jobs", "4"]));
    let sums = |id: &str| crate::harness::data_file_sums(store.path(), id);
    let (a, b) = (sums(&one), sums(&four));
    assert!(a.len() >= 10);
    assert_eq!(a, b, "the same files, names and bytes, whatever the number of jobs");
    let (r, dst) = c.restore_new(store.path(), &four, "parallel_dst");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(c.table_digests(&src), c.table_digests(&dst));
}

#[test]
fn large_tables_are_dumped_in_chunks_that_restore_to_the_same_rows() {
    let c = cluster();
    let src = c.fixture_db("spine");
    // About 4 MB on disk, with holes left by deleted rows; a 1 MiB chunk size
    // splits it into page ranges dumped by three workers.
    c.psql(
        &src,
        "CREATE TABLE public.chunky (id int PRIMARY KEY, pad text, note text);
         INSERT INTO public.chunky SELECT i, md5(i::text), CASE WHEN i % 5 = 0 THEN E'tab\\there' END
           FROM generate_series(1, 60000) i;
         DELETE FROM public.chunky WHERE id % 7 = 0;",
    );
    let store = store_dir();
    let whole = created_id(&create(&c.url(&src), store.path(), &["--jobs", "1"]));
    let chunked = created_id(&create(&c.url(&src), store.path(), &["--jobs", "3", "--chunk-size", "1"]));

    let m = crate::harness::read_manifest(store.path(), &chunked);
    assert_eq!(m["format_version"], 4, "data files shared between snapshots need version 4 readers");
    assert_eq!(crate::harness::read_manifest(store.path(), &whole)["format_version"], 4);
    let tables = m["tables"].as_array().expect("tables");
    let chunky = tables.iter().find(|t| t["name"] == "chunky").expect("chunky in the manifest");
    let chunks = chunky["chunks"].as_array().expect("chunky was dumped in chunks");
    assert!(chunks.len() >= 3, "{chunky}");
    assert!(chunky["file"].is_null());
    let rows: u64 = chunks.iter().map(|c| c["rows"].as_u64().expect("rows")).sum();
    assert_eq!(rows, chunky["rows"].as_u64().expect("rows"));
    assert_eq!(rows, 60000 - 60000 / 7);
    for ch in chunks {
        let file = ch["file"].as_str().expect("file");
        assert!(file.starts_with("data/") && file.ends_with(".copy.gz"), "{file}");
        assert!(m["files"].as_array().expect("files").iter().any(|f| f["path"] == file), "{file} has a checksum");
    }

    // Restore (in one transaction, and on three connections), verify and
    // export read the chunks as one table.
    let from = format!("{}/{chunked}", store.path().display());
    for jobs in ["1", "3"] {
        let dst = c.unused_db("chunked_dst");
        let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--create", "-j", jobs]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_eq!(c.table_digests(&src), c.table_digests(&dst), "rows differ after a chunked restore, -j {jobs}");
        assert_eq!(c.schema_dump(&src), c.schema_dump(&dst), "schemas differ after restore -j {jobs}");
    }
    let r = scrubsnap(&["verify", "--from", &from]);
    assert_eq!(r.code, 0, "{}", r.all());
    let sql = store.path().join("chunked.sql");
    let r = scrubsnap(&["export", "--from", &from, "-o", &sql.to_string_lossy()]);
    assert_eq!(r.code, 0, "{}", r.all());
    let exported = c.fresh_db("chunked_exported");
    let out = c.psql_file(&exported, &sql);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(c.table_digests(&src), c.table_digests(&exported), "rows differ after exporting chunks");

    // A chunk whose rows do not match the manifest is refused before loading.
    let first = chunks[0]["file"].as_str().expect("file").to_string();
    let path = crate::harness::file_path(store.path(), &chunked, &first);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"1\tx\t\\N\n").expect("gz");
    std::fs::write(&path, gz.finish().expect("gz")).expect("write");
    let dst2 = c.unused_db("chunked_bad");
    for jobs in ["1", "3"] {
        let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst2), "--create", "-j", jobs]);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.all().contains(&first), "names the damaged chunk: {}", r.all());
        // The database --create made for it is gone again, as it was.
        let exists = c.psql("postgres", &format!("SELECT count(*) FROM pg_database WHERE datname = '{dst2}'"));
        assert_eq!(exists, "0", "-j {jobs}: the created database was left behind: {}", r.all());
    }
}

#[test]
fn a_failed_restore_leaves_the_target_as_it_was_or_empty() {
    let c = cluster();
    let src = c.fresh_db("undo");
    c.psql(
        &src,
        "CREATE TABLE codes (id int PRIMARY KEY, code text NOT NULL CHECK (code ~ '^[A-Z]{3}$'));
         INSERT INTO codes SELECT i, 'ABC' FROM generate_series(1, 500) i;
         CREATE TABLE notes (id int PRIMARY KEY, code_id int REFERENCES codes, body text);
         INSERT INTO notes SELECT i, i, 'n' || i FROM generate_series(1, 500) i;",
    );
    let dir = store_dir();
    // hash writes lowercase hex: the rows break the CHECK constraint on load.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\ntables:\n  codes:\n    columns:\n      code: {mask: hash, length: 3}\n")
        .expect("write");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let key = [("SCRUBSNAP_KEY", "undo-test-key-0123456789abcdef-0123456789")];
    let r =
        scrubsnap_env(&["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &bad.to_string_lossy()], &key);
    assert_eq!(r.code, 0, "{}", r.all());
    let from = format!("{dest}/latest");
    let tables = |db: &str| c.psql(db, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace");

    // Into an empty database: in one transaction nothing is committed; in
    // parallel what was created is dropped again. Either way it stays empty.
    for (jobs, says) in [("1", "nothing was committed"), ("2", "dropped again, so the target is empty as it was")] {
        let dst = c.fresh_db("undo_dst");
        let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "-j", jobs]);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.stderr.contains("codes_code_check"), "names the constraint: {}", r.stderr);
        assert!(r.stderr.contains(says), "-j {jobs}: {}", r.stderr);
        assert_eq!(tables(&dst), "0", "-j {jobs} left objects behind");
    }

    // Over an earlier restore with --clean: one transaction keeps the old
    // contents; in parallel they are gone, and the error says so.
    let dst = c.fresh_db("undo_clean");
    c.psql(&dst, "CREATE TABLE codes (id int PRIMARY KEY, code text); INSERT INTO codes VALUES (1, 'old');");
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--clean", "-j", "1"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(c.psql(&dst, "SELECT code FROM codes"), "old", "one transaction leaves the target untouched");
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--clean", "-j", "2"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("the objects --clean had dropped are gone"), "{}", r.stderr);
    assert_eq!(tables(&dst), "0");
}
