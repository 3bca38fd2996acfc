//! A minimal HTTP/1.1 GET client (plain or TLS) for REST snapshots, so feeds need no HTTP stack
//! beyond what the websocket client already brings.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::FeedError;

/// Largest response body accepted.
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// `GET url`, returning the body of a `200` response.
///
/// # Errors
/// Bad URL, connect/TLS/read failure, timeout, a non-200 status or a malformed response.
pub async fn get(url: &str, timeout: Duration) -> Result<Vec<u8>, FeedError> {
    tokio::time::timeout(timeout, get_inner(url))
        .await
        .map_err(|_| FeedError::Http(format!("GET {url}: timed out after {timeout:?}")))?
}

/// [`get`] with an owned URL, for spawning.
///
/// # Errors
/// As [`get`].
pub async fn get_owned(url: String, timeout: Duration) -> Result<Vec<u8>, FeedError> {
    get(&url, timeout).await
}

/// `POST url` with a JSON body; `Ok` on any 2xx status (webhooks answer 200, 201 or 204).
///
/// # Errors
/// Bad URL, connect/TLS/write failure, timeout, or a non-2xx status.
pub async fn post_json(url: &str, body: &[u8], timeout: Duration) -> Result<(), FeedError> {
    tokio::time::timeout(timeout, send(url, Some(body)))
        .await
        .map_err(|_| FeedError::Http(format!("POST {url}: timed out after {timeout:?}")))?
        .map(|_| ())
}

async fn get_inner(url: &str) -> Result<Vec<u8>, FeedError> {
    send(url, None).await
}

async fn send(url: &str, post: Option<&[u8]>) -> Result<Vec<u8>, FeedError> {
    let parsed = url::Url::parse(url).map_err(|_| FeedError::Url(url.to_owned()))?;
    let host = parsed.host_str().ok_or_else(|| FeedError::Url(url.to_owned()))?.to_owned();
    let port = parsed.port_or_known_default().ok_or_else(|| FeedError::Url(url.to_owned()))?;
    let target = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    match parsed.scheme() {
        "http" => request(tcp, &host, &target, post).await,
        "https" => {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
            let name = ServerName::try_from(host.clone()).map_err(|_| FeedError::Url(url.to_owned()))?;
            let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
            request(tls, &host, &target, post).await
        }
        _ => Err(FeedError::Url(url.to_owned())),
    }
}

async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    target: &str,
    post: Option<&[u8]>,
) -> Result<Vec<u8>, FeedError> {
    let req = match post {
        None => format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: argus\r\nAccept: application/json\r\nConnection: close\r\n\r\n"),
        Some(body) => format!(
            "POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: argus\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
    };
    s.write_all(req.as_bytes()).await?;
    if let Some(body) = post {
        s.write_all(body).await?;
    }
    s.flush().await?;
    let mut raw = Vec::with_capacity(1 << 16);
    (&mut s).take(MAX_BODY_BYTES as u64 + 65536).read_to_end(&mut raw).await?;
    parse_response(&raw)
}

/// Splits a complete response into status and body, undoing chunked transfer encoding.
///
/// # Errors
/// Malformed head, non-200 status, or a truncated body.
pub fn parse_response(raw: &[u8]) -> Result<Vec<u8>, FeedError> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| FeedError::Http("response has no header terminator".into()))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| FeedError::Http("non-UTF-8 header".into()))?;
    let body = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| FeedError::Http("malformed status line".into()))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k.eq_ignore_ascii_case("content-length") {
            length = v.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n).ok_or_else(|| FeedError::Http(format!("body truncated: {} of {n} bytes", body.len())))?.to_vec()
    } else {
        body.to_vec()
    };
    // GET callers want 200 exactly; a POST's 201/204 are success too.
    if !(200..300).contains(&status) {
        let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(FeedError::Http(format!("status {status}: {snippet}")));
    }
    Ok(body)
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, FeedError> {
    let bad = || FeedError::Http("malformed chunked body".into());
    let mut out = Vec::with_capacity(b.len());
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_str = std::str::from_utf8(&b[..eol]).map_err(|_| bad())?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16).map_err(|_| bad())?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or_else(bad)?);
        b = b.get(size + 2..).ok_or_else(bad)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_chunked_and_error_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain).unwrap(), b"hello");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), b"hello");
        let err = parse_response(b"HTTP/1.1 429 Too Many\r\nContent-Length: 4\r\n\r\nslow").unwrap_err();
        assert!(err.to_string().contains("429"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"garbage").is_err());
    }
}
