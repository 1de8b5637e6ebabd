//! Trusted snapshots and a tool that trusts nothing: signatures, checked
//! bytes, exports safe for psql, nothing secret in the schema or messages,
//! file modes, keys, locks and partitions.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::{cluster, scrubsnap, scrubsnap_env, store_dir, Run};
use crate::s3_harness::{bucket, get, moto, put, run_s3};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn ok(r: &Run) -> String {
    assert_eq!(r.code, 0, "{}", r.all());
    r.stdout.trim().to_string()
}

fn keypair(dir: &Path, name: &str) -> (String, String) {
    let (private, public) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.pub.pem")));
    let r = scrubsnap(&[
        "keys",
        "generate",
        "--private",
        &private.to_string_lossy(),
        "--public",
        &public.to_string_lossy(),
    ]);
    let fingerprint = ok(&r);
    assert!(fingerprint.starts_with("ed25519:"), "{fingerprint}");
    assert_eq!(std::fs::metadata(&private).expect("private").permissions().mode() & 0o777, 0o600);
    (private.to_string_lossy().into_owned(), public.to_string_lossy().into_owned())
}

/// Rewrites a file of a local snapshot and its size and checksum in the
/// manifest, as someone who can write the store could.
fn tamper(store: &Path, id: &str, path: &str, bytes: &[u8]) {
    use sha2::Digest;
    let manifest_path = store.join(id).join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("json");
    for f in m["files"].as_array_mut().expect("files") {
        if f["path"] == path {
            f["bytes"] = serde_json::json!(bytes.len());
            f["sha256"] = serde_json::json!(hex::encode(sha2::Sha256::digest(bytes)));
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m).expect("json")).expect("write");
    // Where the file now belongs (a data file: under its new checksum).
    let file = crate::harness::file_path(store, id, path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, bytes).expect("write");
}

fn gz(text: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, text).expect("gz");
    e.finish().expect("gz")
}

#[test]
fn signed_snapshots_load_only_with_a_trusted_key() {
    let c = cluster();
    let src = c.fresh_db("signed");
    c.psql(
        &src,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 500) i;",
    );
    let keys = store_dir();
    let (a_private, a_public) = keypair(keys.path(), "a");
    let (_, b_public) = keypair(keys.path(), "b");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let id = ok(&scrubsnap(&[
        "create",
        "--source",
        &c.url(&src),
        "--dest",
        &dest,
        "--no-rules",
        "--signing-key",
        &a_private,
    ]));
    assert!(store.path().join(&id).join("manifest.sig").is_file());
    let from = format!("{dest}/{id}");

    // The trusted key loads it; two trusted keys at once (rotation) too.
    let (r, dst) = {
        let dst = c.fresh_db("signed_ok");
        (scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--trusted-key", &a_public]), dst)
    };
    ok(&r);
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM t"), "500");
    let both = format!("{b_public},{a_public}");
    let r = scrubsnap_env(&["verify", "--from", &from], &[("SCRUBSNAP_TRUSTED_KEYS", &both)]);
    ok(&r);

    // Another key: refused, exit 2, nothing loaded.
    let dst = c.fresh_db("signed_other");
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--trusted-key", &b_public]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("not a trusted key") && r.stderr.contains(&id), "{}", r.stderr);
    assert_eq!(c.user_table_count(&dst), 0);

    // One byte of a data file changed, and its checksum in the manifest:
    // the manifest no longer matches its signature.
    let file = crate::harness::data_file_sums(store.path(), &id)[0].0.clone();
    let mut bytes = std::fs::read(crate::harness::file_path(store.path(), &id, &file)).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    tamper(store.path(), &id, &file, &bytes);
    for command in ["restore", "export", "verify"] {
        let dst = c.fresh_db("signed_altered");
        let target = c.url(&dst);
        let mut args = vec![command, "--from", &from, "--trusted-key", &a_public];
        if command == "restore" {
            args.extend(["--target", &target]);
        }
        let r = scrubsnap(&args);
        assert_eq!(r.code, 2, "{command}: {}", r.all());
        assert!(r.stderr.contains("does not match its signature"), "{command}: {}", r.stderr);
        assert_eq!(c.user_table_count(&dst), 0);
    }

    // Unsigned: refused with a trusted key, loaded with --allow-unsigned.
    let id = ok(&scrubsnap(&["create", "--source", &c.url(&src), "--dest", &dest, "--no-rules"]));
    let from = format!("{dest}/{id}");
    let dst = c.fresh_db("unsigned");
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--trusted-key", &a_public]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("not signed"), "{}", r.stderr);
    let r = scrubsnap(&[
        "restore",
        "--from",
        &from,
        "--target",
        &c.url(&dst),
        "--trusted-key",
        &a_public,
        "--allow-unsigned",
    ]);
    ok(&r);
    assert!(r.stderr.contains("--allow-unsigned"), "a warning: {}", r.stderr);
    // Without trusted keys: as before, with a warning that the origin is not checked.
    let dst = c.fresh_db("unchecked");
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst)]);
    ok(&r);
    assert!(r.stderr.contains("origin is not checked"), "{}", r.stderr);

    // list says which are signed, and by which key.
    let r = scrubsnap(&["list", "--dest", &dest, "--format", "json"]);
    let items: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let signed: Vec<bool> =
        items.as_array().expect("list").iter().map(|i| i["signed"].as_bool().unwrap_or(false)).collect();
    assert_eq!(signed, vec![false, true], "{items}");
    assert!(items[1]["signing_key"].as_str().is_some_and(|k| k.starts_with("ed25519:")));
}

