//! Data files stored once per content: unchanged tables are not stored
//! again, prune keeps every blob a remaining snapshot needs (and only
//! those), zstd snapshots load like gzip ones, and a pull with a warm cache
//! downloads only the blobs it has not seen.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::harness::{blob_files, cluster, data_file_sums, read_manifest, scrubsnap, store_dir, Cluster, Run};
use super::s3_harness::{bucket, moto, run_s3, Proxy};

fn created(r: &Run) -> String {
    assert_eq!(r.code, 0, "{}", r.all());
    r.stdout.trim().to_string()
}

fn create(c: &Cluster, src: &str, store: &Path, extra: &[&str]) -> Run {
    let (dest, url) = (store.to_string_lossy().to_string(), c.url(src));
    let mut args = vec!["create", "--no-rules", "--source", &url, "--dest", &dest];
    args.extend_from_slice(extra);
    scrubsnap(&args)
}

/// The blob files of a local store (not those being written).
fn blobs(store: &Path) -> BTreeSet<PathBuf> {
    blob_files(store).into_iter().filter(|p| !p.to_string_lossy().contains("/.incoming/")).collect()
}

/// The blob files snapshot `id` refers to.
fn referenced(store: &Path, id: &str) -> BTreeSet<PathBuf> {
    data_file_sums(store, id).into_iter().map(|(path, _)| super::harness::file_path(store, id, &path)).collect()
}

/// A source with a table dumped in chunks, a small one and an empty one.
fn source(c: &Cluster) -> String {
    let src = c.fresh_db("blobs");
    c.psql(
        &src,
        "CREATE TABLE big (id int PRIMARY KEY, pad text);
         INSERT INTO big SELECT i, md5(i::text) || md5((i * 3)::text) FROM generate_series(1, 60000) i;
         CREATE TABLE small (id int PRIMARY KEY, note text);
         INSERT INTO small VALUES (1, 'one'), (2, 'two');
         CREATE TABLE nothing (id int);",
    );
    c.psql(&src, "VACUUM ANALYZE");
    src
}

