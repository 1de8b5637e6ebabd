//! Masking end to end: rules applied during create, checked on restore.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::harness::{cluster, scrubsnap_env, snapshot_dirs, store_dir, Run};

const KEY: &str = "integration-test-key-0123456789abcdef";
const OTHER_KEY: &str = "a-different-key-for-the-same-data-42";

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).to_string_lossy().into_owned()
}

fn create_masked(src_url: &str, store: &Path, rules: &str, key: &str, extra: &[&str]) -> Run {
    let dest = store.to_string_lossy().to_string();
    let mut args = vec!["create", "--source", src_url, "--dest", &dest, "--rules", rules];
    args.extend_from_slice(extra);
    scrubsnap_env(&args, &[("SCRUBSNAP_KEY", key)])
}

fn ok_id(r: &Run) -> String {
    assert_eq!(r.code, 0, "create failed:\n{}", r.all());
    r.stdout.trim().to_string()
}

fn manifest(store: &Path, id: &str) -> serde_json::Value {
    crate::harness::read_manifest(store, id)
}

/// Every data file of a snapshot, decompressed, by path.
fn data_files(store: &Path, id: &str) -> BTreeMap<String, String> {
    let m = manifest(store, id);
    let mut out = BTreeMap::new();
    for t in m["tables"].as_array().expect("tables") {
        if let Some(f) = t["file"].as_str() {
            let bytes = crate::harness::decompressed(&crate::harness::file_path(store, id, f));
            out.insert(f.to_string(), String::from_utf8(bytes).expect("utf-8"));
        }
    }
    out
}

fn shop() -> String {
    cluster().sql_db("shop", "demo/seed.sql")
}

