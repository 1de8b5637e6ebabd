//! The S3 store against a real S3-protocol server (moto) on loopback, and
//! the store contract that the local folder passes too.

use std::time::Duration;

use scrubsnap::store::{Condition, LocalStore, S3Options, S3Store, S3Url, Store, StoreError};

use super::harness::{cluster, store_dir, Cluster};
use super::s3_harness::*;

/// A source database with the spine fixture and a table whose dump needs
/// several 5 MiB multipart parts (about 16 MB compressed).
fn big_source() -> String {
    let c = cluster();
    let db = c.fixture_db("spine");
    c.psql(
        &db,
        "CREATE TABLE public.big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) AS t \
         FROM generate_series(1, 300000) g",
    );
    db
}

fn latest_id(port: u16, bucket: &str, prefix: &str) -> Option<String> {
    let keys = keys(port, bucket);
    keys.iter().any(|k| k == &format!("{prefix}/latest")).then(|| {
        let v: serde_json::Value =
            serde_json::from_slice(&get(port, bucket, &format!("{prefix}/latest"))).expect("pointer json");
        v["snapshot_id"].as_str().unwrap_or("").to_string()
    })
}

/// The key (in the bucket) of file `path` of snapshot `id` under `prefix`:
/// data files are blobs under `blobs/sha256/`, named by their checksum.
fn file_key(port: u16, bucket: &str, prefix: &str, id: &str, path: &str) -> String {
    let manifest: serde_json::Value =
        serde_json::from_slice(&get(port, bucket, &format!("{prefix}/{id}/manifest.json"))).expect("manifest");
    let entry = manifest["files"].as_array().expect("files").iter().find(|f| f["path"] == path).cloned();
    let entry = entry.unwrap_or_else(|| panic!("{path} is not a file of {id}"));
    match (entry["blob"].as_bool(), entry["sha256"].as_str()) {
        (Some(true), Some(sha)) => {
            let ext = if entry["codec"] == "zstd" { ".copy.zst" } else { ".copy.gz" };
            format!("{prefix}/blobs/sha256/{}/{sha}{ext}", &sha[..2])
        }
        _ => format!("{prefix}/{id}/{path}"),
    }
}

/// The path in the manifest of the data file whose name ends with `end`.
fn data_path(port: u16, bucket: &str, prefix: &str, id: &str, end: &str) -> String {
    let manifest: serde_json::Value =
        serde_json::from_slice(&get(port, bucket, &format!("{prefix}/{id}/manifest.json"))).expect("manifest");
    manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .find(|p| p.ends_with(end))
        .unwrap_or_else(|| panic!("no data file ending in {end}"))
        .to_string()
}

