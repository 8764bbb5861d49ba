//! bitcoind and bitcoin-cli, as far as archy sees them.
//!
//! bitcoind: reads `-conf`/`-datadir`, the chain and its section (`[main]`, `[test]`, ...), with
//! Bitcoin Core's rule that network-only options (rpcport, rpcbind, ...) in the top section apply
//! to mainnet only; listens where Core would (loopback unless both rpcallowip and rpcbind are
//! set); refuses peers outside 127.0.0.0/8, ::1 and rpcallowip (403); accepts Basic auth that
//! matches the cookie, rpcuser/rpcpassword or an `rpcauth=user:salt$hmac` line (else 401 after
//! 250 ms). It re-reads its config on every request, so a rotated rpcauth applies at once.
//! Test hooks, files in the datadir: `standin-exit` (exit 1 at start: a crash loop),
//! `standin-hang` (accept, never answer while it exists), `standin-warmup` (every RPC answers
//! -28 "Loading block index...", as Core does while starting).

use crate::chain::{self, Chain};
use crate::conf::{Args, Ini};
use crate::http::{self, Request, Response};
use crate::json::{self, num, obj, s, Value};
use crate::log;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const VERSION: &str = "31.0.0";
const NETWORK_ONLY: &[&str] = &[
    "addnode",
    "bind",
    "connect",
    "port",
    "rpcbind",
    "rpcport",
    "wallet",
    "whitebind",
];

/// Options from the command line and the config file, resolved for the active chain.
#[derive(Clone)]
pub struct Settings {
    args: Args,
    conf: Ini,
    pub chain: String,
    pub datadir: PathBuf,
    pub conf_path: PathBuf,
}

impl Settings {
    pub fn load(args: &Args) -> Result<Settings, String> {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let mut datadir = PathBuf::from(
            args.get("datadir")
                .map_or(format!("{home}/.bitcoin"), str::to_string),
        );
        let conf_path = match args.get("conf") {
            Some(c) if Path::new(c).is_absolute() => PathBuf::from(c),
            Some(c) => datadir.join(c),
            None => datadir.join("bitcoin.conf"),
        };
        let conf = match Ini::read(&conf_path) {
            Ok(c) => c,
            Err(_) if args.get("conf").is_none() => Ini::default(),
            Err(e) => {
                return Err(format!(
                    "Error reading configuration file: specified config file \"{}\" could not be opened: {e}",
                    conf_path.display()
                ))
            }
        };
        if args.get("datadir").is_none() {
            if let Some(d) = conf.all("", "datadir").last() {
                datadir = PathBuf::from(d);
            }
        }
        let top = |k: &str| {
            args.get(k)
                .map(str::to_string)
                .or_else(|| conf.all("", k).last().cloned())
        };
        let on = |k: &str| top(k).is_some_and(|v| v != "0");
        let chain = if let Some(c) = top("chain") {
            c
        } else if on("regtest") {
            "regtest".into()
        } else if on("testnet4") {
            "testnet4".into()
        } else if on("testnet") {
            "test".into()
        } else if on("signet") {
            "signet".into()
        } else {
            "main".into()
        };
        if !["main", "test", "testnet4", "signet", "regtest"].contains(&chain.as_str()) {
            return Err(format!("Error: Unknown chain {chain}."));
        }
        Ok(Settings {
            args: args.clone(),
            conf,
            chain,
            datadir,
            conf_path,
        })
    }

    fn top_allowed(&self, key: &str) -> bool {
        self.chain == "main" || !NETWORK_ONLY.contains(&key)
    }

    /// A single-valued option: command line, then the chain's section, then the top section.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = self.args.get(key) {
            return Some(v.to_string());
        }
        if let Some(v) = self.conf.all(&self.chain, key).last() {
            return Some(v.clone());
        }
        if self.top_allowed(key) {
            return self.conf.all("", key).last().cloned();
        }
        None
    }

    /// A multi-valued option; command-line values replace the file's.
    pub fn all(&self, key: &str) -> Vec<String> {
        let a = self.args.all(key);
        if !a.is_empty() {
            return a;
        }
        let mut v = self.conf.all(&self.chain, key);
        if self.top_allowed(key) {
            v.extend(self.conf.all("", key));
        }
        v
    }

    pub fn netdir(&self) -> PathBuf {
        match self.chain.as_str() {
            "main" => self.datadir.clone(),
            "test" => self.datadir.join("testnet3"),
            other => self.datadir.join(other),
        }
    }

    pub fn rpcport(&self) -> u16 {
        self.get("rpcport")
            .and_then(|p| p.parse().ok())
            .unwrap_or(match self.chain.as_str() {
                "test" => 18332,
                "testnet4" => 48332,
                "signet" => 38332,
                "regtest" => 18443,
                _ => 8332,
            })
    }

    pub fn cookie_path(&self) -> PathBuf {
        match self.get("rpccookiefile") {
            Some(c) if Path::new(&c).is_absolute() => PathBuf::from(c),
            Some(c) => self.netdir().join(c),
            None => self.netdir().join(".cookie"),
        }
    }
}