#[test]
fn no_original_value_of_a_masked_column_reaches_the_snapshot() {
    let c = cluster();
    let src = shop();
    let store = store_dir();
    let id = ok_id(&create_masked(&c.url(&src), store.path(), &repo("rules/demo.yaml"), KEY, &[]));
    let all: String = data_files(store.path(), &id).into_values().collect();
    let mut checked = 0;
    for (what, sql) in [
        ("customers.email", "SELECT email FROM customers"),
        ("customers.phone", "SELECT phone FROM customers WHERE phone IS NOT NULL"),
        ("customers.street", "SELECT street FROM customers"),
        ("orders.customer_email", "SELECT customer_email FROM orders"),
        ("orders.shipping_address", "SELECT shipping_address FROM orders"),
        // Emails and phone numbers written inside the free-text notes.
        ("emails in orders.notes", "SELECT (regexp_matches(notes, '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+', 'g'))[1] FROM orders WHERE notes IS NOT NULL"),
        ("phones in orders.notes", "SELECT (regexp_matches(notes, '\\+?[0-9][0-9 ().-]{8,}[0-9]', 'g'))[1] FROM orders WHERE notes IS NOT NULL"),
    ] {
        let originals = c.psql(&src, sql);
        let values: Vec<&str> = originals.lines().filter(|v| v.len() >= 6).collect();
        assert!(!values.is_empty(), "{what}: the fixture has values to check");
        for v in &values {
            assert!(!all.contains(v), "{what}: an original value reached the snapshot");
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} values checked");
    // The manifest says how, without the key.
    let m = manifest(store.path(), &id);
    let fp = m["masking"]["key_fingerprint"].as_str().expect("fingerprint");
    assert_eq!(fp.len(), 16);
    let text = serde_json::to_string(&m).expect("json");
    assert!(!text.contains(KEY));
    assert!(text.contains("\"status\":\"masked\""));
}

#[test]
fn masked_snapshots_restore_with_every_constraint_and_join() {
    let c = cluster();
    let src = shop();
    let store = store_dir();
    let id = ok_id(&create_masked(&c.url(&src), store.path(), &repo("rules/demo.yaml"), KEY, &[]));
    let (r, dst) = c.restore_new(store.path(), &id, "shop_masked");
    assert_eq!(r.code, 0, "restore (which validates every PK, unique, FK, NOT NULL and CHECK) failed:\n{}", r.all());
    for sql in [
        "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id",
        "SELECT count(*) FROM order_items i JOIN orders o ON o.id = i.order_id JOIN products p ON p.id = i.product_id",
        "SELECT count(DISTINCT email) FROM customers",
        "SELECT count(*) FROM customers WHERE phone IS NULL",
    ] {
        assert_eq!(c.psql(&src, sql), c.psql(&dst, sql), "{sql}");
    }
    // The denormalised copy still equals the customer's (masked) email.
    let mismatched =
        "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.customer_email <> c.email";
    assert_eq!(c.psql(&src, mismatched), "0");
    assert_eq!(c.psql(&dst, mismatched), "0");
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM customers WHERE email NOT LIKE '%@example.%'"), "0");
    // The phone format is kept.
    assert_eq!(
        c.psql(&dst, "SELECT count(*) FROM customers WHERE phone !~ '^\\+1 \\([0-9]{3}\\) [0-9]{3}-[0-9]{4}$'"),
        c.psql(&src, "SELECT count(*) FROM customers WHERE phone !~ '^\\+1 \\([0-9]{3}\\) [0-9]{3}-[0-9]{4}$'")
    );
}

#[test]
fn one_key_gives_identical_files_another_key_other_values() {
    let c = cluster();
    let src = shop();
    let store = store_dir();
    let rules = repo("rules/demo.yaml");
    let a = ok_id(&create_masked(&c.url(&src), store.path(), &rules, KEY, &[]));
    let b = ok_id(&create_masked(&c.url(&src), store.path(), &rules, KEY, &[]));
    let other = ok_id(&create_masked(&c.url(&src), store.path(), &rules, OTHER_KEY, &[]));
    let sums = |id: &str| crate::harness::data_file_sums(store.path(), id);
    assert_eq!(sums(&a), sums(&b), "same key, same data: byte-identical files");
    let (fa, fo) = (data_files(store.path(), &a), data_files(store.path(), &other));
    let customers = |m: &BTreeMap<String, String>| {
        m.iter().find(|(k, _)| k.contains("customers")).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    assert_ne!(customers(&fa), customers(&fo), "another key gives other values");
    assert_eq!(
        manifest(store.path(), &a)["masking"]["key_fingerprint"],
        manifest(store.path(), &b)["masking"]["key_fingerprint"]
    );
    assert_ne!(
        manifest(store.path(), &a)["masking"]["key_fingerprint"],
        manifest(store.path(), &other)["masking"]["key_fingerprint"]
    );
}

#[test]
fn rules_follow_foreign_keys_including_composite_and_self_references() {
    let c = cluster();
    let src = c.fresh_db("fkmask");
    c.psql(
        &src,
        "CREATE TABLE accounts (id uuid PRIMARY KEY, email text UNIQUE NOT NULL, referrer uuid REFERENCES accounts);
         CREATE TABLE devices (account_id uuid REFERENCES accounts, serial varchar(16), PRIMARY KEY (account_id, serial));
         CREATE TABLE sessions (id bigserial PRIMARY KEY, account_id uuid NOT NULL, serial varchar(16) NOT NULL,
                                FOREIGN KEY (account_id, serial) REFERENCES devices);
         INSERT INTO accounts SELECT md5('a' || i)::uuid, 'user' || i || '@corp.example', NULL FROM generate_series(1, 50) i;
         UPDATE accounts SET referrer = (SELECT id FROM accounts ORDER BY email LIMIT 1) WHERE email LIKE 'user1%';
         INSERT INTO devices SELECT id, 'SN-' || substr(md5(email), 1, 8) FROM accounts;
         INSERT INTO sessions (account_id, serial) SELECT account_id, serial FROM devices, generate_series(1, 3);",
    );
    let rules_dir = store_dir();
    let rules = rules_dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "version: 1\nstrict: true\ntables:\n  accounts:\n    columns:\n      id: uuid\n      email: email\n      referrer: uuid\n  devices:\n    columns:\n      serial: {mask: hash, length: 16}\n  sessions:\n    columns:\n      id: keep\n",
    )
    .expect("write");
    let store = store_dir();
    let r = create_masked(&c.url(&src), store.path(), &rules.to_string_lossy(), KEY, &[]);
    let id = ok_id(&r);
    // The manifest shows which columns got their rule through a key.
    let m = manifest(store.path(), &id);
    let cols = m["masking"]["columns"].as_array().expect("columns");
    let why = |t: &str, col: &str| {
        cols.iter()
            .find(|x| x["table"] == t && x["column"] == col)
            .map(|x| x["why"]["kind"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(why("public.devices", "account_id"), "foreign_key");
    assert_eq!(why("public.sessions", "account_id"), "foreign_key");
    assert_eq!(why("public.sessions", "serial"), "foreign_key");
    let (r, dst) = c.restore_new(store.path(), &id, "fkmask_dst");
    assert_eq!(r.code, 0, "{}", r.all());
    for sql in [
        "SELECT count(*) FROM sessions s JOIN devices d USING (account_id, serial) JOIN accounts a ON a.id = d.account_id",
        "SELECT count(*) FROM accounts a JOIN accounts r ON r.id = a.referrer",
    ] {
        assert_eq!(c.psql(&src, sql), c.psql(&dst, sql), "{sql}");
    }
    assert_eq!(
        c.psql(
            &dst,
            "SELECT count(*) FROM accounts a JOIN accounts s ON s.id = a.id WHERE a.id IN (SELECT id FROM accounts)"
        ),
        "50"
    );
    let overlap = c.psql(
        &dst,
        &format!(
            "SELECT count(*) FROM accounts WHERE id IN ({})",
            c.psql(&src, "SELECT string_agg(quote_literal(id), ',') FROM accounts")
        ),
    );
    assert_eq!(overlap, "0", "no original key survives");
}

#[test]
fn masked_values_fit_narrow_columns() {
    let c = cluster();
    let src = c.fresh_db("narrow");
    c.psql(
        &src,
        "CREATE TABLE people (id smallint PRIMARY KEY, first varchar(3) NOT NULL, full_name char(5), city varchar(2),
                              code varchar(4), handle varchar(20) UNIQUE, ip inet, born date, tag uuid);
         INSERT INTO people SELECT i, 'Ann', 'Bobby', 'NY', '1234', 'h' || i, ('10.0.0.' || i)::inet, date '1980-01-01' + i, md5(i::text)::uuid
         FROM generate_series(1, 200) i;",
    );
    let dir = store_dir();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "version: 1\ntables:\n  people:\n    columns:\n      id: integer\n      first: first_name\n      full_name: full_name\n      city: city\n      code: {mask: hash, length: 4, on_error: null}\n      handle: username\n      ip: {mask: ip, keep_prefix: 24}\n      born: {mask: date_shift, days: 3}\n      tag: uuid\n",
    )
    .expect("write");
    let store = store_dir();
    let id = ok_id(&create_masked(&c.url(&src), store.path(), &rules.to_string_lossy(), KEY, &[]));
    let (r, dst) = c.restore_new(store.path(), &id, "narrow_dst");
    assert_eq!(r.code, 0, "every masked value must load into its column:\n{}", r.all());
    assert_eq!(
        c.psql(&dst, "SELECT count(*) FROM people WHERE host(ip) LIKE '10.0.0.%'"),
        "200",
        "the /24 prefix is kept"
    );
    assert_eq!(c.psql(&dst, "SELECT count(DISTINCT id) FROM people"), "200");

    // A masker that cannot fit is refused before anything is read.
    std::fs::write(&rules, "version: 1\ntables:\n  people:\n    columns:\n      handle: email\n").expect("write");
    let r = create_masked(&c.url(&src), store.path(), &rules.to_string_lossy(), KEY, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("public.people.handle") && r.stderr.contains("at most 20"), "{}", r.stderr);
}

#[test]
fn bad_rules_corpus() {
    let c = cluster();
    let src = shop();
    let store = store_dir();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-rules");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("dir").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 10);
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("an '# expect: LINE:COL: message' header");
        let (pos, message) = expect.split_once(": ").expect("position and message");
        let r = create_masked(&c.url(&src), store.path(), &f.to_string_lossy(), KEY, &[]);
        let wanted = if pos == "-" {
            format!("{}: {message}", f.display())
        } else {
            format!("{}:{pos}: {message}", f.display())
        };
        if r.code != 1 || !r.stderr.contains(&wanted) {
            failures.push(format!("{}: exit {} (want 1), wanted '{wanted}' in:\n{}", f.display(), r.code, r.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(snapshot_dirs(store.path()).is_empty(), "bad rules never write a snapshot");
}

#[test]
fn a_key_is_required_unless_ephemeral() {
    let c = cluster();
    let src = shop();
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let rules = repo("rules/demo.yaml");
    let r = scrubsnap_env(&["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("SCRUBSNAP_KEY") && r.stderr.contains("--ephemeral-key"), "{}", r.stderr);
    let r = scrubsnap_env(&["create", "--source", &c.url(&src), "--dest", &dest], &[("SCRUBSNAP_KEY", KEY)]);
    assert_eq!(r.code, 1, "create without rules must say so:\n{}", r.all());
    assert!(r.stderr.contains("--no-rules"), "{}", r.stderr);
    let r = scrubsnap_env(
        &["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules, "--ephemeral-key"],
        &[],
    );
    let id = ok_id(&r);
    assert_eq!(manifest(store.path(), &id)["masking"]["ephemeral_key"], true);
    let key_file = store.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).expect("write");
    let r = scrubsnap_env(
        &[
            "create",
            "--source",
            &c.url(&src),
            "--dest",
            &dest,
            "--rules",
            &rules,
            "--key-file",
            &key_file.to_string_lossy(),
        ],
        &[],
    );
    let from_file = ok_id(&r);
    let from_env = ok_id(&create_masked(&c.url(&src), store.path(), &rules, KEY, &[]));
    assert_eq!(
        manifest(store.path(), &from_file)["masking"]["key_fingerprint"],
        manifest(store.path(), &from_env)["masking"]["key_fingerprint"]
    );
}

#[test]
fn strict_rules_refuse_a_new_column() {
    let c = cluster();
    let src = shop();
    let store = store_dir();
    let rules = repo("rules/demo.yaml");
    ok_id(&create_masked(&c.url(&src), store.path(), &rules, KEY, &[]));
    c.psql(&src, "ALTER TABLE customers ADD COLUMN passport_no text; ALTER TABLE orders ADD COLUMN gift_note text");
    let r = create_masked(&c.url(&src), store.path(), &rules, KEY, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("public.customers.passport_no") && r.stderr.contains("public.orders.gift_note"),
        "every uncovered column at once:\n{}",
        r.stderr
    );
    assert_eq!(snapshot_dirs(store.path()).len(), 1, "nothing new published");
}

#[test]
fn maskers_and_schema_come_from_the_registry() {
    let r = scrubsnap_env(&["maskers", "--format", "json"], &[]);
    assert_eq!(r.code, 0);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let names: Vec<&str> = list.as_array().expect("array").iter().filter_map(|m| m["name"].as_str()).collect();
    for required in [
        "null",
        "fixed",
        "redact",
        "hash",
        "email",
        "first_name",
        "last_name",
        "full_name",
        "username",
        "phone",
        "street_address",
        "city",
        "postal_code",
        "country",
        "company",
        "lorem",
        "ip",
        "uuid",
        "integer",
        "numeric_noise",
        "date_shift",
        "date_of_birth",
        "regex_replace",
        "partial",
        "template",
        "json",
        "pii_scrub",
    ] {
        assert!(names.contains(&required), "missing masker {required}");
    }
    let r = scrubsnap_env(&["rules", "schema"], &[]);
    assert_eq!(r.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let variants = schema["$defs"]["column"]["oneOf"].as_array().expect("variants");
    assert_eq!(variants.len(), names.len() + 3);
    let text = scrubsnap_env(&["maskers"], &[]);
    assert!(text.stdout.contains("pii_scrub") && text.stdout.contains("example:"));
}

#[test]
fn every_masker_fits_the_narrowest_column_it_accepts() {
    use scrubsnap::mask::registry;
    let c = cluster();
    let src = c.fresh_db("fit");
    let mut cols = Vec::new();
    let mut values = Vec::new();
    let mut types = String::new();
    let mut rules = String::from("version: 1\nstrict: true\ntables:\n  fit:\n    columns:\n");
    for (i, case) in crate::golden::cases().iter().enumerate() {
        let (name, ty, input) = (&case.masker, case.type_name.as_str(), &case.input);
        let def = registry::find(name).expect("masker");
        let narrow = match ty {
            "text" => format!("varchar({})", def.min_chars_for(&case.options).max(input.chars().count()).max(1)),
            "integer" => "smallint".to_string(),
            "numeric(12,2)" => "numeric(6,2)".to_string(),
            _ if !case.fields.is_empty() => {
                let fields: Vec<String> = case.fields.iter().map(|(n, t)| format!("{n} {t}")).collect();
                types.push_str(&format!("CREATE TYPE fit_t{i} AS ({});", fields.join(", ")));
                format!("fit_t{i}")
            }
            other => other.to_string(),
        };
        cols.push(format!("c{i} {narrow}"));
        values.push(format!("'{}'", input.replace('\'', "''")));
        let opts = serde_json::Value::Object(case.options.clone()).to_string();
        let opts = if opts == "{}" { String::new() } else { format!(", {}", &opts[1..opts.len() - 1]) };
        rules.push_str(&format!("      c{i}: {{mask: {name}{opts}}}\n"));
    }
    c.psql(
        &src,
        &format!(
            "CREATE EXTENSION IF NOT EXISTS hstore; {types} CREATE TABLE fit ({}); INSERT INTO fit VALUES ({}); INSERT INTO fit DEFAULT VALUES;",
            cols.join(", "),
            values.join(", ")
        ),
    );
    let dir = store_dir();
    let rules_path = dir.path().join("fit.yaml");
    std::fs::write(&rules_path, &rules).expect("write");
    let store = store_dir();
    let id = ok_id(&create_masked(&c.url(&src), store.path(), &rules_path.to_string_lossy(), KEY, &[]));
    let (r, dst) = c.restore_new(store.path(), &id, "fit_dst");
    assert_eq!(r.code, 0, "every masked value loads into its narrow column:\n{}\nrules:\n{rules}", r.all());
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM fit"), "2");
    assert_eq!(c.psql(&dst, "SELECT count(*) FROM fit WHERE c1 IS NULL AND c2 IS NULL"), "1", "NULL stays NULL");
}

/// The SHA-256 of some bytes, in hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Snapshots are a pure function of the data, the rules and the key: the
/// data files of the demo shop masked with a fixed key, and of the spine
/// fixture unmasked, are byte for byte what they were when this snapshot
/// was reviewed (each line: the file's checksum, then its rows'
/// checksum, which a change of compression leaves alone). A refactor must leave them alone; a deliberate change of
/// masked values (a masker, a `fake` upgrade) or of compression shows here
/// and goes in the CHANGELOG (`cargo insta review`).
#[test]
fn data_files_of_a_fixed_key_are_pinned() {
    let c = cluster();
    let shop_store = store_dir();
    let id = ok_id(&create_masked(&c.url(&shop()), shop_store.path(), &repo("rules/demo.yaml"), KEY, &["-j", "2"]));
    let mut listing = String::from("demo shop, rules/demo.yaml, fixed key:\n");
    for (path, sum) in crate::harness::data_file_sums(shop_store.path(), &id) {
        let text = crate::harness::decompressed(&crate::harness::file_path(shop_store.path(), &id, &path));
        listing.push_str(&format!("  {sum}  {}  {path}\n", sha256_hex(&text)));
    }
    let spine_store = store_dir();
    let dest = spine_store.path().to_string_lossy().to_string();
    let r = scrubsnap_env(&["create", "--source", &c.url(&c.fixture_db("spine")), "--dest", &dest, "--no-rules"], &[]);
    let id = ok_id(&r);
    listing.push_str("spine fixture, unmasked:\n");
    for (path, sum) in crate::harness::data_file_sums(spine_store.path(), &id) {
        let text = crate::harness::decompressed(&crate::harness::file_path(spine_store.path(), &id, &path));
        listing.push_str(&format!("  {sum}  {}  {path}\n", sha256_hex(&text)));
    }
    insta::assert_snapshot!(listing);
}
