//! The HTTP clients of the tool and a strict reading of the services' answers: the status and
//! the JSON body's `error`, never the status alone.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

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

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `IP:PORT` of an `http://IP:PORT` base URL, for the raw connections.
pub fn socket_addr(base: &str) -> Result<SocketAddr, Error> {
    base.trim_start_matches("http://").parse().context(format!(
        "raw connections need an http://IP:PORT address, not {base}"
    ))
}

/// A raw connection from `source` (a trickled body, or one connection per source address: a
/// reqwest client per address would cost more than the request).
pub async fn connect(target: SocketAddr, source: IpAddr) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|err| format!("socket: {err}"))?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|err| format!("bind {source}: {err}"))?;
    match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(target)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) => Err(format!("connect: {err}")),
        Err(_) => Err("connect timed out".into()),
    }
}

/// The status of an HTTP/1.1 status line at the start of `received`.
pub fn status_of(received: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(received.get(..12)?).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

/// One POST of `body` (a form), with `extra_headers` (whole lines), on a connection of its own
/// from `source`, closed after the answer.
pub async fn raw_post_form(
    target: SocketAddr,
    source: IpAddr,
    path: &str,
    (extra_headers, body): (&str, &str),
    timeout: Duration,
) -> Result<Answer, String> {
    let exchange = async {
        let mut stream = connect(target, source).await?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {target}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n{extra_headers}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|err| format!("write: {err}"))?;
        let mut received = Vec::new();
        stream
            .read_to_end(&mut received)
            .await
            .map_err(|err| format!("read: {err}"))?;
        Ok::<_, String>(received)
    };
    let received = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no whole answer within {timeout:?}"))??;
    Answer::parse_raw(&received).ok_or_else(|| {
        let start = String::from_utf8_lossy(&received[..received.len().min(40)]).into_owned();
        format!("not an HTTP/1.1 answer: {start:?}")
    })
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

    /// An answer read whole from a raw connection: the status line, and the JSON body's `error`.
    fn parse_raw(received: &[u8]) -> Option<Self> {
        let status = status_of(received)?;
        let body_at = received.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let error = serde_json::from_slice::<serde_json::Value>(&received[body_at..])
            .ok()
            .and_then(|json| json.get("error")?.as_str().map(str::to_owned));
        Some(Self {
            status,
            error,
            retry_after: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_read_from_the_status_line_only() {
        assert_eq!(status_of(b"HTTP/1.1 408 Request Timeout\r\n"), Some(408));
        assert_eq!(status_of(b"HTTP/1.1 4"), None);
        assert_eq!(status_of(b"garbage garbage"), None);
    }

    #[test]
    fn a_raw_answer_is_its_status_and_error() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{\"error\":\"invalid_client\"}";
        assert!(Answer::parse_raw(raw).unwrap().is(401, "invalid_client"));
        assert_eq!(Answer::parse_raw(b"HTTP/1.1 200 OK\r\n"), None);
    }
}