/// `ip` within `spec`: an address, `addr/bits` or `addr/netmask`.
fn allowed_by(ip: IpAddr, spec: &str) -> bool {
    let (addr, mask) = spec.split_once('/').unwrap_or((spec, ""));
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits: u32 = if mask.is_empty() {
                32
            } else if let Ok(m) = mask.parse::<std::net::Ipv4Addr>() {
                u32::from(m).count_ones()
            } else {
                mask.parse().unwrap_or(33)
            };
            if bits > 32 {
                return false;
            }
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits: u32 = if mask.is_empty() {
                128
            } else {
                mask.parse().unwrap_or(129)
            };
            if bits > 128 {
                return false;
            }
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

fn peer_allowed(st: &Settings, ip: IpAddr) -> bool {
    ["127.0.0.0/8", "::1"].iter().any(|s| allowed_by(ip, s))
        || st.all("rpcallowip").iter().any(|s| allowed_by(ip, s))
}

fn hmac_hex(salt: &str, password: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(salt.as_bytes()) else {
        return String::new();
    };
    mac.update(password.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Which credential matched, if any (never the secret itself, for the log), and the user it
/// authenticates (`__cookie__` for the cookie, as Core names it).
fn authenticate(
    st: &Settings,
    cookie: Option<&str>,
    header: Option<&str>,
) -> Option<(String, String)> {
    let b64 = header?.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    if let Some(c) = cookie {
        if decoded == c {
            return Some(("cookie".into(), "__cookie__".into()));
        }
    }
    if let (Some(u), Some(p)) = (st.get("rpcuser"), st.get("rpcpassword")) {
        if !p.is_empty() && u == user && p == pass {
            return Some((format!("rpcuser {user}"), user.to_string()));
        }
    }
    for line in st.all("rpcauth") {
        let Some((u, rest)) = line.split_once(':') else {
            continue;
        };
        let Some((salt, hash)) = rest.split_once('$') else {
            continue;
        };
        if u == user && hmac_hex(salt, pass).eq_ignore_ascii_case(hash) {
            return Some((format!("rpcauth {user}"), user.to_string()));
        }
    }
    None
}

/// Core's `rpcwhitelist`: None when `user` may call anything, else the methods it may call.
/// Lines for one user intersect; `rpcwhitelistdefault` defaults to on once any line exists, and
/// then a user without a line may call nothing (httprpc.cpp, InitRPCAuthentication).
fn whitelist(st: &Settings, user: &str) -> Option<Vec<String>> {
    let lines = st.all("rpcwhitelist");
    let default_on = st
        .get("rpcwhitelistdefault")
        .map_or(!lines.is_empty(), |v| v != "0");
    let mut allowed: Option<Vec<String>> = None;
    for line in &lines {
        let (u, methods) = line.split_once(':').unwrap_or((line.as_str(), ""));
        if u != user {
            continue;
        }
        let these: Vec<String> = methods
            .split([',', ' '])
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        allowed = Some(match allowed {
            None => these,
            Some(prev) => prev.into_iter().filter(|m| these.contains(m)).collect(),
        });
    }
    match allowed {
        Some(a) => Some(a),
        None if default_on => Some(Vec::new()),
        None => None,
    }
}

struct Node {
    peers: crate::p2p::Peers,
    args: Args,
    last_good: Mutex<Settings>,
    cookie: Option<String>,
    started: Instant,
    hang_logged: Mutex<bool>,
}

impl Node {
    fn settings(&self) -> Settings {
        let mut last = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        match Settings::load(&self.args) {
            Ok(s) => *last = s,
            Err(e) => log!("config reload failed, keeping the previous one: {e}"),
        }
        last.clone()
    }

    fn call(&self, st: &Settings, method: &str, params: &Value) -> Result<Value, (i64, String)> {
        if st.datadir.join("standin-warmup").exists() {
            return Err((-28, "Loading block index…".into()));
        }
        let up = self.started.elapsed().as_secs();
        let chain = Chain::of(&st.datadir);
        let arg = |i: usize| match params {
            Value::Arr(a) => a.get(i).cloned(),
            _ => None,
        };
        let block_at =
            |hash: &str| chain::height_of(hash, &chain).ok_or((-5, "Block not found".to_string()));
        let header = |h: u64| {
            obj(vec![
                ("hash", s(&chain::block_hash(h))),
                ("confirmations", num(chain.blocks - h + 1)),
                ("height", num(h)),
                ("version", num(536_870_912)),
                ("merkleroot", s(&chain::coinbase_txid(h))),
                ("time", num(chain.time_of(h))),
                ("mediantime", num(chain.time_of(h.saturating_sub(5)))),
                ("nonce", num(h)),
                ("bits", s("17030ecd")),
                ("difficulty", num("126982285146989.3")),
                ("nTx", num(1)),
                (
                    "previousblockhash",
                    if h == 0 {
                        Value::Null
                    } else {
                        s(&chain::block_hash(h - 1))
                    },
                ),
            ])
        };
        match method {
            "getblockchaininfo" => Ok(obj(vec![
                ("chain", s(&st.chain)),
                ("blocks", num(chain.blocks)),
                ("headers", num(chain.headers)),
                ("bestblockhash", s(&chain::block_hash(chain.blocks))),
                ("difficulty", num("126982285146989.3")),
                ("time", num(chain.time_of(chain.blocks))),
                ("mediantime", num(chain.time_of(chain.blocks.saturating_sub(5)))),
                ("verificationprogress", num(chain.progress())),
                ("initialblockdownload", Value::Bool(chain.ibd)),
                ("chainwork", s("0000000000000000000000000000000000000000b1f3b93b1e4e8bd5f0a1a2a3")),
                ("size_on_disk", num(700_000_000_000u64)),
                ("pruned", Value::Bool(false)),
                ("warnings", Value::Arr(vec![])),
            ])),
            "getnetworkinfo" => Ok(obj(vec![
                ("version", num(310_000)),
                ("subversion", s(&format!("/Satoshi:{VERSION}/"))),
                ("protocolversion", num(70016)),
                ("localservices", s("0000000000000c09")),
                ("localrelay", Value::Bool(true)),
                ("timeoffset", num(0)),
                ("networkactive", Value::Bool(true)),
                ("connections", num(self.peers.lock().map_or(0, |p| p.len()))),
                ("connections_in", num(self.peers.lock().map_or(0, |p| p.len()))),
                ("connections_out", num(0)),
                ("networks", Value::Arr(vec![])),
                ("relayfee", num("0.00001000")),
                ("incrementalfee", num("0.00001000")),
                ("localaddresses", Value::Arr(vec![])),
                ("warnings", Value::Arr(vec![])),
            ])),
            "getblockcount" => Ok(num(chain.blocks)),
            "getbestblockhash" => Ok(s(&chain::block_hash(chain.blocks))),
            "getblockhash" => match arg(0).and_then(|v| v.as_i64()) {
                Some(h) if h >= 0 && (h as u64) <= chain.blocks => Ok(s(&chain::block_hash(h as u64))),
                _ => Err((-8, "Block height out of range".into())),
            },
            "getblockheader" => {
                let hash = arg(0).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let h = block_at(&hash)?;
                if arg(1) == Some(Value::Bool(false)) {
                    Ok(s(&chain::header_hex(h, &chain)))
                } else {
                    Ok(header(h))
                }
            }
            "getblock" => {
                let hash = arg(0).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                let h = block_at(&hash)?;
                let verbosity = match arg(1) {
                    Some(Value::Bool(false)) => 0,
                    Some(v) => v.as_i64().unwrap_or(1),
                    None => 1,
                };
                if verbosity == 0 {
                    // the header, one transaction: a coinbase without inputs' scripts
                    return Ok(s(&format!("{}01{}", chain::header_hex(h, &chain), "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff00ffffffff0100f2052a01000000000000000000")));
                }
                let mut b = header(h);
                if let Value::Obj(fields) = &mut b {
                    fields.push(("size".into(), num(285)));
                    fields.push(("weight".into(), num(1140)));
                    fields.push(("tx".into(), Value::Arr(vec![s(&chain::coinbase_txid(h))])));
                }
                Ok(b)
            }
            "getchaintips" => Ok(Value::Arr(vec![obj(vec![
                ("height", num(chain.headers)),
                ("hash", s(&chain::block_hash(chain.headers))),
                ("branchlen", num(0)),
                ("status", s(if chain.ibd { "headers-only" } else { "active" })),
            ])])),
            "getdifficulty" => Ok(num("126982285146989.3")),
            "getmempoolinfo" => Ok(obj(vec![
                ("loaded", Value::Bool(!chain.ibd)),
                ("size", num(0)),
                ("bytes", num(0)),
                ("usage", num(0)),
                ("total_fee", num("0.00000000")),
                ("maxmempool", num(300_000_000)),
                ("mempoolminfee", num("0.00001000")),
                ("minrelaytxfee", num("0.00001000")),
                ("incrementalrelayfee", num("0.00001000")),
                ("unbroadcastcount", num(0)),
                ("fullrbf", Value::Bool(true)),
            ])),
            "getrawmempool" => Ok(if arg(0) == Some(Value::Bool(true)) { obj(vec![]) } else { Value::Arr(vec![]) }),
            "estimatesmartfee" => {
                let target = arg(0).and_then(|v| v.as_i64()).unwrap_or(6).clamp(1, 1008);
                if chain.ibd {
                    Ok(obj(vec![("errors", Value::Arr(vec![s("Insufficient data or no feerate found")])), ("blocks", num(0))]))
                } else {
                    Ok(obj(vec![("feerate", num("0.00012000")), ("blocks", num(target))]))
                }
            }
            "getindexinfo" => {
                let mut idx = Vec::new();
                if st.get("txindex").is_some_and(|v| v != "0") {
                    idx.push(("txindex", obj(vec![("synced", Value::Bool(!chain.ibd)), ("best_block_height", num(chain.blocks))])));
                }
                Ok(obj(idx))
            }
            "getpeerinfo" => {
                let peers = self.peers.lock().map(|p| p.clone()).unwrap_or_default();
                Ok(Value::Arr(
                    peers
                        .iter()
                        .map(|p| {
                            obj(vec![
                                ("id", num(p.id)),
                                ("addr", s(&p.addr.to_string())),
                                ("version", num(crate::p2p::PROTOCOL_VERSION)),
                                ("subver", s(&p.subver)),
                                ("inbound", Value::Bool(true)),
                                ("startingheight", num(p.start_height)),
                                ("permissions", Value::Arr(if p.noban { vec![s("noban")] } else { vec![] })),
                            ])
                        })
                        .collect(),
                ))
            }
            "getzmqnotifications" => Ok(Value::Arr(
                ["pubrawblock", "pubrawtx", "pubhashblock", "pubhashtx", "pubsequence"]
                    .iter()
                    .flat_map(|t| st.all(&format!("zmq{t}")).into_iter().map(move |a| (t, a)))
                    .map(|(t, a)| obj(vec![("type", s(t)), ("address", s(&a)), ("hwm", num(1000))]))
                    .collect(),
            )),
            "getdeploymentinfo" => Ok(obj(vec![
                ("hash", s(&chain::block_hash(chain.blocks))),
                ("height", num(chain.blocks)),
                ("deployments", obj(vec![("taproot", obj(vec![("type", s("buried")), ("active", Value::Bool(true)), ("height", num(709_632))]))])),
            ])),
            "getmininginfo" => Ok(obj(vec![("blocks", num(chain.blocks)), ("difficulty", num("126982285146989.3")), ("networkhashps", num("9.1e20")), ("chain", s(&st.chain))])),
            "getnettotals" => Ok(obj(vec![("totalbytesrecv", num(0)), ("totalbytessent", num(0)), ("timemillis", num(up * 1000))])),
            "getrawtransaction" => Err((-5, "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.".into())),
            "gettxout" => Ok(Value::Null),
            "sendrawtransaction" | "testmempoolaccept" => Err((-22, "TX decode failed. Make sure the tx has at least one input.".into())),
            "uptime" => Ok(num(up)),
            "stop" => {
                let cookie = st.cookie_path();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(200));
                    let _ = std::fs::remove_file(cookie);
                    log!("Shutdown: done");
                    std::process::exit(0);
                });
                Ok(s("Bitcoin Core stopping"))
            }
            _ => Err((-32601, "Method not found".into())),
        }
    }

    fn one(&self, st: &Settings, req: &Value) -> (u16, Value, String) {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let v2 = req.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
        let Some(method) = req.get("method").and_then(Value::as_str) else {
            let e = obj(vec![
                ("code", num(-32600)),
                ("message", s("Missing method")),
            ]);
            return (
                400,
                obj(vec![("result", Value::Null), ("error", e), ("id", id)]),
                "?".into(),
            );
        };
        let params = req.get("params").cloned().unwrap_or(Value::Arr(vec![]));
        match self.call(st, method, &params) {
            Ok(r) if v2 => (
                200,
                obj(vec![("jsonrpc", s("2.0")), ("result", r), ("id", id)]),
                method.into(),
            ),
            Ok(r) => (
                200,
                obj(vec![("result", r), ("error", Value::Null), ("id", id)]),
                method.into(),
            ),
            Err((code, msg)) => {
                let e = obj(vec![("code", num(code)), ("message", s(&msg))]);
                if v2 {
                    return (
                        200,
                        obj(vec![("jsonrpc", s("2.0")), ("error", e), ("id", id)]),
                        method.into(),
                    );
                }
                let status = match code {
                    -32600 => 400,
                    -32601 => 404,
                    _ => 500,
                };
                (
                    status,
                    obj(vec![("result", Value::Null), ("error", e), ("id", id)]),
                    method.into(),
                )
            }
        }
    }

    fn handle(&self, req: Request) -> Option<Response> {
        let st = self.settings();
        let ip = req.peer.ip();
        if !peer_allowed(&st, ip) {
            log!("[http] {ip}: not allowed by rpcallowip: 403");
            return Some(Response::new(403, "text/plain", ""));
        }
        let hang = st.datadir.join("standin-hang");
        while hang.exists() {
            let mut logged = self.hang_logged.lock().unwrap_or_else(|e| e.into_inner());
            if !*logged {
                log!("[http] {} exists: not answering", hang.display());
                *logged = true;
            }
            drop(logged);
            std::thread::sleep(Duration::from_millis(200));
        }
        *self.hang_logged.lock().unwrap_or_else(|e| e.into_inner()) = false;
        if req.method != "POST" {
            log!("[http] {ip} {} {}: 405", req.method, req.path);
            return Some(Response::new(
                405,
                "text/html",
                "JSONRPC server handles only POST requests",
            ));
        }
        let Some((who, user)) =
            authenticate(&st, self.cookie.as_deref(), req.header("Authorization"))
        else {
            log!("[http] {ip}: incorrect or missing credentials: 401");
            std::thread::sleep(Duration::from_millis(250));
            let mut r = Response::new(401, "text/html", "");
            r.headers
                .push(("WWW-Authenticate".into(), "Basic realm=\"jsonrpc\"".into()));
            return Some(r);
        };
        let body = String::from_utf8_lossy(&req.body);
        let parsed = match json::parse(&body) {
            Ok(v) => v,
            Err(e) => {
                log!("[http] {ip} ({who}): parse error: 500");
                let err = obj(vec![
                    ("code", num(-32700)),
                    ("message", s(&format!("Parse error: {e}"))),
                ]);
                let r = obj(vec![
                    ("result", Value::Null),
                    ("error", err),
                    ("id", Value::Null),
                ]);
                return Some(Response::json(500, &r.compact()));
            }
        };
        if let Some(allowed) = whitelist(&st, &user) {
            let methods: Vec<&str> = match &parsed {
                Value::Arr(batch) => batch
                    .iter()
                    .filter_map(|r| r.get("method").and_then(Value::as_str))
                    .collect(),
                single => single
                    .get("method")
                    .and_then(Value::as_str)
                    .into_iter()
                    .collect(),
            };
            if allowed.is_empty() {
                log!("RPC User {user} not allowed to call any methods");
                return Some(Response::new(403, "text/html", ""));
            }
            if let Some(m) = methods.iter().find(|m| !allowed.iter().any(|a| a == *m)) {
                log!("RPC User {user} not allowed to call method {m}");
                return Some(Response::new(403, "text/html", ""));
            }
        }
        let (status, out, what) = match &parsed {
            Value::Arr(batch) => {
                let replies: Vec<Value> = batch.iter().map(|r| self.one(&st, r).1).collect();
                (
                    200,
                    Value::Arr(replies),
                    format!("batch of {}", batch.len()),
                )
            }
            single => self.one(&st, single),
        };
        log!("[http] {ip} ({who}) {what}: {status}");
        Some(Response::json(status, &out.compact()))
    }
}

