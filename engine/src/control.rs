//! The risk control endpoint: `POST /risk/halt`, `/risk/reduce`, `/risk/resume` and
//! `GET /risk/state`, on loopback by default, each requiring `Authorization: Bearer <token>`.
//! A change lands in the shared [`KillSwitch`] and applies to the next order intent.

use std::io::{Read, Write};

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use argus_risk::{KillSwitch, RiskState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{info, warn};

/// Environment variable holding the bearer token.
pub const TOKEN_ENV: &str = "ARGUS_CONTROL_TOKEN";

/// Serves the control endpoint until the task is dropped.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    token: String,
    switch: KillSwitch,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        while let Ok((mut s, peer)) = listener.accept().await {
            let (token, switch) = (token.clone(), switch.clone());
            tokio::spawn(async move {
                // Read the whole head (it may arrive in pieces), at most 4 KiB, within 5 s.
                let mut buf = vec![0_u8; 4096];
                let mut n = 0;
                let read_head = async {
                    while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(k) => n += k,
                        }
                    }
                };
                if tokio::time::timeout(Duration::from_secs(5), read_head).await.is_err() {
                    return;
                }
                let req = String::from_utf8_lossy(&buf[..n]);
                let (status, body) = handle_request(&req, &token, &switch, peer);
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Ok((bound, handle))
}

/// Compares without an early exit, so response time does not leak the token prefix.
fn token_matches(given: &str, want: &str) -> bool {
    let (g, w) = (given.as_bytes(), want.as_bytes());
    let mut diff = g.len() ^ w.len();
    for (i, b) in w.iter().enumerate() {
        diff |= usize::from(g.get(i).copied().unwrap_or(0) ^ b);
    }
    diff == 0 && !want.is_empty()
}

fn handle_request(req: &str, token: &str, switch: &KillSwitch, peer: SocketAddr) -> (&'static str, String) {
    let mut lines = req.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let authorized = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.trim().strip_prefix("Bearer "))
        .is_some_and(|t| token_matches(t.trim(), token));
    if !authorized {
        warn!(%peer, %path, "control request without a valid token");
        return ("401 Unauthorized", r#"{"error":"missing or wrong bearer token"}"#.to_owned());
    }
    let target = match (method, path) {
        ("GET", "/risk/state") => None,
        ("POST", "/risk/halt") => Some(RiskState::Halted),
        ("POST", "/risk/reduce") => Some(RiskState::Reducing),
        ("POST", "/risk/resume") => Some(RiskState::Active),
        _ => return ("404 Not Found", r#"{"error":"unknown endpoint"}"#.to_owned()),
    };
    if let Some(s) = target {
        let prev = switch.set(s);
        info!(%peer, from = prev.as_str(), to = s.as_str(), "risk state set over HTTP");
    }
    ("200 OK", format!(r#"{{"state":"{}","changes":{}}}"#, switch.state().as_str(), switch.changes()))
}

/// Client side for `argus risk ...`: sends one request and returns (status code, body).
///
/// # Errors
/// Connection or protocol failures.
pub fn request(addr: &str, method: &str, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let code = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((code, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_the_token_and_move_the_switch() {
        let k = KillSwitch::new();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let req = |m: &str, p: &str, auth: &str| format!("{m} {p} HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
        assert_eq!(handle_request(&req("POST", "/risk/halt", ""), "s3cret", &k, peer).0, "401 Unauthorized");
        assert_eq!(
            handle_request(&req("POST", "/risk/halt", "Authorization: Bearer nope\r\n"), "s3cret", &k, peer).0,
            "401 Unauthorized"
        );
        assert_eq!(k.state(), RiskState::Active);
        let (status, body) =
            handle_request(&req("POST", "/risk/halt", "Authorization: Bearer s3cret\r\n"), "s3cret", &k, peer);
        assert_eq!((status, body.as_str()), ("200 OK", r#"{"state":"halted","changes":1}"#));
        assert_eq!(k.state(), RiskState::Halted);
        let (_, body) =
            handle_request(&req("GET", "/risk/state", "authorization: Bearer s3cret\r\n"), "s3cret", &k, peer);
        assert!(body.contains("halted"));
        assert_eq!(
            handle_request(&req("DELETE", "/risk/halt", "Authorization: Bearer s3cret\r\n"), "s3cret", &k, peer).0,
            "404 Not Found"
        );
        assert!(!token_matches("", ""), "an empty token never authorizes");
        assert!(!token_matches("s3cre", "s3cret"));
    }
}
