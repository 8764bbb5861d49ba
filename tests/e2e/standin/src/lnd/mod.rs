//! lnd, as far as archy and its peers see it (lightningnetwork/lnd v0.21.2-beta).
//!
//! Options: `--configfile=FILE` (ini; a missing file is fine), exactly one of
//! bitcoin.mainnet/testnet/testnet4/signet/regtest (else exit 1, config.go), bitcoin.node
//! (bitcoind is modelled; `nochainbackend` starts without one), bitcoind.rpc* and both
//! bitcoind.zmqpub* addresses, rpclisten/restlisten, no-rest-tls (refused on a public address:
//! lncfg.EnforceSafeAuthentication), tlsextradomain/tlsextraip, backupfilepath,
//! no-backup-archive, wallet-unlock-password-file and wallet-unlock-allow-create.
//!
//! The wallet and its states (lnrpc/stateservice.proto; config_builder.go, lnd.go):
//! - no wallet: NON_EXISTING, waiting for genseed + initwallet over RPC; with a password file but
//!   without allow-create lnd exits: "wallet unlock password file was specified but wallet does
//!   not exist; initialize the wallet before using auto unlocking"; the file must exist at start
//!   ("wallet unlock password file %s does not exist"), allow-create needs it;
//! - a wallet: with the password file, lnd unlocks itself (the file's trailing CR/LF trimmed; a
//!   wrong password is fatal: "error unlocking wallet with password from file"), else LOCKED,
//!   waiting for unlockwallet (which the password file disables);
//! - unlocked: UNLOCKED, then RPC_ACTIVE once the RPC server runs, then "Waiting for chain
//!   backend to finish sync" until the wallet is synced: bitcoind answers, both ZMQ feeds are
//!   subscribed (chain/bitcoind_conn.go) and its tip is less than 2 hours old
//!   (lnwallet/btcwallet IsSynced): SERVER_ACTIVE, from then on. During bitcoind's initial sync
//!   lnd stays RPC_ACTIVE.
//!
//! The API: see api.rs. Not modelled: gRPC proper (the RPC port serves the REST API over TLS, for
//! the stand-in lncli), channels beyond the backup file, the graph, payments.
//!
//! Test hooks, files in the lnd dir: `standin-exit` (exit 1 at start), `standin-open-channel`
//! (once SERVER_ACTIVE: a channel is opened, channel.backup rewritten, the file removed),
//! `standin-graph-sync` (seconds, read on turning SERVER_ACTIVE: getinfo's `synced_to_graph`
//! stays false that long, as while lnd fetches the channel graph from its peers; default 0).

mod api;
mod cli;
mod wallet;

pub use cli::lncli;

use crate::conf::{Args, Ini};
use crate::http::{self};
use crate::json::{num, obj, s, Value};
use crate::log;
use base64::Engine as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wallet::Wallet;

const VERSION: &str = "0.21.2-beta";

fn lnddir(args: &Args) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    PathBuf::from(
        args.get("lnddir")
            .map_or(format!("{home}/.lnd"), str::to_string),
    )
}

struct Conf {
    ini: Ini,
    args: Args,
}

impl Conf {
    fn load(args: &Args) -> Conf {
        let path = args
            .get("configfile")
            .map_or(lnddir(args).join("lnd.conf"), PathBuf::from);
        let ini = Ini::read(&path).unwrap_or_default();
        Conf {
            ini,
            args: args.clone(),
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.args
            .get(key)
            .map(str::to_string)
            .or_else(|| self.ini.any_section_last(key))
    }

    fn on(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| !matches!(v.as_str(), "0" | "false"))
    }
}

/// "localhost:10009" -> "127.0.0.1:10009": one listener on IPv4 loopback, as clients expect.
fn listen_addr(spec: &str, default_port: u16) -> String {
    let spec = spec.trim();
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_string(), p.to_string()),
        _ => (spec.to_string(), default_port.to_string()),
    };
    let host = match host.as_str() {
        "" | "localhost" => "127.0.0.1".to_string(),
        h => h.to_string(),
    };
    format!("{host}:{port}")
}

#[derive(PartialEq, Clone, Debug)]
enum Poll {
    /// the tip's height and time
    Connected(u64, u64),
    Rejected,
    Failed(String),
}

