//! The S3 store (AWS S3 and S3-compatible servers: MinIO, Ceph, R2...).
//!
//! Objects are keys under `s3://bucket/prefix/`. Credentials and region come
//! from the standard AWS chain (environment, shared config and profiles, SSO,
//! web identity, instance metadata); retries with backoff are the SDK's own
//! (`AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`).
//!
//! Writing streams: bytes fill a part buffer, full parts are uploaded as a
//! multipart upload with a bounded number of parts in flight, so memory stays
//! at part size × (parts in flight + 1) per open object whatever its size. A
//! small object is one `PutObject`. An object becomes visible only when its
//! upload completes; a failed or dropped writer aborts the upload, so no
//! orphan parts stay billed. Cleanup after a failure uses a more patient
//! retry budget than the data path, so a short outage does not leave parts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use tokio::task::JoinSet;

use super::{check_key, Condition, ObjectMeta, ObjectReader, ObjectWriter, Store, StoreError, Tagged};

/// The smallest part S3 accepts (all parts but the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// The largest part S3 accepts.
const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
/// S3 allows at most this many parts per upload.
const MAX_PARTS: i32 = 10_000;

/// Server-side encryption of written objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    Aes256,
    Kms { key_id: Option<String> },
}

/// How to reach and write an S3 store.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Endpoint of an S3-compatible server; `None`: AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Path-style addressing (`http://host/bucket/key`), which most
    /// S3-compatible servers need.
    pub path_style: bool,
    /// Region; `None`: the AWS chain (`AWS_REGION`, profile, metadata).
    pub region: Option<String>,
    pub sse: Option<Sse>,
    pub storage_class: Option<String>,
    /// Size of the first parts of a multipart upload; later parts grow so
    /// an object can reach S3's object size limit within 10,000 parts.
    pub part_size: usize,
    /// Parts uploaded at once per object.
    pub parts_in_flight: usize,
    /// Allow an `http://` endpoint that is not on this machine (snapshots
    /// and credentials' signatures would cross the network unencrypted).
    pub allow_http: bool,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            path_style: false,
            region: None,
            sse: None,
            storage_class: None,
            part_size: 8 * 1024 * 1024,
            parts_in_flight: 2,
            allow_http: false,
        }
    }
}

/// `s3://bucket/prefix`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
}

impl S3Url {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(s: &str) -> Result<Self, BadS3Url> {
        let rest = s.strip_prefix("s3://").ok_or("an S3 location starts with s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err("the bucket name must be 3 to 63 lowercase letters, digits, '-' or '.'".into());
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() && check_key(prefix).is_err() {
            return Err("the prefix must be '/'-separated names without '.' or '..'".into());
        }
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(S3Url { bucket: bucket.to_string(), prefix })
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
    }
}

crate::error::message_error!(
    /// An S3 location that cannot be used.
    BadS3Url
);

/// Whether an endpoint URL is plain `http://` to a host that is not this
/// machine (loopback: `localhost`, 127.0.0.0/8, `::1`).
pub fn plain_remote(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else { return false };
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Domain(d)) => !d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => !ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
        None => true,
    }
}

/// A bucket and prefix on S3.
pub struct S3Store {
    client: Client,
    /// Same client with a longer retry budget, for aborting and deleting
    /// after a failure.
    cleanup: Client,
    url: S3Url,
    opts: S3Options,
}

struct Shared {
    client: Client,
    cleanup: Client,
    bucket: String,
    store: String,
}

