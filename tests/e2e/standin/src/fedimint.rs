//! fedimintd 0.11.1 (docker.io/fedimint/fedimintd:v0.11.1), as archy and its peers see it.
//! Read in the crates.io sources of 0.11.1 (built from fedimint/fedimint 2620789610a2):
//!
//! - Options (fedimintd src/lib.rs `ServerOpts`; env names fedimintd-envs src/lib.rs): clap
//!   flags with env fallbacks, `--data-dir`/FM_DATA_DIR required; FM_BITCOIN_NETWORK (regtest)
//!   parsed as rust-bitcoin does (bitcoin 0.32.8 src/network.rs: bitcoin, testnet, testnet4,
//!   signet, regtest; "mainnet" is "failed to parse mainnet as network"); one of
//!   FM_BITCOIND_URL / FM_ESPLORA_URL; a bitcoind URL needs FM_BITCOIND_USERNAME and exactly
//!   one of FM_BITCOIND_PASSWORD / FM_BITCOIND_URL_PASSWORD_FILE (ArgGroups); binds FM_BIND_P2P
//!   (0.0.0.0:8173), FM_BIND_API (0.0.0.0:8174), FM_BIND_UI (127.0.0.1:8175), FM_BIND_METRICS
//!   (127.0.0.1:8176). Errors are clap's: "error: ..." on stderr, exit 2. `--version`,
//!   `version-hash` (fedimint-core src/util/mod.rs `handle_version_hash_command`).
//! - Start (fedimintd src/lib.rs `run`): "Starting fedimintd (version: ...)", the metrics
//!   server, the database (`<data-dir>/database`, RocksDB upstream: its directory created
//!   without parents and locked; failures panic on the main thread, exit 101), the bitcoind
//!   client: the password file read and `.trim()`med (unreadable: panic "Failed to get bitcoind
//!   url: Failed to read the password", exit 101), auth stripped from the URL, credentials as
//!   Basic auth, and the host resolved once, now (jsonrpc 0.18 src/http/simple_http.rs
//!   `check_url`): a name that does not resolve panics (exit 101), and a bitcoind that comes
//!   back on another address is not followed. No RPC is made before guardian setup.
//! - Before setup (no `password.private`; fedimint-server src/lib.rs `get_config`,
//!   `run_config_gen`): "Starting config gen", the setup API on FM_BIND_API ("Starting http api
//!   on ws://..."), the setup UI on FM_BIND_UI ("Setup UI running at http://... 🚀"); 8173 is
//!   not bound. The setup UI (fedimint-server-ui src/setup.rs, fedimint-ui-common src/lib.rs,
//!   src/auth.rs): `GET /` the unauthenticated form (name, password, is_lead, federation_name,
//!   federation_size, enable_base_fees, enabled_modules), `POST /` with SetupApi's checks
//!   (fedimint-server src/config/setup.rs `set_local_parameters`: names, password whitespace,
//!   size 1 or >= 4, "Api URL must be configured" / "P2P URL must be configured" without
//!   Iroh), `/login` (303 to / until the form is done; then the password sets an HttpOnly
//!   cookie), `/federation_setup`, `/add_setup_code`, `/reset_setup_codes`, `/start_dkg`
//!   (cookie-authenticated, else 303 /login), `/ui/connectivity-check`, `/assets/*`.
//! - Setup (one guardian only, the "1 — Testing" size): the servers stop, "Running config
//!   generation for module of kind ..." for the enabled modules (default ln, lnv2, meta, mint,
//!   wallet: each module crate's `is_enabled_by_default`), then `password.private` (the
//!   password, plaintext), `private.salt`, `local.json`, `consensus.json`, `client.json`,
//!   `invite-code`, `private.encrypt` (fedimint-server src/config/io.rs; their content here is
//!   the stand-in's own).
//! - After setup (fedimint-server src/consensus/mod.rs `run`; fedimint-server-core
//!   src/bitcoin_rpc.rs `ServerBitcoinRpcMonitor`): the bitcoin monitor polls now and every
//!   minute: getblockhash 1 (the chain id: mainnet, testnet3, signet by their block-1 hash,
//!   anything else is regtest), getblockcount, getblockchaininfo (verificationprogress),
//!   estimatesmartfee 1 CONSERVATIVE off regtest; a failure logs WARN "Bitcoin status update
//!   failed err=JSON-RPC error: transport error: unexpected HTTP code: 401" (jsonrpc 0.18,
//!   bitcoincore-rpc 0.19 error texts). The wallet module's init (fedimint-wallet-server
//!   src/lib.rs `Wallet::new`) retries "verify network" with fedimint-core's aggressive backoff
//!   (200 ms .. 5 s, 14 retries, about 41 s), then fails: "No connection to bitcoin rpc", or
//!   "Wrong Network" when the chain id's network is not FM_BITCOIN_NETWORK; the main task's
//!   error panics ("Main task returned error: ..."), the task group shuts down, exit 255. With
//!   the modules up: "Starting Consensus Api...", the dashboard UI ("Dashboard UI running at
//!   ..."; `/` and the rest need the login cookie), then "Waiting to connect to bitcoin
//!   backend..." / "Waiting for bitcoin backend to sync... N%" each second until
//!   verificationprogress >= 0.999, "Starting Consensus Engine...".
//! - SIGTERM/SIGINT (fedimint-core src/task.rs `install_kill_handler`): "signal received,
//!   starting graceful shutdown", "Shutdown called", exit 255 (`std::process::exit(-1)`).
//! - Logs: tracing-subscriber's format on stderr (`2026-01-01T00:00:00.000000Z  INFO
//!   fm::consensus: ...`; fedimint-logging src/lib.rs), without its ANSI colours.
//!
//! Not modelled: WebSocket JSON-RPC (the API ports answer JSON-RPC over plain HTTP POST, which
//! jsonrpsee also serves, for `setup_status` only), DKG with peers, Iroh, esplora, TLS p2p, the
//! dashboard's pages beyond login, consensus itself.

use crate::filebrowser::{signal_pipe, unix_now, utc, wait_signal};
use crate::http::{Request, Response};
use crate::json::{self, obj, s, Value};
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const VERSION: &str = "0.11.1";
const VERSION_HASH: &str = "2620789610a2c65c1068de973ebb5657d08d549d";
/// fedimint-server-core src/bitcoin_rpc.rs: block-1 hashes of the networks it knows
const CHAIN_IDS: &[(&str, &str)] = &[
    ("00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048", "bitcoin"),
    ("00000000b873e79784647a6c82962c70d228557d24a747ea4d1b8bbe878e1206", "testnet"),
    ("00000086d6b2636cb2a392d45edc4ec544a10024d30141c9adf4bfd9de533b53", "signet"),
    ("000002855893a0a9b24eaffc5efc770558a326fee4fc10c9da22fc19cd2954f9", "signet"),
];
/// registry order (a BTreeMap by kind) of the modules fedimintd attaches
const MODULES: &[&str] = &["ln", "lnv2", "meta", "mint", "mintv2", "wallet", "walletv2"];