pub fn bitcoind(argv: &[String]) -> i32 {
    let args = Args::parse(argv);
    if args.flag("version") {
        println!("Bitcoin Core daemon version v{VERSION} (archy e2e stand-in)");
        return 0;
    }
    if let Some(p) = args.positional.first() {
        // e.g. "bitcoind bitcoind -conf=..." when an entrypoint already names the program
        log!("Error: Command line contains unexpected token '{p}', see bitcoind -h for a list of options.");
        return 1;
    }
    let st = match Settings::load(&args) {
        Ok(s) => s,
        Err(e) => {
            log!("{e}");
            return 1;
        }
    };
    if !st.datadir.is_dir() {
        log!(
            "Error: Specified data directory \"{}\" does not exist.",
            st.datadir.display()
        );
        return 1;
    }
    if st.datadir.join("standin-exit").exists() {
        log!(
            "{} exists: exiting with status 1",
            st.datadir.join("standin-exit").display()
        );
        return 1;
    }
    chain::set_network(&st.chain);
    log!(
        "Bitcoin Core version v{VERSION} (archy e2e stand-in), chain={}",
        st.chain
    );
    log!("Using data directory {}", st.datadir.display());
    log!("Config file: {}", st.conf_path.display());
    if let Err(e) = std::fs::create_dir_all(st.netdir()) {
        log!("Error: creating {}: {e}", st.netdir().display());
        return 1;
    }
    crate::sys::exit_on_signals("Shutdown: done");
    // as Core: a cookie only when no rpcpassword is set
    let mut cookie = None;
    if st.get("rpcpassword").unwrap_or_default().is_empty() {
        let path = st.cookie_path();
        let value = format!("__cookie__:{}", crate::sys::random_hex(32));
        let tmp = path.with_extension("tmp");
        let written = (|| -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(value.as_bytes())?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            log!(
                "Error: Unable to start HTTP server: cannot write cookie {}: {e}",
                path.display()
            );
            return 1;
        }
        crate::sys::remove_on_exit(&path);
        log!("Generated RPC authentication cookie {}", path.display());
        cookie = Some(value);
    }
    // where Core binds: loopback unless both rpcallowip and rpcbind are given
    let port = st.rpcport();
    let allow = st.all("rpcallowip");
    let bind = st.all("rpcbind");
    let mut endpoints: Vec<String> = Vec::new();
    if allow.is_empty() || bind.is_empty() {
        endpoints.push(format!("127.0.0.1:{port}"));
        endpoints.push(format!("[::1]:{port}"));
        if !allow.is_empty() {
            log!("WARNING: option -rpcallowip was specified without -rpcbind; this doesn't usually make sense");
        }
        if !bind.is_empty() {
            log!("WARNING: option -rpcbind was ignored because -rpcallowip was not specified, refusing to allow everyone to connect");
        }
    } else {
        for b in &bind {
            let has_port = if b.starts_with('[') {
                b.contains("]:")
            } else {
                b.matches(':').count() == 1
            };
            endpoints.push(if has_port {
                b.clone()
            } else if b.contains(':') {
                format!("[{b}]:{port}")
            } else {
                format!("{b}:{port}")
            });
        }
    }
    let mut listeners = Vec::new();
    for e in &endpoints {
        match TcpListener::bind(e.as_str()) {
            Ok(l) => {
                log!("Binding RPC on address {e}");
                listeners.push(l);
            }
            Err(err) => log!("Binding RPC on address {e} failed: {err}"),
        }
    }
    if listeners.is_empty() {
        log!("Error: Unable to start HTTP server. See debug log for details.");
        return 1;
    }
    let peers: crate::p2p::Peers = Arc::new(Mutex::new(Vec::new()));
    start_p2p(&st, peers.clone());
    start_zmq(&st);
    let node = Arc::new(Node {
        peers,
        args,
        last_good: Mutex::new(st),
        cookie,
        started: Instant::now(),
        hang_logged: Mutex::new(false),
    });
    for l in listeners {
        let node = node.clone();
        std::thread::spawn(move || http::serve(l, move |r| node.handle(r)));
    }
    log!("init message: Done loading");
    loop {
        std::thread::park();
    }
}

