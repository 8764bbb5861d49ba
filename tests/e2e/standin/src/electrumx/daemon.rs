//! The daemon (electrumx/server/daemon.py): JSON-RPC POSTs as aiohttp sends them, retried
//! forever with upstream's back-off and log lines, fail-over between URLs.

use super::coin::Coin;
use super::python::{py_dumps, py_repr, truthy};
use super::{error, info, PyErr};
use crate::json::{self, num, obj, s, Value};
use crate::util::percent_decode;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

enum Failure {
    Timeout,
    Disconnected,
    Reset,
    Connection,
    Refused(String),
    Warming,
}

#[derive(Debug, Clone)]
pub(super) struct DaemonError(pub(super) Value);

impl DaemonError {
    pub(super) fn repr(&self) -> String {
        format!("DaemonError({})", py_repr(&self.0))
    }
    pub(super) fn code(&self) -> Option<i64> {
        self.0.get("code").and_then(Value::as_i64)
    }
}

pub(super) struct Daemon {
    urls: Mutex<(Vec<String>, usize)>,
    cached_height: AtomicI64,
    ids: AtomicU64,
    available: Mutex<BTreeMap<String, bool>>,
    netinfo: Mutex<Option<(Value, Instant)>>,
}

/// One POST as aiohttp would send it; Ok((status, reason, content type, body)).
fn http_post(url: &str, body: &str) -> Result<(u16, String, String, String), Failure> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let addrs: Vec<SocketAddr> = hostport
        .to_socket_addrs()
        .map_err(|_| Failure::Connection)?
        .collect();
    let mut stream = None;
    for a in addrs {
        if let Ok(st) = TcpStream::connect_timeout(&a, Duration::from_secs(300)) {
            stream = Some(st);
            break;
        }
    }
    let mut st = stream.ok_or(Failure::Connection)?;
    let _ = st.set_read_timeout(Some(Duration::from_secs(300)));
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\nUser-Agent: Python/3.7 aiohttp/3.7.4\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(ui) = userinfo {
        let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
        let token = crate::util::base64(format!("{}:{}", percent_decode(u), percent_decode(p)));
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    st.write_all(req.as_bytes()).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionReset => Failure::Reset,
        _ => Failure::Disconnected,
    })?;
    let mut raw = Vec::new();
    if let Err(e) = st.read_to_end(&mut raw) {
        return Err(match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Failure::Timeout,
            std::io::ErrorKind::ConnectionReset => Failure::Reset,
            _ => Failure::Disconnected,
        });
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(Failure::Disconnected);
    };
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    parts.next();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(Failure::Disconnected)?;
    let reason = parts.next().unwrap_or_default().to_string();
    let ctype = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    Ok((status, reason, ctype, body.to_string()))
}

impl Daemon {
    pub(super) fn new(coin: &Coin, url: &str) -> Result<Daemon, PyErr> {
        let d = Daemon {
            urls: Mutex::new((Vec::new(), 0)),
            cached_height: AtomicI64::new(i64::MIN),
            ids: AtomicU64::new(0),
            available: Mutex::new(BTreeMap::new()),
            netinfo: Mutex::new(None),
        };
        d.set_url(coin, url)?;
        Ok(d)
    }

    pub(super) fn set_url(&self, coin: &Coin, url: &str) -> Result<(), PyErr> {
        let urls: Vec<String> = url
            .split(',')
            .map(|u| coin.sanitize_url(u))
            .collect::<Result<_, _>>()?;
        for (n, u) in urls.iter().enumerate() {
            let status = if n == 0 { " (current)" } else { "" };
            info(
                "Daemon",
                format!("daemon #{} at {}{status}", n + 1, logged_url(u)),
            );
        }
        *self.urls.lock().unwrap_or_else(|e| e.into_inner()) = (urls, 0);
        Ok(())
    }

    pub(super) fn current_url(&self) -> String {
        let g = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        g.0.get(g.1).cloned().unwrap_or_default()
    }

    fn failover(&self) -> bool {
        let mut g = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.len() > 1 {
            g.1 = (g.1 + 1) % g.0.len();
            let u = g.0[g.1].clone();
            drop(g);
            info("Daemon", format!("failing over to {}", logged_url(&u)));
            return true;
        }
        false
    }