fn poll(conf: &Conf, network: &str) -> Poll {
    let default_port = match network {
        "testnet" => 18332,
        "testnet4" => 48332,
        "signet" => 38332,
        "regtest" => 18443,
        _ => 8332,
    };
    let host = conf
        .get("bitcoind.rpchost")
        .unwrap_or_else(|| "localhost".into());
    let addr = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host
    } else {
        format!("{host}:{default_port}")
    };
    let user = conf.get("bitcoind.rpcuser").unwrap_or_default();
    let pass = conf.get("bitcoind.rpcpass").unwrap_or_default();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    let body = r#"{"jsonrpc":"1.0","id":"lnd","method":"getblockchaininfo","params":[]}"#;
    let headers = [
        ("Authorization", auth),
        ("Content-Type", "application/json".to_string()),
    ];
    match http::request(
        &addr,
        "POST",
        "/",
        &headers,
        body,
        Some(Duration::from_secs(5)),
    ) {
        Ok(r) if r.status == 401 => Poll::Rejected,
        Ok(r) if r.status == 200 => {
            let v = crate::json::parse(r.body.trim()).unwrap_or(Value::Null);
            let res = v.get("result").cloned().unwrap_or(Value::Null);
            let h = res.get("blocks").and_then(Value::as_i64).unwrap_or(0) as u64;
            let t = res.get("time").and_then(Value::as_i64).unwrap_or(0) as u64;
            Poll::Connected(h, t)
        }
        Ok(r) => Poll::Failed(format!("{addr}: HTTP {}", r.status)),
        Err(e) => Poll::Failed(e),
    }
}

/// The wallet states lnd reports (lnrpc.WalletState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletState {
    NonExisting,
    Locked,
    Unlocked,
    RpcActive,
    ServerActive,
}

impl WalletState {
    pub fn name(self) -> &'static str {
        match self {
            WalletState::NonExisting => "NON_EXISTING",
            WalletState::Locked => "LOCKED",
            WalletState::Unlocked => "UNLOCKED",
            WalletState::RpcActive => "RPC_ACTIVE",
            WalletState::ServerActive => "SERVER_ACTIVE",
        }
    }
}

pub struct Node {
    state: Mutex<WalletState>,
    wallet: Wallet,
    network: String,
    unlock_by_file: bool,
    seeds_offered: Mutex<Vec<Vec<String>>>,
    channels: AtomicU64,
    height: AtomicU64,
    synced: std::sync::atomic::AtomicBool,
    /// when the channel graph counts as synced (set on turning SERVER_ACTIVE)
    graph_synced_at: Mutex<Option<std::time::Instant>>,
}

impl Node {
    fn state(&self) -> WalletState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, s: WalletState) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if *st != s {
            log!("[INF] LTND: wallet state: {} -> {}", st.name(), s.name());
            *st = s;
        }
    }

    fn offered(&self, words: &[String]) {
        self.seeds_offered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(words.to_vec());
    }

    fn unlocked(&self) {
        self.set(WalletState::Unlocked);
    }

    fn getinfo(&self) -> Value {
        let synced = self.synced.load(Ordering::SeqCst);
        let graph = self
            .graph_synced_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| std::time::Instant::now() >= at);
        obj(vec![
            (
                "version",
                s(&format!("{VERSION} commit=archy-e2e-stand-in")),
            ),
            ("identity_pubkey", s(&self.wallet.identity())),
            ("alias", s(&self.wallet.identity()[..20])),
            (
                "num_active_channels",
                num(self.channels.load(Ordering::SeqCst)),
            ),
            ("num_peers", num(0)),
            ("block_height", num(self.height.load(Ordering::SeqCst))),
            ("synced_to_chain", Value::Bool(synced)),
            ("synced_to_graph", Value::Bool(graph)),
            (
                "chains",
                Value::Arr(vec![obj(vec![
                    ("chain", s("bitcoin")),
                    ("network", s(&self.network)),
                ])]),
            ),
        ])
    }
}