/// The P2P listener, where Core has one: `listen` (default on), `bind` or all addresses, `port`
/// (default by chain). Peers in a `whitelist=[perms@]net` get `noban` (the default permissions).
fn start_p2p(st: &Settings, peers: crate::p2p::Peers) {
    if st.get("listen").is_some_and(|v| v == "0") {
        return;
    }
    let port = st
        .get("port")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| crate::p2p::default_port(&st.chain));
    let addr = st.get("bind").map_or(format!("0.0.0.0:{port}"), |b| {
        if b.contains(':') {
            b
        } else {
            format!("{b}:{port}")
        }
    });
    let listener = match TcpListener::bind(addr.as_str()) {
        Ok(l) => l,
        Err(e) => {
            log!("Error: Unable to bind to {addr} on this computer: {e}");
            return;
        }
    };
    log!("Bound to {addr}");
    let whitelist: Vec<String> = st.all("whitelist");
    let noban = Arc::new(move |ip: IpAddr| {
        whitelist.iter().any(|w| {
            let (perms, net) = w.split_once('@').unwrap_or(("noban", w.as_str()));
            perms.split(',').any(|p| p == "noban" || p == "all") && allowed_by(ip, net)
        })
    });
    let datadir = st.datadir.clone();
    let height = Arc::new(move || Chain::of(&datadir).blocks);
    let magic = crate::p2p::magic(&st.chain);
    std::thread::spawn(move || crate::p2p::serve(listener, magic, peers, noban, height));
}

