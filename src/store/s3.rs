//! The S3 backend: every write is conditional (`If-None-Match: *` to create, `If-Match: <etag>`
//! to replace or delete), so any number of processes and Lambda instances can share a bucket.
//!
//! S3 answers a refused condition with 412 `PreconditionFailed`, with 409
//! `ConditionalRequestConflict` when two conditional writes race, and with 404 when an `If-Match`
//! names an object that is gone; all three are [`ObjectError::Conflict`]. Every object is written
//! with `ServerSideEncryption: AES256` sent explicitly (chat logs must be encrypted at rest, and
//! servers such as moto report the encryption only when it was asked for).
//!
//! CopyObject is never used: its conditions are not enforced everywhere (moto ignores them), so a
//! move is a conditional put plus a conditional delete.

use std::error::Error as _;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::object_store::ObjectStore;
use super::objects::{ETag, LogRecord, Object, ObjectError, Objects, check_key, log_record_name};

/// Objects in one S3 bucket.
#[derive(Clone)]
pub struct S3Objects {
    client: Client,
    bucket: String,
}

impl std::fmt::Debug for S3Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Objects")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// The request store on S3: requests, history, index and events in one bucket, chat logs in
/// another.
pub type S3Store = ObjectStore<S3Objects>;

impl S3Store {
    /// `chat_bucket` must differ from `requests_bucket` (chat logs never go in the requests
    /// bucket); the caller checks configuration, this only stores.
    pub fn new(
        client: Client,
        requests_bucket: impl Into<String>,
        chat_bucket: impl Into<String>,
    ) -> Self {
        ObjectStore::from_parts(
            S3Objects::new(client.clone(), requests_bucket),
            S3Objects::new(client, chat_bucket),
        )
    }
}

/// Limits on every S3 call, so a stalled S3 is an error in seconds, never a hang: the webhook
/// answers 503 within [`crate::server::INBOX_WRITE_TIMEOUT`] and the worker moves on long before
/// its Lambda timeout. Connecting takes milliseconds in a region; a read stalls only when S3 does.
pub const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest wait for the next bytes of an answer.
pub const S3_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// One try of a call (the SDK retries a failed try within the operation limit).
pub const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// A whole call, retries included.
pub const S3_OPERATION_TIMEOUT: Duration = Duration::from_secs(4);
/// The largest object [`S3Objects::get`] reads. Inbox items hold a webhook body of up to 25 MiB
/// (GitHub's limit, JSON-escaped); nothing TfPilot writes is larger.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// The timeouts above, as the SDK takes them.
pub fn s3_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(S3_CONNECT_TIMEOUT)
        .read_timeout(S3_READ_TIMEOUT)
        .operation_attempt_timeout(S3_ATTEMPT_TIMEOUT)
        .operation_timeout(S3_OPERATION_TIMEOUT)
        .build()
}