    /// `_send`: retries forever; Err only for a DaemonError from the processor.
    fn send(&self, payload: &str, vector: bool) -> Result<Value, DaemonError> {
        let mut last_log: Option<Instant> = None;
        let mut retry = 0.25f64;
        let mut on_good: Option<&str> = None;
        loop {
            let failure = match http_post(&self.current_url(), payload) {
                Ok((status, reason, ctype, body)) => {
                    if ctype == "application/json" {
                        match json::parse(body.trim()) {
                            Ok(v) => match process(v, vector) {
                                Ok(r) => {
                                    if let Some(m) = on_good {
                                        info("Daemon", m);
                                    }
                                    return Ok(r);
                                }
                                Err(None) => Failure::Warming,
                                Err(Some(e)) => return Err(e),
                            },
                            Err(_) => Failure::Refused(reason.clone()),
                        }
                    } else {
                        let t = body.trim();
                        let _ = status;
                        Failure::Refused(if t.is_empty() { reason } else { t.to_string() })
                    }
                }
                Err(f) => f,
            };
            let (text, good) = match failure {
                Failure::Timeout => ("timeout error".to_string(), on_good),
                Failure::Disconnected => ("disconnected".to_string(), Some("connection restored")),
                Failure::Reset => ("connection reset".to_string(), Some("connection restored")),
                Failure::Connection => (
                    "connection problem - check your daemon is running".to_string(),
                    Some("connection restored"),
                ),
                Failure::Refused(t) => (
                    format!("daemon service refused: {t}"),
                    Some("running normally"),
                ),
                Failure::Warming => (
                    "starting up checking blocks".to_string(),
                    Some("running normally"),
                ),
            };
            on_good = good;
            if last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                last_log = Some(Instant::now());
                error("Daemon", format!("{text}.  Retrying occasionally..."));
            }
            if retry >= 4.0 && self.failover() {
                retry = 0.0;
            }
            std::thread::sleep(Duration::from_secs_f64(retry));
            retry = (retry * 2.0).clamp(0.25, 4.0);
        }
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::SeqCst)
    }

    pub(super) fn single(&self, method: &str, params: Vec<Value>) -> Result<Value, DaemonError> {
        let mut payload = vec![("method", s(method)), ("id", num(self.next_id()))];
        if !params.is_empty() {
            payload.push(("params", Value::Arr(params)));
        }
        self.send(&py_dumps(&obj(payload)), false)
    }

    pub(super) fn vector(
        &self,
        method: &str,
        params: Vec<Vec<Value>>,
    ) -> Result<Vec<Value>, DaemonError> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let payload: Vec<Value> = params
            .into_iter()
            .map(|p| {
                obj(vec![
                    ("method", s(method)),
                    ("params", Value::Arr(p)),
                    ("id", num(self.next_id())),
                ])
            })
            .collect();
        match self.send(&py_dumps(&Value::Arr(payload)), true)? {
            Value::Arr(a) => Ok(a),
            other => Ok(vec![other]),
        }
    }

    pub(super) fn height(&self) -> Result<i64, DaemonError> {
        let h = self.single("getblockcount", vec![])?.as_i64().unwrap_or(0);
        self.cached_height.store(h, Ordering::SeqCst);
        Ok(h)
    }

    pub(super) fn cached(&self) -> Option<i64> {
        let h = self.cached_height.load(Ordering::SeqCst);
        (h != i64::MIN).then_some(h)
    }

    fn is_rpc_available(&self, method: &str) -> bool {
        if let Some(a) = self
            .available
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(method)
        {
            return *a;
        }
        let available = match self.single(method, vec![]) {
            Ok(_) => true,
            Err(e) => e.code() != Some(-32601),
        };
        self.available
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(method.to_string(), available);
        available
    }

    pub(super) fn estimatefee(
        &self,
        number: i64,
        mode: Option<&str>,
    ) -> Result<Value, DaemonError> {
        let mut args = vec![num(number)];
        if let Some(m) = mode {
            args.push(s(m));
        }
        if self.is_rpc_available("estimatesmartfee") {
            let est = self.single("estimatesmartfee", args)?;
            return Ok(est.get("feerate").cloned().unwrap_or(num(-1)));
        }
        self.single("estimatefee", args)
    }

    pub(super) fn getnetworkinfo(&self) -> Result<Value, DaemonError> {
        let mut g = self.netinfo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, t)) = g.as_ref() {
            if t.elapsed() < Duration::from_secs(60) {
                return Ok(v.clone());
            }
        }
        let v = self.single("getnetworkinfo", vec![])?;
        *g = Some((v.clone(), Instant::now()));
        Ok(v)
    }
}

/// The processors of `_send_single` and `_send_vector`: Err(None) while warming up.
fn process(v: Value, vector: bool) -> Result<Value, Option<DaemonError>> {
    if vector {
        let Value::Arr(items) = v else {
            return Err(Some(DaemonError(v)));
        };
        let errs: Vec<Value> = items
            .iter()
            .filter_map(|i| i.get("error").filter(|e| truthy(e)).cloned())
            .collect();
        if errs
            .iter()
            .any(|e| e.get("code").and_then(Value::as_i64) == Some(-28))
        {
            return Err(None);
        }
        if !errs.is_empty() {
            return Err(Some(DaemonError(Value::Arr(errs))));
        }
        return Ok(Value::Arr(
            items
                .iter()
                .map(|i| i.get("result").cloned().unwrap_or(Value::Null))
                .collect(),
        ));
    }
    match v.get("error") {
        Some(e) if truthy(e) => {
            if e.get("code").and_then(Value::as_i64) == Some(-28) {
                Err(None)
            } else {
                Err(Some(DaemonError(e.clone())))
            }
        }
        _ => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
    }
}

pub(super) fn logged_url(u: &str) -> String {
    u.rfind('@')
        .map_or(u.to_string(), |i| u[i + 1..].to_string())
}
