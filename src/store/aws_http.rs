//! The HTTP client every AWS SDK client of TfPilot uses (S3, SSM, and the credential providers
//! that fetch over HTTP: the instance metadata service, ECS container credentials, STS web
//! identity): a `reqwest` client, the crate TfPilot already uses for its other HTTPS calls,
//! HTTP/1.1 over rustls.
//!
//! The SDK's default client would add a second HTTP stack with its own connection pool and an
//! HTTP/2 implementation (about 1.5 MB of the binary) that S3 and SSM do not need. The SDK's
//! `default-https-client` feature is therefore off, and every SDK configuration must be given
//! [`sdk_http_client`]: [`aws_config_loader`] does it for configurations loaded from the
//! environment. One left without it fails on its first call with the SDK's "no HTTP client"
//! error, which the tests would show.
//!
//! What the SDK relies on is kept:
//! * the connect and read timeouts it asks for (one `reqwest` client per distinct pair); the
//!   read timeout also bounds each wait for the next bytes of an answer's body, where the SDK's
//!   own client bounds only the wait for the answer: a body that stalls that long fails instead
//!   of hanging (TfPilot reads bodies at once, never pausing between reads);
//! * no redirects followed (S3 answers a wrong region with a 301 the SDK reads itself), no
//!   retries of its own, no compression (a header added after signing, a body changed);
//! * the classification of failures its retry policy branches on: a timeout, an I/O failure (a
//!   connection refused, reset or closed: retried) and an incomplete answer (transient: retried)
//!   apart from the rest;
//! * a connection the SDK marks as bad after a transient error (a 5xx, a body cut short) is not
//!   used again: `reqwest` cannot close one pooled connection, so the client and its pool are
//!   dropped and the next call starts a new one. Every client shares one TLS configuration, so
//!   a new client does not read the system's roots again (tens of milliseconds of CPU: S3
//!   throttling answers 503 to many calls in a row).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;

/// The SDK's HTTP client: `reqwest` over rustls, HTTP/1.1, the SDK's timeouts, no redirects. Each
/// call makes a client with connection pools of its own (the store and the inbox each load an
/// SDK configuration, so each has one); the TLS configuration is shared by all.
pub fn sdk_http_client() -> SharedHttpClient {
    SharedHttpClient::new(ReqwestHttpClient::default())
}

/// `aws_config::defaults` (the AWS way: `AWS_REGION`, the credentials chain, `AWS_ENDPOINT_URL`)
/// with [`sdk_http_client`] for the SDK clients and the credential providers.
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(sdk_http_client())
}

/// The timeouts a connector was built for: the SDK asks for a connector per settings.
type TimeoutKey = (Option<Duration>, Option<Duration>);

#[derive(Debug, Default)]
struct ReqwestHttpClient {
    connectors: Mutex<HashMap<TimeoutKey, SharedHttpConnector>>,
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        connectors
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(ReqwestConnector::new(key)))
            .clone()
    }
}

#[derive(Debug, Clone)]
struct ReqwestConnector {
    timeouts: TimeoutKey,
    /// Built at the first call, and again after the SDK marked a connection as bad.
    client: Arc<Mutex<Option<reqwest::Client>>>,
}

impl ReqwestConnector {
    fn new(timeouts: TimeoutKey) -> Self {
        ReqwestConnector {
            timeouts,
            client: Arc::default(),
        }
    }

