//! HTTP (express, `api/bitcoin/bitcoin.routes.ts`, `utils/api.ts handleError`): CORS headers,
//! the routes the stand-in answers, express's 404 page.

use super::address::script_hash;
use super::backend::Backend;
use super::config::js_truthy;
use super::{GIT_COMMIT, VERSION};
use crate::http::{Request, Response};
use crate::json::{num, obj, s, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn express(status: u16, ctype: &str, body: impl Into<Vec<u8>>) -> Response {
    let mut r = Response::new(status, ctype, body);
    for (k, v) in [
        ("X-Powered-By", "Express"),
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"),
        (
            "Access-Control-Allow-Headers",
            "Accept,Authorization,Cache-Control,Content-Type,DNT,If-Modified-Since,Keep-Alive,Origin,User-Agent,X-Requested-With",
        ),
        ("Access-Control-Expose-Headers", "X-Total-Count,X-Mempool-Auth"),
    ] {
        r.headers.insert(0, (k.to_string(), v.to_string()));
    }
    r
}

fn json_res(status: u16, v: &Value) -> Response {
    express(status, "application/json; charset=utf-8", v.compact())
}

fn text_res(status: u16, body: &str) -> Response {
    express(status, "text/html; charset=utf-8", body.to_string())
}

/// `req.accepts('json')`.
fn accepts_json(req: &Request) -> bool {
    let Some(a) = req.header("Accept") else {
        return true;
    };
    a.split(',').any(|t| {
        let t = t
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        t.is_empty() || t == "*/*" || t == "application/*" || t == "application/json"
    })
}

fn handle_error(req: &Request, status: u16, msg: &str) -> Response {
    if accepts_json(req) {
        json_res(status, &obj(vec![("error", s(msg))]))
    } else {
        text_res(status, msg)
    }
}

pub(super) fn route(b: &Arc<Backend>, req: Request) -> Response {
    let path = req.path.split('?').next().unwrap_or_default().to_string();
    let prefix = b.cfg.str("MEMPOOL", "API_URL_PREFIX");
    let not_found = || {
        let mut r = text_res(
            404,
            &format!("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {} {path}</pre>\n</body>\n</html>\n", req.method),
        );
        r.headers.push((
            "Content-Security-Policy".into(),
            "default-src 'none'".into(),
        ));
        r.headers
            .push(("X-Content-Type-Options".into(), "nosniff".into()));
        r
    };
    if req.method == "OPTIONS" {
        return express(204, "text/plain", "");
    }
    if req.method != "GET" {
        return not_found();
    }
    let Some(rest) = path.strip_prefix(prefix.as_str()) else {
        return not_found();
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let backend = b.cfg.str("MEMPOOL", "BACKEND");
    let valid_addr =
        |a: &str| (2..=120).contains(&a.len()) && a.chars().all(|c| c.is_ascii_alphanumeric());
    match parts.as_slice() {
        ["backend-info"] => {
            let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_string();
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string();
            json_res(
                200,
                &obj(vec![
                    ("hostname", s(&hostname)),
                    ("version", s(VERSION)),
                    ("gitCommit", s(GIT_COMMIT)),
                    (
                        "lightning",
                        Value::Bool(b.cfg.truthy("LIGHTNING", "ENABLED")),
                    ),
                    ("backend", s(&backend)),
                    (
                        "coreVersion",
                        s(&b.core_version.lock().map(|v| v.clone()).unwrap_or_default()),
                    ),
                    ("osVersion", s(&format!("Linux {release}"))),
                ]),
            )
        }
        ["blocks", "tip", "height"] => {
            let h = b.current_height.load(Ordering::SeqCst);
            if h == 0 {
                return handle_error(&req, 503, "Service Temporarily Unavailable");
            }
            express(200, "text/plain; charset=utf-8", h.to_string())
        }
        ["blocks", "tip", "hash"] if backend != "esplora" => {
            match b.core.call("getbestblockhash", vec![]) {
                Ok(h) => express(
                    200,
                    "text/plain; charset=utf-8",
                    h.as_str().unwrap_or_default().to_string(),
                ),
                Err(_) => handle_error(&req, 500, "Failed to get hash at tip"),
            }
        }
        ["fees", "recommended"] => {
            if !b.in_sync.load(Ordering::SeqCst) {
                return text_res(503, "Service Unavailable");
            }
            let mi = b
                .mempool_info
                .lock()
                .map(|v| v.clone())
                .unwrap_or(Value::Null);
            let minfee = mi
                .get("mempoolminfee")
                .and_then(|v| match v {
                    Value::Num(n) => n.parse::<f64>().ok(),
                    _ => None,
                })
                .unwrap_or(0.00001);
            // no projected blocks: every recommendation is the purge rate (fee-api.ts)
            let purge = (minfee * 100000.0 / 1.0).ceil() * 1.0;
            let fee = num(purge.max(1.0) as i64);
            json_res(
                200,
                &obj(vec![
                    ("fastestFee", fee.clone()),
                    ("halfHourFee", fee.clone()),
                    ("hourFee", fee.clone()),
                    ("economyFee", fee.clone()),
                    ("minimumFee", fee),
                ]),
            )
        }
        ["validate-address", addr] => {
            if !valid_addr(addr) {
                return handle_error(&req, 501, "Invalid address");
            }
            match b.validate_address(addr) {
                Ok(v) => json_res(200, &v),
                Err(_) => handle_error(&req, 500, "Failed to validate address"),
            }
        }
        ["address", addr] if backend != "esplora" => {
            if backend == "none" {
                return handle_error(
                    &req,
                    405,
                    "Address lookups cannot be used with bitcoind as backend.",
                );
            }
            if !valid_addr(addr) {
                return handle_error(&req, 501, "Invalid address");
            }
            let info = match b.validate_address(addr) {
                Ok(v) => v,
                Err(_) => return handle_error(&req, 500, "Failed to get address"),
            };
            if info.get("isvalid") != Some(&Value::Bool(true)) {
                return text_res(400, "Invalid Bitcoin address");
            }
            let sh = script_hash(
                info.get("scriptPubKey")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
            let bal = b
                .electrum
                .request("blockchain.scripthash.get_balance", vec![s(&sh)]);
            let hist = bal.as_ref().ok().map(|_| {
                b.electrum
                    .request("blockchain.scripthash.get_history", vec![s(&sh)])
            });
            match (bal, hist) {
                (Ok(bal), Some(Ok(hist))) => json_res(
                    200,
                    &address_json(
                        "address",
                        info.get("address").cloned().unwrap_or(s(addr)),
                        &bal,
                        &hist,
                    ),
                ),
                (Err(e), _) | (_, Some(Err(e))) => {
                    if e.contains("too long") || e.contains("confirmed status") {
                        return handle_error(&req, 413, &e);
                    }
                    handle_error(&req, 500, "Failed to get address")
                }
                _ => handle_error(&req, 500, "Failed to get address"),
            }
        }
        ["scripthash", sh] if backend != "esplora" => {
            if backend == "none" {
                return handle_error(
                    &req,
                    405,
                    "Address lookups cannot be used with bitcoind as backend.",
                );
            }
            if sh.is_empty() || sh.len() % 2 != 0 || !sh.chars().all(|c| c.is_ascii_hexdigit()) {
                return handle_error(&req, 501, "Invalid scripthash");
            }
            let le: String = (0..sh.len() / 2)
                .rev()
                .map(|i| &sh[2 * i..2 * i + 2])
                .collect();
            let bal = b
                .electrum
                .request("blockchain.scripthash.get_balance", vec![s(&le)]);
            let hist = bal.as_ref().ok().map(|_| {
                b.electrum
                    .request("blockchain.scripthash.get_history", vec![s(&le)])
            });
            match (bal, hist) {
                (Ok(bal), Some(Ok(hist))) => {
                    json_res(200, &address_json("scripthash", s(&le), &bal, &hist))
                }
                (Err(e), _) | (_, Some(Err(e)))
                    if e.contains("too long") || e.contains("confirmed status") =>
                {
                    handle_error(&req, 413, &e)
                }
                _ => handle_error(&req, 500, "Failed to get script hash"),
            }
        }
        _ => not_found(),
    }
}

fn address_json(key: &str, id: Value, bal: &Value, hist: &Value) -> Value {
    let n = |v: Option<&Value>| {
        v.and_then(|x| match x {
            Value::Num(n) => n.parse::<f64>().ok(),
            _ => None,
        })
        .unwrap_or(0.0)
    };
    let confirmed = n(bal.get("confirmed"));
    let unconfirmed = n(bal.get("unconfirmed"));
    let (total, unconf) = match hist {
        Value::Arr(h) => (
            h.len() as i64,
            h.iter()
                .filter(|x| x.get("fee").is_some_and(js_truthy))
                .count() as i64,
        ),
        _ => (0, 0),
    };
    let js = |x: f64| {
        if x.fract() == 0.0 {
            num(x as i64)
        } else {
            num(x)
        }
    };
    obj(vec![
        (key, id),
        (
            "chain_stats",
            obj(vec![
                ("funded_txo_count", num(0)),
                (
                    "funded_txo_sum",
                    js(if confirmed != 0.0 { confirmed } else { 0.0 }),
                ),
                ("spent_txo_count", num(0)),
                (
                    "spent_txo_sum",
                    js(if confirmed < 0.0 { confirmed } else { 0.0 }),
                ),
                ("tx_count", num(total - unconf)),
            ]),
        ),
        (
            "mempool_stats",
            obj(vec![
                ("funded_txo_count", num(0)),
                (
                    "funded_txo_sum",
                    js(if unconfirmed > 0.0 { unconfirmed } else { 0.0 }),
                ),
                ("spent_txo_count", num(0)),
                (
                    "spent_txo_sum",
                    js(if unconfirmed < 0.0 { -unconfirmed } else { 0.0 }),
                ),
                ("tx_count", num(unconf)),
            ]),
        ),
        ("electrum", Value::Bool(true)),
    ])
}
