//! A small blocking client of the node's HTTP API (docs/design.md §9.3), over plain HTTP.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::error::CliError;

/// Most bytes read from one answer (a proof bundle is the largest).
pub const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

/// How long one request may take in all; `?wait=commit` answers within the node's
/// own wait timeout (30 s by default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a streamed download ([`Node::stream`]) may take in all: 2 GiB, the most an
/// export file may be, at 1 MB/s.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(36 * 60);

/// How long a streamed download may wait for its next bytes: the node sends an export
/// in chunks as it writes it, at least one a second or so on any range.
pub const DOWNLOAD_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// An answer: HTTP status and body.
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, CliError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CliError::new(
                "bad_answer",
                format!(
                    "the node answered {} with a body that is not JSON: {e}",
                    self.status
                ),
            )
        })
    }

    /// The body as `T` (a typed answer of `ebill_api_types`).
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> Result<T, CliError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CliError::new(
                "bad_answer",
                format!(
                    "the node answered {} with a body that is not the expected answer: {e}",
                    self.status
                ),
            )
        })
    }

    /// The body as text (for printing an answer unchanged).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The API's error as a [`CliError`]: its `{"error": {"code", "message"}}`, or
    /// `http_<status>` when the body has none.
    pub fn error(&self) -> CliError {
        if let Ok(e) = serde_json::from_slice::<ebill_api_types::ErrorBody>(&self.body) {
            return CliError::new(e.error.code, e.error.message);
        }
        CliError::new(
            format!("http_{}", self.status),
            format!(
                "the node answered HTTP {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ),
        )
    }

    /// The JSON body of a successful answer, or the API's error.
    pub fn ok_json(self) -> Result<Value, CliError> {
        if self.is_success() {
            self.json()
        } else {
            Err(self.error())
        }
    }

    /// The body as `T` if the status is 2xx, else the API's error.
    pub fn ok_typed<T: serde::de::DeserializeOwned>(self) -> Result<T, CliError> {
        if self.is_success() {
            self.typed()
        } else {
            Err(self.error())
        }
    }
}

/// The node's API at a base URL.
pub struct Node {
    agent: ureq::Agent,
    base: String,
}

impl Node {
    /// A client of the API at `base` (`http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Self, CliError> {
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            return Err(CliError::argument(format!(
                "--node {base:?}: only http:// URLs are supported"
            )));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Ok(Self { agent, base })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: &ureq::Error) -> CliError {
        CliError::new(
            "node_unreachable",
            format!("cannot reach the node at {}: {e}", self.base),
        )
    }

    fn read(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer, CliError> {
        let mut resp = result.map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| self.unreachable(&e))?;
        Ok(Answer { status, body })
    }

    /// `GET path` (path starts with `/`).
    pub fn get(&self, path: &str) -> Result<Answer, CliError> {
        let url = format!("{}{path}", self.base);
        self.read(self.agent.get(&url).call())
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &impl Serialize) -> Result<Answer, CliError> {
        let url = format!("{}{path}", self.base);
        self.read(self.agent.post(&url).send_json(body))
    }

    /// `GET path` as a stream without an overall deadline (server-sent events): the
    /// body's reader, after a successful status; the API's error otherwise.
    pub fn stream(&self, path: &str) -> Result<impl std::io::Read + use<>, CliError> {
        self.open(path, ureq::Agent::config_builder())
    }

    /// `GET path` as a download (an export file): like [`Node::stream`], within
    /// [`REQUEST_TIMEOUT`] of its head, [`DOWNLOAD_READ_TIMEOUT`] of each read and
    /// [`DOWNLOAD_TIMEOUT`] in all.
    pub fn download(&self, path: &str) -> Result<impl std::io::Read + use<>, CliError> {
        let config = ureq::Agent::config_builder()
            .timeout_recv_response(Some(REQUEST_TIMEOUT))
            .timeout_per_read(Some(DOWNLOAD_READ_TIMEOUT))
            .timeout_global(Some(DOWNLOAD_TIMEOUT));
        self.open(path, config)
    }

    fn open(
        &self,
        path: &str,
        config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    ) -> Result<impl std::io::Read + use<>, CliError> {
        let agent: ureq::Agent = config.http_status_as_error(false).build().into();
        let url = format!("{}{path}", self.base);
        let resp = agent.get(&url).call().map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body = resp
                .into_body()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_vec()
                .map_err(|e| self.unreachable(&e))?;
            return Err(Answer { status, body }.error());
        }
        Ok(resp.into_body().into_with_config().limit(u64::MAX).reader())
    }

    /// The chain id, from `GET /v1/status`.
    pub fn chain_id(&self) -> Result<String, CliError> {
        let v: ebill_api_types::StatusView = self.get("/v1/status")?.ok_typed()?;
        Ok(v.chain_id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn api_errors_keep_their_code() {
        let a = Answer {
            status: 409,
            body: br#"{"error":{"code":"bill_exists","message":"bill 1 was issued"}}"#.to_vec(),
        };
        assert_eq!(a.error(), CliError::new("bill_exists", "bill 1 was issued"));
        let a = Answer {
            status: 502,
            body: b"bad gateway".to_vec(),
        };
        assert_eq!(a.error().code, "http_502");
        assert!(Node::new("https://x").is_err());
    }

    #[test]
    fn an_unreachable_node_is_named() {
        // A port nobody listens on: bind one, then let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let node = Node::new(&format!("http://127.0.0.1:{port}")).unwrap();
        assert_eq!(node.get("/v1/status").unwrap_err().code, "node_unreachable");
    }
}