pub fn lnd(argv: &[String]) -> i32 {
    let mut args = Args::parse_anywhere(argv, &["configfile", "lnddir", "C"]);
    if let Some(c) = args.get("C").map(str::to_string) {
        args.opts.push(("configfile".into(), c));
    }
    if args.flag("version") || args.flag("V") {
        println!("lnd version {VERSION} commit=archy-e2e-stand-in");
        return 0;
    }
    let dir = lnddir(&args);
    if dir.join("standin-exit").exists() {
        log!(
            "{} exists: exiting with status 1",
            dir.join("standin-exit").display()
        );
        return 1;
    }
    let conf = Conf::load(&args);
    let nets: Vec<&str> = [
        "mainnet", "testnet", "testnet4", "signet", "regtest", "simnet",
    ]
    .into_iter()
    .filter(|n| conf.on(&format!("bitcoin.{n}")))
    .collect();
    if nets.len() != 1 {
        log!("[ERR] LTND: either --bitcoin.mainnet, or --bitcoin.testnet, --bitcoin.testnet4, --bitcoin.simnet, --bitcoin.regtest or --bitcoin.signet must be specified");
        return 1;
    }
    let network = nets[0].to_string();
    // the password file (config.go validation, config_builder.go)
    let pw_file = conf.get("wallet-unlock-password-file");
    let allow_create = conf.on("wallet-unlock-allow-create");
    if allow_create && pw_file.is_none() {
        log!("[ERR] LTND: wallet-unlock-allow-create requires wallet-unlock-password-file");
        return 1;
    }
    if let Some(f) = &pw_file {
        if !std::path::Path::new(f).exists() {
            log!("[ERR] LTND: wallet unlock password file {f} does not exist");
            return 1;
        }
    }
    let _ = std::fs::create_dir_all(&dir);
    crate::sys::exit_on_signals("[INF] LTND: Shutdown complete");
    log!("[INF] LTND: Version: {VERSION} commit=archy-e2e-stand-in, network={network}");
    let wallet = Wallet::at(
        &dir,
        if network == "testnet" {
            "testnet"
        } else {
            &network
        },
    );
    let initial = if wallet.exists() {
        match &pw_file {
            Some(f) => {
                let pw = std::fs::read(f).unwrap_or_default();
                let pw = pw.strip_suffix(b"\n").unwrap_or(&pw);
                let pw = pw.strip_suffix(b"\r").unwrap_or(pw);
                if let Err(e) = wallet.unlock(pw) {
                    log!("[ERR] LTND: error unlocking wallet with password from file: {e}");
                    return 1;
                }
                if let Err(e) = wallet.ensure_macaroons(true) {
                    log!("[ERR] LTND: unable to create macaroons: {e}");
                    return 1;
                }
                log!("[INF] LNWL: Opened wallet");
                WalletState::Unlocked
            }
            None => {
                log!("[INF] LTND: Waiting for wallet encryption password. Use `lncli create` to create a wallet, `lncli unlock` to unlock an existing wallet, or `lncli changepassword` to change the password of an existing wallet and unlock it.");
                WalletState::Locked
            }
        }
    } else {
        if pw_file.is_some() && !allow_create {
            log!("[ERR] LTND: wallet unlock password file was specified but wallet does not exist; initialize the wallet before using auto unlocking");
            return 1;
        }
        log!("[INF] LTND: Waiting for wallet encryption password. Use `lncli create` to create a wallet, `lncli unlock` to unlock an existing wallet, or `lncli changepassword` to change the password of an existing wallet and unlock it.");
        WalletState::NonExisting
    };
    let node = Arc::new(Node {
        state: Mutex::new(initial),
        wallet,
        network: network.clone(),
        unlock_by_file: pw_file.is_some() && initial != WalletState::NonExisting,
        seeds_offered: Mutex::new(Vec::new()),
        channels: AtomicU64::new(0),
        height: AtomicU64::new(0),
        synced: std::sync::atomic::AtomicBool::new(false),
        graph_synced_at: Mutex::new(None),
    });
    let rpc = listen_addr(
        &conf
            .get("rpclisten")
            .unwrap_or_else(|| "localhost:10009".into()),
        10009,
    );
    let rest = listen_addr(
        &conf
            .get("restlisten")
            .unwrap_or_else(|| "localhost:8080".into()),
        8080,
    );
    // TLS always on gRPC, on REST unless no-rest-tls, which lnd refuses on an address that is
    // neither loopback nor private (lncfg.EnforceSafeAuthentication): 0.0.0.0 is neither
    let rest_tls = !conf.on("no-rest-tls");
    if !rest_tls && !is_safe_without_tls(&rest) {
        log!("[ERR] LTND: detected RPC server listening on publicly reachable interface {rest} with encryption disabled! Refusing to start with --no-rest-tls specified.");
        return 1;
    }
    let all = |k: &str| {
        conf.args
            .all(k)
            .into_iter()
            .chain(
                conf.ini
                    .sections
                    .values()
                    .flat_map(|s| s.get(k).cloned().unwrap_or_default()),
            )
            .collect::<Vec<_>>()
    };
    let (cert, key) =
        match crate::tls::ensure_cert(&dir, &all("tlsextradomain"), &all("tlsextraip")) {
            Ok(ck) => ck,
            Err(e) => {
                log!("[ERR] LTND: unable to load TLS credentials: {e}");
                return 1;
            }
        };
    for (what, addr, tls) in [("RPC", rpc, true), ("REST", rest, rest_tls)] {
        match TcpListener::bind(addr.as_str()) {
            Ok(l) => {
                log!("[INF] RPCS: {what} server listening on {addr}");
                let node = node.clone();
                let handler = move |req: http::Request| api::handle(&node, req);
                if tls {
                    if let Err(e) = crate::tls::serve(l, &cert, &key, handler) {
                        log!("[ERR] RPCS: {what}: TLS: {e}");
                        return 1;
                    }
                } else {
                    std::thread::spawn(move || http::serve(l, handler));
                }
            }
            Err(e) => {
                log!("[ERR] RPCS: unable to listen on {addr}: {e}");
                return 1;
            }
        }
    }
    let backend = conf.get("bitcoin.node").unwrap_or_else(|| "btcd".into());
    let backup = node.wallet.backup_path(conf.get("backupfilepath"));
    let archive = !conf.on("no-backup-archive");
    let mut last: Option<Poll> = None;
    // the ZMQ subscriptions btcwallet's bitcoind connection makes (chain/bitcoind_conn.go):
    // blocks and transactions reach lnd only through them (bitcoind.rpcpolling is not modelled)
    let mut zmq: Option<(std::net::TcpStream, std::net::TcpStream)> = None;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        match node.state() {
            WalletState::NonExisting | WalletState::Locked => continue,
            WalletState::Unlocked => {
                // the RPC server starts once the wallet is open
                node.set(WalletState::RpcActive);
                if backend == "nochainbackend" {
                    log!("[INF] LTND: no chain backend: the wallet is open, nothing else runs");
                }
                log!(
                    "[INF] LTND: Waiting for chain backend to finish sync, start_height={}",
                    node.height.load(Ordering::SeqCst)
                );
                continue;
            }
            _ => {}
        }
        if backend == "nochainbackend" {
            continue;
        }
        let conf = Conf::load(&args);
        let mut now = if backend == "bitcoind" {
            poll(&conf, &network)
        } else {
            Poll::Failed(format!("bitcoin.node={backend}: only bitcoind is modelled"))
        };
        if matches!(now, Poll::Connected(..)) && zmq.is_none() {
            let block = conf.get("bitcoind.zmqpubrawblock").unwrap_or_default();
            let tx = conf.get("bitcoind.zmqpubrawtx").unwrap_or_default();
            let t = Duration::from_secs(5);
            zmq = match (
                crate::zmq::subscribe(&block, "rawblock", t),
                crate::zmq::subscribe(&tx, "rawtx", t),
            ) {
                (Ok(b), Ok(x)) => Some((b, x)),
                (Err(e), _) => {
                    now = Poll::Failed(format!("unable to subscribe for zmq block events: {e}"));
                    None
                }
                (_, Err(e)) => {
                    now = Poll::Failed(format!("unable to subscribe for zmq tx events: {e}"));
                    None
                }
            };
        }
        if let Poll::Connected(height, tip_time) = now {
            node.height.store(height, Ordering::SeqCst);
            let fresh = tip_time + 2 * 3600 > unix_now();
            node.synced.store(fresh, Ordering::SeqCst);
            if fresh && node.state() == WalletState::RpcActive {
                log!("[INF] LTND: Chain backend is fully synced (end_height={height})!");
                let graph_secs = std::fs::read_to_string(dir.join("standin-graph-sync"))
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                *node
                    .graph_synced_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) =
                    Some(std::time::Instant::now() + Duration::from_secs(graph_secs));
                node.set(WalletState::ServerActive);
            }
        }
        if last.as_ref().map(std::mem::discriminant) != Some(std::mem::discriminant(&now)) {
            match &now {
                Poll::Connected(h, t) if t + 2 * 3600 <= unix_now() => {
                    log!("[INF] LNWL: connected to bitcoind; its tip {h} is more than 2 hours old: waiting for it to sync")
                }
                Poll::Connected(..) => log!("[INF] LNWL: connected to bitcoind; server active"),
                Poll::Rejected => log!("[ERR] LNWL: bitcoind rejected credentials (401)"),
                Poll::Failed(e) => log!("[ERR] LNWL: unable to use bitcoind: {e}"),
            }
        }
        last = Some(now);
        if node.state() == WalletState::ServerActive && dir.join("standin-open-channel").exists() {
            let n = node.channels.fetch_add(1, Ordering::SeqCst) + 1;
            log!("[INF] CHBU: Updating on-disk multi SCB backup: num_old_chans={}, num_new_chans={n}", n - 1);
            if let Err(e) = node.wallet.write_backup(&backup, n, archive) {
                log!("[ERR] CHBU: unable to update backup file: {e}");
            }
            let _ = std::fs::remove_file(dir.join("standin-open-channel"));
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Loopback or a private address: where lnd allows REST without TLS.
fn is_safe_without_tls(addr: &str) -> bool {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_matches(|c| c == '[' || c == ']');
    if host.contains("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(listen_addr("localhost:10009", 1), "127.0.0.1:10009");
        assert_eq!(listen_addr("0.0.0.0", 8080), "0.0.0.0:8080");
    }

    #[test]
    fn options_anywhere() {
        let a: Vec<String> = ["lnd", "--configfile=/etc/lnd/lnd.conf"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let args = Args::parse_anywhere(&a, &[]);
        assert_eq!(args.get("configfile"), Some("/etc/lnd/lnd.conf"));
        assert_eq!(args.positional, vec!["lnd".to_string()]);
    }
}
