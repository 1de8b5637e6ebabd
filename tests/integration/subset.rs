//! Subsetting: a slice that follows foreign keys restores with every key
//! satisfied, and holds exactly the rows the semantics say.

use crate::harness::{cluster, scrubsnap_env, store_dir};

const KEY: &str = "00112233445566778899aabbccddeeff";

const RULES: &str = "version: 1
subset:
  roots:
    public.customers: \"id % 50 = 0\"
  virtual_foreign_keys:
    - {from: public.audit_log(customer_ref), to: public.customers(id)}
tables:
  public.customers:
    columns:
      id: integer
      email: email
";

#[test]
fn a_slice_follows_every_kind_of_key_and_restores_whole() {
    let c = cluster();
    let src = c.fixture_db("subset");
    let dir = store_dir();
    let rules = dir.path().join("subset.yaml");
    std::fs::write(&rules, RULES).expect("write");
    let rules_arg = rules.to_string_lossy().to_string();
    let key = [("SCRUBSNAP_KEY", KEY)];
    // The plan, before anything is dumped.
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let r =
        scrubsnap_env(&["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules_arg, "--dry-run"], &key);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("public.employees") && r.stdout.contains("ancestor"), "{}", r.stdout);
    assert!(r.stdout.contains("public.settings") && r.stdout.contains("whole"), "{}", r.stdout);
    assert!(crate::harness::snapshot_dirs(store.path()).is_empty(), "--dry-run writes nothing");
    // The slice: rows per table as computed independently with SQL.
    let expected_sql = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/subset-expected.sql"),
    )
    .expect("expected");
    let expected = c.psql(&src, &expected_sql);
    let r = scrubsnap_env(&["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules_arg], &key);
    assert_eq!(r.code, 0, "{}", r.all());
    let id = r.stdout.trim().to_string();
    let m = crate::harness::read_manifest(store.path(), &id);
    let mut rows: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for t in m["tables"].as_array().expect("tables") {
        let name = t["name"].as_str().expect("name").trim_end_matches("_2024").trim_end_matches("_2025").to_string();
        *rows.entry(name).or_default() += t["rows"].as_u64().expect("rows");
    }
    let got: Vec<String> = rows.iter().map(|(t, n)| format!("{t}={n}")).collect();
    assert_eq!(got.join(" "), expected.trim(), "kept rows per table");
    let subset = &m["masking"]["subset"];
    assert_eq!(subset["roots"][0][0], "public.customers", "{subset}");
    // Every key holds: a restore validates every constraint, and the
    // virtual key carried the mask of customers.id to audit_log.
    let r = scrubsnap_env(
        &["verify", "--from", &format!("{dest}/{id}"), "--restore-into", &c.url("postgres"), "--keep"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let scratch = format!("scrubsnap_verify_{}", id.to_ascii_lowercase().replace(['.', ':'], "_"));
    assert_eq!(
        c.psql(&scratch, "SELECT count(*) FROM audit_log WHERE customer_ref NOT IN (SELECT id FROM customers)"),
        "0"
    );
    assert_eq!(c.psql(&scratch, "SELECT count(*) FROM employees e WHERE manager_id IS NOT NULL AND manager_id NOT IN (SELECT id FROM employees)"), "0");
    c.psql("postgres", &format!("DROP DATABASE {scratch} WITH (FORCE)"));
    // The same data and rules give the same slice, byte for byte.
    let r = scrubsnap_env(&["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules_arg], &key);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        crate::harness::data_file_sums(store.path(), &id),
        crate::harness::data_file_sums(store.path(), r.stdout.trim()),
        "the same slice twice"
    );
    // check says which rule keeps each table's rows.
    let r = scrubsnap_env(&["check", "--rules", &rules_arg, "--source", &c.url(&src)], &[]);
    assert!(
        r.stdout.contains("Subset (rows kept per table)") && r.stdout.contains("root: (id % 50 = 0)"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_subset_rules_are_named_before_any_row_is_read() {
    let c = cluster();
    let src = c.fixture_db("subset");
    let dir = store_dir();
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    for (rules, expect) in [
        (
            "version: 1\nsubset:\n  roots:\n    public.nosuch: \"id = 1\"\n",
            ":4:5: table public.nosuch does not exist",
        ),
        (
            "version: 1\nsubset:\n  roots:\n    public.customers: \"nosuch_column = 1\"\n",
            ":4:5: root public.customers: the condition is not valid SQL",
        ),
        (
            "version: 1\nsubset:\n  roots:\n    public.customers: \"id = = 1\"\n",
            ":4:5: root public.customers: the condition is not valid SQL",
        ),
        (
            "version: 1\nsubset:\n  roots:\n    public.customers: \"id = 1\"\n  virtual_foreign_keys:\n    - {from: public.audit_log(nosuch), to: public.customers(id)}\n",
            ":6:14: column public.audit_log.nosuch does not exist",
        ),
        ("version: 1\nsubset:\n  roots:\n    public.customers: {percent: 500}\n", "percent must be a number from 0 to 100"),
    ] {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, rules).expect("write");
        let r = scrubsnap_env(
            &["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &path.to_string_lossy()],
            &[("SCRUBSNAP_KEY", KEY)],
        );
        assert_eq!(r.code, 1, "{rules}\n{}", r.all());
        assert!(r.stderr.contains(expect), "{rules}\nexpected {expect:?}:\n{}", r.stderr);
        assert!(crate::harness::snapshot_dirs(store.path()).is_empty());
    }
}

#[test]
fn a_one_percent_slice_of_the_benchmark_holds_exactly_its_customers_orders_items_and_events() {
    let c = cluster();
    let src = c.fresh_db("bench_slice");
    let dataset = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/dataset.sql");
    let mut cmd = std::process::Command::new(c.bin("psql"));
    let out = cmd
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "n=2000", "-d", &c.url(&src), "-f"])
        .arg(&dataset)
        .output()
        .expect("psql");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/rules-subset.yaml");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let r = scrubsnap_env(
        &["create", "--source", &c.url(&src), "--dest", &dest, "--rules", &rules.to_string_lossy()],
        &[("SCRUBSNAP_KEY", KEY)],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let m = crate::harness::read_manifest(store.path(), r.stdout.trim());
    let rows = |name: &str| {
        m["tables"].as_array().expect("tables").iter().find(|t| t["name"] == name).expect("table")["rows"]
            .as_u64()
            .expect("rows")
    };
    let count = |sql: &str| c.psql(&src, sql).parse::<u64>().expect("count");
    let customers = "SELECT id FROM customers WHERE id % 100 = 0";
    let orders = format!("SELECT id FROM orders WHERE customer_id IN ({customers})");
    // Orders are only ever pulled down from their customers; customers also
    // come in as ancestors of nothing else here.
    assert_eq!(rows("customers"), count(&format!("SELECT count(*) FROM ({customers}) x")));
    assert_eq!(rows("orders"), count(&format!("SELECT count(*) FROM ({orders}) x")));
    assert_eq!(rows("order_items"), count(&format!("SELECT count(*) FROM order_items WHERE order_id IN ({orders})")));
    assert_eq!(rows("events"), count(&format!("SELECT count(*) FROM events WHERE customer_id IN ({customers})")));
}
