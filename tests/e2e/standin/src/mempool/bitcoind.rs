//! bitcoind (`rpc-api/jsonrpc.ts`, `api/bitcoin/bitcoin-client.ts`): POSTs with Basic auth or
//! the cookie file, and node's network errors as they reach the logs.

use super::config::Config;
use crate::json::{self, num, obj, s, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// A connection to host:port as node's net module reports failures: Err((message, error JSON)).
pub(super) fn node_connect(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, (String, String)> {
    let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            let code = if e.to_string().contains("Temporary failure") {
                ("EAI_AGAIN", -3001)
            } else {
                ("ENOTFOUND", -3008)
            };
            return Err((
                format!("getaddrinfo {} {host}", code.0),
                format!(
                    "{{\"errno\":{},\"code\":\"{}\",\"syscall\":\"getaddrinfo\",\"hostname\":{}}}",
                    code.1,
                    code.0,
                    s(host).compact()
                ),
            ));
        }
    };
    let Some(a) = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
    else {
        return Err((format!("getaddrinfo ENOTFOUND {host}"), format!("{{\"errno\":-3008,\"code\":\"ENOTFOUND\",\"syscall\":\"getaddrinfo\",\"hostname\":{}}}", s(host).compact())));
    };
    TcpStream::connect_timeout(&a, timeout).map_err(|e| {
        let (code, errno) = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ("ECONNREFUSED", -111),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ("ETIMEDOUT", -110),
            std::io::ErrorKind::HostUnreachable => ("EHOSTUNREACH", -113),
            std::io::ErrorKind::NetworkUnreachable => ("ENETUNREACH", -101),
            _ => ("ECONNRESET", -104),
        };
        (
            format!("connect {code} {}:{}", a.ip(), a.port()),
            format!("{{\"errno\":{errno},\"code\":\"{code}\",\"syscall\":\"connect\",\"address\":\"{}\",\"port\":{}}}", a.ip(), a.port()),
        )
    })
}

#[derive(Debug, Clone)]
pub(super) struct RpcErr {
    pub(super) message: String,
    pub(super) code: Option<i64>,
}

impl RpcErr {
    pub(super) fn method_not_found(&self) -> bool {
        self.code == Some(-32601)
    }
}

pub(super) struct Core {
    host: String,
    port: u16,
    user: String,
    pass: String,
    timeout: Duration,
    cookie: Option<PathBuf>,
    cached_cookie: Mutex<Option<String>>,
}

impl Core {
    pub(super) fn from(cfg: &Config) -> Core {
        Core {
            host: cfg.str("CORE_RPC", "HOST"),
            port: cfg.num("CORE_RPC", "PORT") as u16,
            user: cfg.str("CORE_RPC", "USERNAME"),
            pass: cfg.str("CORE_RPC", "PASSWORD"),
            timeout: Duration::from_millis(match cfg.num("CORE_RPC", "TIMEOUT") {
                n if n > 0 => n as u64,
                _ => 30000,
            }),
            cookie: cfg
                .truthy("CORE_RPC", "COOKIE")
                .then(|| PathBuf::from(cfg.str("CORE_RPC", "COOKIE_PATH"))),
            cached_cookie: Mutex::new(None),
        }
    }

    pub(super) fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, RpcErr> {
        let e = |m: String| RpcErr {
            message: m,
            code: None,
        };
        let id = crate::util::unix_now().as_millis();
        let body = obj(vec![
            ("id", num(id)),
            ("method", s(method)),
            ("params", Value::Arr(params)),
        ])
        .compact();
        let host = if self.host.is_empty() {
            "localhost".to_string()
        } else {
            self.host.clone()
        };
        let mut auth = None;
        if let Some(path) = &self.cookie {
            let mut c = self.cached_cookie.lock().unwrap_or_else(|p| p.into_inner());
            if c.is_none() {
                match std::fs::read_to_string(path) {
                    Ok(t) => *c = Some(t),
                    Err(err) => {
                        return Err(e(format!(
                            "ENOENT: no such file or directory, open '{}' ({err})",
                            path.display()
                        )))
                    }
                }
            }
            auth = c.clone();
        } else if !self.user.is_empty() && !self.pass.is_empty() {
            auth = Some(format!("{}:{}", self.user, self.pass));
        }
        let mut st = node_connect(&host, self.port, self.timeout).map_err(|(m, _)| e(m))?;
        let _ = st.set_read_timeout(Some(self.timeout));
        let mut req = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(a) = &auth {
            req.push_str(&format!(
                "Authorization: {}\r\n",
                crate::util::basic_auth(a)
            ));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        st.write_all(req.as_bytes())
            .map_err(|_| e("socket hang up".into()))?;
        let mut raw = Vec::new();
        if let Err(x) = st.read_to_end(&mut raw) {
            return Err(match x.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => RpcErr {
                    message: "ETIMEDOUT".into(),
                    code: None,
                },
                _ => e("socket hang up".into()),
            });
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return Err(e("socket hang up".into()));
        };
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        let decoded = match json::parse(body.trim()) {
            Ok(v) => v,
            Err(_) => {
                if status == 401 && self.cookie.is_some() {
                    *self.cached_cookie.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                return Err(if status != 200 {
                    RpcErr {
                        message: format!("Invalid params, response status code: {status}"),
                        code: Some(-32602),
                    }
                } else {
                    RpcErr {
                        message: "Problem parsing JSON response from server".into(),
                        code: Some(-32603),
                    }
                });
            }
        };
        let first = match &decoded {
            Value::Arr(a) => a.first().cloned().unwrap_or(Value::Null),
            v => v.clone(),
        };
        match first.get("error") {
            Some(er) if *er != Value::Null => Err(RpcErr {
                message: er
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                code: er.get("code").and_then(Value::as_i64),
            }),
            _ => Ok(first.get("result").cloned().unwrap_or(Value::Null)),
        }
    }
}