// ---- logs ----

fn tlog(level: &str, target: &str, msg: &str) {
    let d = unix_now();
    let (y, mo, da, h, mi, se) = utc(d.as_secs() as i64);
    let micros = d.subsec_micros();
    eprintln!("{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{se:02}.{micros:06}Z {level:>5} {target}: {msg}");
}

fn info(target: &str, msg: &str) {
    tlog("INFO", target, msg);
}

fn warn(target: &str, msg: &str) {
    tlog("WARN", target, msg);
}

/// What Rust's default panic hook prints.
fn print_panic(thread: &str, location: &str, msg: &str) {
    eprintln!("thread '{thread}' panicked at {location}:\n{msg}\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace");
}

// ---- URLs (fedimint's SafeUrl over the url crate) ----

#[derive(Clone, Debug)]
struct Url {
    scheme: String,
    user: String,
    pass: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
}

impl Url {
    fn parse(t: &str) -> Result<Url, String> {
        let (scheme, rest) = t.split_once("://").ok_or("relative URL without a base")?;
        let mut sc = scheme.chars();
        if !sc.next().is_some_and(|c| c.is_ascii_alphabetic()) || !sc.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            return Err("relative URL without a base".into());
        }
        let scheme = scheme.to_ascii_lowercase();
        let special = matches!(scheme.as_str(), "http" | "https" | "ws" | "wss" | "ftp");
        let (authority, path) = rest.find(['/', '?', '#']).map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
        let (userinfo, hostport) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
        let (user, pass) = match userinfo {
            Some(u) => u.split_once(':').map_or((u, None), |(a, b)| (a, Some(b.to_string()))),
            None => ("", None),
        };
        let (host, port) = if hostport.starts_with('[') {
            let end = hostport.find(']').ok_or("invalid IPv6 address")?;
            (&hostport[..=end], hostport[end + 1..].strip_prefix(':'))
        } else {
            hostport.rsplit_once(':').map_or((hostport, None), |(h, p)| (h, Some(p)))
        };
        if host.is_empty() && special {
            return Err("empty host".into());
        }
        let port = match port.filter(|p| !p.is_empty()) {
            Some(p) => Some(p.parse::<u16>().map_err(|_| "invalid port number")?),
            None => None,
        };
        let default = match scheme.as_str() {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        };
        Ok(Url {
            port: if port == default { None } else { port },
            path: if path.is_empty() && special { "/".into() } else { path.into() },
            scheme,
            user: user.into(),
            pass,
            host: host.to_ascii_lowercase(),
        })
    }

    /// SafeUrl's Display: credentials redacted
    fn safe(&self) -> String {
        let mut out = format!("{}://", self.scheme);
        if !self.user.is_empty() {
            out.push_str("REDACTEDUSER");
            if self.pass.is_some() {
                out.push_str(":REDACTEDPASS");
            }
            out.push('@');
        }
        out.push_str(&self.host);
        if let Some(p) = self.port {
            out.push_str(&format!(":{p}"));
        }
        out.push_str(&self.path);
        out
    }

    fn without_auth(&self) -> Url {
        Url { user: String::new(), pass: None, ..self.clone() }
    }
}

// ---- options (clap) ----

/// id, --long, env, VALUE name (None: a flag), default
type Spec = (&'static str, &'static str, Option<&'static str>, Option<&'static str>, Option<&'static str>);

const SPECS: &[Spec] = &[
    ("data_dir", "--data-dir", Some("FM_DATA_DIR"), Some("DATA_DIR"), None),
    ("bitcoin_network", "--bitcoin-network", Some("FM_BITCOIN_NETWORK"), Some("BITCOIN_NETWORK"), Some("regtest")),
    ("bitcoind_username", "--bitcoind-username", Some("FM_BITCOIND_USERNAME"), Some("BITCOIND_USERNAME"), None),
    ("bitcoind_password", "--bitcoind-password", Some("FM_BITCOIND_PASSWORD"), Some("BITCOIND_PASSWORD"), None),
    ("bitcoind_url", "--bitcoind-url", Some("FM_BITCOIND_URL"), Some("BITCOIND_URL"), None),
    (
        "bitcoind_url_password_file",
        "--bitcoind-url-password-file",
        Some("FM_BITCOIND_URL_PASSWORD_FILE"),
        Some("BITCOIND_URL_PASSWORD_FILE"),
        None,
    ),
    ("esplora_url", "--esplora-url", Some("FM_ESPLORA_URL"), Some("ESPLORA_URL"), None),
    ("bind_p2p", "--bind-p2p", Some("FM_BIND_P2P"), Some("BIND_P2P"), Some("0.0.0.0:8173")),
    ("bind_api", "--bind-api", Some("FM_BIND_API"), Some("BIND_API"), Some("0.0.0.0:8174")),
    ("bind_ui", "--bind-ui", Some("FM_BIND_UI"), Some("BIND_UI"), Some("127.0.0.1:8175")),
    ("p2p_url", "--p2p-url", Some("FM_P2P_URL"), Some("P2P_URL"), None),
    ("api_url", "--api-url", Some("FM_API_URL"), Some("API_URL"), None),
    ("enable_iroh", "--enable-iroh", Some("FM_ENABLE_IROH"), None, None),
    ("iroh_dns", "--iroh-dns", Some("FM_IROH_DNS"), Some("IROH_DNS"), None),
    ("iroh_relays", "--iroh-relays", Some("FM_IROH_RELAY"), Some("IROH_RELAYS"), None),
    ("db_checkpoint_retention", "--db-checkpoint-retention", Some("FM_DB_CHECKPOINT_RETENTION"), Some("DB_CHECKPOINT_RETENTION"), Some("1")),
    ("bind_tokio_console", "--bind-tokio-console", Some("FM_BIND_TOKIO_CONSOLE"), Some("BIND_TOKIO_CONSOLE"), None),
    ("with_jaeger", "--with-jaeger", None, None, None),
    ("bind_metrics", "--bind-metrics", Some("FM_BIND_METRICS"), Some("BIND_METRICS"), Some("127.0.0.1:8176")),
    ("force_api_secrets", "--force-api-secrets", Some("FM_FORCE_API_SECRETS"), Some("FORCE_API_SECRETS"), Some("")),
    (
        "iroh_api_max_connections",
        "--iroh-api-max-connections",
        Some("FM_IROH_API_MAX_CONNECTIONS"),
        Some("IROH_API_MAX_CONNECTIONS"),
        Some("1000"),
    ),
    (
        "iroh_api_max_requests_per_connection",
        "--iroh-api-max-requests-per-connection",
        Some("FM_IROH_API_MAX_REQUESTS_PER_CONNECTION"),
        Some("IROH_API_MAX_REQUESTS_PER_CONNECTION"),
        Some("50"),
    ),
];

const USAGE: &str = "Usage: fedimintd [OPTIONS] --data-dir <DATA_DIR> <--bitcoind-url <BITCOIND_URL>|--esplora-url <ESPLORA_URL>>";

fn spec(id: &str) -> &'static Spec {
    SPECS.iter().find(|s| s.0 == id).expect("known id")
}