impl S3Store {
    /// Builds a client from the AWS chain and the options. Makes no request;
    /// fails only when no region can be found.
    pub async fn connect(url: S3Url, opts: S3Options) -> Result<Self, StoreError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &opts.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(StoreError::Unusable {
                store: url.to_string(),
                reason: "no AWS region is set (set AWS_REGION, a profile's region, or --s3-region)".into(),
            });
        }
        let mut conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(opts.path_style);
        if let Some(endpoint) = &opts.endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        let endpoint = opts.endpoint.clone().or_else(|| sdk.endpoint_url().map(str::to_string));
        if let Some(endpoint) = endpoint.filter(|e| !opts.allow_http && plain_remote(e)) {
            return Err(StoreError::Unusable {
                store: url.to_string(),
                reason: format!(
                    "the S3 endpoint {endpoint} is plain http on another machine: snapshots would cross the network unencrypted; use https, or --s3-allow-http if the network is trusted"
                ),
            });
        }
        conf = conf.timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(120))
                .build(),
        );
        Ok(Self::from_client(Client::from_conf(conf.build()), url, opts))
    }

    /// A store over a client the caller built (credentials, endpoint and
    /// retries as configured there).
    pub fn from_client(client: Client, url: S3Url, opts: S3Options) -> Self {
        let patient = aws_sdk_s3::config::retry::RetryConfig::standard()
            .with_max_attempts(8)
            .with_max_backoff(Duration::from_secs(8));
        let cleanup = Client::from_conf(client.config().to_builder().retry_config(patient).build());
        S3Store { client, cleanup, url, opts }
    }

    fn full_key(&self, key: &str) -> Result<String, StoreError> {
        check_key(key)?;
        Ok(format!("{}{key}", self.url.prefix))
    }

    fn full_prefix(&self, prefix: &str) -> Result<String, StoreError> {
        let p = prefix.trim_end_matches('/');
        if p.is_empty() {
            return Ok(self.url.prefix.clone());
        }
        check_key(p)?;
        Ok(format!("{}{p}/", self.url.prefix))
    }

    fn shared(&self) -> Arc<Shared> {
        Arc::new(Shared {
            client: self.client.clone(),
            cleanup: self.cleanup.clone(),
            bucket: self.url.bucket.clone(),
            store: self.describe(),
        })
    }

    fn err<E>(&self, op: &'static str, key: &str, e: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(&self.describe(), &self.url.bucket, op, key, e)
    }

    /// Aborts multipart uploads under `prefix` started before `before`
    /// (all of them when `None`). Returns how many were aborted.
    pub async fn abort_uploads(
        &self,
        prefix: &str,
        before: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<usize, StoreError> {
        let full = self.full_prefix(prefix)?;
        let mut aborted = 0;
        let mut failed = None;
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let page = self
                .cleanup
                .list_multipart_uploads()
                .bucket(&self.url.bucket)
                .prefix(&full)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| self.err("listing uploads under", prefix, e))?;
            for u in page.uploads() {
                let (Some(key), Some(id)) = (u.key(), u.upload_id()) else { continue };
                let initiated = u
                    .initiated()
                    .and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
                if let (Some(limit), Some(t)) = (before, initiated) {
                    if t >= limit {
                        continue;
                    }
                }
                let sent =
                    self.cleanup.abort_multipart_upload().bucket(&self.url.bucket).key(key).upload_id(id).send().await;
                match sent {
                    Ok(_) => aborted += 1,
                    // Aborted meanwhile (a dropped writer aborts its own in
                    // the background): done.
                    Err(e)
                        if e.code() == Some("NoSuchUpload")
                            || e.raw_response().map(|r| r.status().as_u16()) == Some(404) => {}
                    // The others are still worth aborting; the first failure is reported.
                    Err(e) => {
                        failed.get_or_insert(self.err("aborting the upload of", key, e));
                    }
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(aborted),
        }
    }
}

/// Applies the options' encryption and storage class to a put or a
/// multipart start.
macro_rules! apply_settings {
    ($req:expr, $settings:expr) => {{
        let mut req = $req;
        match &$settings.sse {
            Some(Sse::Aes256) => req = req.server_side_encryption(ServerSideEncryption::Aes256),
            Some(Sse::Kms { key_id }) => {
                req = req.server_side_encryption(ServerSideEncryption::AwsKms).set_ssekms_key_id(key_id.clone())
            }
            None => {}
        }
        if let Some(class) = &$settings.storage_class {
            req = req.storage_class(StorageClass::from(class.as_str()));
        }
        req
    }};
}

