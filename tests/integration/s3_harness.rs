//! S3 test harness: a real `moto_server` on loopback, buckets, a direct
//! SDK client for inspecting what the binary left behind, and a TCP proxy
//! that can cut the connection to the server mid-upload.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::harness::{closed_port, scrubsnap_env, Run};

/// A running `moto_server`, stopped when the test binary exits.
pub struct Moto {
    pub port: u16,
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
static BUCKETS: AtomicUsize = AtomicUsize::new(0);

fn moto_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("SCRUBSNAP_TEST_MOTO_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/moto/bin/moto_server");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "moto_server (the S3 server the tests run against) not found at {}: run scripts/setup, \
             or set SCRUBSNAP_TEST_MOTO_SERVER",
            p.display()
        ))
    }
}

/// Starts a moto server; `env` adds settings (e.g. authentication).
pub fn start_moto(env: &[(&str, &str)]) -> Result<Moto, String> {
    let bin = moto_bin()?;
    let port = closed_port();
    // A watchdog shell stops the server when this test process exits.
    let script = format!(
        "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {pid} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done; kill $m 2>/dev/null",
        pid = std::process::id()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(&bin).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read(&mut buf).is_ok_and(|n| n > 0) {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(format!("moto_server did not answer on port {port} within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Moto { port, _child: Mutex::new(child) })
}

pub fn moto() -> &'static Moto {
    match MOTO.get_or_init(|| start_moto(&[])) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

pub fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// One runtime for the tests' own SDK calls.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime"))
}

/// A direct client to `port` (no proxy), for setting up and inspecting.
pub fn client(port: u16) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint(port))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A new, empty bucket with a unique name.
pub fn bucket(port: u16) -> String {
    let name = format!("snaps-{}-{}", std::process::id(), BUCKETS.fetch_add(1, Ordering::SeqCst));
    rt().block_on(client(port).create_bucket().bucket(&name).send()).expect("create bucket");
    name
}

/// Every key in the bucket.
pub fn keys(port: u16, bucket: &str) -> Vec<String> {
    rt().block_on(async {
        let out = client(port).list_objects_v2().bucket(bucket).send().await.expect("list");
        out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
    })
}

/// Keys of the multipart uploads still open in the bucket.
pub fn open_uploads(port: u16, bucket: &str) -> Vec<String> {
    rt().block_on(async {
        let out = client(port).list_multipart_uploads().bucket(bucket).send().await.expect("list uploads");
        out.uploads().iter().filter_map(|u| u.key().map(str::to_string)).collect()
    })
}

pub fn get(port: u16, bucket: &str, key: &str) -> Vec<u8> {
    rt().block_on(async {
        let out = client(port).get_object().bucket(bucket).key(key).send().await.expect("get");
        out.body.collect().await.expect("body").to_vec()
    })
}

pub fn put(port: u16, bucket: &str, key: &str, data: &[u8]) {
    rt().block_on(client(port).put_object().bucket(bucket).key(key).body(data.to_vec().into()).send()).expect("put");
}

/// Environment for the binary: static test credentials, the region, the
/// endpoint, path-style, and no instance-metadata probing.
pub fn s3_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test-secret-Zq81".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_MAX_ATTEMPTS".into(), "3".into()),
        ("SCRUBSNAP_S3_ENDPOINT".into(), endpoint(port)),
        ("SCRUBSNAP_S3_PATH_STYLE".into(), "true".into()),
    ]
}

/// Borrowed `(name, value)` pairs, as `scrubsnap_env` takes them.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs the binary against the S3 server on `port`, plus `extra` env.
pub fn run_s3(port: u16, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let env = s3_env(port);
    let mut all = pairs(&env);
    all.extend_from_slice(extra);
    let r = scrubsnap_env(args, &all);
    assert!(!r.all().contains("test-secret-Zq81"), "the secret key was printed:\n{}", r.all());
    r
}

/// A loopback TCP proxy in front of a server that can be cut: after a
/// number of bytes sent to the server, every connection is closed and new
/// ones are dropped until it is restored. It also records the requests it
/// passes on (method and path).
pub struct Proxy {
    pub port: u16,
    state: Arc<ProxyState>,
}

struct ProxyState {
    upstream: u16,
    forwarded: AtomicU64,
    cut_after: AtomicU64,
    down: AtomicBool,
    live: Mutex<Vec<TcpStream>>,
    requests: Mutex<Vec<String>>,
}

impl ProxyState {
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        if let Ok(mut live) = self.live.lock() {
            for s in live.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(ProxyState {
            upstream,
            forwarded: AtomicU64::new(0),
            cut_after: AtomicU64::new(u64::MAX),
            down: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if st.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", st.upstream)) else { continue };
                if let (Ok(mut live), Ok(c2), Ok(s2)) = (st.live.lock(), client.try_clone(), server.try_clone()) {
                    live.push(c2);
                    live.push(s2);
                }
                let (Ok(c_read), Ok(s_write)) = (client.try_clone(), server.try_clone()) else { continue };
                let up = st.clone();
                std::thread::spawn(move || pump(c_read, s_write, Some(up)));
                std::thread::spawn(move || pump(server, client, None));
            }
        });
        Proxy { port, state }
    }

    /// Cuts every connection once `bytes` more bytes went to the server.
    pub fn cut_after(&self, bytes: u64) {
        let at = self.state.forwarded.load(Ordering::SeqCst) + bytes;
        self.state.cut_after.store(at, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.state.down.load(Ordering::SeqCst)
    }

    /// The requests passed on so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.cut_after.store(u64::MAX, Ordering::SeqCst);
        self.state.down.store(false, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<ProxyState>>) {
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes of the client's requests not parsed yet.
    let mut pending = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(st) = &count {
            if st.down.load(Ordering::SeqCst) {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            record_requests(&mut pending, &st.requests);
            let total = st.forwarded.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total > st.cut_after.load(Ordering::SeqCst) {
                st.cut();
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Moves each complete HTTP/1.1 request (head and `Content-Length` body)
/// out of `pending`, recording its request line without the version.
fn record_requests(pending: &mut Vec<u8>, out: &Mutex<Vec<String>>) {
    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&pending[..end]).into_owned();
        let body = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
            .map_or(0, |(_, v)| v.trim().parse::<usize>().unwrap_or(0));
        if pending.len() < end + 4 + body {
            return;
        }
        if let (Some(line), Ok(mut out)) = (head.lines().next(), out.lock()) {
            out.push(line.rsplit_once(' ').map_or(line, |(request, _)| request).to_string());
        }
        pending.drain(..end + 4 + body);
    }
}