/// How clap names an argument in errors: `--data-dir <DATA_DIR>`
fn shown(id: &str) -> String {
    let s = spec(id);
    s.3.map_or(s.1.to_string(), |v| format!("{} <{v}>", s.1))
}

fn clap_error(msg: &str) -> Result<Opts, i32> {
    eprint!("error: {msg}\n\n{USAGE}\n\nFor more information, try '--help'.\n");
    Err(2)
}

struct Opts {
    given: Vec<(&'static str, String)>,
}

impl Opts {
    fn get(&self, id: &str) -> Option<&str> {
        self.given.iter().find(|(k, _)| *k == id).map(|(_, v)| v.as_str()).or(spec(id).4)
    }

    fn present(&self, id: &str) -> bool {
        self.given.iter().any(|(k, _)| *k == id)
    }
}

fn parse_args(argv: &[String]) -> Result<Opts, i32> {
    let mut given: Vec<(&'static str, String)> = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        match a.as_str() {
            "-h" | "--help" => {
                println!("Usage: fedimintd [OPTIONS]\n\nOptions: (archy e2e stand-in of fedimintd {VERSION}; see fedimintd --help upstream)");
                for s in SPECS {
                    println!("      {}{}", shown(s.0), s.2.map_or(String::new(), |e| format!(" [env: {e}=]")));
                }
                return Err(0);
            }
            "-V" | "--version" => {
                println!("fedimintd {VERSION}");
                return Err(0);
            }
            _ => {}
        }
        let (name, inline) = a.split_once('=').map_or((a.as_str(), None), |(n, v)| (n, Some(v.to_string())));
        let Some(sp) = SPECS.iter().find(|s| s.1 == name && a.starts_with("--")) else {
            return clap_error(&format!("unexpected argument '{a}' found"));
        };
        if given.iter().any(|(k, _)| *k == sp.0) {
            return clap_error(&format!("the argument '{}' cannot be used multiple times", shown(sp.0)));
        }
        let value = match (sp.3, inline) {
            (None, None) => "true".to_string(),
            (None, Some(v)) => return clap_error(&format!("unexpected value '{v}' for '{}' found; no more were expected", sp.1)),
            (Some(_), Some(v)) => v,
            (Some(_), None) => match argv.get(i) {
                Some(v) if !v.starts_with("--") => {
                    i += 1;
                    v.clone()
                }
                _ => return clap_error(&format!("a value is required for '{}' but none was supplied", shown(sp.0))),
            },
        };
        given.push((sp.0, value));
    }
    for sp in SPECS {
        if given.iter().any(|(k, _)| *k == sp.0) {
            continue;
        }
        if let Some(v) = sp.2.and_then(|e| std::env::var(e).ok()).filter(|v| !v.is_empty()) {
            given.push((sp.0, v));
        }
    }
    // value parsers
    for (id, v) in &given {
        let bad = |why: &str| clap_error(&format!("invalid value '{v}' for '{}': {why}", shown(id)));
        let ok = match *id {
            "bitcoin_network" => {
                if !["bitcoin", "testnet", "testnet4", "signet", "regtest"].contains(&v.as_str()) {
                    return bad(&format!("failed to parse {v} as network"));
                }
                true
            }
            "bind_p2p" | "bind_api" | "bind_ui" | "bind_metrics" | "bind_tokio_console" => v.parse::<SocketAddr>().is_ok(),
            "bitcoind_url" | "esplora_url" | "p2p_url" | "api_url" | "iroh_dns" => match Url::parse(v) {
                Ok(_) => true,
                Err(e) => return bad(&e),
            },
            "db_checkpoint_retention" | "iroh_api_max_connections" | "iroh_api_max_requests_per_connection" => {
                if v.parse::<u64>().is_err() {
                    return bad("invalid digit found in string");
                }
                true
            }
            "enable_iroh" | "with_jaeger" => {
                if v != "true" && v != "false" {
                    eprint!("error: invalid value '{v}' for '{}'\n  [possible values: true, false]\n\nFor more information, try '--help'.\n", spec(id).1);
                    return Err(2);
                }
                true
            }
            _ => true,
        };
        if !ok {
            return bad("invalid socket address syntax");
        }
    }
    let o = Opts { given };
    if o.present("bitcoind_password") && o.present("bitcoind_url_password_file") {
        return clap_error(&format!(
            "the argument '{}' cannot be used with '{}'",
            shown("bitcoind_password"),
            shown("bitcoind_url_password_file")
        ));
    }
    let mut missing = Vec::new();
    if !o.present("data_dir") {
        missing.push(shown("data_dir"));
    }
    if !o.present("bitcoind_url") && !o.present("esplora_url") {
        missing.push(format!("<{}|{}>", shown("bitcoind_url"), shown("esplora_url")));
    }
    if o.present("bitcoind_url") {
        if !o.present("bitcoind_username") {
            missing.push(shown("bitcoind_username"));
        }
        if !o.present("bitcoind_password") && !o.present("bitcoind_url_password_file") {
            missing.push(format!("<{}|{}>", shown("bitcoind_password"), shown("bitcoind_url_password_file")));
        }
    }
    for id in ["iroh_dns", "iroh_relays"] {
        if o.present(id) && o.get("enable_iroh") != Some("true") {
            missing.push(shown("enable_iroh"));
        }
    }
    if !missing.is_empty() {
        missing.dedup();
        let list: String = missing.iter().map(|m| format!("  {m}\n")).collect();
        return clap_error(&format!("the following required arguments were not provided:\n{}", list.trim_end()));
    }
    Ok(o)
}

// ---- a stoppable HTTP server (the UI and API servers stop at the end of setup) ----

type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

struct Server {
    stop: Arc<AtomicBool>,
    wake: SocketAddr,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    fn start(listener: TcpListener, handler: Handler) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let mut wake = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(Ipv6Addr::LOCALHOST) });
        }
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let h = handler.clone();
                std::thread::spawn(move || serve_one(stream, &*h));
            }
        });
        Server { stop, wake, thread }
    }

    /// Stop accepting and close the port (a connection wakes the accept loop).
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.wake, Duration::from_secs(1));
        let _ = self.thread.join();
    }
}