/// A store failure that is not an SDK error (or is one, put into words).
fn io_error(op: &'static str, store: &str, key: &str, msg: impl ToString) -> StoreError {
    StoreError::Io {
        op,
        store: store.to_string(),
        key: key.to_string(),
        source: std::io::Error::other(msg.to_string()),
    }
}

/// Turns an SDK error into a message a user can act on. Never includes
/// credentials (the SDK's messages do not carry them).
fn classify<E>(store: &str, bucket: &str, op: &'static str, key: &str, e: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().map(str::to_string);
    let status = e.raw_response().map(|r| r.status().as_u16());
    let unusable = |reason: String| StoreError::Unusable { store: store.to_string(), reason };
    match (code.as_deref(), status) {
        (Some("NoSuchBucket"), _) => return unusable(format!("the bucket '{bucket}' does not exist")),
        // HeadBucket answers without a body, so a missing bucket is a bare 404.
        (_, Some(404)) if op == "checking" => return unusable(format!("the bucket '{bucket}' does not exist")),
        (Some("NoSuchKey"), _) | (_, Some(404)) if op == "reading" || op == "opening" => {
            return StoreError::NotFound { store: store.to_string(), key: key.to_string() }
        }
        (Some("PreconditionFailed"), _) | (_, Some(412)) => {
            return StoreError::Precondition { store: store.to_string(), key: key.to_string() }
        }
        (Some("InvalidAccessKeyId"), _) => {
            return unusable("the access key is not known to the server (check the AWS credentials)".into())
        }
        (Some("SignatureDoesNotMatch"), _) => {
            return unusable("the request signature was rejected (check the secret key)".into())
        }
        (Some("AccessDenied"), _) | (_, Some(403)) => {
            let what = if key.is_empty() { format!("the bucket '{bucket}'") } else { format!("'{key}'") };
            return unusable(format!("access denied while {op} {what} (check the credentials and the bucket policy)"));
        }
        (Some("AuthorizationHeaderMalformed"), _) | (Some("PermanentRedirect"), _) | (_, Some(301)) => {
            return unusable(format!("the bucket '{bucket}' is in another region (set AWS_REGION or --s3-region)"))
        }
        _ => {}
    }
    // The SDK's context ends in a Debug dump of the error; keep the words.
    let context = |e: &SdkError<E>| {
        let s = aws_sdk_s3::error::DisplayErrorContext(e).to_string();
        let s = s.split(" (DispatchFailure(").next().unwrap_or_default().to_string();
        s.chars().take(300).collect::<String>()
    };
    let detail = match &e {
        SdkError::DispatchFailure(_) => format!("could not reach the S3 endpoint ({})", context(&e)),
        SdkError::TimeoutError(_) => "the S3 request timed out".into(),
        SdkError::ConstructionFailure(_) => format!("the request could not be built ({})", context(&e)),
        _ => match (code, e.message(), status) {
            (Some(c), Some(m), _) => format!("{c}: {m}"),
            (Some(c), None, _) => c,
            (None, _, Some(s)) => format!("HTTP status {s}"),
            _ => context(&e),
        },
    };
    io_error(op, store, key, detail)
}

/// Writes one object: a single put when small, else a multipart upload.
struct S3Writer {
    shared: Arc<Shared>,
    /// The store's options (encryption, storage class).
    settings: S3Options,
    key: String,
    /// The key as the user sees it (without the store prefix).
    shown_key: String,
    buf: BytesMut,
    base_part_size: usize,
    max_in_flight: usize,
    upload_id: Option<String>,
    next_part: i32,
    in_flight: JoinSet<Result<CompletedPart, StoreError>>,
    done: Vec<CompletedPart>,
    closed: bool,
}

