//! The web servers' parts (fedimint-ui-common src/lib.rs, src/auth.rs; axum over hyper): a
//! server that can be stopped, forms, pages, assets, the login cookie.

use crate::http::{self, Request, Response};
use crate::util::percent_decode;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

// ---- a stoppable HTTP server (the UI and API servers stop at the end of setup) ----

pub(super) type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

pub(super) struct Server {
    stop: Arc<AtomicBool>,
    wake: SocketAddr,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    pub(super) fn start(listener: TcpListener, handler: Handler) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let mut wake = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            });
        }
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let h = handler.clone();
                std::thread::spawn(move || serve_one(stream, &*h));
            }
        });
        Server { stop, wake, thread }
    }

    /// Stop accepting and close the port (a connection wakes the accept loop).
    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.wake, Duration::from_secs(1));
        let _ = self.thread.join();
    }
}

fn serve_one(stream: TcpStream, handler: &(dyn Fn(Request) -> Response + Send + Sync)) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(peer) = stream.peer_addr() else { return };
    let mut r = BufReader::new(&stream);
    let mut line = String::new();
    // a connection closed before its request line (the stop's wake-up) gets no answer
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let (method, path) = http::request_line(&line);
    // a header line that cannot be read ends the headers
    let (headers, _) = http::read_headers(&mut r);
    let mut body = vec![0; http::content_length(&headers, 1 << 20)];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let resp = handler(Request {
        method,
        path,
        headers,
        body,
        peer,
    });
    let _ = http::write_response_as(&mut &stream, &resp, reason(resp.status), true);
}

/// hyper's reason phrases, of the statuses these servers answer.
fn reason(status: u16) -> &'static str {
    match status {
        303 => "See Other",
        415 => "Unsupported Media Type",
        s => http::reason_phrase(s).unwrap_or(""),
    }
}

pub(super) fn html(body: String) -> Response {
    Response::new(200, "text/html; charset=utf-8", body)
}

pub(super) fn redirect(to: &str) -> Response {
    let mut r = Response::new(303, "text/plain; charset=utf-8", "");
    r.headers = vec![("location".into(), to.into())];
    r
}

pub(super) fn empty(status: u16) -> Response {
    let mut r = Response::new(status, "text/plain", "");
    r.headers.clear();
    r
}

/// application/x-www-form-urlencoded pairs, in order (repeated keys kept)
pub(super) fn form(body: &[u8]) -> Vec<(String, String)> {
    let dec = |t: &str| percent_decode(&t.replace('+', " "));
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            kv.split_once('=')
                .map_or((dec(kv), String::new()), |(k, v)| (dec(k), dec(v)))
        })
        .collect()
}

pub(super) fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// fedimint-ui-common `single_card_layout`, without the assets' content
pub(super) fn card(header: &str, content: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Fedimint</title>\
<link rel=\"stylesheet\" href=\"/assets/bootstrap.min.css\"><script defer src=\"/assets/htmx.org-2.0.4.min.js\"></script></head>\
<body class=\"d-flex align-items-center min-vh-100\"><div class=\"container\"><div class=\"card\">\
<div class=\"card-header dashboard-header\">{}</div><div class=\"card-body\">{content}</div></div></div>\
<div hx-get=\"/ui/connectivity-check\" hx-trigger=\"load, every 30s\"></div></body></html>",
        esc(header)
    )
}

pub(super) fn login_form(error: Option<&str>) -> String {
    let err = error.map_or(String::new(), |e| {
        format!("<div class=\"alert alert-danger mb-3\">{}</div>", esc(e))
    });
    format!(
        "<form id=\"login-form\" hx-post=\"/login\" hx-target=\"#login-form\" hx-swap=\"outerHTML\">\
<input type=\"password\" id=\"password\" name=\"password\" placeholder=\"Your Password\" required autofocus>{err}\
<button type=\"submit\">Continue</button></form>"
    )
}

const ASSETS: &[(&str, &str)] = &[
    ("/assets/bootstrap.min.css", "text/css"),
    ("/assets/bootstrap.bundle.min.js", "application/javascript"),
    ("/assets/bootstrap-icons.min.css", "text/css"),
    ("/assets/fonts/bootstrap-icons.woff2", "font/woff2"),
    ("/assets/fonts/bootstrap-icons.woff", "font/woff"),
    ("/assets/htmx.org-2.0.4.min.js", "application/javascript"),
    ("/assets/html5-qrcode.min.js", "application/javascript"),
    ("/assets/chart.umd.min.js", "application/javascript"),
    ("/assets/style.css", "text/css"),
    ("/assets/logo.png", "image/png"),
];

/// The cookie a login sets (fedimint-ui-common `UiState::new`: a random name and value).
pub(super) struct Cookie {
    name: String,
    value: String,
}

impl Cookie {
    pub(super) fn new() -> Cookie {
        Cookie {
            name: crate::sys::random_hex(4),
            value: crate::sys::random_hex(32),
        }
    }

    pub(super) fn ok(&self, req: &Request) -> bool {
        req.header("Cookie").is_some_and(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .any(|(k, v)| k == self.name && v == self.value)
        })
    }

    /// login_submit_response
    pub(super) fn login(&self, password: &str, req: &Request) -> Response {
        let given = form(&req.body)
            .into_iter()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v);
        let Some(given) = given else {
            return Response::new(
                400,
                "text/plain; charset=utf-8",
                "Failed to deserialize form: missing field `password`",
            );
        };
        if given != password {
            return html(login_form(Some("The password is invalid")));
        }
        let mut r = html(String::new());
        r.headers.push((
            "set-cookie".into(),
            format!("{}={}; HttpOnly; SameSite=Lax", self.name, self.value),
        ));
        r.headers.push(("hx-redirect".into(), "/".into()));
        r
    }

    /// connectivity_check_handler: an empty fragment unless logged in
    pub(super) fn connectivity(&self, req: &Request) -> Response {
        if !self.ok(req) {
            return html(String::new());
        }
        let up = [
            SocketAddr::from(([1, 1, 1, 1], 443)),
            SocketAddr::from(([8, 8, 8, 8], 53)),
        ]
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(3)).is_ok());
        html(if up {
            "<span class=\"badge bg-success\">Internet connection OK</span>".into()
        } else {
            "<span class=\"badge bg-danger\">Internet connection unavailable</span>".into()
        })
    }
}

pub(super) fn asset(path: &str) -> Option<Response> {
    ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, ct)| Response::new(200, ct, "/* stand-in asset */\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let f = form(b"name=a+b&password=p%21&enabled_modules=ln&enabled_modules=mint");
        assert_eq!(f[0], ("name".to_string(), "a b".to_string()));
        assert_eq!(f[1].1, "p!");
        assert_eq!(f.iter().filter(|(k, _)| k == "enabled_modules").count(), 2);
    }
}
