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

mod consensus;
mod opts;
mod setup;
mod setup_ui;
mod url;
mod web;

use crate::http::{Request, Response};
use crate::sys::{signal_pipe, wait_signal};
use crate::util::{unix_now, utc};
use opts::parse_args;
use setup::main_task;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use url::Url;
use web::empty;

const VERSION: &str = "0.11.1";
const VERSION_HASH: &str = "2620789610a2c65c1068de973ebb5657d08d549d";
/// fedimint-server-core src/bitcoin_rpc.rs: block-1 hashes of the networks it knows
const CHAIN_IDS: &[(&str, &str)] = &[
    (
        "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
        "bitcoin",
    ),
    (
        "00000000b873e79784647a6c82962c70d228557d24a747ea4d1b8bbe878e1206",
        "testnet",
    ),
    (
        "00000086d6b2636cb2a392d45edc4ec544a10024d30141c9adf4bfd9de533b53",
        "signet",
    ),
    (
        "000002855893a0a9b24eaffc5efc770558a326fee4fc10c9da22fc19cd2954f9",
        "signet",
    ),
];
/// registry order (a BTreeMap by kind) of the modules fedimintd attaches
const MODULES: &[&str] = &["ln", "lnv2", "meta", "mint", "mintv2", "wallet", "walletv2"];

// ---- logs ----

fn tlog(level: &str, target: &str, msg: &str) {
    let d = unix_now();
    let (y, mo, da, h, mi, se) = utc(d.as_secs() as i64);
    let micros = d.subsec_micros();
    eprintln!(
        "{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{se:02}.{micros:06}Z {level:>5} {target}: {msg}"
    );
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

// ---- the process ----

enum Backend {
    Bitcoind {
        addr: SocketAddr,
        path: String,
        host: String,
        auth: String,
    },
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
    info(
        "fedimintd",
        &format!("Starting fedimintd (version: {VERSION} version_hash: {VERSION_HASH})"),
    );
    let addr = |id: &str| o.get(id).and_then(|v| v.parse::<SocketAddr>().ok());
    if let Some(m) = addr("bind_metrics") {
        info(
            "fm::server",
            &format!("Initializing metrics server url=http://{m}/metrics"),
        );
        match TcpListener::bind(m) {
            Ok(l) => {
                let started = unix_now().as_secs();
                std::thread::spawn(move || {
                    crate::http::serve(l, move |req| Some(metrics(&req, started)))
                });
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
            print_panic(
                "main",
                "fedimintd/src/lib.rs:333:14",
                &format!("called `Result::unwrap()` on an `Err` value: {e}"),
            );
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
            info(
                "fm::server",
                &format!("Initializing bitcoin bitcoind backend url={}", url.safe()),
            );
            if let Some(e) = esplora {
                info(
                    "fm::server",
                    &format!(
                        "Initializing bitcoin esplora backend url={}",
                        Url::parse(e).expect("validated").safe()
                    ),
                );
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
            let port = url
                .port
                .unwrap_or(if url.scheme == "https" { 443 } else { 80 });
            let host = url
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let addr = match (host.as_str(), port)
                .to_socket_addrs()
                .map(|mut a| a.next())
            {
                Ok(Some(a)) => a,
                other => {
                    let e = other
                        .err()
                        .map_or("no address".to_string(), |e| e.to_string());
                    let msg = format!("called `Result::unwrap()` on an `Err` value: JSON-RPC error: transport error: Couldn't connect to host: {e}");
                    print_panic("main", "fedimintd/src/lib.rs:351:18", &msg);
                    return 101;
                }
            };
            let user = o.get("bitcoind_username").unwrap_or_default();
            let auth = crate::util::base64(format!("{user}:{password}"));
            Backend::Bitcoind {
                addr,
                path: url.path.clone(),
                host: format!("{host}:{port}"),
                auth,
            }
        }
        (None, Some(e)) => {
            info(
                "fm::server",
                &format!(
                    "Initializing bitcoin esplora backend url={}",
                    Url::parse(e).expect("validated").safe()
                ),
            );
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
        Ok(Event::Signal) | Err(_) => {
            info("fm::task", "signal received, starting graceful shutdown")
        }
        Ok(Event::MainError(e)) => {
            print_panic(
                "tokio-runtime-worker",
                "fedimintd/src/lib.rs:402:31",
                &format!("Main task returned error: {e}"),
            );
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

/// RocksDB's create_if_missing (the directory, not its parents) and its LOCK file.
fn open_database(data_dir: &Path) -> Result<std::fs::File, String> {
    let dir = data_dir.join("database");
    let io = |what: &str, p: &Path, e: std::io::Error| {
        format!(
            "IO error: {what}: {}: {}",
            p.display(),
            crate::util::os_error_text(&e)
        )
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
    crate::sys::lock_exclusive(&lock).map_err(|e| io("While lock file", &lock_path, e))?;
    for (name, content) in [("CURRENT", "MANIFEST-000005\n"), ("IDENTITY", "")] {
        let p = dir.join(name);
        if !p.exists() {
            let c = if name == "IDENTITY" {
                crate::sys::random_hex(16)
            } else {
                content.to_string()
            };
            std::fs::write(&p, c).map_err(|e| io("While appending to file", &p, e))?;
        }
    }
    Ok(lock)
}