impl S3Writer {
    /// The size of part `n` (1-based): doubles every 1,000 parts, so 10,000
    /// parts reach S3's 5 TiB object limit from an 8 MiB start.
    fn part_size(&self, n: i32) -> usize {
        let shift = ((n - 1).max(0) / 1000) as u32;
        self.base_part_size.saturating_mul(1usize << shift.min(16)).min(MAX_PART_SIZE)
    }

    fn io(&self, op: &'static str, msg: &str) -> StoreError {
        io_error(op, &self.shared.store, &self.shown_key, msg)
    }

    async fn start_upload(&mut self) -> Result<String, StoreError> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let req = self.shared.client.create_multipart_upload().bucket(&self.shared.bucket).key(&self.key);
        let req = apply_settings!(req, self.settings);
        let out = req.send().await.map_err(|e| {
            classify(&self.shared.store, &self.shared.bucket, "starting the upload of", &self.shown_key, e)
        })?;
        let id = out.upload_id().ok_or_else(|| self.io("starting the upload of", "the server gave no upload id"))?;
        self.upload_id = Some(id.to_string());
        Ok(id.to_string())
    }

    /// Waits for one part in flight.
    async fn reap_one(&mut self) -> Result<(), StoreError> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok(part))) => {
                self.done.push(part);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(join)) => Err(self.io("uploading", &format!("a part upload stopped: {join}"))),
            None => Ok(()),
        }
    }

    /// Sends `data` as the next part, waiting while too many are in flight.
    async fn send_part(&mut self, data: Bytes) -> Result<(), StoreError> {
        if self.next_part > MAX_PARTS {
            return Err(self.io("uploading", "the object needs more than 10,000 parts; raise --s3-part-size"));
        }
        let upload_id = self.start_upload().await?;
        while self.in_flight.len() >= self.max_in_flight {
            self.reap_one().await?;
        }
        let n = self.next_part;
        self.next_part += 1;
        let shared = self.shared.clone();
        let key = self.key.clone();
        let shown = self.shown_key.clone();
        self.in_flight.spawn(async move {
            let out = shared
                .client
                .upload_part()
                .bucket(&shared.bucket)
                .key(&key)
                .upload_id(upload_id)
                .part_number(n)
                .body(ByteStream::from(data))
                .send()
                .await
                .map_err(|e| classify(&shared.store, &shared.bucket, "uploading", &shown, e))?;
            Ok(CompletedPart::builder().part_number(n).set_e_tag(out.e_tag().map(str::to_string)).build())
        });
        Ok(())
    }

    async fn abort_upload(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        if let Some(id) = self.upload_id.take() {
            let r = self
                .shared
                .cleanup
                .abort_multipart_upload()
                .bucket(&self.shared.bucket)
                .key(&self.key)
                .upload_id(id)
                .send()
                .await;
            if let Err(e) = r {
                let e = classify(&self.shared.store, &self.shared.bucket, "aborting", &self.shown_key, e);
                tracing::warn!(
                    "could not abort the upload of {}: {e}; the next create or prune removes it",
                    self.shown_key
                );
            }
        }
    }

    async fn finish_inner(&mut self) -> Result<(), StoreError> {
        let Some(upload_id) = self.upload_id.clone() else {
            // Small object: one request.
            let body = std::mem::take(&mut self.buf).freeze();
            let req =
                self.shared.client.put_object().bucket(&self.shared.bucket).key(&self.key).body(ByteStream::from(body));
            let req = apply_settings!(req, self.settings);
            req.send()
                .await
                .map_err(|e| classify(&self.shared.store, &self.shared.bucket, "writing", &self.shown_key, e))?;
            return Ok(());
        };
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf).freeze();
            self.send_part(last).await?;
        }
        while !self.in_flight.is_empty() {
            self.reap_one().await?;
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        self.shared
            .client
            .complete_multipart_upload()
            .bucket(&self.shared.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| classify(&self.shared.store, &self.shared.bucket, "completing", &self.shown_key, e))?;
        self.upload_id = None;
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, mut buf: &[u8]) -> Result<(), StoreError> {
        if self.closed {
            return Err(self.io("writing", "writer already closed"));
        }
        while !buf.is_empty() {
            let want = self.part_size(self.next_part);
            let take = (want - self.buf.len().min(want)).min(buf.len());
            self.buf.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.buf.len() >= want {
                let part = self.buf.split().freeze();
                if let Err(e) = self.send_part(part).await {
                    self.closed = true;
                    self.abort_upload().await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        if self.closed {
            return Err(self.io("finishing", "writer already closed"));
        }
        self.closed = true;
        let r = self.finish_inner().await;
        if r.is_err() {
            self.abort_upload().await;
        }
        r
    }

    async fn abort(mut self: Box<Self>) {
        self.closed = true;
        self.abort_upload().await;
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // Dropped mid-upload (a failed run unwinding): abort in the background.
        self.in_flight.abort_all();
        if let Some(id) = self.upload_id.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let shared = self.shared.clone();
                let key = self.key.clone();
                handle.spawn(async move {
                    let _ = shared
                        .cleanup
                        .abort_multipart_upload()
                        .bucket(&shared.bucket)
                        .key(key)
                        .upload_id(id)
                        .send()
                        .await;
                });
            }
        }
    }
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        self.url.to_string()
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        self.client.head_bucket().bucket(&self.url.bucket).send().await.map_err(|e| self.err("checking", "", e))?;
        let probe = format!(".scrubsnap-write-test-{}", std::process::id());
        self.put(&probe, b"ok").await?;
        self.delete(&probe).await
    }

    async fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let full = self.full_key(key)?;
        let base = self.opts.part_size.clamp(MIN_PART_SIZE, MAX_PART_SIZE);
        Ok(Box::new(S3Writer {
            shared: self.shared(),
            settings: self.opts.clone(),
            key: full,
            shown_key: key.to_string(),
            buf: BytesMut::with_capacity(0),
            base_part_size: base,
            max_in_flight: self.opts.parts_in_flight.max(1),
            upload_id: None,
            next_part: 1,
            in_flight: JoinSet::new(),
            done: Vec::new(),
            closed: false,
        }))
    }

    async fn open(&self, key: &str) -> Result<ObjectReader, StoreError> {
        let full = self.full_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.url.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.err("opening", key, e))?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let full = self.full_prefix(prefix)?;
        let mut out = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.url.bucket).prefix(&full).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("listing", prefix, e))?;
            for o in page.contents() {
                let Some(k) = o.key().and_then(|k| k.strip_prefix(&self.url.prefix)) else { continue };
                let modified = o
                    .last_modified()
                    .and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
                out.push(ObjectMeta { key: k.to_string(), size: o.size().unwrap_or(0).max(0) as u64, modified });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let full = self.full_prefix(prefix)?;
        let mut out = Vec::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.url.bucket).prefix(&full).delimiter("/").into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("listing", prefix, e))?;
            for p in page.common_prefixes() {
                if let Some(name) = p.prefix().and_then(|p| p.strip_prefix(&full)).map(|p| p.trim_end_matches('/')) {
                    if !name.is_empty() {
                        out.push(name.to_string());
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let full = self.full_key(key)?;
        match self.client.head_object().bucket(&self.url.bucket).key(&full).send().await {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) => match self.err("reading", key, e) {
                StoreError::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let full = self.full_key(key)?;
        self.cleanup
            .delete_object()
            .bucket(&self.url.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.err("deleting", key, e))?;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        // Open uploads first, so a writer that is still unwinding cannot
        // complete an object after its folder was emptied.
        self.abort_uploads(prefix, None).await?;
        let keys = self.list(prefix).await?;
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .filter_map(|o| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(format!("{}{}", self.url.prefix, o.key))
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            let delete = aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| io_error("deleting", &self.describe(), prefix, e))?;
            let out = self
                .cleanup
                .delete_objects()
                .bucket(&self.url.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.err("deleting", prefix, e))?;
            if let Some(first) = out.errors().first() {
                let key = first.key().and_then(|k| k.strip_prefix(&self.url.prefix)).unwrap_or(prefix);
                return Err(io_error("deleting", &self.describe(), key, first.code().unwrap_or("the server refused")));
            }
        }
        Ok(())
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<Tagged>, StoreError> {
        let full = self.full_key(key)?;
        let out = match self.client.get_object().bucket(&self.url.bucket).key(&full).send().await {
            Ok(out) => out,
            Err(e) => {
                return match self.err("reading", key, e) {
                    StoreError::NotFound { .. } => Ok(None),
                    other => Err(other),
                }
            }
        };
        let tag = out.e_tag().unwrap_or_default().to_string();
        let data = out.body.collect().await.map_err(|e| io_error("reading", &self.describe(), key, e))?;
        Ok(Some(Tagged { data: data.to_vec(), tag }))
    }

    async fn put_if(&self, key: &str, data: &[u8], cond: Condition) -> Result<String, StoreError> {
        let full = self.full_key(key)?;
        let body = Bytes::copy_from_slice(data);
        let put = |cond: &Condition| {
            let req = self.client.put_object().bucket(&self.url.bucket).key(&full).body(ByteStream::from(body.clone()));
            let req = match cond {
                Condition::Absent => req.if_none_match("*"),
                Condition::Matches(tag) => req.if_match(tag),
                Condition::Any => req,
            };
            apply_settings!(req, self.opts)
        };
        let out = match put(&cond).send().await {
            Ok(out) => out,
            // A server without conditional writes: fall back to a plain
            // write; the run lock still keeps runs apart.
            Err(e) if cond != Condition::Any && e.code() == Some("NotImplemented") => {
                tracing::warn!(
                    "{} does not support conditional writes; writing '{key}' unconditionally",
                    self.describe()
                );
                put(&Condition::Any).send().await.map_err(|e| self.err("writing", key, e))?
            }
            Err(e) => return Err(self.err("writing", key, e)),
        };
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn delete_if(&self, key: &str, tag: &str) -> Result<(), StoreError> {
        let full = self.full_key(key)?;
        self.cleanup
            .delete_object()
            .bucket(&self.url.bucket)
            .key(&full)
            .if_match(tag)
            .send()
            .await
            .map_err(|e| self.err("deleting", key, e))?;
        Ok(())
    }

    async fn abort_stale_uploads(
        &self,
        prefix: &str,
        before: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<usize, StoreError> {
        self.abort_uploads(prefix, before).await
    }
}

#[cfg(test)]
mod http_tests {
    #[test]
    fn only_plain_http_to_another_machine_is_refused() {
        assert!(super::plain_remote("http://minio.internal:9000"));
        assert!(super::plain_remote("http://10.0.0.5:9000"));
        assert!(!super::plain_remote("https://minio.internal:9000"));
        assert!(!super::plain_remote("http://127.0.0.1:9000"));
        assert!(!super::plain_remote("http://localhost:4566"));
        assert!(!super::plain_remote("http://[::1]:9000"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(S3Url::parse("s3://my-bucket").unwrap(), S3Url { bucket: "my-bucket".into(), prefix: "".into() });
        assert_eq!(
            S3Url::parse("s3://my-bucket/a/b/").unwrap(),
            S3Url { bucket: "my-bucket".into(), prefix: "a/b/".into() }
        );
        assert_eq!(S3Url::parse("s3://my-bucket/a/b").unwrap().to_string(), "s3://my-bucket/a/b");
        for bad in ["s3://", "s3://B", "s3://ab", "s3://-abc/x", "s3://abc/../x", "s3://abc/a//b"] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
    }
}
