//! The main task up to consensus: the config read (`get_config`) or generated (`run_config_gen`)
//! behind the setup API and UI, and the files setup writes (fedimint-server src/config/io.rs).

use super::consensus::consensus;
use super::setup_ui::setup_ui;
use super::web::{Cookie, Handler, Server};
use super::{info, warn, Ctx, Failure, MODULES};
use crate::http::{Request, Response};
use crate::json::{self, obj, s, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) struct Federation {
    pub(super) password: String,
    pub(super) network: String,
    pub(super) modules: Vec<String>,
}

pub(super) fn main_task(ctx: &Arc<Ctx>) -> Result<(), Failure> {
    let fed = match read_config(&ctx.data_dir)? {
        Some(f) => f,
        None => config_gen(ctx)?,
    };
    consensus(ctx, &fed)
}

/// get_config: with `password.private` the federation is set up
fn read_config(dir: &Path) -> Result<Option<Federation>, Failure> {
    let Ok(untrimmed) = std::fs::read_to_string(dir.join("password.private")) else {
        return Ok(None);
    };
    let password = untrimmed.trim().to_string();
    if password != untrimmed {
        warn("fm::core", "Password in the password file contains leading/trailing whitespaces. This will an error in the future.");
    }
    let text = std::fs::read_to_string(dir.join("consensus.json"))
        .map_err(|e| Failure::Error(e.to_string()))?;
    let c = json::parse(&text).map_err(|e| Failure::Error(e.to_string()))?;
    let network = c
        .get("network")
        .and_then(Value::as_str)
        .unwrap_or("regtest")
        .to_string();
    let modules = match c.get("modules") {
        Some(Value::Arr(a)) => a
            .iter()
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Some(Federation {
        password,
        network,
        modules,
    }))
}

#[derive(Clone, PartialEq)]
pub(super) struct LocalParams {
    pub(super) password: String,
    pub(super) name: String,
    pub(super) federation_name: Option<String>,
    pub(super) disable_base_fees: Option<bool>,
    pub(super) enabled_modules: Option<Vec<String>>,
    pub(super) federation_size: Option<u32>,
    pub(super) setup_code: String,
}

pub(super) struct Setup {
    pub(super) ctx: Arc<Ctx>,
    pub(super) local: Mutex<Option<LocalParams>>,
    pub(super) cookie: Cookie,
    pub(super) dkg: Mutex<Option<Sender<LocalParams>>>,
}

pub(super) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}

fn config_gen(ctx: &Arc<Ctx>) -> Result<Federation, Failure> {
    info("fm::consensus", "Starting config gen");
    let (dkg_tx, dkg_rx) = mpsc::channel();
    let setup = Arc::new(Setup {
        ctx: ctx.clone(),
        local: Mutex::new(None),
        cookie: Cookie::new(),
        dkg: Mutex::new(Some(dkg_tx)),
    });
    let api = start_api(ctx.bind_api, "setup", {
        let setup = setup.clone();
        Arc::new(move || {
            if setup.local.lock().map(|l| l.is_some()).unwrap_or(false) {
                "SharingConnectionCodes"
            } else {
                "AwaitingLocalParams"
            }
        })
    })?;
    let ui = bind(ctx.bind_ui).map_err(|e| {
        Failure::Panic(
            "fedimint-server/src/lib.rs:277:10",
            format!("Failed to bind setup UI: {e:?}"),
        )
    })?;
    let handler: Handler = {
        let setup = setup.clone();
        Arc::new(move |req| setup_ui(&setup, &req))
    };
    let ui = Server::start(ui, handler);
    info(
        "fm::consensus",
        &format!("Setup UI running at http://{} 🚀", ctx.bind_ui),
    );
    let params: LocalParams = dkg_rx
        .recv()
        .map_err(|_| Failure::Error("Config gen params receiver closed unexpectedly".into()))?;
    // upstream's grace period for the start-dkg call to finish
    std::thread::sleep(Duration::from_millis(100));
    api.stop();
    ui.stop();
    let modules: Vec<String> = match &params.enabled_modules {
        Some(m) => MODULES
            .iter()
            .filter(|k| m.iter().any(|x| x == *k))
            .map(|k| k.to_string())
            .collect(),
        None => default_modules(),
    };
    for kind in &modules {
        info(
            "fm::net::peer::dkg",
            &format!("Running config generation for module of kind {kind}..."),
        );
    }
    write_config(&ctx.data_dir, &params, &ctx.network, &modules)
        .map_err(|e| Failure::Error(e.to_string()))?;
    Ok(Federation {
        password: params.password,
        network: ctx.network.clone(),
        modules,
    })
}

