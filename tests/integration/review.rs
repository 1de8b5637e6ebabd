//! The security reviewer's commands: check and rules init.

use std::path::Path;

use crate::harness::{cluster, scrubsnap_env, store_dir};

const REVIEW_DB: &str = "
    CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE NOT NULL, full_name text, misc text, segment text);
    CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, product_name text, amount numeric(10,2), note text);
    INSERT INTO customers SELECT i, 'person' || i || '@mail.example', 'Person ' || i,
        CASE WHEN i % 2 = 0 THEN 'reach me at p' || i || '@home.example' ELSE 'call +44 20 7946 ' || lpad(i::text, 4, '0') END,
        (ARRAY['retail', 'wholesale'])[1 + i % 2]
      FROM generate_series(1, 50) i;
    INSERT INTO orders SELECT i, 1 + i % 50, (ARRAY['Blue widget', 'Red gadget', 'Green gizmo'])[1 + i % 3], i * 3.5, 'gift wrap'
      FROM generate_series(1, 100) i;";

const REVIEW_RULES: &str = "version: 1
tables:
  customers:
    columns:
      id: integer
      email: email
      full_name: full_name
      segment: {keep: {reason: \"marketing segment, two values\"}}
  orders:
    columns:
      id: keep
      product_name: keep
      amount: keep
      note: keep
";

#[test]
fn the_coverage_report_shows_inherited_rules_and_suspected_uncovered_columns() {
    let c = cluster();
    let src = c.fresh_db("review");
    c.psql(&src, REVIEW_DB);
    let dir = store_dir();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, REVIEW_RULES).expect("write");
    let rules_arg = rules.to_string_lossy().to_string();
    let r = scrubsnap_env(&["check", "--rules", &rules_arg, "--source", &c.url(&src), "--format", "markdown"], &[]);
    assert_eq!(r.code, 1, "misc holds personal data nobody ruled:\n{}", r.all());
    // The reviewed report: `cargo insta review` after a deliberate change.
    insta::assert_snapshot!("check-report", r.stdout);
    // Sampled values are never printed.
    for secret in ["person1@mail.example", "p2@home.example", "7946 0001"] {
        assert!(!r.all().contains(secret), "a sampled value was printed");
    }
    // JSON for tooling: misc is suspected from its values, not its name.
    let r = scrubsnap_env(&["check", "--rules", &rules_arg, "--source", &c.url(&src), "--format", "json"], &[]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let col = |t: &str, c: &str| {
        report["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .find(|x| x["table"] == t && x["column"] == c)
            .cloned()
            .expect("column")
    };
    let misc = col("public.customers", "misc");
    assert_eq!(misc["coverage"]["status"], "uncovered");
    let kinds: Vec<&str> = misc["suspected"].as_array().expect("s").iter().filter_map(|s| s["kind"].as_str()).collect();
    assert!(kinds.contains(&"email") && kinds.contains(&"phone"), "{misc}");
    assert_eq!(col("public.orders", "customer_id")["coverage"]["why"]["kind"], "foreign_key");
    for ordinary in [("public.orders", "product_name"), ("public.orders", "amount"), ("public.customers", "segment")] {
        assert!(
            col(ordinary.0, ordinary.1)["suspected"].as_array().expect("s").is_empty(),
            "{ordinary:?} is not personal data"
        );
    }
    assert_eq!(report["passed"], false);

    // Ruling misc makes it pass.
    std::fs::write(
        &rules,
        REVIEW_RULES.replace("      full_name: full_name\n", "      full_name: full_name\n      misc: pii_scrub\n"),
    )
    .expect("write");
    let r = scrubsnap_env(&["check", "--rules", &rules_arg, "--source", &c.url(&src)], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn init_writes_rules_that_pass_check_unedited() {
    let c = cluster();
    for (prefix, db) in [("review_init", None), ("shop_init", Some("demo/seed.sql"))] {
        let src = match db {
            None => {
                let src = c.fresh_db(prefix);
                c.psql(&src, REVIEW_DB);
                src
            }
            Some(path) => c.sql_db(prefix, path),
        };
        let r = scrubsnap_env(&["rules", "init", "--source", &c.url(&src)], &[]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(r.stdout.contains("strict: true"));
        let dir = store_dir();
        let rules = dir.path().join("init.yaml");
        std::fs::write(&rules, &r.stdout).expect("write");
        let r2 = scrubsnap_env(
            &["check", "--rules", &rules.to_string_lossy(), "--source", &c.url(&src), "--format", "json"],
            &[],
        );
        assert_eq!(r2.code, 0, "init output must pass check:\n{}\n{}", r.stdout, r2.all());
        let report: serde_json::Value = serde_json::from_str(&r2.stdout).expect("json");
        assert!(
            report["columns"].as_array().expect("c").iter().all(|x| x["coverage"]["status"] != "uncovered"),
            "no UNCOVERED column"
        );
        // And create accepts it as it is.
        let store = store_dir();
        let r3 = scrubsnap_env(
            &[
                "create",
                "--source",
                &c.url(&src),
                "--dest",
                &store.path().to_string_lossy(),
                "--rules",
                &rules.to_string_lossy(),
                "--ephemeral-key",
            ],
            &[],
        );
        assert_eq!(r3.code, 0, "{}", r3.all());
    }
}

#[test]
fn the_leak_scan_blocks_a_copy_left_unmasked() {
    let c = cluster();
    let src = c.sql_db("leak", "demo/seed.sql");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    // The denormalised copy of the email is kept: the scan must catch it.
    let good = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/demo.yaml")).expect("rules");
    let bad = good.replace(
        "      customer_email: email\n",
        "      customer_email: {keep: {reason: \"wrongly thought harmless\"}}\n",
    );
    assert_ne!(good, bad);
    let dir = store_dir();
    let bad_path = dir.path().join("bad.yaml");
    std::fs::write(&bad_path, &bad).expect("write");
    let key = [("SCRUBSNAP_KEY", "leak-test-key-0123456789abcdef-0123456789")];
    // With one job, the tables without remembered originals are dumped after
    // those with (customers, orders) and probed as they pass; the others keep
    // their probes for the end. With four, all start at once. Both find the same.
    for (jobs, how) in [
        ("1", "(4 file(s) probed as they were dumped, 0 of them through a temporary file; 0 read back)"),
        ("4", "(4 file(s) probed"),
    ] {
        let r = scrubsnap_env(
            &["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &bad_path.to_string_lossy(), "-j", jobs],
            &key,
        );
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr.contains("public.orders.customer_email holds original values of public.customers.email in 600 of 600 row(s): whole values"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("may_contain: [public.customers.email]"), "the line to add: {}", r.stderr);
        assert!(r.stderr.contains(how), "{}", r.stderr);
        assert!(r.stderr.contains("not published"), "{}", r.stderr);
        assert!(!r.stderr.contains("@example."), "the report never shows a value:\n{}", r.stderr);
        assert!(crate::harness::snapshot_dirs(store.path()).is_empty(), "nothing published");
    }

    // A copy in a table with no remembered column, dumped after the tables
    // with them (one job), is caught by the inline probe.
    let copied = c.sql_db("leak_inline", "demo/seed.sql");
    c.psql(
        &copied,
        "CREATE TABLE public.audit_log (id int, contact text);
         INSERT INTO public.audit_log SELECT id, 'reach ' || email || ' after 6pm' FROM public.customers;",
    );
    let lax = dir.path().join("lax.yaml");
    std::fs::write(&lax, good.replace("strict: true", "strict: false")).expect("write");
    let r = scrubsnap_env(
        &["create", "--source", &c.url(&copied), "--dest", &dest, "--rules", &lax.to_string_lossy(), "-j", "1"],
        &key,
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("public.audit_log.contact holds original values of public.customers.email in 200 of 200 row(s): emails, phone numbers or long numbers inside its text"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`contact: pii_scrub`"), "{}", r.stderr);
    assert!(
        r.stderr.contains("(5 file(s) probed as they were dumped, 0 of them through a temporary file; 0 read back)"),
        "{}",
        r.stderr
    );

    // The correct rules pass, and the manifest records the scan: the same
    // fields tested whether probed inline or read back.
    let good_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/demo.yaml");
    let mut tested = Vec::new();
    for jobs in ["1", "4"] {
        let r = scrubsnap_env(
            &["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &good_path.to_string_lossy(), "-j", jobs],
            &key,
        );
        assert_eq!(r.code, 0, "{}", r.all());
        let id = r.stdout.trim().to_string();
        let m = crate::harness::read_manifest(store.path(), &id);
        let scan = &m["masking"]["leak_scan"];
        assert!(scan["remembered"].as_u64().expect("remembered") > 1000, "{scan}");
        assert!(scan["false_positive_rate"].as_f64().expect("fp") < 1e-9, "{scan}");
        assert!(scan["findings"].as_array().expect("findings").iter().all(|f| f["evidence"] != "leak"), "{scan}");
        tested.push(scan["fields_tested"].as_u64().expect("tested"));
    }
    assert!(tested[0] > 1000, "{tested:?}");
    assert_eq!(tested[0], tested[1], "inline and read-back probes test the same fields");

    // --no-leak-scan publishes the bad rules' output, and says so in the manifest.
    let r = scrubsnap_env(
        &[
            "create",
            "--source",
            &c.url(&src),
            "--dest",
            &dest,
            "--rules",
            &bad_path.to_string_lossy(),
            "--no-leak-scan",
        ],
        &key,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let id = r.stdout.trim().to_string();
    let m = crate::harness::read_manifest(store.path(), &id);
    assert!(m["masking"]["leak_scan"].is_null());
}

#[test]
fn verify_checks_files_and_a_test_restore_gates_publishing() {
    let c = cluster();
    let src = c.fresh_db("verify");
    c.psql(
        &src,
        "CREATE TABLE codes (id int PRIMARY KEY, code text NOT NULL CHECK (code ~ '^[A-Z]{3}$'), note text);
         INSERT INTO codes SELECT i, chr(65 + i % 26) || chr(65 + i / 26 % 26) || 'X', 'n' || i FROM generate_series(1, 300) i;",
    );
    let dir = store_dir();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "version: 1\ntables:\n  codes:\n    columns:\n      note: lorem\n").expect("write");
    // hash writes lowercase hex: it breaks the CHECK constraint on restore.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\ntables:\n  codes:\n    columns:\n      code: {mask: hash, length: 3}\n")
        .expect("write");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let server = c.url("postgres");
    let key = [("SCRUBSNAP_KEY", "verify-test-key-0123456789abcdef")];

    let r = scrubsnap_env(
        &[
            "create",
            "--source",
            &c.url(&src),
            "--dest",
            &dest,
            "--rules",
            &bad.to_string_lossy(),
            "--verify-restore",
            &server,
        ],
        &key,
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("test restore") && r.stderr.contains("codes_code_check"), "{}", r.stderr);
    assert!(crate::harness::snapshot_dirs(store.path()).is_empty(), "not published");

    let r = scrubsnap_env(
        &[
            "create",
            "--source",
            &c.url(&src),
            "--dest",
            &dest,
            "--rules",
            &good.to_string_lossy(),
            "--verify-restore",
            &server,
        ],
        &key,
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let from = format!("{dest}/latest");
    let r = scrubsnap_env(&["verify", "--from", &from], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = scrubsnap_env(&["verify", "--from", &from, "--restore-into", &server], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("every constraint valid"), "{}", r.stderr);
    assert_eq!(
        c.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'scrubsnap_verify_%'"),
        "0",
        "scratch dropped"
    );

    // A damaged file fails verification, named.
    let id = crate::harness::snapshot_dirs(store.path()).pop().expect("a snapshot");
    let (path, _) = crate::harness::data_file_sums(store.path(), &id).into_iter().next().expect("a data file");
    let file = crate::harness::file_path(store.path(), &id, &path);
    let mut bytes = std::fs::read(&file).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).expect("write");
    let r = scrubsnap_env(&["verify", "--from", &from], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains(&path), "the damaged file is named: {}", r.stderr);
}

#[test]
fn probes_past_the_memory_budget_go_to_disk_then_the_file_is_read_back() {
    let c = cluster();
    let src = c.fresh_db("leak_budget");
    // 40,000 kept bios, one in ten holding its person's email: more probes
    // than half of a 1 MiB filter holds, so they go to a temporary file, or,
    // with no disk for them, the file is read back instead. All three ways
    // find the same.
    c.psql(
        &src,
        "CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, bio text);
         INSERT INTO people SELECT i, 'person' || i || '@mail.example',
           CASE WHEN i % 10 = 0 THEN 'write to person' || i || '@mail.example' ELSE 'likes tea, ' || i END
         FROM generate_series(1, 40000) i;",
    );
    let dir = store_dir();
    let rules = dir.path().join("people.yaml");
    std::fs::write(&rules, "version: 1\ntables:\n  people:\n    columns:\n      email: email\n").expect("write");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let key = [("SCRUBSNAP_KEY", "budget-test-key-0123456789abcdef")];
    for (memory, spill, how) in [
        ("32", "1024", "(1 file(s) probed as they were dumped, 0 of them through a temporary file; 0 read back)"),
        ("1", "1024", "(1 file(s) probed as they were dumped, 1 of them through a temporary file; 0 read back)"),
        ("1", "0", "(0 file(s) probed as they were dumped, 0 of them through a temporary file; 1 read back)"),
    ] {
        let r = scrubsnap_env(
            &[
                "create",
                "--source",
                &c.url(&src),
                "--dest",
                &dest,
                "--rules",
                &rules.to_string_lossy(),
                "--leak-scan-memory",
                memory,
                "--leak-scan-spill",
                spill,
            ],
            &key,
        );
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr.contains("public.people.bio holds original values of public.people.email in 4000 of 40000 row(s)"),
            "--leak-scan-memory {memory}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(how), "--leak-scan-memory {memory}: {}", r.stderr);
    }
}

/// Every value of `sql` (one column) in the source.
fn values(c: &crate::harness::Cluster, db: &str, sql: &str) -> Vec<String> {
    c.psql(db, sql).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// Every data file of a snapshot, decompressed, as one text.
fn snapshot_text(store: &Path, id: &str) -> String {
    let mut all = String::new();
    for (path, _) in crate::harness::data_file_sums(store, id) {
        let bytes = crate::harness::decompressed(&crate::harness::file_path(store, id, &path));
        all.push_str(&String::from_utf8(bytes).expect("utf-8"));
    }
    all
}

#[test]
fn init_check_and_create_agree_on_a_music_shop() {
    let c = cluster();
    let src = c.fixture_db("music");
    let url = c.url(&src);
    let dir = store_dir();
    let key = [("SCRUBSNAP_KEY", "music-shop-key-0123456789abcdef-0123456789")];
    // rules init writes rules that check passes and create publishes, unedited.
    let r = scrubsnap_env(&["rules", "init", "--source", &url], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let init = r.stdout.clone();
    let rules = dir.path().join("music.yaml");
    std::fs::write(&rules, &init).expect("write");
    let rules_arg = rules.to_string_lossy().to_string();
    let r = scrubsnap_env(&["check", "--rules", &rules_arg, "--source", &url], &[]);
    assert_eq!(r.code, 0, "check passes init's rules:\n{}\nrules:\n{init}", r.all());
    assert!(r.stdout.contains("coincidence"), "check shows what kept columns share:\n{}", r.stdout);
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let r = scrubsnap_env(&["create", "--source", &url, "--dest", &dest, "--rules", &rules_arg], &key);
    assert_eq!(r.code, 0, "create publishes init's rules:\n{}\nrules:\n{init}", r.all());
    let id = r.stdout.trim().to_string();
    // No original email, phone, street address or full name is left anywhere.
    let text = snapshot_text(store.path(), &id);
    let mut originals = Vec::new();
    for table in ["customers", "employees"] {
        for sql in [
            format!("SELECT email FROM {table}"),
            format!("SELECT phone FROM {table} WHERE phone IS NOT NULL"),
            format!("SELECT fax FROM {table} WHERE fax IS NOT NULL"),
            format!("SELECT address FROM {table}"),
            format!("SELECT first_name || ' ' || last_name FROM {table}"),
        ] {
            originals.extend(values(c, &src, &sql));
        }
    }
    assert!(originals.len() > 1500, "{}", originals.len());
    let leaked: Vec<&String> = originals.iter().filter(|v| text.contains(v.as_str())).collect();
    assert!(leaked.is_empty(), "{} original value(s) left in the snapshot", leaked.len());
    // The coincidences are recorded, none of them as a leak.
    let m = crate::harness::read_manifest(store.path(), &id);
    let findings = m["masking"]["leak_scan"]["findings"].as_array().expect("findings").clone();
    assert!(
        findings.iter().any(|f| f["column"] == "public.tracks.name" && f["evidence"] == "coincidence"),
        "{findings:?}"
    );
    assert!(findings.iter().all(|f| f["evidence"] == "coincidence"), "{findings:?}");

    // The billing address left unmasked: check and create both refuse, naming it.
    let unmasked = regex::Regex::new(r"(?m)^      billing_address: .*$").expect("regex");
    assert!(unmasked.is_match(&init), "init masks the billing copy of the address:\n{init}");
    let bad = unmasked.replace(&init, "      billing_address: {keep: {reason: \"thought harmless\"}}").to_string();
    std::fs::write(&rules, &bad).expect("write");
    let r = scrubsnap_env(&["check", "--rules", &rules_arg, "--source", &url], &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("public.invoices.billing_address holds original values of public.customers.address"),
        "{}",
        r.stdout
    );
    let r = scrubsnap_env(&["create", "--source", &url, "--dest", &dest, "--rules", &rules_arg], &key);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("public.invoices.billing_address holds original values of public.customers.address"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("may_contain: [public.customers.address]"), "{}", r.stderr);

    // Acknowledged with a reason: check shows it, create publishes and records it.
    let acknowledged = unmasked
        .replace(
            &init,
            "      billing_address: {keep: {reason: \"test acknowledgement\", may_contain: [public.customers.address]}}",
        )
        .to_string();
    std::fs::write(&rules, &acknowledged).expect("write");
    let r = scrubsnap_env(&["check", "--rules", &rules_arg, "--source", &url, "--format", "markdown"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("may contain public.customers.address") && r.stdout.contains("(acknowledged)"),
        "{}",
        r.stdout
    );
    let r = scrubsnap_env(&["create", "--source", &url, "--dest", &dest, "--rules", &rules_arg], &key);
    assert_eq!(r.code, 0, "{}", r.all());
    let m = crate::harness::read_manifest(store.path(), r.stdout.trim());
    let findings = m["masking"]["leak_scan"]["findings"].as_array().expect("findings").clone();
    assert!(
        findings.iter().any(|f| f["column"] == "public.invoices.billing_address" && f["evidence"] == "acknowledged"),
        "{findings:?}"
    );
    let columns = m["masking"]["columns"].as_array().expect("columns");
    assert!(columns
        .iter()
        .any(|c| c["column"] == "billing_address" && c["may_contain"][0] == "public.customers.address"));
}