    /// The current client, built if there is none (a failure to build, such as unreadable TLS
    /// roots, is the call's error and is tried again by the next call).
    fn client(&self) -> Result<reqwest::Client, ConnectorError> {
        let mut slot = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let (connect_timeout, read_timeout) = self.timeouts;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .no_zstd();
        if let Some(timeout) = connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = read_timeout {
            builder = builder.read_timeout(timeout);
        }
        let client = builder.build().map_err(|e| {
            ConnectorError::other(
                format!("the HTTP client for AWS could not be built: {e}").into(),
                None,
            )
        })?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let connector = self.clone();
        HttpConnectorFuture::new(async move {
            let client = connector.client()?;
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            if let Some(capture) = request.extensions().get::<CaptureSmithyConnection>() {
                // What the SDK calls to poison the connection after a transient error.
                let slot = Arc::downgrade(&connector.client);
                capture.set_connection_retriever(move || {
                    let slot = slot.clone();
                    Some(
                        ConnectionMetadata::builder()
                            .proxied(false)
                            .poison_fn(move || {
                                if let Some(slot) = slot.upgrade() {
                                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
                                }
                            })
                            .build(),
                    )
                });
            }
            let request = reqwest::Request::try_from(request.map(reqwest::Body::wrap))
                .map_err(|e| ConnectorError::user(e.into()))?;
            let response = client.execute(request).await.map_err(classify)?;
            let response = http::Response::from(response).map(SdkBody::from_body_1_x);
            HttpRequestResponse::try_from(response)
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The TLS configuration of every client: rustls with aws-lc-rs, TLS 1.2 and 1.3, the system's
/// roots checked by the platform verifier (as `reqwest` configures it itself), HTTP/1.1 by ALPN.
/// Built once per process; a failure (unreadable roots) is the call's error and is tried again.
fn tls_config() -> Result<rustls::ClientConfig, ConnectorError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    static CONFIG: Mutex<Option<rustls::ClientConfig>> = Mutex::new(None);
    let mut slot = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(config) = slot.as_ref() {
        return Ok(config.clone());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|e| {
            ConnectorError::other(
                format!("the TLS configuration for AWS could not be built: {e}").into(),
                None,
            )
        })?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    *slot = Some(config.clone());
    Ok(config)
}

type HttpRequestResponse = aws_smithy_runtime_api::client::orchestrator::HttpResponse;

/// A failed call as the SDK's retry policy reads it.
fn classify(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        return ConnectorError::timeout(error.into());
    }
    if error.is_connect() {
        return ConnectorError::io(error.into()).never_connected();
    }
    if let Some(hyper_error) = find_source::<hyper::Error>(&error) {
        if hyper_error.is_incomplete_message() {
            return ConnectorError::other(error.into(), Some(ErrorKind::TransientError));
        }
        if hyper_error.is_closed() || hyper_error.is_canceled() {
            return ConnectorError::io(error.into());
        }
        if hyper_error.is_user() {
            return ConnectorError::user(error.into());
        }
    }
    if find_source::<std::io::Error>(&error).is_some() {
        return ConnectorError::io(error.into());
    }
    if error.is_builder() {
        return ConnectorError::user(error.into());
    }
    ConnectorError::other(error.into(), None)
}

/// The first error of type `E` in `error`'s chain, `error` included.
fn find_source<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        next = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> HttpRequest {
        let request = http::Request::builder()
            .uri(uri)
            .body(SdkBody::from("hello"))
            .expect("a request");
        HttpRequest::try_from(request).expect("an SDK request")
    }

    /// A listener on a free local port, and its address.
    async fn listener() -> (tokio::net::TcpListener, std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a listener");
        let address = listener.local_addr().expect("its address");
        (listener, address)
    }

    fn connector(connect: Option<Duration>, read: Option<Duration>) -> ReqwestConnector {
        ReqwestConnector::new((connect, read))
    }

    #[test]
    fn clients_share_one_tls_configuration_that_offers_http1_only() {
        let config = tls_config().expect("the system's roots load");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        // reqwest takes the configuration (a rustls version it does not know would fail here).
        let connector = connector(Some(Duration::from_secs(1)), None);
        connector.client().expect("a client");
        // A client dropped (a poisoned connection) is built again from the same configuration.
        *connector.client.lock().unwrap() = None;
        connector.client().expect("a client again");
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_the_sdk_retries() {
        // A port that was free a moment ago: nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let error: ConnectorError = connector(None, None)
            .call(request(&format!("http://127.0.0.1:{port}/")))
            .await
            .expect_err("nothing listens");
        assert!(error.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn a_connection_the_sdk_marks_as_bad_is_not_used_again() {
        use aws_smithy_runtime_api::client::connection::CaptureSmithyConnection;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (listener, address) = listener().await;
        // Answers 503 on every connection, keeping each open; counts the connections.
        let server = tokio::spawn(async move {
            let mut connections = 0;
            let mut open = Vec::new();
            while connections < 2 {
                let (mut socket, _) = listener.accept().await.expect("a connection");
                connections += 1;
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                socket
                    .write_all(b"HTTP/1.1 503 Slow Down\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .expect("an answer");
                open.push(socket);
            }
            connections
        });
        let connector = connector(None, None);
        let uri = format!("http://{address}/");
        let mut first = request(&uri);
        let capture = CaptureSmithyConnection::new();
        first.add_extension(capture.clone());
        let answer = connector.call(first).await.expect("an answer");
        assert_eq!(answer.status().as_u16(), 503);
        capture
            .get()
            .expect("the connector says which connection it used")
            .poison();
        assert!(
            connector.client.lock().unwrap().is_none(),
            "the client and its pool were dropped"
        );
        // The next call connects again instead of reusing the kept-alive connection.
        let answer = connector.call(request(&uri)).await.expect("an answer");
        assert_eq!(answer.status().as_u16(), 503);
        let connections = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("a second connection within 5 s")
            .expect("the server");
        assert_eq!(connections, 2);
    }

    #[tokio::test]
    async fn a_server_that_does_not_answer_is_a_timeout() {
        let (listener, address) = listener().await;
        let held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("a connection");
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let error = connector(None, Some(Duration::from_millis(200)))
            .call(request(&format!("http://{address}/")))
            .await
            .expect_err("no answer");
        assert!(error.is_timeout(), "{error:?}");
        held.abort();
    }

    #[tokio::test]
    async fn an_answer_comes_back_with_its_status_headers_and_body_and_no_redirect_is_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (listener, address) = listener().await;
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("a connection");
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            // Headers, then the 5-byte body.
            while !seen.windows(9).any(|w| w == b"\r\n\r\nhello") {
                let n = socket.read(&mut buf).await.expect("a read");
                assert!(n > 0, "the request ended early: {seen:?}");
                seen.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(
                    b"HTTP/1.1 301 Moved Permanently\r\nlocation: http://elsewhere.invalid/\r\n\
                      x-amz-bucket-region: eu-west-1\r\ncontent-length: 4\r\n\r\nmove",
                )
                .await
                .expect("an answer");
            String::from_utf8_lossy(&seen).into_owned()
        });
        let response = connector(Some(Duration::from_secs(2)), Some(Duration::from_secs(2)))
            .call(request(&format!("http://{address}/bucket/key")))
            .await
            .expect("an answer");
        assert_eq!(response.status().as_u16(), 301);
        assert_eq!(
            response.headers().get("x-amz-bucket-region"),
            Some("eu-west-1")
        );
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("the body")
            .to_bytes();
        assert_eq!(body.as_ref(), b"move");
        let seen = server.await.expect("the server");
        assert!(seen.starts_with("GET /bucket/key HTTP/1.1\r\n"), "{seen}");
    }
}