pub(super) fn default_modules() -> Vec<String> {
    let meta = !matches!(
        std::env::var("FM_DISABLE_META_MODULE").as_deref(),
        Ok("1") | Ok("true")
    );
    ["ln", "lnv2", "meta", "mint", "wallet"]
        .iter()
        .filter(|k| meta || **k != "meta")
        .map(|k| k.to_string())
        .collect()
}

/// fedimint-core `write_new` (create_new: an existing file is an error) for each file
fn write_config(
    dir: &Path,
    p: &LocalParams,
    network: &str,
    modules: &[String],
) -> std::io::Result<()> {
    let new = |name: &str, content: String| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(name))?;
        f.write_all(content.as_bytes())
    };
    let salt = crate::sys::random_hex(16);
    new("password.private", p.password.clone())?;
    new("private.salt", salt.clone())?;
    let standin = s("archy e2e stand-in config (upstream: fedimint-server's ServerConfig)");
    let mods = Value::Arr(modules.iter().map(|m| s(m)).collect());
    let fed_name = p.federation_name.clone().unwrap_or_default();
    new(
        "local.json",
        obj(vec![
            ("standin", standin.clone()),
            ("identity", json::num(0)),
            ("name", s(&p.name)),
        ])
        .pretty(2),
    )?;
    new(
        "consensus.json",
        obj(vec![
            ("standin", standin.clone()),
            ("network", s(network)),
            ("federation_name", s(&fed_name)),
            ("modules", mods.clone()),
        ])
        .pretty(2),
    )?;
    new(
        "invite-code",
        format!("fed11{}", crate::sys::random_hex(40)),
    )?;
    new(
        "client.json",
        obj(vec![
            ("standin", standin),
            ("federation_name", s(&fed_name)),
            ("modules", mods),
        ])
        .pretty(2),
    )?;
    // the private config is encrypted with a key from the password and salt upstream
    new("private.encrypt", crate::sys::random_hex(64))
}

/// net::api::spawn: the JSON-RPC API (jsonrpsee serves HTTP POST besides WebSocket)
pub(super) fn start_api(
    addr: SocketAddr,
    name: &str,
    status: Arc<dyn Fn() -> &'static str + Send + Sync>,
) -> Result<Server, Failure> {
    info("fm::net::api", &format!("Starting http api on ws://{addr}"));
    let l = bind(addr).map_err(|e| {
        Failure::Panic(
            "fedimint-server/src/net/api/mod.rs:117:10",
            format!("Could not build API server: API name: {name}\n\nCaused by:\n    0: Bind address: {addr}\n    1: {e}"),
        )
    })?;
    Ok(Server::start(
        l,
        Arc::new(move |req| jsonrpc(&req, &*status)),
    ))
}

fn jsonrpc(req: &Request, status: &dyn Fn() -> &'static str) -> Response {
    if req.method != "POST" {
        return Response::new(
            405,
            "text/plain",
            "Used HTTP Method is not allowed. POST is required",
        );
    }
    if !req
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Response::new(
            415,
            "text/plain",
            "Supported Content-Types are application/json",
        );
    }
    let call = std::str::from_utf8(&req.body)
        .ok()
        .and_then(|t| json::parse(t.trim()).ok());
    let Some(call) = call else {
        return Response::new(
            200,
            "application/json",
            r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#,
        );
    };
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let answer = match call.get("method").and_then(Value::as_str) {
        Some("setup_status") => obj(vec![
            ("jsonrpc", s("2.0")),
            ("result", s(status())),
            ("id", id),
        ]),
        _ => obj(vec![
            ("jsonrpc", s("2.0")),
            (
                "error",
                obj(vec![
                    ("code", json::num(-32601)),
                    ("message", s("Method not found")),
                ]),
            ),
            ("id", id),
        ]),
    };
    Response::new(200, "application/json", answer.compact())
}