/// A publisher per `zmqpub*` address (`tcp://host:port`).
fn start_zmq(st: &Settings) {
    for kind in ["rawblock", "rawtx", "hashblock", "hashtx", "sequence"] {
        for a in st.all(&format!("zmqpub{kind}")) {
            let Some(hostport) = a.strip_prefix("tcp://") else {
                log!("Error: zmqpub{kind}={a}: only tcp:// is supported here");
                continue;
            };
            match TcpListener::bind(hostport) {
                Ok(l) => {
                    log!("zmq: Outbound message high water mark for pub{kind} at {a} is 1000");
                    let what = format!("pub{kind}");
                    std::thread::spawn(move || crate::zmq::publish(l, what));
                }
                Err(e) => log!("Error: zmq: Failed to bind address {a}: {e}"),
            }
        }
    }
}

fn json_param(p: &str) -> Value {
    match json::parse(p) {
        Ok(v @ (Value::Num(_) | Value::Bool(_) | Value::Null | Value::Arr(_) | Value::Obj(_))) => v,
        _ => Value::Str(p.to_string()),
    }
}

pub fn cli(argv: &[String]) -> i32 {
    let args = Args::parse(argv);
    if args.flag("version") {
        println!("Bitcoin Core RPC client version v{VERSION} (archy e2e stand-in)");
        return 0;
    }
    let st = match Settings::load(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let Some(method) = args.positional.first() else {
        eprintln!("error: too few parameters (need at least command)");
        return 1;
    };
    let params: Vec<Value> = args.positional[1..].iter().map(|p| json_param(p)).collect();
    let mut host = st.get("rpcconnect").unwrap_or_else(|| "127.0.0.1".into());
    let mut port = st.rpcport();
    if let Some((h, p)) = host.rsplit_once(':') {
        if let Ok(p) = p.parse() {
            if !h.contains(':') || h.ends_with(']') {
                port = p;
                host = h.trim_matches(|c| c == '[' || c == ']').to_string();
            }
        }
    }
    let timeout = match st
        .get("rpcclienttimeout")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(900)
    {
        0 => None,
        n => Some(Duration::from_secs(n)),
    };
    let password = st.get("rpcpassword").unwrap_or_default();
    let userpass = if password.is_empty() {
        match std::fs::read_to_string(st.cookie_path()) {
            Ok(c) => c.trim().to_string(),
            Err(_) => {
                eprintln!(
                    "error: Could not locate RPC credentials. No authentication cookie could be found, and RPC password is not set.  See -rpcpassword and -stdinrpcpass.  Configuration file: ({})",
                    st.conf_path.display()
                );
                return 1;
            }
        }
    } else {
        format!("{}:{password}", st.get("rpcuser").unwrap_or_default())
    };
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(userpass)
    );
    let body = obj(vec![
        ("jsonrpc", s("1.0")),
        ("id", num(1)),
        ("method", s(method)),
        ("params", Value::Arr(params)),
    ])
    .compact();
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let wait_until = args.flag("rpcwait").then(|| {
        let t = args
            .get("rpcwaittimeout")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        (t > 0).then(|| Instant::now() + Duration::from_secs(t))
    });
    let reply = loop {
        let headers = [
            ("Authorization", auth.clone()),
            ("Content-Type", "application/json".to_string()),
        ];
        match http::request(&addr, "POST", "/", &headers, &body, timeout) {
            Ok(r) => break r,
            Err(e) => {
                let retry = match wait_until {
                    Some(None) => true,
                    Some(Some(deadline)) => Instant::now() < deadline,
                    None => false,
                };
                if retry && !e.contains("timeout") {
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                eprintln!(
                    "error: Could not connect to the server {host}:{port} ({e})\n\nMake sure the bitcoind server is running and that you are connecting to the correct RPC port."
                );
                return 1;
            }
        }
    };
    match reply.status {
        401 => {
            eprintln!("error: Authorization failed: Incorrect rpcuser or rpcpassword");
            return 1;
        }
        400 | 404 | 500 | 200 => {}
        other => {
            eprintln!("error: server returned HTTP error {other}");
            return 1;
        }
    }
    if reply.body.trim().is_empty() {
        eprintln!("error: no response from server");
        return 1;
    }
    let Ok(v) = json::parse(reply.body.trim()) else {
        eprintln!("error: couldn't parse reply from server");
        return 1;
    };
    if let Some(err) = v.get("error").filter(|e| **e != Value::Null) {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(-1);
        let msg = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        eprintln!("error code: {code}\nerror message:\n{msg}");
        return i32::try_from(code.unsigned_abs()).unwrap_or(1);
    }
    match v.get("result") {
        Some(Value::Null) | None => {}
        Some(Value::Str(s)) => println!("{s}"),
        Some(r) => println!("{}", r.pretty(2)),
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(conf: &str, args: &[&str]) -> Settings {
        let args = Args::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        Settings {
            args,
            conf: Ini::parse(conf),
            chain: "main".into(),
            datadir: "/d".into(),
            conf_path: "/c".into(),
        }
    }

    #[test]
    fn hmac_is_rfc4231_case_2() {
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rpcauth_cookie_and_rpcuser() {
        let salt = "cb77f0957de88ff388cf817ddbc7273";
        let h = hmac_hex(salt, "secret");
        let st = settings(
            &format!("rpcauth=alice:{salt}${h}\nrpcuser=bob\nrpcpassword=pw\n"),
            &[],
        );
        let basic = |up: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(up)
            )
        };
        let check = |up: &str| authenticate(&st, Some("__cookie__:c0ffee"), Some(&basic(up)));
        assert_eq!(
            check("alice:secret").map(|c| c.0).as_deref(),
            Some("rpcauth alice")
        );
        assert_eq!(check("alice:wrong"), None);
        assert_eq!(check("bob:pw").map(|c| c.1).as_deref(), Some("bob"));
        assert_eq!(
            check("__cookie__:c0ffee").map(|c| c.1).as_deref(),
            Some("__cookie__")
        );
        assert_eq!(check("__cookie__:other"), None);
        assert_eq!(authenticate(&st, None, None), None);
    }

    #[test]
    fn network_only_options_need_their_section_off_mainnet() {
        let mut st = settings("rpcport=1234\n[regtest]\nrpcbind=0.0.0.0\n", &[]);
        assert_eq!(st.rpcport(), 1234);
        st.chain = "regtest".into();
        assert_eq!(st.rpcport(), 18443);
        assert_eq!(st.all("rpcbind"), vec!["0.0.0.0".to_string()]);
    }

    #[test]
    fn whitelists_as_core_applies_them() {
        let st = settings(
            "rpcwhitelist=ui:getblockchaininfo,uptime\nrpcwhitelist=ui:uptime getpeerinfo\n",
            &[],
        );
        assert_eq!(whitelist(&st, "ui"), Some(vec!["uptime".to_string()]));
        // any whitelist line makes the default an empty whitelist for everyone else
        assert_eq!(whitelist(&st, "archy"), Some(vec![]));
        let st = settings("rpcwhitelist=ui:uptime\nrpcwhitelistdefault=0\n", &[]);
        assert_eq!(whitelist(&st, "archy"), None);
        assert_eq!(whitelist(&settings("", &[]), "archy"), None);
        assert_eq!(
            whitelist(&settings("rpcwhitelistdefault=1\n", &[]), "x"),
            Some(vec![])
        );
    }

    #[test]
    fn allowip() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(allowed_by(ip("10.89.42.7"), "10.89.0.0/16"));
        assert!(allowed_by(ip("10.89.42.7"), "10.89.42.0/255.255.255.0"));
        assert!(!allowed_by(ip("10.88.0.2"), "10.89.0.0/16"));
        assert!(allowed_by(ip("10.88.0.2"), "0.0.0.0/0"));
        assert!(allowed_by(ip("::ffff:10.89.42.7"), "10.89.42.7"));
    }
}
