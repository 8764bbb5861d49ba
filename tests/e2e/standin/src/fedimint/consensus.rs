//! After setup (fedimint-server src/consensus/mod.rs `run`; fedimint-server-core
//! src/bitcoin_rpc.rs `ServerBitcoinRpcMonitor`): the bitcoin monitor, the modules' init, the
//! consensus API and the dashboard.

use super::setup::{bind, start_api, Federation};
use super::web::{asset, card, empty, esc, html, login_form, redirect, Cookie, Server};
use super::{info, warn, Backend, Ctx, Failure, CHAIN_IDS};
use crate::http::{Request, Response};
use crate::json::{self, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---- after setup ----

#[derive(Clone)]
struct Status {
    network: String,
    sync_progress: Option<f64>,
}

/// One JSON-RPC call as bitcoincore-rpc 0.19 over jsonrpc 0.18's simple_http makes it, with
/// their error texts.
fn rpc(backend: &Backend, method: &str, params: &str) -> Result<Value, String> {
    let Backend::Bitcoind {
        addr,
        path,
        host,
        auth,
    } = backend
    else {
        return Err("the stand-in does not model the esplora backend".into());
    };
    let transport = |e: String| format!("JSON-RPC error: transport error: {e}");
    let timeout = Duration::from_secs(15);
    let mut stream = TcpStream::connect_timeout(addr, timeout)
        .map_err(|e| transport(format!("Couldn't connect to host: {e}")))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let body = format!(r#"{{"method":"{method}","params":{params},"id":1,"jsonrpc":"2.0"}}"#);
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAuthorization: Basic {auth}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| transport(format!("Couldn't connect to host: {e}")))?;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, resp_body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if status == 401 {
        return Err(transport("unexpected HTTP code: 401".into()));
    }
    let v = match json::parse(resp_body.trim()) {
        Ok(v) => v,
        Err(_) if status != 200 => {
            return Err(transport(format!("unexpected HTTP code: {status}")))
        }
        Err(e) => return Err(transport(format!("JSON decode error: {e}"))),
    };
    match v.get("error") {
        Some(e @ Value::Obj(_)) => Err(format!(
            "JSON-RPC error: RPC error response: RpcError {{ code: {}, message: {:?}, data: None }}",
            e.get("code").and_then(Value::as_i64).unwrap_or(0),
            e.get("message").and_then(Value::as_str).unwrap_or_default()
        )),
        _ => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
    }
}

/// ServerBitcoinRpcMonitor::fetch_status
fn fetch_status(backend: &Backend) -> Result<Status, String> {
    let chain_id = rpc(backend, "getblockhash", "[1]")?;
    let chain_id = chain_id.as_str().unwrap_or_default();
    let network = CHAIN_IDS
        .iter()
        .find(|(h, _)| *h == chain_id)
        .map_or("regtest", |(_, n)| n)
        .to_string();
    rpc(backend, "getblockcount", "[]")?;
    let info = rpc(backend, "getblockchaininfo", "[]")?;
    let sync_progress = match info.get("verificationprogress") {
        Some(Value::Num(n)) => n.parse::<f64>().ok(),
        _ => {
            return Err(
                "JSON-RPC error: JSON decode error: missing field `verificationprogress`".into(),
            )
        }
    };
    if network != "regtest" {
        let fee = rpc(backend, "estimatesmartfee", r#"[1,"CONSERVATIVE"]"#)?;
        if fee.get("feerate").is_none() {
            return Err("Feerate not available".into());
        }
    }
    Ok(Status {
        network,
        sync_progress,
    })
}

pub(super) fn consensus(ctx: &Arc<Ctx>, fed: &Federation) -> Result<(), Failure> {
    info("fm::consensus", "Starting consensus...");
    // the p2p connector listens for peers (none here)
    if let Ok(l) = bind(ctx.bind_p2p) {
        std::thread::spawn(move || for _ in l.incoming() {});
    }
    let status: Arc<Mutex<Option<Status>>> = Arc::new(Mutex::new(None));
    {
        let (ctx, status) = (ctx.clone(), status.clone());
        std::thread::spawn(move || loop {
            let now = fetch_status(&ctx.backend);
            if let Err(e) = &now {
                warn(
                    "fm::server",
                    &format!("Bitcoin status update failed err={e}"),
                );
            }
            *status.lock().unwrap_or_else(|e| e.into_inner()) = now.ok();
            std::thread::sleep(Duration::from_secs(60));
        });
    }
    let current = || status.lock().map(|s| s.clone()).unwrap_or(None);
    for (id, kind) in fed.modules.iter().enumerate() {
        info("fm::core", &format!("Initialise module {id}..."));
        if kind == "wallet" {
            // retry("verify network", aggressive_backoff(): Fibonacci 200 ms .. 5 s, jitter, 14 retries)
            let (mut a, mut b) = (200u64, 200u64);
            let mut attempts = 0;
            let st = loop {
                attempts += 1;
                if let Some(st) = current() {
                    break st;
                }
                if attempts == 15 {
                    warn("fm::core", &format!("verify network failed err=No connection to bitcoin rpc attempts={attempts}"));
                    return Err(Failure::Error("No connection to bitcoin rpc".into()));
                }
                let jitter = u64::from(crate::sys::random_bytes(1)[0]) * 200 / 256;
                std::thread::sleep(Duration::from_millis(a.min(5000) + jitter));
                (a, b) = (b, a + b);
            };
            if st.network != fed.network {
                return Err(Failure::Error("Wrong Network".into()));
            }
        }
    }
    info("fm::consensus", "Starting Consensus Api...");
    let _api = start_api(ctx.bind_api, "consensus", Arc::new(|| "ConsensusIsRunning"))?;
    info(
        "fm::consensus",
        "Starting Submission of Module CI proposals...",
    );
    let ui = bind(ctx.bind_ui).map_err(|e| {
        Failure::Panic(
            "fedimint-server/src/consensus/mod.rs:257:10",
            format!("Failed to bind dashboard UI: {e:?}"),
        )
    })?;
    let cookie = Arc::new(Cookie::new());
    let (password, network) = (fed.password.clone(), fed.network.clone());
    let _ui = Server::start(
        ui,
        Arc::new(move |req| dashboard(&cookie, &password, &network, &req)),
    );
    info(
        "fm::consensus",
        &format!("Dashboard UI running at http://{} 🚀", ctx.bind_ui),
    );
    loop {
        match current() {
            Some(Status {
                sync_progress: Some(p),
                ..
            }) if p < 0.999 => {
                info(
                    "fm::consensus",
                    &format!("Waiting for bitcoin backend to sync... {p:.1}%"),
                );
            }
            Some(_) => break,
            None => info("fm::consensus", "Waiting to connect to bitcoin backend..."),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    info("fm::consensus", "Starting Consensus Engine...");
    loop {
        std::thread::park();
    }
}

fn dashboard(cookie: &Cookie, password: &str, network: &str, req: &Request) -> Response {
    let path = req.path.split('?').next().unwrap_or("/");
    let get = req.method == "GET" || req.method == "HEAD";
    match path {
        "/login" if get => html(card("Enter Password", &login_form(None))),
        "/login" if req.method == "POST" => cookie.login(password, req),
        "/ui/connectivity-check" if get => cookie.connectivity(req),
        "/" | "/explorer" | "/download-backup" | "/metrics" if get && !cookie.ok(req) => {
            redirect("/login")
        }
        "/change-password" if req.method == "POST" && !cookie.ok(req) => redirect("/login"),
        "/" if get => html(card(
            "Fedimint",
            &format!(
                "<p>Guardian dashboard (stand-in). Network: {}</p>",
                esc(network)
            ),
        )),
        p if get => asset(p).unwrap_or_else(|| empty(404)),
        _ => empty(404),
    }
}