/// An S3 client configured from the environment the AWS way (`AWS_REGION`, credentials chain,
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`). With an endpoint override (moto, MinIO) requests
/// use path-style addressing, unless `force_path_style` says otherwise. Every call is bounded by
/// [`s3_timeouts`].
pub async fn s3_client_from_env(force_path_style: Option<bool>) -> Client {
    let shared = super::aws_http::aws_config_loader().load().await;
    let endpoint_override = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
    s3_client_from_config(&shared, endpoint_override, force_path_style)
}

/// The S3 client for an already loaded AWS configuration (what [`s3_client_from_env`] does after
/// loading): path-style with an endpoint override, and the [`s3_timeouts`].
pub fn s3_client_from_config(
    shared: &aws_config::SdkConfig,
    s3_endpoint_override: bool,
    force_path_style: Option<bool>,
) -> Client {
    let endpoint_override = shared.endpoint_url().is_some() || s3_endpoint_override;
    let config = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(use_path_style(endpoint_override, force_path_style))
        .timeout_config(s3_timeouts())
        .build();
    Client::from_conf(config)
}

/// Path-style addressing when an endpoint override is set, unless configured explicitly.
pub fn use_path_style(endpoint_override: bool, configured: Option<bool>) -> bool {
    configured.unwrap_or(endpoint_override)
}

impl S3Objects {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn backend<E>(&self, operation: &'static str, key: &str, err: SdkError<E>) -> ObjectError
    where
        E: std::error::Error + Send + Sync + 'static,
        SdkError<E>: ProvideErrorMetadata,
    {
        ObjectError::Backend {
            operation,
            object: self.describe(key),
            message: DisplayErrorContext(&err).to_string(),
            source: Some(Box::new(err)),
        }
    }

    /// Maps a refused condition to [`ObjectError::Conflict`], anything else to a backend error.
    /// `if_match`: the request carried `If-Match`, so a 404 means the object is gone (a refused
    /// condition) unless it is the bucket that is missing.
    fn conditional<E>(
        &self,
        operation: &'static str,
        key: &str,
        if_match: bool,
        err: SdkError<E>,
    ) -> ObjectError
    where
        E: std::error::Error + Send + Sync + 'static,
        SdkError<E>: ProvideErrorMetadata,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let refused = match status {
            Some(412) => true,
            Some(409) => err.code() == Some("ConditionalRequestConflict"),
            Some(404) => if_match && err.code() != Some("NoSuchBucket"),
            _ => false,
        };
        if refused {
            ObjectError::Conflict {
                object: self.describe(key),
            }
        } else {
            self.backend(operation, key, err)
        }
    }

    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(body))
    }

    fn etag(&self, key: &str, etag: Option<String>) -> Result<ETag, ObjectError> {
        etag.map(ETag::new).ok_or_else(|| ObjectError::Backend {
            operation: "write",
            object: self.describe(key),
            message: "the response carried no ETag".into(),
            source: None,
        })
    }
}

#[async_trait]
impl Objects for S3Objects {
    fn location(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, ObjectError> {
        check_key(key)?;
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(self.backend("get", key, err)),
        };
        let etag = self.etag(key, output.e_tag)?;
        let too_large = || ObjectError::Backend {
            operation: "read",
            object: self.describe(key),
            message: format!("larger than {MAX_OBJECT_BYTES} bytes; not read"),
            source: None,
        };
        let announced = output.content_length.and_then(|n| u64::try_from(n).ok());
        if announced.is_some_and(|n| n > MAX_OBJECT_BYTES) {
            return Err(too_large());
        }
        let mut stream = output.body;
        let mut body = Vec::with_capacity(announced.unwrap_or(0).min(MAX_OBJECT_BYTES) as usize);
        loop {
            let chunk = stream.try_next().await.map_err(|e| ObjectError::Backend {
                operation: "read",
                object: self.describe(key),
                message: match e.source() {
                    Some(source) => format!("{e}: {source}"),
                    None => e.to_string(),
                },
                source: Some(Box::new(e)),
            })?;
            let Some(chunk) = chunk else { break };
            if (body.len() + chunk.len()) as u64 > MAX_OBJECT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(Object { body, etag }))
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<ETag, ObjectError> {
        check_key(key)?;
        let output = self
            .put(key, body)
            .if_none_match("*")
            .send()
            .await
            .map_err(|e| self.conditional("create", key, false, e))?;
        self.etag(key, output.e_tag)
    }

    async fn put_if_match(
        &self,
        key: &str,
        body: Vec<u8>,
        etag: &ETag,
    ) -> Result<ETag, ObjectError> {
        check_key(key)?;
        let output = self
            .put(key, body)
            .if_match(etag.as_str())
            .send()
            .await
            .map_err(|e| self.conditional("replace", key, true, e))?;
        self.etag(key, output.e_tag)
    }

    async fn delete_if_match(&self, key: &str, etag: &ETag) -> Result<(), ObjectError> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag.as_str())
            .send()
            .await
            .map_err(|e| self.conditional("delete", key, true, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.backend("list", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    async fn append(&self, log: &str, record: Vec<u8>) -> Result<(), ObjectError> {
        check_key(log)?;
        let key = format!("{log}/{}", log_record_name(time::OffsetDateTime::now_utc()));
        // Create-only, so a (vanishingly unlikely) name collision can never overwrite a record.
        self.put_if_absent(&key, record).await.map(|_| ())
    }

    async fn read_log(&self, log: &str) -> Result<Vec<LogRecord>, ObjectError> {
        check_key(log)?;
        let mut records = Vec::new();
        for key in self.list(&format!("{log}/")).await? {
            // A record deleted between list and get is gone: skip it rather than fail the read.
            if let Some(object) = self.get(&key).await? {
                records.push(LogRecord {
                    origin: self.describe(&key),
                    body: object.body,
                });
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::use_path_style;

    #[test]
    fn path_style_follows_the_endpoint_override_unless_configured() {
        assert!(use_path_style(true, None));
        assert!(!use_path_style(false, None));
        assert!(!use_path_style(true, Some(false)));
        assert!(use_path_style(false, Some(true)));
    }
}
