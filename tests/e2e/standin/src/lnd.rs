//! lnd and lncli, as far as archy sees them.
//!
//! lnd: `--configfile=FILE` (ini; a missing file is fine, as for lnd), needs exactly one of
//! bitcoin.mainnet/testnet/testnet4/signet/regtest (else exits 1, as lnd does) and talks to
//! bitcoind only with bitcoin.node=bitcoind. Every 2 s it re-reads the file and calls
//! getblockchaininfo at bitcoind.rpchost with bitcoind.rpcuser/rpcpass; the state is
//! SERVER_ACTIVE while that works and it is subscribed to bitcoind.zmqpubrawblock and
//! bitcoind.zmqpubrawtx (ZMTP, as lnd's gozmq), WAITING_TO_START otherwise. (Real lnd reads its config once
//! and has a wallet to unlock; neither is modelled.) It serves the state on rpclisten (default
//! localhost:10009, always TLS) and restlisten (default localhost:8080, TLS unless no-rest-tls,
//! which it refuses on a public address, as lnd) with its self-signed tls.cert (see tls.rs):
//! GET /v1/state, GET /v1/getinfo. Test hook: `standin-exit` in the lnd dir makes it exit 1 at start.
//! lncli: `state` and `getinfo` against --rpcserver (default localhost:10009).

use crate::conf::{Args, Ini};
use crate::http::{self, Response};
use crate::json::{obj, s, Value};
use crate::log;
use base64::Engine as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

fn state_json(active: bool) -> Value {
    obj(vec![(
        "state",
        s(if active {
            "SERVER_ACTIVE"
        } else {
            "WAITING_TO_START"
        }),
    )])
}

#[derive(PartialEq, Clone, Debug)]
enum Poll {
    Connected,
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
        Ok(r) if r.status == 200 => Poll::Connected,
        Ok(r) => Poll::Failed(format!("{addr}: HTTP {}", r.status)),
        Err(e) => Poll::Failed(e),
    }
}

pub fn lnd(argv: &[String]) -> i32 {
    let args = Args::parse_anywhere(argv, &["configfile", "lnddir", "C"]);
    let mut args = args;
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
    let _ = std::fs::create_dir_all(&dir);
    crate::sys::exit_on_signals("[INF] LTND: Shutdown complete");
    log!("[INF] LTND: Version: {VERSION} commit=archy-e2e-stand-in, network={network}");
    let active = Arc::new(AtomicBool::new(false));
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
                let active = active.clone();
                let handler = move |req: http::Request| {
                    let a = active.load(Ordering::SeqCst);
                    let body = match req.path.as_str() {
                        "/v1/state" => state_json(a),
                        "/v1/getinfo" => obj(vec![
                            ("version", s(VERSION)),
                            ("synced_to_chain", Value::Bool(a)),
                            ("block_height", crate::json::num(900_000)),
                        ]),
                        _ => {
                            return Some(Response::json(404, r#"{"code":5,"message":"Not Found"}"#))
                        }
                    };
                    Some(Response::json(200, &body.compact()))
                };
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
    let mut last: Option<Poll> = None;
    // the ZMQ subscriptions btcwallet's bitcoind connection makes (chain/bitcoind_conn.go):
    // blocks and transactions reach lnd only through them (bitcoind.rpcpolling is not modelled)
    let mut zmq: Option<(std::net::TcpStream, std::net::TcpStream)> = None;
    loop {
        let conf = Conf::load(&args);
        let backend = conf.get("bitcoin.node").unwrap_or_else(|| "btcd".into());
        let mut now = if backend == "bitcoind" {
            poll(&conf, &network)
        } else {
            Poll::Failed(format!("bitcoin.node={backend}: only bitcoind is modelled"))
        };
        if now == Poll::Connected && zmq.is_none() {
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
        if last.as_ref() != Some(&now) {
            match &now {
                Poll::Connected => log!("[INF] LNWL: connected to bitcoind; server active"),
                Poll::Rejected => log!("[ERR] LNWL: bitcoind rejected credentials (401)"),
                Poll::Failed(e) => log!("[ERR] LNWL: unable to use bitcoind: {e}"),
            }
        }
        active.store(now == Poll::Connected, Ordering::SeqCst);
        last = Some(now);
        std::thread::sleep(Duration::from_secs(2));
    }
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

pub fn lncli(argv: &[String]) -> i32 {
    let args = Args::parse_anywhere(
        argv,
        &[
            "rpcserver",
            "network",
            "n",
            "lnddir",
            "macaroonpath",
            "tlscertpath",
            "chain",
            "c",
        ],
    );
    let server = listen_addr(args.get("rpcserver").unwrap_or("localhost:10009"), 10009);
    let path = match args.positional.first().map(String::as_str) {
        Some("state") => "/v1/state",
        Some("getinfo") => "/v1/getinfo",
        Some(other) => {
            eprintln!("[lncli] the stand-in knows only `state` and `getinfo`, not {other:?}");
            return 1;
        }
        None => {
            eprintln!("[lncli] usage: lncli [--rpcserver=HOST:PORT] state|getinfo");
            return 1;
        }
    };
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let lnddir = args
        .get("lnddir")
        .map_or(format!("{home}/.lnd"), str::to_string);
    let cert_path = args
        .get("tlscertpath")
        .map_or(format!("{lnddir}/tls.cert"), str::to_string);
    let cert = match std::fs::read_to_string(&cert_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("[lncli] could not load TLS cert file: open {cert_path}: {e}");
            return 1;
        }
    };
    match crate::tls::request(&server, &cert, "GET", path, "", Duration::from_secs(10)) {
        Ok(r) if r.status == 200 => match crate::json::parse(r.body.trim()) {
            Ok(v) => {
                println!("{}", v.pretty(4));
                0
            }
            Err(e) => {
                eprintln!("[lncli] rpc error: malformed reply: {e}");
                1
            }
        },
        Ok(r) => {
            eprintln!("[lncli] rpc error: code = Unknown desc = HTTP {}", r.status);
            1
        }
        Err(e) => {
            eprintln!(
                "[lncli] rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp {server}: {e}\""
            );
            1
        }
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
