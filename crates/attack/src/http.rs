//! The HTTP clients of the tool and a strict reading of the services' answers: the status and
//! the JSON body's `error`, never the status alone.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::error::{Context, Error};

/// A client whose sockets are bound to `source`, that never follows a redirect and ignores any
/// proxy settings of the environment.
pub fn client(source: IpAddr, timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .local_address(source)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
        .context(format!("cannot build an HTTP client bound to {source}"))
}

/// A service's answer, as far as the scenarios judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The JSON body's `error` member, if the body has one.
    pub error: Option<String>,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Result<Self, reqwest::Error> {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        let body = response.bytes().await?;
        let error = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|json| json.get("error")?.as_str().map(str::to_owned));
        Ok(Self {
            status,
            error,
            retry_after,
        })
    }

    pub fn is(&self, status: u16, error: &str) -> bool {
        self.status == status && self.error.as_deref() == Some(error)
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.status,
            self.error.as_deref().unwrap_or("(no error)")
        )
    }
}

/// A transport error with its causes (reqwest's own text hides them).
pub fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
