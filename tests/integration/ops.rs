//! Running from a scheduler: reports, metrics, list, prune, stopping a run.

use std::time::{Duration, Instant};

use crate::harness::{cluster, scrubsnap, scrubsnap_cmd, scrubsnap_env, snapshot_dirs, store_dir, Cluster};

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
        ("SCRUBSNAP_KEY", "ops-test-key-0123456789abcdef-0123456789".to_string()),
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

/// A scheduler that aborts a job sends SIGTERM (Jenkins does), a user at a
/// terminal Ctrl-C. The run stops promptly, removes the files it wrote,
/// releases the store's lock (the next run needs no --force), and exits 2.
#[test]
fn a_stopped_create_removes_its_files_and_releases_the_lock() {
    let c = cluster();
    let src = c.fresh_db("ops_stop");
    c.psql(&src, "CREATE TABLE t (id int PRIMARY KEY, email text); INSERT INTO t SELECT i, 'u' || i || '@x.example' FROM generate_series(1, 5000) i");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let rules = store.path().join("rules.yaml");
    std::fs::write(&rules, "version: 1\ntables:\n  t:\n    columns:\n      email: email\n").expect("write");
    let rules = rules.to_string_lossy().to_string();
    // A pg_dump that takes its time over the schema scripts, so that the run
    // is caught with its data files written and its snapshot unpublished. It
    // notes a SIGTERM: the stopped run asks it to stop that way (a real
    // pg_dump then cancels its statement), not with SIGKILL.
    let tools = tempfile::tempdir().expect("temp dir");
    let slow = tools.path().join("pg_dump");
    let real = c.bin("pg_dump");
    std::fs::write(
        &slow,
        format!(
            "#!/bin/sh\ncase \"$*\" in *--version*) exec '{r}' \"$@\";; esac\ntrap 'echo stopped >> {m}; exit 143' TERM\necho started >> {s}\ni=0\nwhile [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\nexec '{r}' \"$@\"\n",
            r = real.display(),
            m = tools.path().join("terminated").display(),
            s = tools.path().join("started").display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let key = [("SCRUBSNAP_KEY", "stop-test-key-0123456789-0123456789")];

    for signal in ["TERM", "INT"] {
        let mut child = spawn_with(
            scrubsnap_cmd(
                &["--no-progress", "create", "--rules", &rules, "--source", &c.url(&src), "--dest", &dest, "--pg-dump"],
                &key,
            )
            .arg(&slow),
        );
        // Wait for the table's data file (the run is writing) and for
        // pg_dump to be running (it gets the stop as SIGTERM).
        let started = Instant::now();
        let written = loop {
            let files = crate::harness::blob_files(store.path()).len();
            let dumping = tools.path().join("started").exists();
            if (files > 0 && dumping) || started.elapsed() > Duration::from_secs(60) {
                break files > 0 && dumping;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !written {
            let _ = child.kill();
        }
        assert!(
            written,
            "the run never wrote a data file:\n{}",
            crate::harness::Run::from(child.wait_with_output().expect("wait")).all()
        );
        let out = stop(child, signal);
        assert_eq!(out.code, 2, "SIG{signal}:\n{}", out.all());
        assert!(out.stderr.contains(&format!("SIG{signal}: stopping")), "{}", out.stderr);
        assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
        assert!(out.stdout.trim().is_empty(), "no snapshot id is printed: {}", out.stdout);
        assert_eq!(snapshot_dirs(store.path()), Vec::<String>::new(), "SIG{signal}: the run's folder is removed");
        assert_eq!(
            crate::harness::blob_files(store.path()),
            Vec::<std::path::PathBuf>::new(),
            "SIG{signal}: its data files too"
        );
        assert!(!store.path().join("create.lock").exists(), "SIG{signal}: the lock is released");
        assert!(!store.path().join("latest").exists(), "nothing was published");
        let started = Instant::now();
        while !tools.path().join("terminated").exists() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let noted = std::fs::read_to_string(tools.path().join("terminated")).unwrap_or_default();
        assert!(noted.contains("stopped"), "SIG{signal}: pg_dump was not sent SIGTERM");
        let _ = std::fs::remove_file(tools.path().join("terminated"));
        let _ = std::fs::remove_file(tools.path().join("started"));
    }

    // The next run takes the store without --force.
    let r = scrubsnap_env(&["create", "--rules", &rules, "--source", &c.url(&src), "--dest", &dest], &key);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(snapshot_dirs(store.path()).len(), 1);
}

/// A create stopped while it waits for a table lock (here with no lock
/// timeout) cancels that wait: no session of it stays behind in the
/// source, queued for the lock.
#[test]
fn a_create_stopped_waiting_for_a_lock_leaves_no_session_behind() {
    let c = cluster();
    let src = c.fresh_db("ops_stop_lock");
    c.psql(&src, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let blocker = LockHolder::hold(c, &src, "ACCESS EXCLUSIVE");
    let child = spawn_with(&mut scrubsnap_cmd(
        &["--no-progress", "create", "--no-rules", "--source", &c.url(&src), "--dest", &dest, "--lock-timeout", "0"],
        &[],
    ));
    let queued = blocker.wait_for_waiters(true);
    let out = stop(child, "TERM");
    let left = blocker.wait_for_waiters(false);
    drop(blocker);
    assert_ne!(queued, "0", "the create never waited for the lock:\n{}", out.all());
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("SIGTERM: stopping") && out.stderr.contains("interrupted"), "{}", out.stderr);
    assert_eq!(left, "0", "a session of the stopped create still waits for the lock");
    assert_eq!(snapshot_dirs(store.path()), Vec::<String>::new());
    assert!(!store.path().join("create.lock").exists(), "the store lock is released");
}

/// A restore stopped by a signal ends as a failed one does: its transaction
/// rolled back (`-j 1`) or its schema step undone (`-j 2`), the target as it
/// was, exit 2. The restore is caught waiting for a lock that another
/// session holds on a table its `--clean` drops; its statement is cancelled,
/// so no session of it stays behind waiting for that lock.
#[test]
fn a_stopped_restore_leaves_the_target_as_it_was() {
    let c = cluster();
    let src = c.fresh_db("ops_stop_src");
    c.psql(&src, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let r = scrubsnap(&["create", "--no-rules", "--source", &c.url(&src), "--dest", &dest]);
    assert_eq!(r.code, 0, "{}", r.all());
    let from = format!("{dest}/latest");
    let dst = c.fresh_db("ops_stop_dst");
    let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst)]);
    assert_eq!(r.code, 0, "{}", r.all());
    // The target differs from the snapshot: a finished restore would show.
    c.psql(&dst, "DELETE FROM t WHERE id > 50");

    for (jobs, signal) in [("1", "TERM"), ("2", "INT")] {
        let blocker = LockHolder::hold(c, &dst, "ACCESS SHARE");
        let child = spawn_with(&mut scrubsnap_cmd(
            &["--no-progress", "restore", "--from", &from, "--target", &c.url(&dst), "--clean", "-j", jobs],
            &[],
        ));
        assert_ne!(blocker.wait_for_waiters(true), "0", "-j {jobs}: the restore never waited for the lock");
        let out = stop(child, signal);
        assert_eq!(out.code, 2, "-j {jobs}:\n{}", out.all());
        assert!(
            out.stderr.contains(&format!("SIG{signal}: stopping")) && out.stderr.contains("interrupted"),
            "{}",
            out.stderr
        );
        assert_eq!(blocker.wait_for_waiters(false), "0", "-j {jobs}: a session still waits for the lock");
        // Let the lock go; then no session is left on the target.
        drop(blocker);
        let gone = Instant::now();
        while sessions(c, &dst, "true") != "0" && gone.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(c.psql(&dst, "SELECT count(*) FROM t"), "50", "-j {jobs}: the target is as it was");
    }
}

/// An export to a file that is stopped leaves neither the file nor its
/// partial copy. The export is caught writing into a pipe that its reader
/// has stopped reading.
#[test]
fn a_stopped_export_leaves_no_partial_file() {
    use std::io::Read;
    let c = cluster();
    let src = c.fresh_db("ops_stop_export");
    c.psql(&src, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 50000) i");
    let store = store_dir();
    let dest = store.path().to_string_lossy().to_string();
    let r = scrubsnap(&["create", "--no-rules", "--source", &c.url(&src), "--dest", &dest]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out = store.path().join("app.sql");
    let partial = store.path().join("app.sql.partial");
    let made = std::process::Command::new("mkfifo").arg(&partial).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    let child = spawn_with(&mut scrubsnap_cmd(
        &["--no-progress", "export", "--from", &format!("{dest}/latest"), "-o", &out.to_string_lossy()],
        &[],
    ));
    // Opening the pipe waits for the export to open it; the first bytes
    // show it writing, and then nobody reads: it blocks. (On a thread, so
    // that an export that never opens the pipe fails the test, not hangs it.)
    let (tx, rx) = std::sync::mpsc::channel();
    let pipe = partial.clone();
    std::thread::spawn(move || {
        let opened = std::fs::File::open(&pipe).and_then(|mut f| {
            let mut first = [0u8; 4096];
            f.read_exact(&mut first).map(|()| f)
        });
        let _ = tx.send(opened);
    });
    let reader = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(reader)) => reader,
        other => {
            let mut child = child;
            let _ = child.kill();
            let r = crate::harness::Run::from(child.wait_with_output().expect("wait"));
            panic!("the export never wrote into the pipe ({other:?}):\n{}", r.all());
        }
    };
    std::thread::sleep(Duration::from_millis(300));
    let r = stop(child, "INT");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("SIGINT: stopping") && r.stderr.contains("interrupted"), "{}", r.stderr);
    assert!(!partial.exists(), "the partial file is left");
    assert!(!out.exists(), "a file was written");
    drop(reader);
}

