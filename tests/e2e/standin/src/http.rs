//! A tiny blocking HTTP/1.0 server (a thread per connection, one request each) and client, and
//! the pieces of both other servers and clients reuse: reading a request's head, writing a
//! response, the standard reason phrases, splitting a request target.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: &str) -> Response {
        let mut b = body.as_bytes().to_vec();
        b.push(b'\n');
        Response::new(status, "application/json", b)
    }
}

/// The reason phrase of the statuses this server words (others get "Status" in its status
/// line); the servers and clients that know more add theirs.
pub fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => return None,
    })
}

fn reason(status: u16) -> &'static str {
    reason_phrase(status).unwrap_or("Status")
}

fn read_request(stream: &TcpStream, peer: SocketAddr) -> std::io::Result<Request> {
    read_request_from(&mut BufReader::new(stream), peer)
}

/// A request from any buffered stream (a TLS one, say).
pub fn read_request_from<R: BufRead>(r: &mut R, peer: SocketAddr) -> std::io::Result<Request> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let (method, path) = request_line(&line);
    let (headers, failed) = read_headers(r);
    if let Some(e) = failed {
        return Err(e);
    }
    let mut body = vec![0; content_length(&headers, 16 << 20)];
    r.read_exact(&mut body)?;
    Ok(Request {
        method,
        path,
        headers,
        body,
        peer,
    })
}

/// A request line's method and target ("/" if it has none).
pub fn request_line(line: &str) -> (String, String) {
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or("/").to_string();
    (method, path)
}

/// Header lines up to the blank line that ends them, or the end of the stream; a line that
/// cannot be read ends them too, and its error comes back beside the headers before it.
pub fn read_headers<R: BufRead>(r: &mut R) -> (Vec<(String, String)>, Option<std::io::Error>) {
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        match r.read_line(&mut h) {
            Err(e) => return (headers, Some(e)),
            Ok(0) => break,
            Ok(_) if h.trim().is_empty() => break,
            Ok(_) => {}
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    (headers, None)
}

/// The body's length the headers announce (0 without a valid Content-Length), at most `max`.
pub fn content_length(headers: &[(String, String)], max: usize) -> usize {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(max)
}

/// `/a/b?x=1&y=2` -> (["a", "b"] decoded, {x: 1, y: 2} with lower-case keys); a `+` is a
/// space in the query, itself in the path.
pub fn split_target(target: &str) -> (Vec<String>, HashMap<String, String>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segs = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|p| crate::util::query_decode(&p.replace('+', "%2B")))
        .collect();
    let q = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                crate::util::query_decode(k).to_ascii_lowercase(),
                crate::util::query_decode(v),
            )
        })
        .collect();
    (segs, q)
}

fn write_response(mut stream: &TcpStream, resp: &Response) -> std::io::Result<()> {
    write_response_to(&mut stream, resp)
}

/// A response to any stream.
pub fn write_response_to<W: Write>(stream: &mut W, resp: &Response) -> std::io::Result<()> {
    write_response_as(stream, resp, reason(resp.status), false)
}

/// A response with the given reason phrase; `lower_case` names the framing headers as hyper
/// (the Rust servers' HTTP) does: `content-length`, `connection`.
pub fn write_response_as<W: Write>(
    stream: &mut W,
    resp: &Response,
    reason: &str,
    lower_case: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let (length, connection) = if lower_case {
        ("content-length", "connection")
    } else {
        ("Content-Length", "Connection")
    };
    head.push_str(&format!(
        "{length}: {}\r\n{connection}: close\r\n\r\n",
        resp.body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(&resp.body)?;
    stream.flush()
}

/// Serve forever on `listener`; `handler` returns None to drop the connection unanswered.
pub fn serve<F>(listener: TcpListener, handler: F)
where
    F: Fn(Request) -> Option<Response> + Send + Sync + 'static,
{
    let handler = std::sync::Arc::new(handler);
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let handler = handler.clone();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let Ok(peer) = stream.peer_addr() else { return };
            let Ok(req) = read_request(&stream, peer) else {
                return;
            };
            if let Some(resp) = handler(req) {
                let _ = write_response(&stream, &resp);
            }
        });
    }
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// One request over a fresh connection; `timeout` bounds connecting and each read.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
    timeout: Option<Duration>,
) -> Result<Reply, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("resolving {addr}: {e}"))?
        .collect();
    let mut last = format!("no address for {addr}");
    let mut stream = None;
    for a in addrs {
        let r = match timeout {
            Some(t) => TcpStream::connect_timeout(&a, t),
            None => TcpStream::connect(a),
        };
        match r {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connecting to {a}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last)?;
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    let host = addr.to_string();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("sending: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "timeout reached".to_string()
        }
        _ => format!("reading: {e}"),
    })?;
    parse_reply(&raw)
}

/// An HTTP/1.x response read to its end (`Connection: close`): its status and body.
pub fn parse_reply(raw: &[u8]) -> Result<Reply, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed status line")?;
    Ok(Reply {
        status,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let (segs, q) =
            split_target("/v1/cryptos/BTC/derivations/xpub1-%5Bp2sh%5D/addresses/unused?feature=Deposit&reserve=true");
        assert_eq!(segs[4], "xpub1-[p2sh]");
        assert_eq!(q.get("reserve").map(String::as_str), Some("true"));
        let (segs, q) = split_target("/a+b/c%20d?Key=x+y%2B");
        assert_eq!(segs, ["a+b", "c d"]);
        assert_eq!(q.get("key").map(String::as_str), Some("x y+"));
    }

    #[test]
    fn heads() {
        let raw = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcdef";
        let req = read_request_from(&mut &raw[..], SocketAddr::from(([127, 0, 0, 1], 1))).unwrap();
        assert_eq!(
            (req.method.as_str(), req.path.as_str(), &req.body[..]),
            ("POST", "/x", &b"abc"[..])
        );
        let mut out = Vec::new();
        write_response_as(
            &mut out,
            &Response::new(303, "text/plain", "hi"),
            "See Other",
            true,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 303 See Other\r\nContent-Type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
        );
    }
}
