//! bitcoind's RPC as NBitcoin's RPCClient (MetacoSA/NBitcoin v10.0.8 `NBitcoin/RPC/RPCClient.cs`)
//! talks to it: cookie renewal on 401, batches, .NET's exception texts; and what NBXplorer reads
//! of getblockchaininfo (`RPCClientExtensions.cs`).

use crate::dotnet::{self, Net};
use crate::http;
use crate::json::{self, num, obj, s, Value};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// One call of a batch: its result, or its (code, message) error.
type CallResult = Result<Value, (i64, String)>;

#[derive(Clone, Debug)]
pub(super) enum RpcAuth {
    Fixed(String),
    Cookie(PathBuf),
}

#[derive(Debug, Clone)]
pub(super) enum RpcError {
    /// an RPCException: bitcoind's error code and message
    Rpc(i64, String),
    /// an HttpRequestException (or a timeout), as .NET words it
    Http(String),
}

impl RpcError {
    pub(super) fn dotnet(&self) -> String {
        match self {
            RpcError::Rpc(_, m) => format!("NBitcoin.RPC.RPCException: {m}"),
            RpcError::Http(m) if m.starts_with("The request was canceled") => {
                format!("System.Threading.Tasks.TaskCanceledException: {m}")
            }
            RpcError::Http(m) => format!("System.Net.Http.HttpRequestException: {m}"),
        }
    }
}

pub(super) struct Rpc {
    host: String,
    pub(super) port: u16,
    path: String,
    pub(super) uri: String,
    auth: RpcAuth,
    cached: Mutex<Option<String>>,
    timeout: Duration,
    next_id: Mutex<u64>,
}

impl Rpc {
    pub(super) fn new(url: &str, auth: RpcAuth) -> Result<Rpc, String> {
        let rest = url.strip_prefix("http://").ok_or("rpc.url is not an url")?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => (
                h.to_string(),
                p.parse().map_err(|_| "rpc.url is not an url")?,
            ),
            _ if !hostport.is_empty() => (hostport.to_string(), 80),
            _ => return Err("rpc.url is not an url".into()),
        };
        let cached = match &auth {
            RpcAuth::Fixed(s) => Some(s.clone()),
            RpcAuth::Cookie(p) => std::fs::read_to_string(p).ok(),
        };
        Ok(Rpc {
            uri: format!("http://{host}:{port}{path}"),
            host,
            port,
            path: path.to_string(),
            auth,
            cached: Mutex::new(cached),
            // RPCClientProvider's HttpClient (Startup.cs): 10 minutes
            timeout: Duration::from_secs(600),
            next_id: Mutex::new(0),
        })
    }

    /// TryRenewCookie: re-read the cookie; true if it changed.
    fn renew(&self) -> bool {
        let RpcAuth::Cookie(p) = &self.auth else {
            return false;
        };
        let Ok(new) = std::fs::read_to_string(p) else {
            return false;
        };
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if c.as_deref() == Some(new.as_str()) {
            return false;
        }
        *c = Some(new);
        true
    }

    fn post(&self, body: &str, timeout: Duration) -> Result<String, RpcError> {
        let hostport = format!("{}:{}", self.host, self.port);
        let mut renewed = false;
        loop {
            let auth = self
                .cached
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let mut headers = vec![("Content-Type", "application/json-rpc".to_string())];
            if let Some(a) = auth {
                headers.push(("Authorization", crate::util::basic_auth(&a)));
            }
            let r = http::request(&hostport, "POST", &self.path, &headers, body, Some(timeout))
                .map_err(|e| {
                    RpcError::Http(dotnet::http_error(&e, &hostport, timeout.as_secs()))
                })?;
            match r.status {
                200 => return Ok(r.body),
                401 if !renewed && self.renew() => renewed = true,
                status => {
                    if status != 401 {
                        if let Ok(v) = json::parse(r.body.trim()) {
                            if let Some(e) = v.get("error").filter(|e| **e != Value::Null) {
                                let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
                                let msg =
                                    e.get("message").and_then(Value::as_str).unwrap_or_default();
                                return Err(RpcError::Rpc(code, msg.to_string()));
                            }
                            if v.is_array() {
                                return Ok(r.body);
                            }
                        }
                    }
                    return Err(RpcError::Http(format!(
                        "Response status code does not indicate success: {status} ({}).",
                        dotnet::reason_phrase(status)
                    )));
                }
            }
        }
    }

    fn id(&self) -> u64 {
        let mut n = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    }

    pub(super) fn call_t(
        &self,
        method: &str,
        params: Vec<Value>,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        let body = obj(vec![
            ("jsonrpc", s("1.0")),
            ("id", num(self.id())),
            ("method", s(method)),
            ("params", Value::Arr(params)),
        ])
        .compact();
        let text = self.post(&body, timeout)?;
        let v = json::parse(text.trim())
            .map_err(|e| RpcError::Http(format!("invalid JSON-RPC response: {e}")))?;
        if let Some(e) = v.get("error").filter(|e| **e != Value::Null) {
            let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
            return Err(RpcError::Rpc(
                code,
                e.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    pub(super) fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, RpcError> {
        self.call_t(method, params, self.timeout)
    }

    /// A JSON-RPC batch: one result or (code, message) per call.
    pub(super) fn batch(&self, calls: &[(&str, Vec<Value>)]) -> Result<Vec<CallResult>, RpcError> {
        let reqs: Vec<Value> = calls
            .iter()
            .map(|(m, p)| {
                obj(vec![
                    ("jsonrpc", s("1.0")),
                    ("id", num(self.id())),
                    ("method", s(m)),
                    ("params", Value::Arr(p.clone())),
                ])
            })
            .collect();
        let text = self.post(&Value::Arr(reqs).compact(), self.timeout)?;
        let Ok(Value::Arr(replies)) = json::parse(text.trim()) else {
            return Err(RpcError::Http("invalid JSON-RPC batch response".into()));
        };
        Ok(replies
            .iter()
            .map(|r| match r.get("error").filter(|e| **e != Value::Null) {
                Some(e) => Err((
                    e.get("code").and_then(Value::as_i64).unwrap_or(0),
                    e.get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )),
                None => Ok(r.get("result").cloned().unwrap_or(Value::Null)),
            })
            .collect())
    }
}

/// getblockchaininfo's fields NBXplorer reads (GetBlockchainInfoResponse).
#[derive(Clone, Debug)]
pub(super) struct ChainInfo {
    pub(super) headers: i64,
    pub(super) blocks: i64,
    pub(super) progress: f64,
    median_time: Option<i64>,
    ibd: Option<bool>,
    pub(super) best: String,
}

impl ChainInfo {
    pub(super) fn from(v: &Value) -> ChainInfo {
        ChainInfo {
            headers: v.get("headers").and_then(Value::as_i64).unwrap_or(0),
            blocks: v.get("blocks").and_then(Value::as_i64).unwrap_or(0),
            progress: v
                .get("verificationprogress")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            median_time: v.get("mediantime").and_then(Value::as_i64),
            ibd: match v.get("initialblockdownload") {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            },
            best: v
                .get("bestblockhash")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// RPCClientExtensions.IsSynching.
    pub(super) fn synching(&self, net: &Net) -> bool {
        if self.headers == 0 && net.core == "regtest" {
            return false;
        }
        if self.ibd == Some(true) {
            return true;
        }
        if let Some(t) = self.median_time {
            if net.core != "regtest" && (crate::util::unix_secs() as i64 - t) > 150 * 24 * 3600 {
                return true;
            }
        }
        self.headers - self.blocks > 6
    }
}