fn serve_one(stream: TcpStream, handler: &(dyn Fn(Request) -> Response + Send + Sync)) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(peer) = stream.peer_addr() else { return };
    let mut r = BufReader::new(&stream);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = vec![0; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let resp = handler(Request { method, path, headers, body, peer });
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", resp.body.len()));
    let mut w = &stream;
    let _ = w.write_all(head.as_bytes()).and_then(|_| w.write_all(&resp.body));
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        415 => "Unsupported Media Type",
        _ => "",
    }
}

fn html(body: String) -> Response {
    Response::new(200, "text/html; charset=utf-8", body)
}

fn redirect(to: &str) -> Response {
    let mut r = Response::new(303, "text/plain; charset=utf-8", "");
    r.headers = vec![("location".into(), to.into())];
    r
}

fn empty(status: u16) -> Response {
    let mut r = Response::new(status, "text/plain", "");
    r.headers.clear();
    r
}

/// application/x-www-form-urlencoded pairs, in order (repeated keys kept)
fn form(body: &[u8]) -> Vec<(String, String)> {
    let dec = |t: &str| {
        let t = t.replace('+', " ");
        let b = t.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&t[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').map_or((dec(kv), String::new()), |(k, v)| (dec(k), dec(v))))
        .collect()
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// fedimint-ui-common `single_card_layout`, without the assets' content
fn card(header: &str, content: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Fedimint</title>\
<link rel=\"stylesheet\" href=\"/assets/bootstrap.min.css\"><script defer src=\"/assets/htmx.org-2.0.4.min.js\"></script></head>\
<body class=\"d-flex align-items-center min-vh-100\"><div class=\"container\"><div class=\"card\">\
<div class=\"card-header dashboard-header\">{}</div><div class=\"card-body\">{content}</div></div></div>\
<div hx-get=\"/ui/connectivity-check\" hx-trigger=\"load, every 30s\"></div></body></html>",
        esc(header)
    )
}

fn login_form(error: Option<&str>) -> String {
    let err = error.map_or(String::new(), |e| format!("<div class=\"alert alert-danger mb-3\">{}</div>", esc(e)));
    format!(
        "<form id=\"login-form\" hx-post=\"/login\" hx-target=\"#login-form\" hx-swap=\"outerHTML\">\
<input type=\"password\" id=\"password\" name=\"password\" placeholder=\"Your Password\" required autofocus>{err}\
<button type=\"submit\">Continue</button></form>"
    )
}

const ASSETS: &[(&str, &str)] = &[
    ("/assets/bootstrap.min.css", "text/css"),
    ("/assets/bootstrap.bundle.min.js", "application/javascript"),
    ("/assets/bootstrap-icons.min.css", "text/css"),
    ("/assets/fonts/bootstrap-icons.woff2", "font/woff2"),
    ("/assets/fonts/bootstrap-icons.woff", "font/woff"),
    ("/assets/htmx.org-2.0.4.min.js", "application/javascript"),
    ("/assets/html5-qrcode.min.js", "application/javascript"),
    ("/assets/chart.umd.min.js", "application/javascript"),
    ("/assets/style.css", "text/css"),
    ("/assets/logo.png", "image/png"),
];

/// The cookie a login sets (fedimint-ui-common `UiState::new`: a random name and value).
struct Cookie {
    name: String,
    value: String,
}

impl Cookie {
    fn new() -> Cookie {
        Cookie { name: crate::sys::random_hex(4), value: crate::sys::random_hex(32) }
    }

    fn ok(&self, req: &Request) -> bool {
        req.header("Cookie").is_some_and(|c| {
            c.split(';').filter_map(|kv| kv.trim().split_once('=')).any(|(k, v)| k == self.name && v == self.value)
        })
    }

    /// login_submit_response
    fn login(&self, password: &str, req: &Request) -> Response {
        let given = form(&req.body).into_iter().find(|(k, _)| k == "password").map(|(_, v)| v);
        let Some(given) = given else {
            return Response::new(400, "text/plain; charset=utf-8", "Failed to deserialize form: missing field `password`");
        };
        if given != password {
            return html(login_form(Some("The password is invalid")));
        }
        let mut r = html(String::new());
        r.headers.push(("set-cookie".into(), format!("{}={}; HttpOnly; SameSite=Lax", self.name, self.value)));
        r.headers.push(("hx-redirect".into(), "/".into()));
        r
    }

    /// connectivity_check_handler: an empty fragment unless logged in
    fn connectivity(&self, req: &Request) -> Response {
        if !self.ok(req) {
            return html(String::new());
        }
        let up = [SocketAddr::from(([1, 1, 1, 1], 443)), SocketAddr::from(([8, 8, 8, 8], 53))]
            .iter()
            .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(3)).is_ok());
        html(if up {
            "<span class=\"badge bg-success\">Internet connection OK</span>".into()
        } else {
            "<span class=\"badge bg-danger\">Internet connection unavailable</span>".into()
        })
    }
}

fn asset(path: &str) -> Option<Response> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, ct)| Response::new(200, ct, "/* stand-in asset */\n"))
}

// ---- the process ----

enum Backend {
    Bitcoind { addr: SocketAddr, path: String, host: String, auth: String },
    Esplora,
}

struct Ctx {
    data_dir: PathBuf,
    network: String,
    bind_p2p: SocketAddr,
    bind_api: SocketAddr,
    bind_ui: SocketAddr,
    p2p_url: Option<String>,
    api_url: Option<String>,
    enable_iroh: bool,
    backend: Backend,
}