fn listed(port: u16, dest: &str) -> Vec<serde_json::Value> {
    let r = run_s3(port, &["list", "--dest", dest, "--format", "json", "--all"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str::<Vec<serde_json::Value>>(&r.stdout).expect("list json")
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What every store must do; run against the local folder and S3.
async fn contract(store: &dyn Store) {
    store.check_writable().await.expect("writable");
    store.put("a/b/c.txt", b"hello").await.expect("put");
    store.put("a/d.txt", b"x").await.expect("put");
    assert_eq!(store.get("a/b/c.txt").await.expect("get"), b"hello");
    let keys: Vec<_> = store.list("a").await.expect("list").into_iter().map(|m| (m.key, m.size)).collect();
    assert_eq!(keys, vec![("a/b/c.txt".to_string(), 5), ("a/d.txt".to_string(), 1)]);
    assert_eq!(store.list_dirs("").await.expect("dirs"), vec!["a"]);
    assert!(matches!(store.open("a/missing").await, Err(StoreError::NotFound { .. })));
    assert!(store.get_tagged("a/missing").await.expect("tagged").is_none());
    assert!(matches!(store.put("../x", b"").await, Err(StoreError::BadKey(_))));

    // A streamed object larger than several parts, written in small pieces,
    // is invisible until finished and then reads back whole.
    let data = bytes(12 * 1024 * 1024 + 123, 7);
    let mut w = store.create("big/object.bin").await.expect("create");
    for chunk in data.chunks(100 * 1024) {
        w.write(chunk).await.expect("write");
    }
    assert!(store.list("big").await.expect("list").is_empty(), "visible before finish");
    w.finish().await.expect("finish");
    assert!(store.get("big/object.bin").await.expect("get") == data, "streamed object differs");

    // Aborted and dropped writers leave nothing, and no open upload.
    let mut w = store.create("gone/aborted.bin").await.expect("create");
    w.write(&data[..6 * 1024 * 1024]).await.expect("write");
    w.abort().await;
    let mut w = store.create("gone/dropped.bin").await.expect("create");
    w.write(&data[..6 * 1024 * 1024]).await.expect("write");
    drop(w);
    assert!(store.list("gone").await.expect("list").is_empty());
    store.delete_prefix("gone").await.expect("delete prefix");
    assert_eq!(store.abort_stale_uploads("", None).await.expect("uploads"), 0, "an upload was left open");

    // Conditional writes: create-only, compare-and-swap, conditional delete.
    let t1 = store.put_if("ptr", b"one", Condition::Absent).await.expect("absent");
    assert!(matches!(store.put_if("ptr", b"two", Condition::Absent).await, Err(StoreError::Precondition { .. })));
    assert!(matches!(
        store.put_if("ptr", b"two", Condition::Matches("\"bogus\"".into())).await,
        Err(StoreError::Precondition { .. })
    ));
    let t2 = store.put_if("ptr", b"two", Condition::Matches(t1.clone())).await.expect("matches");
    let got = store.get_tagged("ptr").await.expect("tagged").expect("exists");
    assert_eq!((got.data.as_slice(), got.tag.as_str()), (&b"two"[..], t2.as_str()));
    assert!(matches!(store.delete_if("ptr", &t1).await, Err(StoreError::Precondition { .. })));
    store.delete_if("ptr", &t2).await.expect("delete_if");
    assert!(store.get_tagged("ptr").await.expect("tagged").is_none());

    store.delete_prefix("a").await.expect("delete prefix");
    store.delete("a/d.txt").await.expect("deleting a missing object");
    store.delete_prefix("big").await.expect("delete prefix");
    assert!(store.list("").await.expect("list").is_empty(), "{:?}", store.list("").await);
}

#[test]
fn store_contract_local_folder() {
    let dir = store_dir();
    rt().block_on(contract(&LocalStore::new(dir.path().join("store"))));
}

#[test]
fn store_contract_s3() {
    let m = moto();
    let b = bucket(m.port);
    let opts = S3Options { part_size: 5 * 1024 * 1024, ..Default::default() };
    let url = S3Url::parse(&format!("s3://{b}/team/snaps")).expect("url");
    let store = S3Store::from_client(client(m.port), url, opts);
    rt().block_on(contract(&store));
    assert!(open_uploads(m.port, &b).is_empty());
    // Nothing outside the prefix was touched, nothing inside is left.
    assert!(keys(m.port, &b).is_empty(), "{:?}", keys(m.port, &b));
}

#[test]
fn s3_round_trip_with_multipart_upload() {
    let c = cluster();
    let m = moto();
    let b = bucket(m.port);
    let src = big_source();
    let dest = format!("s3://{b}/nightly");
    let r = run_s3(
        m.port,
        // One file for the big table (no chunks), so that it needs several parts.
        &[
            "create",
            "--source",
            &c.url(&src),
            "--dest",
            &dest,
            "--no-rules",
            "--s3-part-size",
            "5",
            "--sse",
            "AES256",
            "--chunk-size",
            "1024",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let snaps = listed(m.port, &dest);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let id = snaps[0]["id"].as_str().expect("id").to_string();
    assert_eq!((snaps[0]["complete"].as_bool(), snaps[0]["latest"].as_bool()), (Some(true), Some(true)));
    assert_eq!(latest_id(m.port, &b, "nightly").as_deref(), Some(id.as_str()));
    // The big table went up as a multipart upload (its ETag is "<md5>-<parts>").
    let big = data_path(m.port, &b, "nightly", &id, "public.big.copy.gz");
    let big_key = file_key(m.port, &b, "nightly", &id, &big);
    let head = rt().block_on(client(m.port).head_object().bucket(&b).key(&big_key).send()).expect("head");
    let parts: u32 =
        head.e_tag().and_then(|e| e.trim_matches('"').rsplit_once('-')).map_or(0, |(_, n)| n.parse().unwrap_or(0));
    assert!(parts >= 3, "expected a multipart upload of several parts, ETag {:?}", head.e_tag());
    assert!(head.server_side_encryption().is_some(), "--sse AES256 was not applied");
    assert!(open_uploads(m.port, &b).is_empty());
    assert!(!keys(m.port, &b).iter().any(|k| k.ends_with("create.lock")), "the run lock was not released");

    let r = run_s3(m.port, &["verify", "--from", &format!("{dest}/latest")], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let dst = c.unused_db("s3rt");
    let r = run_s3(m.port, &["pull", "--from", &format!("{dest}/latest"), "--target", &c.url(&dst), "--create"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(c.table_digests(&src), c.table_digests(&dst));
}

#[test]
fn s3_server_lost_mid_upload_publishes_nothing() {
    let c = cluster();
    let m = moto();
    let b = bucket(m.port);
    let src = big_source();
    let proxy = Proxy::start(m.port);
    let dest = format!("s3://{b}/nightly");
    let create = ["create", "--source", &c.url(&src), "--dest", &dest, "--no-rules", "--s3-part-size", "5"];
    let r = run_s3(proxy.port, &create, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let first = latest_id(m.port, &b, "nightly").expect("latest after the first run");

    // The big table changes, so the second run uploads it again (an
    // unchanged one is stored once), and the server goes away after 7 MiB
    // of that run (inside the big table's multipart upload) and comes back
    // a few seconds later.
    c.psql(&src, "UPDATE public.big SET t = upper(t)");
    proxy.cut_after(7 * 1024 * 1024);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            let start = std::time::Instant::now();
            while !proxy.is_down() && start.elapsed() < Duration::from_secs(120) {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_secs(5));
            proxy.restore();
        });
        run_s3(proxy.port, &create, &[])
    });
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("could not reach the S3 endpoint"), "{}", r.stderr);
    assert!(r.stderr.contains("create failed") || r.stderr.contains("error"), "{}", r.stderr);
    assert_eq!(latest_id(m.port, &b, "nightly").as_deref(), Some(first.as_str()), "latest moved");
    assert!(open_uploads(m.port, &b).is_empty(), "multipart uploads left open: {:?}", open_uploads(m.port, &b));
    let snaps = listed(m.port, &dest);
    assert!(
        snaps.iter().all(|s| s["id"] == first.as_str() || s["complete"] == false),
        "the broken snapshot is listed as complete: {snaps:?}"
    );
    assert_eq!(snaps.iter().filter(|s| s["complete"] == true).count(), 1, "{snaps:?}");
    assert!(!keys(m.port, &b).iter().any(|k| k.ends_with("create.lock")), "the run lock was not released");
}

#[test]
fn s3_corrupted_object_is_refused_before_loading() {
    let c = cluster();
    let m = moto();
    let (_, b, dest, id) = spine_in_s3(c, m.port);
    let file = data_path(m.port, &b, "nightly", &id, "public.orders.copy.gz");
    let key = file_key(m.port, &b, "nightly", &id, &file);
    let mut data = get(m.port, &b, &key);
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    put(m.port, &b, &key, &data);
    let dst = c.fresh_db("s3bad");
    let r = run_s3(m.port, &["restore", "--from", &format!("{dest}/latest"), "--target", &c.url(&dst)], &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains(&file) && r.stderr.contains("checksum"), "{}", r.stderr);
    assert_eq!(c.user_table_count(&dst), 0, "something was loaded");
}

#[test]
fn s3_overlapping_creates_one_publishes() {
    let c = cluster();
    let m = moto();
    let b = bucket(m.port);
    let src = big_source();
    let dest = format!("s3://{b}/nightly");
    let url = c.url(&src);
    let args = ["create", "--source", url.as_str(), "--dest", dest.as_str(), "--no-rules", "--s3-part-size", "5"];
    let env = s3_env(m.port);
    let env = pairs(&env);
    let first = super::harness::scrubsnap_cmd(&args, &env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Start the second once the first holds the lock.
    let start = std::time::Instant::now();
    while !keys(m.port, &b).iter().any(|k| k == "nightly/create.lock") {
        assert!(start.elapsed() < Duration::from_secs(60), "the first run never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = run_s3(m.port, &args, &[]);
    let first = super::harness::Run::from(first.wait_with_output().expect("wait"));
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(second.code, 2, "{}", second.all());
    assert!(second.stderr.contains("another create is running"), "{}", second.stderr);
    let snaps = listed(m.port, &dest);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(latest_id(m.port, &b, "nightly").as_deref(), snaps[0]["id"].as_str());

    // A lock that has not expired (another host's run) blocks; --force breaks it.
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let lock = format!(
        r#"{{"token":"t","host":"builder-7","pid":4242,"started_at":"{}","expires_at":"{expires}"}}"#,
        chrono::Utc::now().to_rfc3339()
    );
    put(m.port, &b, "nightly/create.lock", lock.as_bytes());
    let small = c.fixture_db("spine");
    let small_url = c.url(&small);
    let small_args = ["create", "--source", small_url.as_str(), "--dest", dest.as_str(), "--no-rules"];
    let r = run_s3(m.port, &small_args, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("builder-7") && r.stderr.contains("--force"), "{}", r.stderr);
    let mut forced = small_args.to_vec();
    forced.push("--force");
    let r = run_s3(m.port, &forced, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(listed(m.port, &dest).len(), 2);
}

#[test]
fn s3_prune_keeps_latest_and_newest_and_cleans_leftovers() {
    let c = cluster();
    let m = moto();
    let b = bucket(m.port);
    let src = c.fixture_db("spine");
    let dest = format!("s3://{b}/nightly");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = run_s3(m.port, &["create", "--source", &c.url(&src), "--dest", &dest, "--no-rules"], &[]);
        assert_eq!(r.code, 0, "{}", r.all());
        ids.push(latest_id(m.port, &b, "nightly").expect("latest"));
    }
    // Leftovers of a killed run: an object without manifest and an open upload.
    put(m.port, &b, "nightly/20200101T000000.000Z/data/0001_x.copy.gz", b"partial");
    rt().block_on(
        client(m.port)
            .create_multipart_upload()
            .bucket(&b)
            .key("nightly/20200101T000000.000Z/data/0002_y.copy.gz")
            .send(),
    )
    .expect("open upload");
    std::thread::sleep(Duration::from_millis(1100));

    let prune = ["prune", "--dest", &dest, "--keep-last", "1", "--incomplete-grace", "1s"];
    let mut dry = prune.to_vec();
    dry.push("--dry-run");
    let r = run_s3(m.port, &dry, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(listed(m.port, &dest).len(), 4, "--dry-run deleted something");

    let r = run_s3(m.port, &prune, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let snaps = listed(m.port, &dest);
    let left: Vec<&str> = snaps.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(left, vec![ids[2].as_str()], "{}", r.all());
    assert!(open_uploads(m.port, &b).is_empty(), "the killed run's upload is still open");
    assert!(r.stdout.contains("20200101T000000.000Z (incomplete)"), "{}", r.stdout);
    let r = run_s3(m.port, &["verify", "--from", &format!("{dest}/latest")], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn s3_bad_bucket_credentials_region_and_endpoint() {
    let c = cluster();
    let m = moto();
    let src = c.fixture_db("spine");
    let create = |dest: &str| {
        vec!["create".to_string(), "--source".into(), c.url(&src), "--dest".into(), dest.into(), "--no-rules".into()]
    };
    let check = |r: &super::harness::Run, want: &str| {
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.stderr.contains(want), "expected '{want}' in:\n{}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    };

    // Unknown bucket: for create, list and restore.
    let a = create("s3://no-such-bucket-sz/x");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    check(&run_s3(m.port, &a, &[]), "the bucket 'no-such-bucket-sz' does not exist");
    check(&run_s3(m.port, &["list", "--dest", "s3://no-such-bucket-sz/x"], &[]), "does not exist");
    let dst = c.fresh_db("s3none");
    let r = run_s3(m.port, &["restore", "--from", "s3://no-such-bucket-sz/x/latest", "--target", &c.url(&dst)], &[]);
    check(&r, "does not exist");

    // No region anywhere.
    let b = bucket(m.port);
    let args = create(&format!("s3://{b}/x"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(String, String)> = s3_env(m.port).into_iter().filter(|(k, _)| k != "AWS_REGION").collect();
    let env = pairs(&env);
    check(&super::harness::scrubsnap_env(&args, &env), "no AWS region is set");

    // An endpoint nothing listens on.
    check(
        &run_s3(m.port, &args, &[("SCRUBSNAP_S3_ENDPOINT", &endpoint(super::harness::closed_port()))]),
        "could not reach the S3 endpoint",
    );
    assert!(keys(m.port, &b).is_empty(), "something was written: {:?}", keys(m.port, &b));

    // Wrong credentials, on a server that checks them.
    let auth = start_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "1")]).unwrap_or_else(|e| panic!("{e}"));
    let ab = bucket(auth.port);
    let args = create(&format!("s3://{ab}/x"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run_s3(auth.port, &args, &[]);
    check(&r, "check the credentials");
    assert!(!r.all().contains("test-secret-Zq81"));
    assert_eq!(c.user_table_count(&dst), 0);
}

/// Restoring from S3 downloads each of the snapshot's files once (they are
/// checked on the way into a temporary folder and loaded from there), so a
/// restore costs one snapshot's worth of transfer, not two.
#[test]
fn s3_restore_downloads_each_file_once() {
    let c = cluster();
    let m = moto();
    let (src, b, dest, id) = spine_in_s3(c, m.port);
    let manifest: serde_json::Value =
        serde_json::from_slice(&get(m.port, &b, &format!("nightly/{id}/manifest.json"))).expect("manifest");
    let files: Vec<String> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str().map(str::to_string))
        .collect();
    assert!(files.iter().filter(|f| f.starts_with("data/")).count() >= 3, "{files:?}");

    let proxy = Proxy::start(m.port);
    let dst = c.fresh_db("s3once");
    // No retries, so that every GET the proxy sees is one the restore chose to make.
    let restore = ["restore", "--from", &format!("{dest}/latest"), "--target", &c.url(&dst), "-j", "2"];
    let r = run_s3(proxy.port, &restore, &[("AWS_MAX_ATTEMPTS", "1")]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(c.table_digests(&src), c.table_digests(&dst));
    let gets: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter_map(|r| r.strip_prefix("GET ").map(|p| p.split('?').next().unwrap_or(p).to_string()))
        .collect();
    for file in &files {
        let key = format!("/{b}/{}", file_key(m.port, &b, "nightly", &id, file));
        let n = gets.iter().filter(|g| **g == key).count();
        assert_eq!(n, 1, "{file} was downloaded {n} times; requests: {gets:#?}");
    }
}

/// A snapshot of the spine fixture in a new bucket, under `nightly`:
/// (source database, bucket, store URL, snapshot id).
fn spine_in_s3(c: &Cluster, port: u16) -> (String, String, String, String) {
    let b = bucket(port);
    let src = c.fixture_db("spine");
    let dest = format!("s3://{b}/nightly");
    let r = run_s3(port, &["create", "--source", &c.url(&src), "--dest", &dest, "--no-rules"], &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let id = r.stdout.trim().to_string();
    (src, b, dest, id)
}
