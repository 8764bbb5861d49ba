//! BTCPay's NBXplorer client, as NBXplorer.Client's ExplorerClient behaves (btcpayserver/NBXplorer
//! v2.6.10 `NBXplorer.Client/ExplorerClient.cs`): Basic auth with the cookie file's content,
//! re-read and retried once on 401; .NET's error texts.

use crate::dotnet;
use crate::http;
use crate::json::{self, Value};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

pub(super) struct Explorer {
    hostport: String,
    base_path: String,
    cookie: Option<PathBuf>,
    cached: Mutex<Option<String>>,
}

impl Explorer {
    pub(super) fn new(url: &str, cookie: Option<PathBuf>) -> Result<Explorer, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("System.UriFormatException: Invalid URI: {url}"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let hostport = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        let mut base_path = path.to_string();
        if !base_path.ends_with('/') {
            base_path.push('/');
        }
        let e = Explorer {
            hostport,
            base_path,
            cookie,
            cached: Mutex::new(None),
        };
        e.refresh();
        Ok(e)
    }

    /// CookieAuthentication.RefreshCache: true whenever the file could be read.
    fn refresh(&self) -> bool {
        let Some(p) = &self.cookie else { return false };
        match std::fs::read_to_string(p) {
            Ok(c) => {
                *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                true
            }
            Err(_) => false,
        }
    }

    fn once(&self, method: &str, rel: &str, body: &str) -> Result<http::Reply, String> {
        let mut headers = Vec::new();
        if self.cookie.is_some() {
            if let Some(c) = self
                .cached
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                headers.push(("Authorization", crate::util::basic_auth(&c)));
            }
        }
        if !body.is_empty() {
            headers.push((
                "Content-Type",
                "application/json; charset=utf-8".to_string(),
            ));
        }
        http::request(
            &self.hostport,
            method,
            &format!("{}{rel}", self.base_path),
            &headers,
            body,
            Some(Duration::from_secs(100)),
        )
        .map_err(|e| dotnet::http_error(&e, &self.hostport, 100))
    }

    /// SendAsync<T> and ParseResponse<T>: Ok(None) for a 404 or an empty/null answer; Err is the
    /// exception's message.
    pub(super) fn send(
        &self,
        method: &str,
        rel: &str,
        body: &str,
    ) -> Result<Option<Value>, String> {
        let mut r = self.once(method, rel, body)?;
        if r.status == 404 {
            return Ok(None);
        }
        if r.status == 504 || r.status == 408 {
            return Err(format!("HTTP error {}", r.status));
        }
        if r.status == 401 && self.refresh() {
            r = self.once(method, rel, body)?;
        }
        if (200..300).contains(&r.status) {
            let t = r.body.trim();
            if t.is_empty() || t == "null" {
                return Ok(None);
            }
            return json::parse(t)
                .map(Some)
                .map_err(|e| format!("Unexpected character encountered while parsing value: {e}"));
        }
        let fail = || {
            format!(
                "Response status code does not indicate success: {} ({}).",
                r.status,
                dotnet::reason_phrase(r.status)
            )
        };
        if r.status == 500 {
            return Err(fail());
        }
        match json::parse(r.body.trim()) {
            Ok(v) => match v.get("message").and_then(Value::as_str) {
                Some(m) => Err(m.to_string()),
                None => Err(fail()),
            },
            Err(_) => Err(fail()),
        }
    }
}