enum Event {
    Signal,
    /// the main task returned an error: it panics with this text
    MainError(String),
    /// a panic in the main task: location, message
    Panic(&'static str, String),
}

enum Failure {
    Error(String),
    Panic(&'static str, String),
}

pub fn fedimintd(argv: &[String]) -> i32 {
    if argv.first().map(String::as_str) == Some("version-hash") {
        println!("{VERSION_HASH}");
        return 0;
    }
    let o = match parse_args(argv) {
        Ok(o) => o,
        Err(code) => return code,
    };
    info("fedimintd", &format!("Starting fedimintd (version: {VERSION} version_hash: {VERSION_HASH})"));
    let addr = |id: &str| o.get(id).and_then(|v| v.parse::<SocketAddr>().ok());
    if let Some(m) = addr("bind_metrics") {
        info("fm::server", &format!("Initializing metrics server url=http://{m}/metrics"));
        match TcpListener::bind(m) {
            Ok(l) => {
                let started = unix_now().as_secs();
                std::thread::spawn(move || crate::http::serve(l, move |req| Some(metrics(&req, started))));
            }
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        }
    }
    let data_dir = PathBuf::from(o.get("data_dir").unwrap_or_default());
    let db = match open_database(&data_dir) {
        Ok(lock) => lock,
        Err(e) => {
            print_panic("main", "fedimintd/src/lib.rs:333:14", &format!("called `Result::unwrap()` on an `Err` value: {e}"));
            return 101;
        }
    };
    let backend = match (o.get("bitcoind_url"), o.get("esplora_url")) {
        (Some(u), esplora) => {
            let url = Url::parse(u).expect("validated").without_auth();
            let password = match o.get("bitcoind_url_password_file") {
                Some(f) => match std::fs::read_to_string(f) {
                    Ok(t) => t.trim().to_string(),
                    Err(e) => {
                        let msg = format!("Failed to get bitcoind url: Failed to read the password\n\nCaused by:\n    {e}");
                        print_panic("main", "fedimintd/src/lib.rs:349:18", &msg);
                        return 101;
                    }
                },
                None => o.get("bitcoind_password").unwrap_or_default().to_string(),
            };
            info("fm::server", &format!("Initializing bitcoin bitcoind backend url={}", url.safe()));
            if let Some(e) = esplora {
                info("fm::server", &format!("Initializing bitcoin esplora backend url={}", Url::parse(e).expect("validated").safe()));
            }
            if url.scheme != "http" && url.scheme != "https" {
                let msg = format!(
                    "called `Result::unwrap()` on an `Err` value: JSON-RPC error: transport error: invalid URL '{}': scheme should be http or https",
                    url.safe()
                );
                print_panic("main", "fedimintd/src/lib.rs:351:18", &msg);
                return 101;
            }
            // simple_http resolves once, when the client is built
            let port = url.port.unwrap_or(if url.scheme == "https" { 443 } else { 80 });
            let host = url.host.trim_start_matches('[').trim_end_matches(']').to_string();
            let addr = match (host.as_str(), port).to_socket_addrs().map(|mut a| a.next()) {
                Ok(Some(a)) => a,
                other => {
                    let e = other.err().map_or("no address".to_string(), |e| e.to_string());
                    let msg = format!("called `Result::unwrap()` on an `Err` value: JSON-RPC error: transport error: Couldn't connect to host: {e}");
                    print_panic("main", "fedimintd/src/lib.rs:351:18", &msg);
                    return 101;
                }
            };
            let user = o.get("bitcoind_username").unwrap_or_default();
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            Backend::Bitcoind { addr, path: url.path.clone(), host: format!("{host}:{port}"), auth }
        }
        (None, Some(e)) => {
            info("fm::server", &format!("Initializing bitcoin esplora backend url={}", Url::parse(e).expect("validated").safe()));
            Backend::Esplora
        }
        (None, None) => unreachable!("clap requires one"),
    };
    let ctx = Arc::new(Ctx {
        data_dir,
        network: o.get("bitcoin_network").unwrap_or("regtest").to_string(),
        bind_p2p: addr("bind_p2p").expect("default"),
        bind_api: addr("bind_api").expect("default"),
        bind_ui: addr("bind_ui").expect("default"),
        p2p_url: o.get("p2p_url").map(str::to_string),
        api_url: o.get("api_url").map(str::to_string),
        enable_iroh: o.get("enable_iroh") == Some("true"),
        backend,
    });
    let (tx, rx) = mpsc::channel::<Event>();
    let mut signals = signal_pipe(&[2, 15]);
    let sig_tx = tx.clone();
    std::thread::spawn(move || {
        wait_signal(&mut signals);
        let _ = sig_tx.send(Event::Signal);
    });
    std::thread::spawn(move || {
        let ev = match main_task(&ctx) {
            Err(Failure::Error(e)) => Event::MainError(e),
            Err(Failure::Panic(at, msg)) => Event::Panic(at, msg),
            Ok(()) => return,
        };
        let _ = tx.send(ev);
    });
    match rx.recv() {
        Ok(Event::Signal) | Err(_) => info("fm::task", "signal received, starting graceful shutdown"),
        Ok(Event::MainError(e)) => {
            print_panic("tokio-runtime-worker", "fedimintd/src/lib.rs:402:31", &format!("Main task returned error: {e}"));
            info("fm::task", "Task shut down uncleanly name=main");
        }
        Ok(Event::Panic(at, msg)) => {
            print_panic("tokio-runtime-worker", at, &msg);
            info("fm::task", "Task shut down uncleanly name=main");
        }
    }
    info("fm::core", "Shutdown called");
    drop(db);
    255
}

fn metrics(req: &Request, started: u64) -> Response {
    if req.path != "/metrics" {
        return empty(404);
    }
    let body = format!(
        "# HELP app_start_ts Unix timestamp of the application time with version labels\n# TYPE app_start_ts gauge\n\
app_start_ts{{version=\"{VERSION}\",version_hash=\"{VERSION_HASH}\"}} {started}\n"
    );
    Response::new(200, "text/plain; version=0.0.4", body)
}

extern "C" {
    fn flock(fd: i32, op: i32) -> i32;
}

/// RocksDB's create_if_missing (the directory, not its parents) and its LOCK file.
fn open_database(data_dir: &Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let dir = data_dir.join("database");
    let io = |what: &str, p: &Path, e: std::io::Error| {
        let t = e.to_string();
        format!("IO error: {what}: {}: {}", p.display(), t.split(" (os error").next().unwrap_or(&t))
    };
    if let Err(e) = std::fs::create_dir(&dir) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(io("While mkdir if missing", &dir, e));
        }
    }
    let lock_path = dir.join("LOCK");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io("While open a file for appending", &lock_path, e))?;
    // SAFETY: flock on an fd this function owns
    if unsafe { flock(lock.as_raw_fd(), 2 | 4) } != 0 {
        return Err(io("While lock file", &lock_path, std::io::Error::last_os_error()));
    }
    for (name, content) in [("CURRENT", "MANIFEST-000005\n"), ("IDENTITY", "")] {
        let p = dir.join(name);
        if !p.exists() {
            let c = if name == "IDENTITY" { crate::sys::random_hex(16) } else { content.to_string() };
            std::fs::write(&p, c).map_err(|e| io("While appending to file", &p, e))?;
        }
    }
    Ok(lock)
}

// ---- the main task: setup, then consensus ----

struct Federation {
    password: String,
    network: String,
    modules: Vec<String>,
}

