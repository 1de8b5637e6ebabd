//! `--report FILE` (JSON) and `--metrics-file FILE` (Prometheus text, for
//! node_exporter's textfile collector): what a scheduler needs to notice a
//! failed or missed nightly run. Both are written on success and on failure,
//! each atomically (a temporary file renamed into place).

use std::path::Path;

use scrubsnap::snapshot::Manifest;

/// The outcome of one run.
pub struct Outcome<'a> {
    pub dest: &'a str,
    pub manifest: Option<&'a Manifest>,
    pub error: Option<String>,
    pub exit_code: u8,
    pub duration: std::time::Duration,
    pub warnings: Vec<String>,
}

/// Writes a file readable by this user only (0600), atomically.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut file = scrubsnap::store::private_file(Path::new(&tmp), true)?;
    file.write_all(text.as_bytes())?;
    drop(file);
    std::fs::rename(&tmp, path)
}

pub fn write_report(path: &Path, o: &Outcome) -> std::io::Result<()> {
    let m = o.manifest;
    let report = serde_json::json!({
        "command": "create",
        "status": if o.error.is_none() { "success" } else { "failed" },
        "exit_code": o.exit_code,
        "dest": o.dest,
        "snapshot_id": m.map(|m| m.snapshot_id.clone()),
        "tables": m.map(|m| m.tables.iter().filter(|t| t.file.is_some()).count()),
        "rows": m.map(|m| m.total_rows()),
        "bytes": m.map(|m| m.total_bytes()),
        "duration_ms": o.duration.as_millis() as u64,
        "key_fingerprint": m.and_then(|m| m.masking.as_ref().map(|x| x.key_fingerprint.clone())),
        "rules_sha256": m.and_then(|m| m.masking.as_ref().map(|x| x.rules_sha256.clone())),
        "leak_scan": m.and_then(|m| m.masking.as_ref().and_then(|x| x.leak_scan.clone())),
        "warnings": o.warnings,
        "error": o.error,
    });
    write_atomically(path, &format!("{}\n", serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?))
}

/// Reads the previous file's last-success time, so a failed run keeps it.
fn previous_success(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with("scrubsnap_last_success_timestamp_seconds"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ")
}

pub fn write_metrics(path: &Path, o: &Outcome) -> std::io::Result<()> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let l = format!("{{dest=\"{}\"}}", label(o.dest));
    let ok = o.error.is_none();
    let last_success = if ok { Some(now) } else { previous_success(path) };
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name}{l} {value}\n"));
    };
    gauge(
        "scrubsnap_last_run_success",
        "1 if the last create run published a snapshot, else 0.",
        if ok { 1.0 } else { 0.0 },
    );
    gauge("scrubsnap_last_run_timestamp_seconds", "When the last create run ended (Unix time).", now);
    gauge("scrubsnap_last_run_duration_seconds", "How long the last create run took.", o.duration.as_secs_f64());
    gauge("scrubsnap_last_run_exit_code", "Exit code of the last create run.", f64::from(o.exit_code));
    if let Some(t) = last_success {
        gauge(
            "scrubsnap_last_success_timestamp_seconds",
            "When a create run last published a snapshot (Unix time).",
            t,
        );
    }
    if let Some(m) = o.manifest {
        gauge("scrubsnap_snapshot_rows", "Rows in the last published snapshot.", m.total_rows() as f64);
        gauge("scrubsnap_snapshot_bytes", "Stored bytes of the last published snapshot.", m.total_bytes() as f64);
        gauge(
            "scrubsnap_snapshot_tables",
            "Tables with rows in the last published snapshot.",
            m.tables.iter().filter(|t| t.file.is_some()).count() as f64,
        );
    }
    write_atomically(path, &out)
}