/// Sends SIG`signal` to a running scrubsnap and waits for it to end, at
/// most 20 seconds (then it is killed and the test fails with its output).
fn stop(mut child: std::process::Child, signal: &str) -> crate::harness::Run {
    let sent = std::process::Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -{signal} failed");
    let sent_at = Instant::now();
    while matches!(child.try_wait(), Ok(None)) && sent_at.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped = !matches!(child.try_wait(), Ok(None));
    if !stopped {
        let _ = child.kill();
    }
    let out = crate::harness::Run::from(child.wait_with_output().expect("wait"));
    assert!(stopped, "SIG{signal}: still running after 20 s:\n{}", out.all());
    out
}

/// How many sessions of database `db` match the SQL condition `filter`.
fn sessions(c: &Cluster, db: &str, filter: &str) -> String {
    c.psql("postgres", &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND {filter}"))
}

/// A session holding a lock on table `t` of a database until dropped (its
/// backend is then ended, also when a test fails).
struct LockHolder<'a> {
    c: &'a Cluster,
    db: String,
    child: std::process::Child,
}

impl<'a> LockHolder<'a> {
    /// Takes the lock (`mode`, e.g. `ACCESS SHARE`) and returns once it holds it.
    fn hold(c: &'a Cluster, db: &str, mode: &str) -> Self {
        let child = std::process::Command::new(c.bin("psql"))
            .args(["-X", "-q", "-d", &c.url(db), "-c"])
            .arg(format!("BEGIN; LOCK TABLE t IN {mode} MODE; SELECT pg_sleep(300)"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn psql");
        let holder = LockHolder { c, db: db.to_string(), child };
        let started = Instant::now();
        while sessions(c, db, "wait_event = 'PgSleep'") != "1" && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        holder
    }

    /// Waits (a minute at most) until some session waits for a lock
    /// (`some`) or none does; returns how many do.
    fn wait_for_waiters(&self, some: bool) -> String {
        let started = Instant::now();
        loop {
            let n = sessions(self.c, &self.db, "wait_event_type = 'Lock'");
            if (n != "0") == some || started.elapsed() > Duration::from_secs(60) {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LockHolder<'_> {
    fn drop(&mut self) {
        // Not `Cluster::psql`, which panics: this may run while a test fails.
        let _ = std::process::Command::new(self.c.bin("psql"))
            .stdout(std::process::Stdio::null())
            .args(["-X", "-q", "-d", &self.c.url("postgres"), "-c"])
            .arg(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
                self.db
            ))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a command with its output captured (for [`stop`]).
fn spawn_with(cmd: &mut std::process::Command) -> std::process::Child {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn scrubsnap")
}