fn main_task(ctx: &Arc<Ctx>) -> Result<(), Failure> {
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
    let text = std::fs::read_to_string(dir.join("consensus.json")).map_err(|e| Failure::Error(e.to_string()))?;
    let c = json::parse(&text).map_err(|e| Failure::Error(e.to_string()))?;
    let network = c.get("network").and_then(Value::as_str).unwrap_or("regtest").to_string();
    let modules = match c.get("modules") {
        Some(Value::Arr(a)) => a.iter().filter_map(|m| m.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    Ok(Some(Federation { password, network, modules }))
}

#[derive(Clone, PartialEq)]
struct LocalParams {
    password: String,
    name: String,
    federation_name: Option<String>,
    disable_base_fees: Option<bool>,
    enabled_modules: Option<Vec<String>>,
    federation_size: Option<u32>,
    setup_code: String,
}

struct Setup {
    ctx: Arc<Ctx>,
    local: Mutex<Option<LocalParams>>,
    cookie: Cookie,
    dkg: Mutex<Option<Sender<LocalParams>>>,
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}

fn config_gen(ctx: &Arc<Ctx>) -> Result<Federation, Failure> {
    info("fm::consensus", "Starting config gen");
    let (dkg_tx, dkg_rx) = mpsc::channel();
    let setup = Arc::new(Setup { ctx: ctx.clone(), local: Mutex::new(None), cookie: Cookie::new(), dkg: Mutex::new(Some(dkg_tx)) });
    let api = start_api(ctx.bind_api, "setup", {
        let setup = setup.clone();
        Arc::new(move || if setup.local.lock().map(|l| l.is_some()).unwrap_or(false) { "SharingConnectionCodes" } else { "AwaitingLocalParams" })
    })?;
    let ui = bind(ctx.bind_ui)
        .map_err(|e| Failure::Panic("fedimint-server/src/lib.rs:277:10", format!("Failed to bind setup UI: {e:?}")))?;
    let handler: Handler = {
        let setup = setup.clone();
        Arc::new(move |req| setup_ui(&setup, &req))
    };
    let ui = Server::start(ui, handler);
    info("fm::consensus", &format!("Setup UI running at http://{} 🚀", ctx.bind_ui));
    let params: LocalParams = dkg_rx.recv().map_err(|_| Failure::Error("Config gen params receiver closed unexpectedly".into()))?;
    // upstream's grace period for the start-dkg call to finish
    std::thread::sleep(Duration::from_millis(100));
    api.stop();
    ui.stop();
    let modules: Vec<String> = match &params.enabled_modules {
        Some(m) => MODULES.iter().filter(|k| m.iter().any(|x| x == *k)).map(|k| k.to_string()).collect(),
        None => default_modules(),
    };
    for kind in &modules {
        info("fm::net::peer::dkg", &format!("Running config generation for module of kind {kind}..."));
    }
    write_config(&ctx.data_dir, &params, &ctx.network, &modules).map_err(|e| Failure::Error(e.to_string()))?;
    Ok(Federation { password: params.password, network: ctx.network.clone(), modules })
}

fn default_modules() -> Vec<String> {
    let meta = !matches!(std::env::var("FM_DISABLE_META_MODULE").as_deref(), Ok("1") | Ok("true"));
    ["ln", "lnv2", "meta", "mint", "wallet"].iter().filter(|k| meta || **k != "meta").map(|k| k.to_string()).collect()
}

/// fedimint-core `write_new` (create_new: an existing file is an error) for each file
fn write_config(dir: &Path, p: &LocalParams, network: &str, modules: &[String]) -> std::io::Result<()> {
    let new = |name: &str, content: String| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(dir.join(name))?;
        f.write_all(content.as_bytes())
    };
    let salt = crate::sys::random_hex(16);
    new("password.private", p.password.clone())?;
    new("private.salt", salt.clone())?;
    let standin = s("archy e2e stand-in config (upstream: fedimint-server's ServerConfig)");
    let mods = Value::Arr(modules.iter().map(|m| s(m)).collect());
    let fed_name = p.federation_name.clone().unwrap_or_default();
    new("local.json", obj(vec![("standin", standin.clone()), ("identity", json::num(0)), ("name", s(&p.name))]).pretty(2))?;
    new(
        "consensus.json",
        obj(vec![("standin", standin.clone()), ("network", s(network)), ("federation_name", s(&fed_name)), ("modules", mods.clone())]).pretty(2),
    )?;
    new("invite-code", format!("fed11{}", crate::sys::random_hex(40)))?;
    new("client.json", obj(vec![("standin", standin), ("federation_name", s(&fed_name)), ("modules", mods)]).pretty(2))?;
    // the private config is encrypted with a key from the password and salt upstream
    new("private.encrypt", crate::sys::random_hex(64))
}

/// net::api::spawn: the JSON-RPC API (jsonrpsee serves HTTP POST besides WebSocket)
fn start_api(addr: SocketAddr, name: &str, status: Arc<dyn Fn() -> &'static str + Send + Sync>) -> Result<Server, Failure> {
    info("fm::net::api", &format!("Starting http api on ws://{addr}"));
    let l = bind(addr).map_err(|e| {
        Failure::Panic(
            "fedimint-server/src/net/api/mod.rs:117:10",
            format!("Could not build API server: API name: {name}\n\nCaused by:\n    0: Bind address: {addr}\n    1: {e}"),
        )
    })?;
    Ok(Server::start(l, Arc::new(move |req| jsonrpc(&req, &*status))))
}

fn jsonrpc(req: &Request, status: &dyn Fn() -> &'static str) -> Response {
    if req.method != "POST" {
        return Response::new(405, "text/plain", "Used HTTP Method is not allowed. POST is required");
    }
    if !req.header("Content-Type").is_some_and(|c| c.starts_with("application/json")) {
        return Response::new(415, "text/plain", "Supported Content-Types are application/json");
    }
    let call = std::str::from_utf8(&req.body).ok().and_then(|t| json::parse(t.trim()).ok());
    let Some(call) = call else {
        return Response::new(200, "application/json", r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#);
    };
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let answer = match call.get("method").and_then(Value::as_str) {
        Some("setup_status") => obj(vec![("jsonrpc", s("2.0")), ("result", s(status())), ("id", id)]),
        _ => obj(vec![
            ("jsonrpc", s("2.0")),
            ("error", obj(vec![("code", json::num(-32601)), ("message", s("Method not found"))])),
            ("id", id),
        ]),
    };
    Response::new(200, "application/json", answer.compact())
}

fn setup_form(error: Option<&str>) -> String {
    let options: String = ["1", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20"]
        .iter()
        .map(|n| format!("<option value=\"{n}\">{n}</option>"))
        .collect();
    let defaults = default_modules();
    let modules: String = MODULES
        .iter()
        .filter(|k| **k != "meta" || defaults.iter().any(|d| d == "meta"))
        .map(|k| {
            let on = if defaults.iter().any(|d| d == k) { " checked" } else { "" };
            format!("<input type=\"checkbox\" id=\"module_{k}\" name=\"enabled_modules\" value=\"{k}\"{on}><label for=\"module_{k}\">{k}</label>")
        })
        .collect();
    let err = error.map_or(String::new(), |e| format!("<div class=\"alert alert-danger mb-3\">{}</div>", esc(e)));
    format!(
        "<form id=\"setup-form\" hx-post=\"/\" hx-target=\"#setup-form\" hx-swap=\"outerHTML\">\
<input type=\"text\" id=\"name\" name=\"name\" placeholder=\"Your Guardian Name\" required>\
<input type=\"password\" id=\"password\" name=\"password\" placeholder=\"Your Password\" required>\
<div class=\"alert alert-warning mb-3\">Exactly one guardian must set the global config.</div>\
<input type=\"checkbox\" id=\"is_lead\" name=\"is_lead\" value=\"true\"><label for=\"is_lead\">Set the global config</label>\
<input type=\"text\" id=\"federation_name\" name=\"federation_name\" placeholder=\"Federation Name\">\
<select id=\"federation_size\" name=\"federation_size\"><option value=\"\" selected disabled>Federation Size</option>{options}</select>\
<input type=\"checkbox\" id=\"enable_base_fees\" name=\"enable_base_fees\" checked value=\"true\">\
<div id=\"modules-list\">{modules}</div>{err}<button type=\"submit\">Confirm</button></form>"
    )
}

fn setup_ui(st: &Setup, req: &Request) -> Response {
    let path = req.path.split('?').next().unwrap_or("/");
    let local = st.local.lock().map(|l| l.clone()).unwrap_or(None);
    let get = req.method == "GET" || req.method == "HEAD";
    let post = req.method == "POST";
    match path {
        "/" if get => match local {
            Some(_) => redirect("/federation_setup"),
            None => html(card("Guardian Setup", &setup_form(None))),
        },
        "/" if post => submit_setup(st, req),
        "/login" if get => match local {
            None => redirect("/"),
            Some(_) => html(card("Enter Password", &login_form(None))),
        },
        "/login" if post => match local {
            None => redirect("/"),
            Some(lp) => st.cookie.login(&lp.password, req),
        },
        "/ui/connectivity-check" if get => st.cookie.connectivity(req),
        "/federation_setup" | "/add_setup_code" | "/reset_setup_codes" | "/start_dkg" if !st.cookie.ok(req) => {
            if (path == "/federation_setup" && get) || (path != "/federation_setup" && post) {
                redirect("/login")
            } else {
                empty(405)
            }
        }
        "/federation_setup" if get => {
            let lp = local.expect("authenticated: the local parameters are set");
            let content = format!(
                "<p>Share this with your fellow guardians.</p><input type=\"text\" value=\"{}\" readonly>{}",
                esc(&lp.setup_code),
                peer_list(&lp, None)
            );
            html(card("Federation Setup", &content))
        }
        "/add_setup_code" if post => {
            let lp = local.expect("authenticated");
            html(peer_list(&lp, Some("The stand-in sets up single-guardian federations only")))
        }
        "/reset_setup_codes" if post => redirect("/federation_setup"),
        "/start_dkg" if post => {
            let lp = local.expect("authenticated");
            match start_dkg(&lp) {
                Err(e) => html(peer_list(&lp, Some(&e))),
                Ok(()) => {
                    if let Some(tx) = st.dkg.lock().ok().and_then(|mut d| d.take()) {
                        let _ = tx.send(lp.clone());
                    }
                    let content = format!(
                        "<p>Share with guardians who still need it.</p><input type=\"text\" value=\"{}\" readonly>\
<div class=\"alert alert-info mb-3\">All guardians need to confirm their settings. Once completed you will be redirected to the Dashboard.</div>\
<div hx-get=\"/\" hx-trigger=\"every 2s\" hx-swap=\"none\"></div><p>Waiting for federation setup to complete...</p>",
                        esc(&lp.setup_code)
                    );
                    let mut r = html(card("DKG Started", &content));
                    r.headers.push(("hx-retarget".into(), "body".into()));
                    r.headers.push(("hx-reswap".into(), "innerHTML".into()));
                    r
                }
            }
        }
        "/" | "/login" | "/ui/connectivity-check" | "/federation_setup" | "/add_setup_code" | "/reset_setup_codes" | "/start_dkg" => {
            empty(405)
        }
        p if get => asset(p).unwrap_or_else(|| empty(404)),
        _ => empty(404),
    }
}

fn peer_list(lp: &LocalParams, error: Option<&str>) -> String {
    let err = error.map_or(String::new(), |e| format!("<div class=\"alert alert-danger mb-3\">{}</div>", esc(e)));
    let can_start = lp.federation_size == Some(1);
    let head = match lp.federation_size {
        Some(n) => format!("<p>1 of {n} guardians connected.</p>"),
        None => "<p>Add setup code for every other guardian.</p>".into(),
    };
    let action = if can_start {
        format!("<form id=\"start-dkg-form\" hx-post=\"/start_dkg\" hx-target=\"#peer-list-section\" hx-swap=\"outerHTML\">{err}<button type=\"submit\">Confirm</button></form>")
    } else {
        format!("<form id=\"add-setup-code-form\" hx-post=\"/add_setup_code\" hx-target=\"#peer-list-section\" hx-swap=\"outerHTML\">\
<input type=\"text\" id=\"peer_info\" name=\"peer_info\" placeholder=\"Paste Setup Code\" required>{err}<button type=\"submit\">Add Guardian</button></form>")
    };
    format!("<div id=\"peer-list-section\">{head}{action}</div>")
}

/// setup_submit + SetupApi::set_local_parameters
fn submit_setup(st: &Setup, req: &Request) -> Response {
    if !req.header("Content-Type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
        return Response::new(415, "text/plain; charset=utf-8", "Form requests must have `Content-Type: application/x-www-form-urlencoded`");
    }
    let f = form(&req.body);
    let one = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut missing = None;
    for k in ["password", "name", "federation_name"] {
        if one(k).is_none() && missing.is_none() {
            missing = Some(k);
        }
    }
    let flag = |k: &str| -> Result<bool, String> {
        match one(k).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err("Failed to deserialize form: provided string was not `true` or `false`".into()),
        }
    };
    if let Some(k) = missing {
        return Response::new(400, "text/plain; charset=utf-8", format!("Failed to deserialize form: missing field `{k}`"));
    }
    let (is_lead, base_fees) = match (flag("is_lead"), flag("enable_base_fees")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Response::new(400, "text/plain; charset=utf-8", e),
    };
    let size = one("federation_size").unwrap_or_default();
    let federation_size = if !is_lead || size.trim().is_empty() {
        None
    } else {
        match size.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => return html(setup_form(Some("Invalid federation size"))),
        }
    };
    let modules: Vec<String> = f.iter().filter(|(k, _)| k == "enabled_modules").map(|(_, v)| v.clone()).collect();
    let mut lp = LocalParams {
        password: one("password").unwrap_or_default(),
        name: one("name").unwrap_or_default(),
        federation_name: is_lead.then(|| one("federation_name").unwrap_or_default()),
        disable_base_fees: is_lead.then_some(!base_fees),
        enabled_modules: is_lead.then_some(modules),
        federation_size,
        setup_code: String::new(),
    };
    let mut local = st.local.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = local.as_ref() {
        if (LocalParams { setup_code: String::new(), ..existing.clone() }) == lp {
            return redirected_to_federation_setup();
        }
    }
    let check = || -> Result<(), &'static str> {
        if lp.name.is_empty() {
            return Err("The guardian name is empty");
        }
        if lp.password.is_empty() {
            return Err("The password is empty");
        }
        if lp.password.trim() != lp.password {
            return Err("The password contains leading/trailing whitespace");
        }
        if lp.federation_name.as_deref() == Some("") {
            return Err("The federation name is empty");
        }
        if lp.federation_name.is_some() && lp.federation_size.is_none() {
            return Err("The leader must set the federation size");
        }
        if lp.federation_size.is_some_and(|n| n != 1 && n < 4) {
            return Err("Federation size must be 1 or at least 4");
        }
        if local.is_some() {
            return Err("Local parameters have already been set");
        }
        if !st.ctx.enable_iroh {
            st.ctx.api_url.as_ref().ok_or("Api URL must be configured")?;
            st.ctx.p2p_url.as_ref().ok_or("P2P URL must be configured")?;
        }
        Ok(())
    };
    if let Err(e) = check() {
        return html(setup_form(Some(e)));
    }
    // base32 of the encoded PeerSetupCode upstream; here only its "fedimint" prefix is real
    lp.setup_code = format!("fedimint{}", crate::sys::random_hex(48));
    *local = Some(lp);
    redirected_to_federation_setup()
}

