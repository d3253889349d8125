//! object_store's HTTP transport on hyper-util's pooled client with
//! hyper-rustls (ring and the web's roots, as webhook deliveries use): the
//! crates hlsd already builds, instead of reqwest and aws-lc.

use http_body_util::BodyExt;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use object_store::client::{
    HttpClient, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse,
    HttpResponseBody, HttpService,
};
use object_store::ClientOptions;
use std::time::Duration;

/// How long one request may wait for its answer's head (object_store
/// retries with backoff after it, within its own retry timeout).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes the [`HttpClient`] object_store sends its requests through.
#[derive(Debug, Default)]
pub(crate) struct Connector;

impl object_store::client::HttpConnector for Connector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let tls = crate::tlsclient::client_config().map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: e.into(),
        })?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(Duration::from_secs(10)));
        tcp.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .build(https);
        Ok(HttpClient::new(Service { client }))
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Debug)]
struct Service {
    client: Client<Https, HttpRequestBody>,
}

#[async_trait::async_trait]
impl HttpService for Service {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let answer = tokio::time::timeout(HEAD_TIMEOUT, self.client.request(req))
            .await
            .map_err(|e| HttpError::new(HttpErrorKind::Timeout, e))?
            .map_err(|e| {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
        let (parts, body) = answer.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}
