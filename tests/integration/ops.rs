//! Running from a scheduler: reports, metrics, list, prune.

use crate::harness::{cluster, scrubsnap, scrubsnap_env, snapshot_dirs, store_dir};

#[test]
fn report_and_metrics_on_success_and_failure() {
    let c = cluster();
    let src = c.fresh_db("ops_report");
    c.psql(&src, "CREATE TABLE t (id int PRIMARY KEY, email text); INSERT INTO t SELECT i, 'u' || i || '@x.example' FROM generate_series(1, 20) i");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let report = store.path().join("report.json");
    let metrics = store.path().join("scrubsnap.prom");
    let rules = store.path().join("rules.yaml");
    std::fs::write(&rules, "version: 1\ntables:\n  t:\n    columns:\n      id: keep\n      email: email\n")
        .expect("write");
    let env = [
        ("SCRUBSNAP_SOURCE", c.url(&src)),
        ("SCRUBSNAP_DEST", dest.clone()),
        ("SCRUBSNAP_RULES", rules.to_string_lossy().to_string()),
        ("SCRUBSNAP_KEY", "ops-test-key-0123456789abcdef".to_string()),
        ("SCRUBSNAP_REPORT", report.to_string_lossy().to_string()),
        ("SCRUBSNAP_METRICS_FILE", metrics.to_string_lossy().to_string()),
    ];
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Every option from the environment: no flags at all.
    let r = scrubsnap_env(&["create"], &env_refs);
    assert_eq!(r.code, 0, "{}", r.all());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(json["status"], "success");
    assert_eq!(json["rows"], 20);
    assert_eq!(json["snapshot_id"], r.stdout.trim());
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    assert!(text.contains("scrubsnap_last_run_success{dest="), "{text}");
    let success_line =
        |t: &str| t.lines().find(|l| l.starts_with("scrubsnap_last_success_timestamp_seconds")).map(str::to_string);
    let first_success = success_line(&text).expect("last success");
    assert!(text.contains("scrubsnap_snapshot_rows"));

    // A failed run: success 0, exit code 2, the last success time kept.
    let mut failing = env_refs.clone();
    let bad_url = format!("postgresql://postgres:{}@127.0.0.1:{}/no_such_db", c.password(), c.port());
    failing[0] = ("SCRUBSNAP_SOURCE", bad_url.as_str());
    let r = scrubsnap_env(&["create"], &failing);
    assert_eq!(r.code, 2, "{}", r.all());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(json["status"], "failed");
    assert_eq!(json["exit_code"], 2);
    assert!(json["error"].as_str().expect("error").contains("no_such_db"));
    c.assert_no_password(&json.to_string(), "the report");
    let text = std::fs::read_to_string(&metrics).expect("metrics");
    assert!(
        text.contains("scrubsnap_last_run_success{")
            && text.lines().any(|l| l.starts_with("scrubsnap_last_run_success") && l.ends_with(" 0")),
        "{text}"
    );
    assert_eq!(success_line(&text), Some(first_success), "the last success survives a failure");
}

#[test]
fn prune_keeps_the_newest_and_removes_incomplete_leftovers() {
    let c = cluster();
    let src = c.fresh_db("ops_prune");
    c.psql(&src, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let r = scrubsnap(&["create", "--no-rules", "--source", &c.url(&src), "--dest", &dest]);
        assert_eq!(r.code, 0, "{}", r.all());
        ids.push(r.stdout.trim().to_string());
    }
    // A crashed run long ago, and one that may still be running.
    std::fs::create_dir_all(store.path().join("20200101T000000.000Z/data")).expect("mkdir");
    let running = scrubsnap::snapshot::new_id(chrono::Utc::now());
    std::fs::create_dir_all(store.path().join(&running).join("data")).expect("mkdir");

    let r = scrubsnap(&["list", "--dest", &dest, "--all", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v.as_array().expect("array").iter().filter(|s| s["complete"] == false).count(), 2);

    let r = scrubsnap(&["prune", "--dest", &dest, "--keep-last", "2", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains(&format!("would delete {} (complete)", ids[0])), "{}", r.stdout);
    assert!(r.stdout.contains("would delete 20200101T000000.000Z (incomplete)"), "{}", r.stdout);
    assert_eq!(snapshot_dirs(store.path()).len(), 6, "dry run deletes nothing");

    // Nothing is older than 30 days: only the old incomplete folder goes.
    let r = scrubsnap(&["prune", "--dest", &dest, "--keep-last", "1", "--older-than", "30d"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(snapshot_dirs(store.path()).len(), 5);

    let r = scrubsnap(&["prune", "--dest", &dest, "--keep-last", "2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let mut left = snapshot_dirs(store.path());
    left.sort();
    let mut want = vec![ids[2].clone(), ids[3].clone(), running];
    want.sort();
    assert_eq!(left, want, "the newest two and the run still in its grace period");
    let r = scrubsnap(&["prune", "--dest", &dest, "--keep-last", "0"]);
    assert_eq!(r.code, 1, "keep-last 0 would delete latest:\n{}", r.all());
}

#[test]
fn examples_use_only_documented_options() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut help = String::new();
    for cmd in ["create", "restore", "export", "list", "prune", "verify", "check", "maskers"] {
        help.push_str(&scrubsnap(&[cmd, "--help"]).stdout);
    }
    help.push_str(&scrubsnap(&["--help"]).stdout);
    let env_re = regex::Regex::new(r"SCRUBSNAP_[A-Z_]+").expect("re");
    let flag_re = regex::Regex::new(r"scrubsnap ([a-z]+)((?: +--?[a-z][a-z-]*(?: +[^ -][^ ]*)?)*)").expect("re");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("examples") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for m in env_re.find_iter(&text) {
            let documented =
                help.contains(&format!("env: {}=", m.as_str())) || help.contains(&format!("env: {}]", m.as_str()));
            // SCRUBSNAP_KEY is the default of --key-env, named in its help.
            assert!(
                documented || m.as_str() == "SCRUBSNAP_KEY",
                "{}: {} is not a documented variable",
                path.display(),
                m.as_str()
            );
            checked += 1;
        }
        for caps in flag_re.captures_iter(&text) {
            let sub = &caps[1];
            // "scrubsnap" also names the OS user, the unit and the wrapper.
            if !["create", "restore", "export", "list", "prune", "verify", "check", "maskers", "rules"].contains(&sub) {
                continue;
            }
            let sub_help = scrubsnap(&[sub, "--help"]);
            assert_eq!(sub_help.code, 0, "{}: `scrubsnap {sub}` is not a command", path.display());
            for flag in caps[2].split_whitespace().filter(|w| w.starts_with("--")) {
                assert!(
                    sub_help.stdout.contains(flag),
                    "{}: `scrubsnap {sub} {flag}` is not documented",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "{checked}");
}