#[test]
fn unchanged_tables_are_stored_once_and_prune_keeps_what_remaining_snapshots_need() {
    let c = cluster();
    let src = source(c);
    let store = store_dir();
    let chunked = ["--chunk-size", "1", "-j", "2"];
    let first = created(&create(c, &src, store.path(), &chunked));
    let big_chunks = read_manifest(store.path(), &first)["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["name"] == "big")
        .map(|t| t["chunks"].as_array().map_or(0, Vec::len))
        .expect("big");
    assert!(big_chunks >= 3, "big is dumped in chunks");
    let after_first = blobs(store.path());
    assert_eq!(after_first, referenced(store.path(), &first));

    // Unchanged: every data file is the same blob, nothing new is stored.
    let r = create(c, &src, store.path(), &chunked);
    let second = created(&r);
    assert!(r.stderr.contains("data files: 0 new"), "{}", r.stderr);
    assert_eq!(data_file_sums(store.path(), &first), data_file_sums(store.path(), &second));
    assert_eq!(blobs(store.path()), after_first, "the second snapshot stored no data file");

    // New rows in the small table: one new blob.
    c.psql(&src, "INSERT INTO small VALUES (3, 'three')");
    let third = created(&create(c, &src, store.path(), &chunked));
    let digests_third = c.table_digests(&src);
    let added: Vec<PathBuf> = blobs(store.path()).difference(&after_first).cloned().collect();
    assert_eq!(added.len(), 1, "only the small table's file is new: {added:?}");

    // One row of the big table updated: only the chunks that held its old
    // and its new version change.
    c.psql(&src, "UPDATE big SET pad = 'changed' WHERE id = 30000");
    let before = blobs(store.path());
    let fourth = created(&create(c, &src, store.path(), &chunked));
    let added = blobs(store.path()).difference(&before).count();
    assert!((1..=2).contains(&added) && added < big_chunks, "{added} new blobs of {big_chunks} chunks");

    // `list` says what each snapshot added to the store.
    let r = scrubsnap(&["list", "--dest", &store.path().to_string_lossy(), "--format", "json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("json");
    let added_of = |id: &str| listed.iter().find(|s| s["id"] == id).and_then(|s| s["added_bytes"].as_u64());
    let size_of = |id: &str| listed.iter().find(|s| s["id"] == id).and_then(|s| s["bytes"].as_u64());
    let scripts = |id: &str| {
        let m = read_manifest(store.path(), id);
        let files = m["files"].as_array().cloned().unwrap_or_default();
        files.iter().filter(|f| f["blob"] != true).filter_map(|f| f["bytes"].as_u64()).sum::<u64>()
    };
    assert_eq!(added_of(&first), size_of(&first));
    assert_eq!(added_of(&second), Some(scripts(&second)), "the unchanged snapshot added its scripts only");
    assert!(added_of(&third) < size_of(&third).map(|s| s / 2), "{listed:?}");

    // Prune within the grace period deletes snapshots but no blob; a
    // running create (its lock held) stops the blobs' collection too.
    let dest = store.path().to_string_lossy().to_string();
    let r = scrubsnap(&["prune", "--dest", &dest, "--keep-last", "2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains(&format!("deleted {first}")) && r.stdout.contains(&format!("deleted {second}")));
    assert!(r.stdout.contains("younger than the grace period kept"), "{}", r.stdout);
    let local = scrubsnap::store::LocalStore::new(store.path().to_path_buf());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let lock = rt
        .block_on(scrubsnap::snapshot::lock::RunLock::acquire(&local, std::time::Duration::from_secs(60), false))
        .expect("lock");
    let all_blobs = blobs(store.path());
    let r = scrubsnap(&["prune", "--dest", &dest, "--keep-last", "2", "--incomplete-grace", "0"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("a create is running"), "{}", r.stdout);
    assert_eq!(blobs(store.path()), all_blobs);
    rt.block_on(lock.release(&local));

    // Past it, the blobs only the deleted snapshots used go, the others stay.
    let r = scrubsnap(&["prune", "--dest", &dest, "--keep-last", "2", "--incomplete-grace", "0"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let needed: BTreeSet<PathBuf> =
        referenced(store.path(), &third).union(&referenced(store.path(), &fourth)).cloned().collect();
    assert_eq!(blobs(store.path()), needed, "exactly the blobs of the remaining snapshots are kept");
    assert!(all_blobs.len() > needed.len(), "some blobs were unreferenced");
    // Each remaining snapshot restores to its rows.
    let (r, dst) = c.restore_new(store.path(), &third, "blobs_third");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(c.table_digests(&dst), digests_third);
    let (r, dst) = c.restore_new(store.path(), &fourth, "blobs_fourth");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(c.table_digests(&dst), c.table_digests(&src));
    let r = scrubsnap(&["verify", "--from", &format!("{dest}/{third}")]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn zstd_snapshots_restore_like_gzip_ones() {
    let c = cluster();
    let src = c.fixture_db("spine");
    let store = store_dir();
    let gzip = created(&create(c, &src, store.path(), &[]));
    let zstd = created(&create(c, &src, store.path(), &["--compression", "zstd"]));
    let m = read_manifest(store.path(), &zstd);
    for f in m["files"].as_array().expect("files").iter().filter(|f| f["blob"] == true) {
        assert_eq!(f["codec"], "zstd", "{f}");
        let path = f["path"].as_str().expect("path");
        assert!(path.ends_with(".copy.zst"), "{path}");
        let file = super::harness::file_path(store.path(), &zstd, path);
        assert!(std::fs::read(&file).expect("read").starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "a zstd frame");
    }
    // Same rows in both: the files decompress to the same text.
    let text = |id: &str| -> Vec<Vec<u8>> {
        data_file_sums(store.path(), id)
            .into_iter()
            .map(|(p, _)| super::harness::decompressed(&super::harness::file_path(store.path(), id, &p)))
            .collect()
    };
    assert_eq!(text(&gzip), text(&zstd));
    let dest = store.path().to_string_lossy().to_string();
    for jobs in ["1", "2"] {
        let dst = c.unused_db("zstd_restore");
        let from = format!("{dest}/{zstd}");
        let r = scrubsnap(&["restore", "--from", &from, "--target", &c.url(&dst), "--create", "-j", jobs]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_eq!(c.table_digests(&src), c.table_digests(&dst), "-j {jobs}");
    }
    let sql = store.path().join("zstd.sql");
    let r = scrubsnap(&["export", "--from", &format!("{dest}/{zstd}"), "-o", &sql.to_string_lossy()]);
    assert_eq!(r.code, 0, "{}", r.all());
    let exported = c.fresh_db("zstd_export");
    assert!(c.psql_file(&exported, &sql).status.success());
    assert_eq!(c.table_digests(&src), c.table_digests(&exported));
    assert_eq!(scrubsnap(&["verify", "--from", &format!("{dest}/{zstd}")]).code, 0);
    // A level the codec does not take is refused up front.
    let r = create(c, &src, store.path(), &["--compression", "zstd", "--compress-level", "0"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("zstd takes levels 1 to 19"), "{}", r.stderr);
}

#[test]
fn a_warm_pull_downloads_only_new_blobs_and_fetches_a_damaged_one_again() {
    let c = cluster();
    let m = moto();
    let b = bucket(m.port);
    let src = c.fixture_db("spine");
    let dest = format!("s3://{b}/nightly");
    let cache = store_dir();
    let cache_dir = cache.path().to_string_lossy().to_string();
    let create = || {
        let r = run_s3(m.port, &["create", "--no-rules", "--source", &c.url(&src), "--dest", &dest], &[]);
        created(&r)
    };
    // The blob GETs of one pull through a fresh proxy, and the run.
    let pull = |id: &str, prefix: &str| -> (Vec<String>, Run) {
        let proxy = Proxy::start(m.port);
        let dst = c.unused_db(prefix);
        let from = format!("{dest}/{id}");
        let args = ["pull", "--from", &from, "--target", &c.url(&dst), "--create", "--cache-dir", &cache_dir];
        let r = run_s3(proxy.port, &args, &[("AWS_MAX_ATTEMPTS", "1")]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert_eq!(c.table_digests(&src), c.table_digests(&dst), "rows after the pull");
        let gets = proxy
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("GET ") && r.contains("/blobs/sha256/"))
            .map(|r| r.split('?').next().unwrap_or(&r).to_string())
            .collect();
        (gets, r)
    };
    let first = create();
    let (gets, _) = pull(&first, "pull_cold");
    let distinct: BTreeSet<&String> = gets.iter().collect();
    assert_eq!(distinct.len(), gets.len(), "each blob once: {gets:#?}");
    let cold = gets.len();
    assert!(cold >= 10, "{gets:#?}");

    // One table changes: the next pull downloads its new blob only.
    c.psql(&src, r#"UPDATE "Sales Data"."Invoices" SET "Paid?" = NOT "Paid?""#);
    let second = create();
    let (gets, r) = pull(&second, "pull_warm");
    assert_eq!(gets.len(), 1, "only the changed table's file: {gets:#?}");
    assert!(r.stderr.contains(&format!("reused {} from the pull cache", cold - 1)), "{}", r.stderr);

    // A damaged cached file is found, downloaded again, and the pull works.
    let cached =
        blob_files(cache.path()).into_iter().find(|p| p.to_string_lossy().ends_with(".copy.gz")).expect("a file");
    let mut bytes = std::fs::read(&cached).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&cached, bytes).expect("write");
    let (gets, r) = pull(&second, "pull_damaged");
    assert_eq!(gets.len(), 1, "the damaged file only: {gets:#?}");
    assert!(gets[0].ends_with(&*cached.file_name().expect("name").to_string_lossy()), "{gets:?}");
    assert!(r.stderr.contains("damaged"), "{}", r.stderr);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&cached).expect("meta").permissions().mode() & 0o777, 0o600);
}

/// Copies a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// A snapshot written by the release before data files became blobs
/// (`tests/fixtures/snapshot-v3`: the demo shop masked by the demo rules of
/// then, `tests/fixtures/snapshot-v3-rules.yaml`, with the masking test
/// key; manifest format 3, data files in its own folder) is
/// still listed, verified and restored, to the same rows as a snapshot of
/// today's layout; a store holding both prunes the old one and keeps the
/// blobs of the new.
#[test]
fn snapshots_of_the_previous_layout_stay_readable_and_prunable() {
    let c = cluster();
    let store = store_dir();
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot-v3"), store.path());
    let dest = store.path().to_string_lossy().to_string();
    let old = "20261130T142248.710Z";
    let latest = format!("{dest}/latest");
    let r = scrubsnap(&["verify", "--from", &latest]);
    assert_eq!(r.code, 0, "a format-3 snapshot verifies:\n{}", r.all());
    let (r, old_db) = c.restore_new(store.path(), old, "v3_dst");
    assert_eq!(r.code, 0, "a format-3 snapshot restores:\n{}", r.all());

    let shop = c.sql_db("v3_shop", "demo/seed.sql");
    // The rules the format-3 snapshot was made with (the demo's, then).
    let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/snapshot-v3-rules.yaml")
        .to_string_lossy()
        .to_string();
    let r = super::harness::scrubsnap_env(
        &["create", "--source", &c.url(&shop), "--dest", &dest, "--rules", &rules],
        &[("SCRUBSNAP_KEY", "integration-test-key-0123456789abcdef")],
    );
    let new = created(&r);
    assert_eq!(read_manifest(store.path(), &new)["format_version"], 4);
    let (r, new_db) = c.restore_new(store.path(), &new, "v4_dst");
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(c.table_digests(&old_db), c.table_digests(&new_db), "both layouts hold the same masked rows");

    let listed = scrubsnap(&["list", "--dest", &dest, "--format", "json"]);
    assert_eq!(listed.code, 0, "{}", listed.all());
    assert!(listed.stdout.contains(old) && listed.stdout.contains(&new), "{}", listed.stdout);
    let r = scrubsnap(&["prune", "--dest", &dest, "--keep-last", "1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!store.path().join(old).exists(), "the old snapshot's folder, data included, is gone");
    assert_eq!(blobs(store.path()), referenced(store.path(), &new), "the new snapshot's blobs stay");
    let (r, _) = c.restore_new(store.path(), &new, "v4_again");
    assert_eq!(r.code, 0, "{}", r.all());
}