#[test]
fn a_signed_snapshot_in_s3_is_checked_the_same_way() {
    let c = cluster();
    let port = moto().port;
    let src = c.fresh_db("signed_s3");
    c.psql(&src, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);");
    let keys = store_dir();
    let (private, public) = keypair(keys.path(), "s3");
    let b = bucket(port);
    let dest = format!("s3://{b}/nightly");
    let id = ok(&run_s3(
        port,
        &["create", "--source", &c.url(&src), "--dest", &dest, "--no-rules", "--signing-key", &private],
        &[],
    ));
    let dst = c.fresh_db("signed_s3_ok");
    ok(&run_s3(
        port,
        &["restore", "--from", &format!("{dest}/latest"), "--target", &c.url(&dst), "--trusted-key", &public],
        &[],
    ));
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM t"), "100");
    // Someone who can write the bucket edits the manifest: refused.
    let key = format!("nightly/{id}/manifest.json");
    let manifest = String::from_utf8(get(port, &b, &key)).expect("utf8");
    put(port, &b, &key, manifest.replacen("\"rows\": 100", "\"rows\": 101", 1).as_bytes());
    let dst = c.fresh_db("signed_s3_bad");
    let r = run_s3(
        port,
        &["restore", "--from", &format!("{dest}/latest"), "--target", &c.url(&dst), "--trusted-key", &public],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(c.user_table_count(&dst), 0);
}

#[test]
fn exports_are_safe_for_psql_whatever_the_snapshot_holds() {
    let c = cluster();
    let src = c.fresh_db("export_safe");
    c.psql(&src, "CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b');");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let id = ok(&scrubsnap(&["create", "--source", &c.url(&src), "--dest", &dest, "--no-rules"]));
    let marker = std::env::temp_dir().join(format!("scrubsnap-pwned-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    // A pre-data script with a shell escape, and a data file whose line
    // would end the COPY block early and run SQL after it.
    let pre = std::fs::read_to_string(store.path().join(&id).join("schema/pre-data.sql")).expect("pre-data");
    let pre = pre.replace("SET ", &format!("\\! touch {}\nSET ", marker.display()));
    tamper(store.path(), &id, "schema/pre-data.sql", pre.as_bytes());
    let data = crate::harness::data_file_sums(store.path(), &id)[0].0.clone();
    tamper(store.path(), &id, &data, &gz(b"1\ta\n\\.\nDROP TABLE t;\n2\tb\n"));
    let out = store.path().join("export.sql");
    ok(&scrubsnap(&["export", "--from", &format!("{dest}/{id}"), "-o", &out.to_string_lossy()]));
    assert_eq!(std::fs::metadata(&out).expect("export").permissions().mode() & 0o777, 0o600, "exports are private");
    let text = std::fs::read_to_string(&out).expect("export");
    assert!(text.starts_with("\\restrict "), "the stream is wrapped whatever pg_dump wrote");
    // Without ON_ERROR_STOP, psql goes on after errors: still no shell
    // command runs, and the data never leaves its COPY block.
    let dst = c.fresh_db("export_safe_target");
    let _ = c.psql_file_lax(&dst, &out);
    assert!(!marker.exists(), "the export made psql run a shell command");
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 't'"), "1", "DROP TABLE ran");
}

#[test]
fn nothing_unmasked_leaves_through_the_schema() {
    let c = cluster();
    let src = c.fresh_db("schema_leak");
    c.psql(
        &src,
        "CREATE EXTENSION IF NOT EXISTS postgres_fdw;
         CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db.internal', dbname 'crm');
         CREATE USER MAPPING FOR CURRENT_USER SERVER elsewhere OPTIONS (user 'crm_reader', password 'Mapping-Secret-77');
         CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL);
         INSERT INTO people SELECT i, 'person' || i || '@mail.example' FROM generate_series(1, 50) i;",
    );
    let dir = store_dir();
    let rules = dir.path().join("r.yaml");
    std::fs::write(&rules, "version: 1\ntables:\n  people:\n    columns:\n      email: email\n").expect("write");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let key = [("SCRUBSNAP_KEY", KEY)];
    let id = ok(&scrubsnap_env(
        &["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules.to_string_lossy()],
        &key,
    ));
    for script in ["pre-data.sql", "post-data.sql", "clean.sql"] {
        let text = std::fs::read_to_string(store.path().join(&id).join("schema").join(script)).expect("script");
        assert!(!text.contains("Mapping-Secret-77") && !text.contains("USER MAPPING"), "{script}");
    }
    // An original quoted by a comment blocks publishing, naming the object.
    c.psql(&src, "COMMENT ON COLUMN people.email IS 'for example person7@mail.example';");
    let r = scrubsnap_env(
        &["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules.to_string_lossy()],
        &key,
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("COLUMN people.email; Type: COMMENT") && r.stderr.contains("public.people.email"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("person7@"), "no value in the message: {}", r.stderr);
}

#[test]
fn a_where_clause_that_fails_on_data_quotes_no_value() {
    let c = cluster();
    let src = c.fresh_db("where_fail");
    c.psql(
        &src,
        "CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, code text);
         INSERT INTO people SELECT i, 'known' || i || '@leaky.example', 'Known' || i || '@leaky.example' FROM generate_series(1, 20) i;",
    );
    let dir = store_dir();
    let rules = dir.path().join("r.yaml");
    std::fs::write(
        &rules,
        "version: 1\ntables:\n  people:\n    where: \"code::int > 0\"\n    columns:\n      email: email\n      code: keep\n",
    )
    .expect("write");
    let report = dir.path().join("report.json");
    let store = store_dir();
    let r = scrubsnap_env(
        &[
            "create",
            "--source",
            &c.url(&src),
            "--dest",
            &store.path().to_string_lossy(),
            "--rules",
            &rules.to_string_lossy(),
            "--report",
            &report.to_string_lossy(),
            "--log-format",
            "json",
        ],
        &[("SCRUBSNAP_KEY", KEY)],
    );
    assert_eq!(r.code, 2, "{}", r.all());
    let report = std::fs::read_to_string(&report).expect("report");
    for text in [&r.stdout, &r.stderr, &report] {
        assert!(!text.contains("leaky.example") && !text.contains("Known1"), "a value leaked: {text}");
    }
    assert!(r.stderr.contains("22P02") && r.stderr.contains("where:"), "{}", r.stderr);
}

#[test]
fn a_missing_privilege_is_named_as_such() {
    let c = cluster();
    let src = c.fresh_db("noprivs");
    let role = format!("reader_{}", std::process::id());
    c.psql(
        &src,
        &format!(
            "CREATE TABLE secret (id int); CREATE ROLE {role} LOGIN PASSWORD 'Reader-Pw-1';
             GRANT CONNECT ON DATABASE {src} TO {role}; GRANT USAGE ON SCHEMA public TO {role};"
        ),
    );
    let url = c.url(&src).replace(&format!("postgres:{}@", c.password()), &format!("{role}:Reader-Pw-1@"));
    let store = store_dir();
    let r = scrubsnap(&["create", "--source", &url, "--dest", &store.path().to_string_lossy(), "--no-rules"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("lacks a privilege") && r.stderr.contains("pg_read_all_data"), "{}", r.stderr);
    assert!(!r.stderr.contains("conflicting lock"), "{}", r.stderr);
    c.psql("postgres", &format!("DROP OWNED BY {role} CASCADE; REVOKE ALL ON DATABASE {src} FROM {role}"));
}

#[test]
fn a_partitions_rules_add_to_its_parents() {
    let c = cluster();
    let src = c.fresh_db("partrules");
    c.psql(
        &src,
        "CREATE TABLE events (id int, region text, email text) PARTITION BY LIST (region);
         CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
         CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
         INSERT INTO events SELECT i, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, 'p' || i || '@mail.example'
           FROM generate_series(1, 100) i;",
    );
    let dir = store_dir();
    let rules = dir.path().join("r.yaml");
    std::fs::write(
        &rules,
        "version: 1\ntables:\n  public.events:\n    columns:\n      email: email\n  public.events_eu:\n    where: \"id <= 40\"\n",
    )
    .expect("write");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let key = [("SCRUBSNAP_KEY", KEY)];
    let id = ok(&scrubsnap_env(
        &["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules.to_string_lossy()],
        &key,
    ));
    let (r, dst) = c.restore_new(store.path(), &id, "partrules_dst");
    ok(&r);
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM events_eu"), "20", "the partition's where: applies");
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM events_us"), "50");
    assert_eq!(
        c.psql(&dst, "SELECT count(*) FROM events WHERE email LIKE '%@mail.example'"),
        "0",
        "the parent's mask applies to the partition with its own rules"
    );
    // A partition cannot keep what its parent masks.
    std::fs::write(
        &rules,
        "version: 1\ntables:\n  public.events:\n    columns:\n      email: email\n  public.events_eu:\n    columns:\n      email: keep\n",
    )
    .expect("write");
    let r = scrubsnap_env(
        &["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules.to_string_lossy()],
        &key,
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("events_eu.email") && r.stderr.contains("parent table masks"), "{}", r.stderr);
}

#[test]
fn keys_files_and_locks_behave() {
    let c = cluster();
    let src = c.fresh_db("keys");
    c.psql(&src, "CREATE TABLE t (id int PRIMARY KEY, email text); INSERT INTO t VALUES (1, 'a@b.example');");
    let dir = store_dir();
    let rules = dir.path().join("r.yaml");
    std::fs::write(&rules, "version: 1\ntables:\n  t:\n    columns:\n      email: email\n").expect("write");
    let store = store_dir();
    let dest = store.path().join("snaps").to_string_lossy().to_string();
    let args = ["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules.to_string_lossy()];
    // A short passphrase is refused, with the command that makes a good key.
    let r = scrubsnap_env(&args, &[("SCRUBSNAP_KEY", "hunter2hunter2hunter2")]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("openssl rand -hex 32") && !r.stderr.contains("hunter2"), "{}", r.stderr);
    // --ephemeral-key with a configured key is a usage error.
    let mut eph = args.to_vec();
    eph.push("--ephemeral-key");
    let r = scrubsnap_env(&eph, &[("SCRUBSNAP_KEY", KEY)]);
    assert_eq!(r.code, 1, "{}", r.all());
    // A key file others can read draws a warning; hex is accepted.
    let key_file = dir.path().join("mask.key");
    std::fs::write(&key_file, KEY).expect("write");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut with_file = args.to_vec();
    let key_path = key_file.to_string_lossy().to_string();
    let report = dir.path().join("report.json");
    let report_path = report.to_string_lossy().to_string();
    with_file.extend(["--key-file", &key_path, "--report", &report_path]);
    let r = scrubsnap(&with_file);
    let id = ok(&r);
    assert!(r.stderr.contains("can be read by other users"), "{}", r.stderr);
    // Snapshot folders are 0700, files 0600, and so is the report.
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    let snap = Path::new(&dest).join(&id);
    assert_eq!(mode(&snap), 0o700);
    assert_eq!(mode(&snap.join("manifest.json")), 0o600);
    let data =
        crate::harness::file_path(Path::new(&dest), &id, &crate::harness::data_file_sums(Path::new(&dest), &id)[0].0);
    assert_eq!(mode(&data), 0o600);
    assert_eq!(mode(data.parent().expect("its folder")), 0o700);
    assert_eq!(mode(&Path::new(&dest).join("blobs")), 0o700);
    assert_eq!(mode(&report), 0o600);
    // A lock left by a dead run of this host is taken over at once.
    let dead = std::process::Command::new("true").spawn().expect("spawn");
    let pid = dead.id();
    let _ = dead.wait_with_output();
    let lock = Path::new(&dest).join("create.lock");
    let processes = format!(
        "{} {}",
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot").trim(),
        std::fs::read_link("/proc/self/ns/pid").expect("ns").display()
    );
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "unknown".into())
    });
    let body = serde_json::json!({
        "token": "dead", "host": host, "pid": pid, "started_at": "2026-01-01T00:00:00Z",
        "expires_at": "2999-01-01T00:00:00Z", "processes": processes,
    });
    std::fs::write(&lock, serde_json::to_vec(&body).expect("json")).expect("lock");
    let r = scrubsnap(&with_file);
    ok(&r);
    assert!(r.stderr.contains("process is gone"), "{}", r.stderr);
    // A lock of a live process is respected.
    let body = serde_json::json!({
        "token": "live", "host": host, "pid": std::process::id(), "started_at": "2026-01-01T00:00:00Z",
        "expires_at": "2999-01-01T00:00:00Z", "processes": processes,
    });
    std::fs::write(&lock, serde_json::to_vec(&body).expect("json")).expect("lock");
    let r = scrubsnap(&with_file);
    assert_eq!(r.code, 2, "{}", r.all());
    std::fs::remove_file(&lock).expect("unlock");
}

#[test]
fn tls_and_endpoints_are_not_weakened_by_accident() {
    let c = cluster();
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let weak = format!("{}?sslrootcert=system&sslmode=require", c.url("postgres"));
    let r = scrubsnap(&["create", "--source", &weak, "--dest", &dest, "--no-rules"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("verify-full"), "{}", r.stderr);
    let r = scrubsnap_env(
        &["list", "--dest", "s3://some-bucket/app", "--s3-endpoint", "http://minio.internal:9000"],
        &[("AWS_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true")],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("--s3-allow-http"), "{}", r.stderr);
}
