//! The HTTP client every AWS SDK client of TfPilot uses (S3, SSM, and the credential providers
//! that fetch over HTTP: IMDS, STS, SSO): the `reqwest` client TfPilot already carries for its
//! other HTTPS calls, HTTP/1.1 over rustls.
//!
//! The SDK's default client would add a second HTTP stack with its own connection pool and an
//! HTTP/2 implementation (about 1 MB of the binary) that S3 and SSM do not need. The SDK's
//! `default-https-client` feature is therefore off, and every SDK configuration must be given
//! [`sdk_http_client`]: [`aws_config_loader`] does it for configurations loaded from the
//! environment. One left without it fails on its first call with the SDK's "no HTTP client"
//! error, which the tests would show.
//!
//! What the SDK relies on is kept: the connect and read timeouts it asks for (one `reqwest`
//! client per distinct pair), no redirects followed (S3 answers a wrong region with a 301 the SDK
//! reads itself), and the classification of failures its retry policy branches on: a timeout, an
//! I/O failure (a connection refused, reset or closed: retried) and an incomplete answer
//! (transient: retried) apart from the rest.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;

/// The SDK's HTTP client: `reqwest` over rustls, HTTP/1.1, the SDK's timeouts, no redirects.
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
    /// The reason when the client could not be built (its TLS roots could not be loaded): every
    /// call then fails with it.
    client: Result<reqwest::Client, Arc<str>>,
}

impl ReqwestConnector {
    fn new((connect_timeout, read_timeout): TimeoutKey) -> Self {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(timeout) = connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = read_timeout {
            builder = builder.read_timeout(timeout);
        }
        let client = builder
            .build()
            .map_err(|e| Arc::from(format!("the HTTP client for AWS could not be built: {e}")));
        ReqwestConnector { client }
    }
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|e| ConnectorError::other(e.to_string().into(), None))?;
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?
                .map(reqwest::Body::wrap);
            let request =
                reqwest::Request::try_from(request).map_err(|e| ConnectorError::user(e.into()))?;
            let response = client.execute(request).await.map_err(classify)?;
            let response = http::Response::from(response).map(SdkBody::from_body_1_x);
            HttpRequestResponse::try_from(response)
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
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

    fn connector(connect: Option<Duration>, read: Option<Duration>) -> ReqwestConnector {
        ReqwestConnector::new((connect, read))
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
    async fn a_server_that_does_not_answer_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a listener");
        let address = listener.local_addr().expect("its address");
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a listener");
        let address = listener.local_addr().expect("its address");
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