fn redirected_to_federation_setup() -> Response {
    let mut r = html(String::new());
    r.headers.push(("hx-redirect".into(), "/federation_setup".into()));
    r
}

/// SetupApi::start_dkg for the guardians this stand-in knows: itself
fn start_dkg(lp: &LocalParams) -> Result<(), String> {
    let guardians = 1;
    if let Some(n) = lp.federation_size {
        if n as usize != guardians {
            return Err(format!("Expected {n} guardians but got {guardians}"));
        }
    }
    if lp.federation_name.is_none() {
        return Err("We need one guardian to configure the federations name".into());
    }
    Ok(())
}

// ---- after setup ----

#[derive(Clone)]
struct Status {
    network: String,
    sync_progress: Option<f64>,
}

/// One JSON-RPC call as bitcoincore-rpc 0.19 over jsonrpc 0.18's simple_http makes it, with
/// their error texts.
fn rpc(backend: &Backend, method: &str, params: &str) -> Result<Value, String> {
    let Backend::Bitcoind { addr, path, host, auth } = backend else {
        return Err("the stand-in does not model the esplora backend".into());
    };
    let transport = |e: String| format!("JSON-RPC error: transport error: {e}");
    let timeout = Duration::from_secs(15);
    let mut stream =
        TcpStream::connect_timeout(addr, timeout).map_err(|e| transport(format!("Couldn't connect to host: {e}")))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let body = format!(r#"{{"method":"{method}","params":{params},"id":1,"jsonrpc":"2.0"}}"#);
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAuthorization: Basic {auth}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).map_err(|e| transport(format!("Couldn't connect to host: {e}")))?;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, resp_body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    if status == 401 {
        return Err(transport("unexpected HTTP code: 401".into()));
    }
    let v = match json::parse(resp_body.trim()) {
        Ok(v) => v,
        Err(_) if status != 200 => return Err(transport(format!("unexpected HTTP code: {status}"))),
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
    let network = CHAIN_IDS.iter().find(|(h, _)| *h == chain_id).map_or("regtest", |(_, n)| n).to_string();
    rpc(backend, "getblockcount", "[]")?;
    let info = rpc(backend, "getblockchaininfo", "[]")?;
    let sync_progress = match info.get("verificationprogress") {
        Some(Value::Num(n)) => n.parse::<f64>().ok(),
        _ => return Err("JSON-RPC error: JSON decode error: missing field `verificationprogress`".into()),
    };
    if network != "regtest" {
        let fee = rpc(backend, "estimatesmartfee", r#"[1,"CONSERVATIVE"]"#)?;
        if fee.get("feerate").is_none() {
            return Err("Feerate not available".into());
        }
    }
    Ok(Status { network, sync_progress })
}

fn consensus(ctx: &Arc<Ctx>, fed: &Federation) -> Result<(), Failure> {
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
                warn("fm::server", &format!("Bitcoin status update failed err={e}"));
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
                let jitter = u64::from_str_radix(&crate::sys::random_hex(1), 16).unwrap_or(0) * 200 / 256;
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
    info("fm::consensus", "Starting Submission of Module CI proposals...");
    let ui = bind(ctx.bind_ui)
        .map_err(|e| Failure::Panic("fedimint-server/src/consensus/mod.rs:257:10", format!("Failed to bind dashboard UI: {e:?}")))?;
    let cookie = Arc::new(Cookie::new());
    let (password, network) = (fed.password.clone(), fed.network.clone());
    let _ui = Server::start(ui, Arc::new(move |req| dashboard(&cookie, &password, &network, &req)));
    info("fm::consensus", &format!("Dashboard UI running at http://{} 🚀", ctx.bind_ui));
    loop {
        match current() {
            Some(Status { sync_progress: Some(p), .. }) if p < 0.999 => {
                info("fm::consensus", &format!("Waiting for bitcoin backend to sync... {p:.1}%"));
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
        "/" | "/explorer" | "/download-backup" | "/metrics" if get && !cookie.ok(req) => redirect("/login"),
        "/change-password" if req.method == "POST" && !cookie.ok(req) => redirect("/login"),
        "/" if get => html(card("Fedimint", &format!("<p>Guardian dashboard (stand-in). Network: {}</p>", esc(network)))),
        p if get => asset(p).unwrap_or_else(|| empty(404)),
        _ => empty(404),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://user:pw@Bitcoind:8332").unwrap();
        assert_eq!(u.safe(), "http://REDACTEDUSER:REDACTEDPASS@bitcoind:8332/");
        assert_eq!(u.without_auth().safe(), "http://bitcoind:8332/");
        assert_eq!(Url::parse("http://h:80/x").unwrap().safe(), "http://h/x");
        assert_eq!(Url::parse("fedimint://g.example:8173").unwrap().safe(), "fedimint://g.example:8173");
        assert!(Url::parse("bitcoind:8332").is_err());
        assert!(Url::parse("http://h:99999").is_err());
    }

    #[test]
    fn forms() {
        let f = form(b"name=a+b&password=p%21&enabled_modules=ln&enabled_modules=mint");
        assert_eq!(f[0], ("name".to_string(), "a b".to_string()));
        assert_eq!(f[1].1, "p!");
        assert_eq!(f.iter().filter(|(k, _)| k == "enabled_modules").count(), 2);
    }
}
