//! The mempool backend v3.3.1 (`node /backend/package/index.js` in docker.io/mempool/backend:v3.3.1;
//! mempool/mempool tag v3.3.1, `backend/src/...`). What is mirrored, and from where:
//!
//! - `node`: `--version` prints v24.13.0 (the image's nodesource build); options before the
//!   script are ignored; the script must be `/backend/package/index.js` (relative to the working
//!   directory, as node resolves it), anything else is node's "Cannot find module" (exit 1).
//! - Configuration (`config.ts`): `require(MEMPOOL_CONFIG_FILE || '../mempool-config.json')`,
//!   i.e. `/backend/mempool-config.json` by default; a missing file is node's MODULE_NOT_FOUND,
//!   an unreadable one EACCES, bad JSON a SyntaxError (all exit 1). Each section of the file is
//!   merged over config.ts's defaults (`merge`: `{...defaults[s], ...file[s]}`), so a partial
//!   file works and the *config.ts* defaults apply (BACKEND "none", ELECTRUM port 3306 with TLS,
//!   SYSLOG enabled, STDOUT_LOG_MIN_PRIORITY "debug", AUTOMATIC_POOLS_UPDATE false,
//!   FIAT_PRICE enabled, ...), not start.sh's.
//! - Logging (`logger.ts`): `Mon DD HH:MM:SS [pid] PRIO: <network> [tag] msg`; info and debug to
//!   stdout, the others to stderr (`console[priority] || console.error`), filtered by
//!   `STDOUT_LOG_MIN_PRIORITY`; with `SYSLOG.ENABLED` each line also goes by UDP to
//!   `SYSLOG.HOST:PORT`.
//! - Start (`index.ts startServer`): "Starting Mempool Server... (9332d9d)"; with
//!   `DATABASE.ENABLED`: the PID lock (`database.ts getPidLock`: `mempool-<DATABASE>.pid` in
//!   `PID_DIR` or `/backend/package`; an existing file's pid checked with `ps -p PID -o args=`, "node"
//!   in it refuses to start), `SELECT 1` ("Database connection established." or "Could not
//!   connect to database: <mysql2's message>" and exit 1: "Access denied for user
//!   'mempool'@'10.89.0.7' (using password: YES)", "connect ECONNREFUSED 10.89.0.3:3306",
//!   "getaddrinfo ENOTFOUND archy-mempool-mariadb"), then migrations
//!   (`api/database-migration.ts`). Queries go through the real `mariadb` client (the image has
//!   Debian's), one process per statement batch, `time_zone` '+00:00' as the pool sets it.
//! - Migrations: the `state` table (upstream's DDL, rows schema_version and
//!   last_elements_block), "Initializing database (first run, clean install)", `statistics`,
//!   `pools` and `blocks` with upstream's CREATE statements, the later columns this stand-in
//!   writes added in one ALTER each, migration 56's and 75's `UPDATE state SET string = NULL
//!   WHERE name = 'pools_json_sha'`, then schema_version 106 ("MIGRATIONS: OK. Database schema
//!   has been properly initialized to version 106 (latest version)"). The other ~40 tables and
//!   most ALTERs of versions 5-106 are not mirrored.
//! - Mining pools (`tasks/pools-updater.ts`, index.ts): before listening, the sha of
//!   pools-v2.json is read from `state` and then fetched from `POOLS_JSON_TREE_URL` (GitHub's
//!   API; `EXTERNAL_MAX_RETRY` tries, "Could not connect to Github. Reason: ...", then `Cannot
//!   find "pools-v2.json" in git tree (...)`). `AUTOMATIC_POOLS_UPDATE` does not avoid that
//!   fetch: it only decides whether a *newer* sha is downloaded once one is stored. With no sha
//!   stored (first start) and none fetched, on mainnet/testnet/signet/testnet4/regtest with the
//!   database enabled the backend logs "Failed to retreive pools-v2.json sha, cannot run block
//!   indexing. ..." and exits 1. A stored sha (from a successful first download, or a row put in
//!   `state` after the migrations ran: migrations 56 and 75 null it) or reachable URLs (an
//!   `http://` mirror works here too) let it start. Fetches use the image's curl.
//! - Then (index.ts): the disk cache (`api/disk-cache.ts`: CACHE_DIR/cache.json restored, its
//!   blocks reused), statistics ("Starting statistics service"; a zeroed `statistics` row every
//!   minute once the mempool is in sync, as `statistics.ts` writes for an empty mempool),
//!   `getchaintips`, the main loop, and only then `listen(HTTP_PORT)` ("Mempool Server is
//!   running on port 8999"). The price updater and the mining indexer are not mirrored (logged).
//! - bitcoind (`rpc-api/jsonrpc.ts`, `api/bitcoin/bitcoin-client.ts`): POSTs `{id, method,
//!   params}` with Basic auth from USERNAME/PASSWORD (only when both are set) or the cookie file
//!   (`COOKIE`/`COOKIE_PATH`, re-read after a 401); a non-JSON reply is "Invalid params, response
//!   status code: 401"; node's connection errors ("connect ECONNREFUSED ip:port", "getaddrinfo
//!   ENOTFOUND host", "ETIMEDOUT" after `TIMEOUT` ms). `backend-info` asks `getnetworkinfo` at
//!   start (coreVersion) and logs "Exception in $updateCoreVersion. Reason: ..." on failure.
//! - The main loop (`index.ts runMainUpdateLoop`, `api/blocks.ts $updateBlocks`,
//!   `api/mempool.ts`): `getmempoolinfo`, `getrawmempool`, `getblockcount`; the tip height is
//!   set at once to tip - INITIAL_BLOCKS_AMOUNT (8) (so `/blocks/tip/height` answers as soon as
//!   one `getblockcount` did, before any block is processed), `getblockchaininfo` and two
//!   `getblockhash`/`getblock` for the difficulty epoch (only when blocks == headers: "Blockchain
//!   headers (H) and blocks (B) not in sync. Waiting..." during initial block download, which
//!   does not stop block processing), then per block `getblockhash`, `getblock <hash> 2`,
//!   `getrawtransaction <txid> true` per transaction (tried twice, as
//!   `$getTransactionExtendedRetry`), `getblockstats`, `getblockheader <hash> false`; each
//!   block is saved to `blocks` (pool "Unknown", inserted into `pools` as upstream does) and the
//!   disk cache written when the height is a multiple of DISK_CACHE_BLOCK_INTERVAL (6);
//!   then the mempool: in sync when all its transactions are known ("The mempool is now in
//!   sync!"). A failing iteration logs "Exception in runMainUpdateLoop() (count: N). Retrying in
//!   1 sec. Reason: ..." (debug, warn from the 5th) and retries every second. Not mirrored:
//!   projected mempool blocks (fees come from mempoolminfee only), reorg handling, transactions
//!   of a non-empty mempool (their ids count as loaded). Stand-in bitcoind gaps (until it
//!   answers them): a `getblock 2` whose transactions are plain ids gets its coinbase
//!   synthesized instead of `getrawtransaction`, a "Method not found" `getblockstats` zero
//!   stats, a "Method not found" `validateaddress` a local decoding of the address; each logged
//!   once as the stand-in's.
//! - ElectrumX (`api/bitcoin/electrum-api.ts`, @mempool/electrum-client 1.1.9 `index.js`,
//!   `lib/client.js`): connects at start to ELECTRUM.HOST:PORT over TCP (TLS is not mirrored:
//!   logged, retried), sends `server.version ["mempool-v2", "1.4"]` ("Connected to Electrum
//!   Server at H:P (["ElectrumX 1.16.0","1.4"])"); on failure "Electrum error: {node's error as
//!   JSON}", "Error connecting to Electrum Server at H:P", "Disconnected from Electrum Server at
//!   H:P", and a reconnect every second (`retryPeriod` 1000, `maxRetry` MAX_SAFE_INTEGER), for
//!   ever; `server.ping` after 120 s without a request. A request while disconnected fails with
//!   "Connection to server lost, please retry"; pending ones with "close connect".
//! - HTTP (express, `api/bitcoin/bitcoin.routes.ts`, `utils/api.ts handleError`): CORS headers
//!   and `X-Powered-By: Express` on every answer; `GET /api/v1/backend-info` (static: hostname,
//!   version 3.3.1, gitCommit 9332d9db, lightning, backend, coreVersion, osVersion);
//!   `blocks/tip/height` (503 "Service Temporarily Unavailable" while the height is 0, then the
//!   height, text/plain); `blocks/tip/hash` (`getbestblockhash`); `fees/recommended` (503
//!   "Service Unavailable" until the mempool is in sync); `validate-address/:address`;
//!   `address/:address` and `scripthash/:scripthash` (only with BACKEND electrum or esplora, else
//!   405 "Address lookups cannot be used with bitcoind as backend."): `validateaddress` on
//!   bitcoind, then `blockchain.scripthash.get_balance` and `get_history` on ElectrumX; 400
//!   "Invalid Bitcoin address", 501 "Invalid address", 500 "Failed to get address" (e.g.
//!   ElectrumX unreachable). handleError answers `{"error": msg}` when the client accepts JSON
//!   (curl's `*/*` does), else the text. Unknown paths get express's "Cannot GET /x" page (404).
//!   The API prefix is MEMPOOL.API_URL_PREFIX ("/api/v1/"); `/api/address/...` is the frontend's
//!   nginx mapping, not the backend's.
//! - SIGTERM, SIGINT, SIGHUP: the PID file removed, exit 0 (`forceExit`, `exitCleanup`).

use crate::http::{self, Request, Response};
use crate::json::{self, num, obj, s, Value};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const VERSION: &str = "3.3.1";
const GIT_COMMIT: &str = "9332d9db";
const NODE_VERSION: &str = "v24.13.0";
const SCRIPT: &str = "/backend/package/index.js";
const PACKAGE_DIR: &str = "/backend/package";
const BITCOIN_NETWORKS: &[&str] = &["mainnet", "testnet", "signet", "testnet4", "regtest"];

/// config.ts's defaults, as JSON.
const DEFAULTS: &str = r#"{
  "MEMPOOL": {"ENABLED": true, "OFFICIAL": false, "NETWORK": "mainnet", "BACKEND": "none", "HTTP_PORT": 8999,
    "UNIX_SOCKET_PATH": "", "SPAWN_CLUSTER_PROCS": 0, "API_URL_PREFIX": "/api/v1/", "POLL_RATE_MS": 2000,
    "CACHE_DIR": "./cache", "CACHE_ENABLED": true, "CLEAR_PROTECTION_MINUTES": 20, "RECOMMENDED_FEE_PERCENTILE": 50,
    "BLOCK_WEIGHT_UNITS": 4000000, "INITIAL_BLOCKS_AMOUNT": 8, "MEMPOOL_BLOCKS_AMOUNT": 8, "INDEXING_BLOCKS_AMOUNT": 11000,
    "BLOCKS_SUMMARIES_INDEXING": false, "GOGGLES_INDEXING": false, "USE_SECOND_NODE_FOR_MINFEE": false,
    "EXTERNAL_ASSETS": [], "EXTERNAL_MAX_RETRY": 1, "EXTERNAL_RETRY_INTERVAL": 0, "USER_AGENT": "mempool",
    "STDOUT_LOG_MIN_PRIORITY": "debug", "AUTOMATIC_POOLS_UPDATE": false,
    "POOLS_JSON_URL": "https://raw.githubusercontent.com/mempool/mining-pools/master/pools-v2.json",
    "POOLS_JSON_TREE_URL": "https://api.github.com/repos/mempool/mining-pools/git/trees/master",
    "POOLS_UPDATE_DELAY": 604800, "AUDIT": false, "RUST_GBT": true, "LIMIT_GBT": false, "CPFP_INDEXING": false,
    "MAX_BLOCKS_BULK_QUERY": 0, "DISK_CACHE_BLOCK_INTERVAL": 6, "MAX_PUSH_TX_SIZE_WEIGHT": 400000,
    "ALLOW_UNREACHABLE": true, "PRICE_UPDATES_PER_HOUR": 1, "MAX_TRACKED_ADDRESSES": 1},
  "ESPLORA": {"REST_API_URL": "http://127.0.0.1:3000", "UNIX_SOCKET_PATH": null, "BATCH_QUERY_BASE_SIZE": 1000,
    "RETRY_UNIX_SOCKET_AFTER": 30000, "REQUEST_TIMEOUT": 10000, "FALLBACK_TIMEOUT": 5000, "FALLBACK": [], "MAX_BEHIND_TIP": 2},
  "ELECTRUM": {"HOST": "127.0.0.1", "PORT": 3306, "TLS_ENABLED": true},
  "CORE_RPC": {"HOST": "127.0.0.1", "PORT": 8332, "USERNAME": "mempool", "PASSWORD": "mempool", "TIMEOUT": 60000,
    "COOKIE": false, "COOKIE_PATH": "/bitcoin/.cookie", "DEBUG_LOG_PATH": ""},
  "SECOND_CORE_RPC": {"HOST": "127.0.0.1", "PORT": 8332, "USERNAME": "mempool", "PASSWORD": "mempool", "TIMEOUT": 60000,
    "COOKIE": false, "COOKIE_PATH": "/bitcoin/.cookie"},
  "DATABASE": {"ENABLED": true, "HOST": "127.0.0.1", "SOCKET": "", "PORT": 3306, "DATABASE": "mempool",
    "USERNAME": "mempool", "PASSWORD": "mempool", "TIMEOUT": 180000, "PID_DIR": "", "POOL_SIZE": 100},
  "SYSLOG": {"ENABLED": true, "HOST": "127.0.0.1", "PORT": 514, "MIN_PRIORITY": "info", "FACILITY": "local7"},
  "STATISTICS": {"ENABLED": true, "TX_PER_SECOND_SAMPLE_PERIOD": 150},
  "LIGHTNING": {"ENABLED": false, "BACKEND": "lnd", "TOPOLOGY_FOLDER": "", "STATS_REFRESH_INTERVAL": 600,
    "GRAPH_REFRESH_INTERVAL": 600, "LOGGER_UPDATE_INTERVAL": 30, "FORENSICS_INTERVAL": 43200, "FORENSICS_RATE_LIMIT": 20},
  "LND": {"TLS_CERT_PATH": "", "MACAROON_PATH": "", "REST_API_URL": "https://localhost:8080", "TIMEOUT": 10000},
  "CLIGHTNING": {"SOCKET": ""},
  "SOCKS5PROXY": {"ENABLED": false, "USE_ONION": true, "HOST": "127.0.0.1", "PORT": 9050, "USERNAME": "", "PASSWORD": ""},
  "EXTERNAL_DATA_SERVER": {"MEMPOOL_API": "https://mempool.space/api/v1",
    "MEMPOOL_ONION": "http://mempoolhqx4isw62xs7abwphsq7ldayuidyx2v2oethdhhj6mlo2r6ad.onion/api/v1",
    "LIQUID_API": "https://liquid.network/api/v1",
    "LIQUID_ONION": "http://liquidmom47f6s3m53ebfxn47p76a6tlnxib3wp6deux7wuzotdr6cyd.onion/api/v1"},
  "MAXMIND": {"ENABLED": false, "GEOLITE2_CITY": "/usr/local/share/GeoIP/GeoLite2-City.mmdb",
    "GEOLITE2_ASN": "/usr/local/share/GeoIP/GeoLite2-ASN.mmdb", "GEOIP2_ISP": "/usr/local/share/GeoIP/GeoIP2-ISP.mmdb"},
  "REPLICATION": {"ENABLED": false, "AUDIT": false, "AUDIT_START_HEIGHT": 774000, "STATISTICS": false,
    "STATISTICS_START_TIME": 1481932800, "SERVERS": []},
  "MEMPOOL_SERVICES": {"API": "", "ACCELERATIONS": false},
  "REDIS": {"ENABLED": false, "UNIX_SOCKET_PATH": "", "BATCH_QUERY_BASE_SIZE": 5000},
  "FIAT_PRICE": {"ENABLED": true, "PAID": false, "API_KEY": ""},
  "WALLETS": {"ENABLED": false, "AUTO": false, "WALLETS": []},
  "STRATUM": {"ENABLED": false, "API": "http://localhost:1234"}
}"#;

// ---------------------------------------------------------------------------------------------
// configuration

struct Config(Value);

impl Config {
    fn get(&self, section: &str, key: &str) -> Value {
        self.0.get(section).and_then(|s| s.get(key)).cloned().unwrap_or(Value::Null)
    }
    fn str(&self, section: &str, key: &str) -> String {
        match self.get(section, key) {
            Value::Str(x) => x,
            Value::Num(n) => n,
            Value::Bool(b) => b.to_string(),
            _ => String::new(),
        }
    }
    fn num(&self, section: &str, key: &str) -> i64 {
        match self.get(section, key) {
            Value::Num(n) => n.parse::<f64>().map_or(0, |f| f as i64),
            Value::Str(x) => x.trim().parse::<f64>().map_or(0, |f| f as i64),
            Value::Bool(b) => i64::from(b),
            _ => 0,
        }
    }
    /// JavaScript truthiness (`if (config.X.Y)`).
    fn truthy(&self, section: &str, key: &str) -> bool {
        js_truthy(&self.get(section, key))
    }
    /// `=== true`.
    fn is_true(&self, section: &str, key: &str) -> bool {
        self.get(section, key) == Value::Bool(true)
    }
    fn network(&self) -> String {
        self.str("MEMPOOL", "NETWORK")
    }
    fn is_bitcoin(&self) -> bool {
        BITCOIN_NETWORKS.contains(&self.network().as_str())
    }
    fn indexing_enabled(&self) -> bool {
        self.is_bitcoin() && self.is_true("DATABASE", "ENABLED") && self.num("MEMPOOL", "INDEXING_BLOCKS_AMOUNT") != 0
    }
}

fn js_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Num(n) => n.parse::<f64>().map_or(true, |x| x != 0.0 && !x.is_nan()),
        Value::Str(x) => !x.is_empty(),
        _ => true,
    }
}

/// `merge(configFromFile, defaults)`: each file section spread over the default one.
fn merge(file: &Value, defaults: Value) -> Value {
    let Value::Obj(mut out) = defaults else { return defaults };
    if let Value::Obj(sections) = file {
        for (name, section) in sections {
            let mut merged = match out.iter().find(|(k, _)| k == name) {
                Some((_, Value::Obj(d))) => d.clone(),
                _ => Vec::new(),
            };
            if let Value::Obj(fields) = section {
                for (k, v) in fields {
                    match merged.iter_mut().find(|(mk, _)| mk == k) {
                        Some(slot) => slot.1 = v.clone(),
                        None => merged.push((k.clone(), v.clone())),
                    }
                }
            } else if let Value::Str(x) = section {
                // spreading a string spreads its characters, as JS does
                for (i, c) in x.chars().enumerate() {
                    merged.push((i.to_string(), s(&c.to_string())));
                }
            }
            match out.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = Value::Obj(merged),
                None => out.push((name.clone(), Value::Obj(merged))),
            }
        }
    }
    Value::Obj(out)
}

fn node_fatal(text: &str) -> i32 {
    eprintln!("{text}\n\nNode.js {NODE_VERSION}");
    1
}

fn load_config() -> Result<Config, i32> {
    let require = std::env::var("MEMPOOL_CONFIG_FILE").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "../mempool-config.json".into());
    // require() of a relative path resolves against config.js's directory
    let path = if require.starts_with("./") || require.starts_with("../") {
        normalize(&Path::new(PACKAGE_DIR).join(&require))
    } else if Path::new(&require).is_absolute() {
        PathBuf::from(&require)
    } else {
        // a bare name is a module lookup in node_modules
        return Err(node_fatal(&format!(
            "Error: Cannot find module '{require}'\nRequire stack:\n- {PACKAGE_DIR}/config.js\n- {SCRIPT}"
        )));
    };
    let shown = path.display().to_string();
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(node_fatal(&format!("Error: Cannot find module '{shown}'\nRequire stack:\n- {PACKAGE_DIR}/config.js\n- {SCRIPT}")));
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(node_fatal(&format!("Error: EACCES: permission denied, open '{shown}'")));
        }
        Err(e) => return Err(node_fatal(&format!("Error: {e}, open '{shown}'"))),
    };
    let text = String::from_utf8_lossy(&text);
    let text = text.trim_start_matches('\u{feff}');
    let file = match json::parse(text.trim()) {
        Ok(v) => v,
        Err(e) => return Err(node_fatal(&format!("SyntaxError: {shown}: {e}"))),
    };
    let defaults = json::parse(DEFAULTS).unwrap_or(Value::Obj(vec![]));
    Ok(Config(merge(&file, defaults)))
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// logger.ts

struct Logger {
    min_stdout: Option<u8>,
    network: String,
    syslog: Option<(UdpSocket, String, u8, u8)>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn priority(name: &str) -> Option<u8> {
    Some(match name {
        "emerg" => 0,
        "alert" => 1,
        "crit" => 2,
        "err" => 3,
        "warn" => 4,
        "notice" => 5,
        "info" => 6,
        "debug" => 7,
        _ => return None,
    })
}

fn facility(name: &str) -> u8 {
    match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        _ => 23,
    }
}

fn init_logger(cfg: &Config) {
    let network = if cfg.truthy("LIGHTNING", "ENABLED") {
        if cfg.network() == "mainnet" {
            "lightning".to_string()
        } else {
            format!("{}-lightning", cfg.network())
        }
    } else if !cfg.network().is_empty() && cfg.network() != "mainnet" {
        cfg.network()
    } else {
        String::new()
    };
    let syslog = if cfg.truthy("SYSLOG", "ENABLED") {
        UdpSocket::bind("0.0.0.0:0").ok().map(|sock| {
            (
                sock,
                format!("{}:{}", cfg.str("SYSLOG", "HOST"), cfg.num("SYSLOG", "PORT")),
                priority(&cfg.str("SYSLOG", "MIN_PRIORITY")).unwrap_or(6),
                facility(&cfg.str("SYSLOG", "FACILITY")),
            )
        })
    } else {
        None
    };
    let _ = LOGGER.set(Logger { min_stdout: priority(&cfg.str("MEMPOOL", "STDOUT_LOG_MIN_PRIORITY")), network, syslog });
}

fn ts() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (_, mo, da, h, mi, se) = civil(d);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {da:>2} {h:02}:{mi:02}:{se:02}", MONTHS[(mo - 1) as usize])
}

fn civil(t: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = t.div_euclid(86400);
    let rem = t.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

fn log(prio: &str, msg: &str, tag: Option<&str>) {
    let Some(l) = LOGGER.get() else { return };
    let msg = msg.trim_end_matches('\n');
    let network = if l.network.is_empty() { String::new() } else { format!(" <{}>", l.network) };
    let tag = tag.map(|t| format!("[{t}] ")).unwrap_or_default();
    let p = priority(prio).unwrap_or(6);
    let pid = std::process::id();
    let upper = prio.to_uppercase();
    if let Some((sock, addr, min, fac)) = &l.syslog {
        if p <= *min {
            let line = format!("<{}> mempool[{pid}]: {upper}{network} {tag}{msg}", u32::from(*fac) * 8 + u32::from(p));
            let _ = sock.send_to(line.as_bytes(), addr.as_str());
        }
    }
    if let Some(min) = l.min_stdout {
        if p > min {
            return;
        }
    }
    let line = format!("{} [{pid}] {upper}:{network} {tag}{msg}", ts());
    if p >= 6 {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    } else {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

fn err(msg: impl AsRef<str>) {
    log("err", msg.as_ref(), None);
}
fn warn(msg: impl AsRef<str>) {
    log("warn", msg.as_ref(), None);
}
fn notice(msg: impl AsRef<str>) {
    log("notice", msg.as_ref(), None);
}
fn info(msg: impl AsRef<str>) {
    log("info", msg.as_ref(), None);
}
fn debug(msg: impl AsRef<str>) {
    log("debug", msg.as_ref(), None);
}

// ---------------------------------------------------------------------------------------------
// node's network errors

/// A connection to host:port as node's net module reports failures: Err((message, error JSON)).
fn node_connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, (String, String)> {
    let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            let code = if e.to_string().contains("Temporary failure") { ("EAI_AGAIN", -3001) } else { ("ENOTFOUND", -3008) };
            return Err((
                format!("getaddrinfo {} {host}", code.0),
                format!("{{\"errno\":{},\"code\":\"{}\",\"syscall\":\"getaddrinfo\",\"hostname\":{}}}", code.1, code.0, s(host).compact()),
            ));
        }
    };
    let Some(a) = addrs.iter().find(|a| a.is_ipv4()).or_else(|| addrs.first()).copied() else {
        return Err((format!("getaddrinfo ENOTFOUND {host}"), format!("{{\"errno\":-3008,\"code\":\"ENOTFOUND\",\"syscall\":\"getaddrinfo\",\"hostname\":{}}}", s(host).compact())));
    };
    TcpStream::connect_timeout(&a, timeout).map_err(|e| {
        let (code, errno) = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ("ECONNREFUSED", -111),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ("ETIMEDOUT", -110),
            std::io::ErrorKind::HostUnreachable => ("EHOSTUNREACH", -113),
            std::io::ErrorKind::NetworkUnreachable => ("ENETUNREACH", -101),
            _ => ("ECONNRESET", -104),
        };
        (
            format!("connect {code} {}:{}", a.ip(), a.port()),
            format!("{{\"errno\":{errno},\"code\":\"{code}\",\"syscall\":\"connect\",\"address\":\"{}\",\"port\":{}}}", a.ip(), a.port()),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// bitcoind (rpc-api/jsonrpc.ts)

#[derive(Debug, Clone)]
struct RpcErr {
    message: String,
    code: Option<i64>,
}

impl RpcErr {
    fn method_not_found(&self) -> bool {
        self.code == Some(-32601)
    }
}

struct Core {
    host: String,
    port: u16,
    user: String,
    pass: String,
    timeout: Duration,
    cookie: Option<PathBuf>,
    cached_cookie: Mutex<Option<String>>,
}

impl Core {
    fn from(cfg: &Config) -> Core {
        Core {
            host: cfg.str("CORE_RPC", "HOST"),
            port: cfg.num("CORE_RPC", "PORT") as u16,
            user: cfg.str("CORE_RPC", "USERNAME"),
            pass: cfg.str("CORE_RPC", "PASSWORD"),
            timeout: Duration::from_millis(match cfg.num("CORE_RPC", "TIMEOUT") {
                n if n > 0 => n as u64,
                _ => 30000,
            }),
            cookie: cfg.truthy("CORE_RPC", "COOKIE").then(|| PathBuf::from(cfg.str("CORE_RPC", "COOKIE_PATH"))),
            cached_cookie: Mutex::new(None),
        }
    }

    fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, RpcErr> {
        let e = |m: String| RpcErr { message: m, code: None };
        let id = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        let body = obj(vec![("id", num(id)), ("method", s(method)), ("params", Value::Arr(params))]).compact();
        let host = if self.host.is_empty() { "localhost".to_string() } else { self.host.clone() };
        let mut auth = None;
        if let Some(path) = &self.cookie {
            let mut c = self.cached_cookie.lock().unwrap_or_else(|p| p.into_inner());
            if c.is_none() {
                match std::fs::read_to_string(path) {
                    Ok(t) => *c = Some(t),
                    Err(err) => return Err(e(format!("ENOENT: no such file or directory, open '{}' ({err})", path.display()))),
                }
            }
            auth = c.clone();
        } else if !self.user.is_empty() && !self.pass.is_empty() {
            auth = Some(format!("{}:{}", self.user, self.pass));
        }
        let mut st = node_connect(&host, self.port, self.timeout).map_err(|(m, _)| e(m))?;
        let _ = st.set_read_timeout(Some(self.timeout));
        let mut req = format!("POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        if let Some(a) = &auth {
            req.push_str(&format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(a)));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        st.write_all(req.as_bytes()).map_err(|_| e("socket hang up".into()))?;
        let mut raw = Vec::new();
        if let Err(x) = st.read_to_end(&mut raw) {
            return Err(match x.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => RpcErr { message: "ETIMEDOUT".into(), code: None },
                _ => e("socket hang up".into()),
            });
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { return Err(e("socket hang up".into())) };
        let status: u16 = head.split_whitespace().nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
        let decoded = match json::parse(body.trim()) {
            Ok(v) => v,
            Err(_) => {
                if status == 401 && self.cookie.is_some() {
                    *self.cached_cookie.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                return Err(if status != 200 {
                    RpcErr { message: format!("Invalid params, response status code: {status}"), code: Some(-32602) }
                } else {
                    RpcErr { message: "Problem parsing JSON response from server".into(), code: Some(-32603) }
                });
            }
        };
        let first = match &decoded {
            Value::Arr(a) => a.first().cloned().unwrap_or(Value::Null),
            v => v.clone(),
        };
        match first.get("error") {
            Some(er) if *er != Value::Null => Err(RpcErr {
                message: er.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
                code: er.get("code").and_then(Value::as_i64),
            }),
            _ => Ok(first.get("result").cloned().unwrap_or(Value::Null)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MariaDB through the real client (database.ts uses mysql2)

struct Db {
    host: String,
    port: i64,
    socket: String,
    database: String,
    user: String,
    password: String,
}

type Rows = Vec<Vec<Option<String>>>;

impl Db {
    fn from(cfg: &Config) -> Db {
        Db {
            host: cfg.str("DATABASE", "HOST"),
            port: cfg.num("DATABASE", "PORT"),
            socket: cfg.str("DATABASE", "SOCKET"),
            database: cfg.str("DATABASE", "DATABASE"),
            user: cfg.str("DATABASE", "USERNAME"),
            password: cfg.str("DATABASE", "PASSWORD"),
        }
    }

    /// Run SQL (statements separated by `;`); the rows of the last result set.
    fn query(&self, sql: &str) -> Result<Rows, String> {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults");
        if self.socket.is_empty() {
            cmd.arg("--protocol=TCP").arg(format!("--host={}", self.host)).arg(format!("--port={}", self.port));
        } else {
            cmd.arg("--protocol=SOCKET").arg(format!("--socket={}", self.socket));
        }
        cmd.arg(format!("--user={}", self.user))
            .arg(format!("--database={}", self.database))
            .args(["--batch", "--skip-column-names", "--connect-timeout=10", "--default-character-set=utf8mb4"])
            .arg(format!("--execute=SET time_zone='+00:00'; {sql}"));
        cmd.env_remove("MYSQL_PWD");
        if !self.password.is_empty() {
            cmd.env("MYSQL_PWD", &self.password);
        }
        let out = cmd.output().map_err(|e| format!("spawn mariadb ENOENT ({e})"))?;
        if !out.status.success() {
            return Err(self.error_message(&String::from_utf8_lossy(&out.stderr)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .map(|l| {
                l.split('\t')
                    .map(|f| {
                        if f == "NULL" {
                            None
                        } else {
                            Some(f.replace("\\n", "\n").replace("\\t", "\t").replace("\\0", "\0").replace("\\\\", "\\"))
                        }
                    })
                    .collect()
            })
            .collect())
    }

    /// The client's error as mysql2 would word it: the server's text, node's for the network.
    fn error_message(&self, stderr: &str) -> String {
        let line = stderr.lines().find(|l| l.starts_with("ERROR ")).unwrap_or(stderr.trim()).to_string();
        let code: i64 = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        if matches!(code, 2002 | 2003 | 2005 | 2006 | 2013) && self.socket.is_empty() {
            return match node_connect(&self.host, self.port as u16, Duration::from_secs(10)) {
                Err((m, _)) => m,
                Ok(_) => "Connection lost: The server closed the connection.".into(),
            };
        }
        match line.find("): ") {
            Some(i) => line[i + 3..].to_string(),
            None => line,
        }
    }

    fn exec(&self, sql: &str) -> Result<(), String> {
        self.query(sql).map(|_| ())
    }
}

/// A SQL string literal (mysql2's escape).
fn q(v: &str) -> String {
    let mut out = String::from("'");
    for c in v.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

// ---------------------------------------------------------------------------------------------
// migrations (api/database-migration.ts)

const CREATE_STATE: &str = "CREATE TABLE IF NOT EXISTS state (
      name varchar(25) NOT NULL,
      number int(11) NULL,
      string varchar(100) NULL,
      CONSTRAINT name_unique UNIQUE (name)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8;";

const CREATE_POOLS: &str = "CREATE TABLE IF NOT EXISTS pools (
      id int(11) NOT NULL AUTO_INCREMENT,
      name varchar(50) NOT NULL,
      link varchar(255) NOT NULL,
      addresses text NOT NULL,
      regexes text NOT NULL,
      PRIMARY KEY (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;";

const CREATE_BLOCKS: &str = "CREATE TABLE IF NOT EXISTS blocks (
      height int(11) unsigned NOT NULL,
      hash varchar(65) NOT NULL,
      blockTimestamp timestamp NOT NULL,
      size int(11) unsigned NOT NULL,
      weight int(11) unsigned NOT NULL,
      tx_count int(11) unsigned NOT NULL,
      coinbase_raw text,
      difficulty bigint(20) unsigned NOT NULL,
      pool_id int(11) DEFAULT -1,
      fees double unsigned NOT NULL,
      fee_span json NOT NULL,
      median_fee double unsigned NOT NULL,
      PRIMARY KEY (height),
      INDEX (pool_id),
      FOREIGN KEY (pool_id) REFERENCES pools (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8;";

/// The columns of later migrations this stand-in writes (versions 5, 16, 17, 26, 56, 95, ...).
const ALTER_BLOCKS: &str = "ALTER TABLE blocks
      ADD `reward` double unsigned NOT NULL DEFAULT \"0\",
      ADD `version` integer unsigned NOT NULL DEFAULT \"0\",
      ADD `bits` integer unsigned NOT NULL DEFAULT \"0\",
      ADD `nonce` bigint unsigned NOT NULL DEFAULT \"0\",
      ADD `merkle_root` varchar(65) NOT NULL DEFAULT \"\",
      ADD `previous_block_hash` varchar(65) NULL,
      ADD avg_fee int unsigned NULL,
      ADD avg_fee_rate int unsigned NULL,
      ADD median_timestamp timestamp NOT NULL DEFAULT 0,
      ADD header varchar(160) NOT NULL DEFAULT \"\",
      ADD coinbase_address varchar(100) NULL,
      ADD coinbase_signature varchar(500) NULL,
      ADD coinbase_signature_ascii varchar(500) NULL,
      ADD avg_tx_size double unsigned NOT NULL DEFAULT 0,
      ADD total_inputs int unsigned NOT NULL DEFAULT 0,
      ADD total_outputs int unsigned NOT NULL DEFAULT 0,
      ADD total_output_amt bigint unsigned NOT NULL DEFAULT 0,
      ADD definition_hash varchar(255) NULL,
      ADD index_version int unsigned NOT NULL DEFAULT 0,
      ADD stale boolean NOT NULL DEFAULT 0";

fn create_statistics() -> String {
    let sizes = [
        1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100, 125, 150, 175, 200, 250, 300, 350, 400, 500, 600, 700,
        800, 900, 1000, 1200, 1400, 1600, 1800, 2000,
    ];
    let cols: String = sizes.iter().map(|n| format!("      vsize_{n} int(11) NOT NULL,\n")).collect();
    format!(
        "CREATE TABLE IF NOT EXISTS statistics (
      id int(11) NOT NULL AUTO_INCREMENT,
      added datetime NOT NULL,
      unconfirmed_transactions int(11) UNSIGNED NOT NULL,
      tx_per_second float UNSIGNED NOT NULL,
      vbytes_per_second int(10) UNSIGNED NOT NULL,
      mempool_byte_weight int(10) UNSIGNED NOT NULL,
      fee_data longtext NOT NULL,
      total_fee double UNSIGNED NOT NULL,
{cols}      CONSTRAINT PRIMARY KEY (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8;"
    )
}

fn table_exists(db: &Db, table: &str) -> Result<bool, String> {
    let rows = db.query(&format!(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {} AND TABLE_NAME = {}",
        q(&db.database),
        q(table)
    ))?;
    Ok(rows.first().and_then(|r| r.first().cloned().flatten()).as_deref() == Some("1"))
}

const CURRENT_VERSION: i64 = 106;

/// `$initializeOrMigrateDatabase`; Err is an exit code.
fn migrate(db: &Db, cfg: &Config) -> Result<(), i32> {
    debug("MIGRATIONS: Running migrations");
    match db.query("SELECT VERSION() as version;") {
        Ok(r) => debug(format!("MIGRATIONS: Database engine version '{}'", r.first().and_then(|x| x.first().cloned().flatten()).unwrap_or_default())),
        Err(e) => debug(format!("MIGRATIONS: Could not fetch database engine version. Error: {e}")),
    }
    let abort = |what: &str, e: String| -> i32 {
        err(format!("MIGRATIONS: {what}, aborting in 10 seconds. Error: {e}"));
        std::thread::sleep(Duration::from_secs(10));
        255
    };
    match table_exists(db, "state") {
        Ok(true) => {}
        Ok(false) => {
            debug("MIGRATIONS: `state` table does not exist. Creating it.");
            if let Err(e) = db.exec(&format!(
                "{CREATE_STATE} INSERT INTO state VALUES('schema_version', 0, NULL); INSERT INTO state VALUES('last_elements_block', 0, NULL);"
            )) {
                return Err(abort("Unable to create `state` table", e));
            }
            debug("MIGRATIONS: `state` table initialized.");
        }
        Err(e) => return Err(abort("Unable to create `state` table", e)),
    }
    let version: i64 = match db.query("SELECT number FROM state WHERE name = 'schema_version';") {
        Ok(r) => r.first().and_then(|x| x.first().cloned().flatten()).and_then(|v| v.parse().ok()).unwrap_or(0),
        Err(e) => return Err(abort("Unable to get current database migration version", e)),
    };
    if version == 0 {
        info("Initializing database (first run, clean install)");
    }
    if version <= 2 {
        notice("'blocks' table has been truncated.");
        notice("'hashrates' table has been truncated.");
    }
    debug(format!("MIGRATIONS: Current state.schema_version {version}"));
    debug(format!("MIGRATIONS: Latest DatabaseMigration.version is {CURRENT_VERSION}"));
    if version >= CURRENT_VERSION {
        debug("MIGRATIONS: Nothing to do.");
        return Ok(());
    }
    let bitcoin = cfg.is_bitcoin();
    let mut steps: Vec<String> = Vec::new();
    steps.push(create_statistics());
    if version < 2 {
        steps.push("CREATE INDEX added ON statistics (added);".into());
    }
    if version < 3 {
        steps.push(CREATE_POOLS.into());
    }
    if version < 4 {
        steps.push("DROP table IF EXISTS blocks;".into());
        steps.push(CREATE_BLOCKS.into());
        steps.push(format!("{ALTER_BLOCKS};"));
        steps.push("ALTER TABLE pools ADD `slug` CHAR(50) NULL, ADD unique_id int NOT NULL DEFAULT -1;".into());
        steps.push("ALTER TABLE statistics ADD min_fee FLOAT UNSIGNED DEFAULT NULL, ADD COLUMN vsize_0 int(11) NOT NULL DEFAULT 0;".into());
    }
    if version < 56 || (version < 75 && bitcoin) {
        steps.push("UPDATE state SET string = NULL WHERE name = 'pools_json_sha';".into());
    }
    if version < 7 && bitcoin {
        // added at 7 and 9, deleted at 58
    }
    steps.push(format!("UPDATE state SET number = {CURRENT_VERSION} WHERE name = 'schema_version';"));
    for step in &steps {
        debug(format!("MIGRATIONS: Execute query:\n{step}"));
        if let Err(e) = db.exec(step) {
            return Err(abort("Unable to create required tables", e));
        }
    }
    if version == 0 {
        notice(format!("MIGRATIONS: OK. Database schema has been properly initialized to version {CURRENT_VERSION} (latest version)"));
    } else {
        notice(format!("MIGRATIONS: OK. Database schema have been migrated from version {version} to {CURRENT_VERSION} (latest version)"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// external fetches (axios in pools-updater.ts), with the image's curl

fn fetch_json(cfg: &Config, url: &str) -> Result<Value, String> {
    let agent = if cfg.str("MEMPOOL", "USER_AGENT") == "mempool" { format!("mempool/v{VERSION}") } else { cfg.str("MEMPOOL", "USER_AGENT") };
    let timeout = if cfg.truthy("SOCKS5PROXY", "ENABLED") { 30 } else { 10 };
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "--max-time", &timeout.to_string(), "-A", &agent]);
    if cfg.truthy("SOCKS5PROXY", "ENABLED") {
        cmd.arg("--socks5-hostname").arg(format!("{}:{}", cfg.str("SOCKS5PROXY", "HOST"), cfg.str("SOCKS5PROXY", "PORT")));
    }
    let out = cmd.arg(url).output().map_err(|e| format!("spawn curl: {e}"))?;
    let host = url.split("://").nth(1).unwrap_or(url).split(['/', ':']).next().unwrap_or_default().to_string();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(match out.status.code() {
            Some(6) => {
                let again = (host.as_str(), 443).to_socket_addrs().err().is_some_and(|e| e.to_string().contains("Temporary"));
                format!("getaddrinfo {} {host}", if again { "EAI_AGAIN" } else { "ENOTFOUND" })
            }
            Some(7) => format!("connect ECONNREFUSED {host}"),
            Some(28) => format!("timeout of {}ms exceeded", timeout * 1000),
            Some(22) => {
                let code = stderr.split("error: ").nth(1).and_then(|x| x.split_whitespace().next()).unwrap_or("?").to_string();
                format!("Request failed with status code {code}")
            }
            _ => stderr.trim().trim_start_matches("curl: ").to_string(),
        });
    }
    let body = String::from_utf8_lossy(&out.stdout);
    if body.trim().is_empty() {
        return Err(format!("Could not fetch data from {url}, Error: 200"));
    }
    json::parse(body.trim()).map_err(|e| format!("Unexpected token in JSON ({e})"))
}

struct PoolsUpdater {
    last_run: Mutex<f64>,
    current_sha: Mutex<Option<String>>,
}

const TAG_POOLS: &str = "PoolsUpdater";

impl PoolsUpdater {
    fn query(&self, cfg: &Config, url: &str) -> Option<Value> {
        let mut retry = 0;
        while retry < cfg.num("MEMPOOL", "EXTERNAL_MAX_RETRY") {
            match fetch_json(cfg, url) {
                Ok(v) => return Some(v),
                Err(e) => {
                    log("err", &format!("Could not connect to Github. Reason: {e}"), Some(TAG_POOLS));
                    retry += 1;
                }
            }
            std::thread::sleep(Duration::from_secs(cfg.num("MEMPOOL", "EXTERNAL_RETRY_INTERVAL").max(0) as u64));
        }
        None
    }

    fn update(&self, cfg: &Config, db: &Db) {
        if !cfg.is_bitcoin() || cfg.get("MEMPOOL", "ENABLED") == Value::Bool(false) {
            return;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let delay = cfg.num("MEMPOOL", "POOLS_UPDATE_DELAY") as f64;
        {
            let mut last = self.last_run.lock().unwrap_or_else(|e| e.into_inner());
            if now - *last < delay {
                return;
            }
            *last = now;
        }
        if cfg.is_true("DATABASE", "ENABLED") {
            let sha = match db.query("SELECT string FROM state WHERE name=\"pools_json_sha\"") {
                Ok(rows) => rows.first().and_then(|r| r.first().cloned().flatten()),
                Err(e) => {
                    log("err", &format!("Cannot fetch pools-v2.json sha from db. Reason: {e}"), Some(TAG_POOLS));
                    None
                }
            };
            *self.current_sha.lock().unwrap_or_else(|e| e.into_inner()) = sha;
        }
        let tree_url = cfg.str("MEMPOOL", "POOLS_JSON_TREE_URL");
        let github_sha = self.query(cfg, &tree_url).and_then(|tree| match tree.get("tree") {
            Some(Value::Arr(files)) => files
                .iter()
                .find(|f| f.get("path").and_then(Value::as_str) == Some("pools-v2.json"))
                .and_then(|f| f.get("sha").and_then(Value::as_str).map(str::to_string)),
            _ => None,
        });
        let Some(github_sha) = github_sha else {
            log("err", &format!("Cannot find \"pools-v2.json\" in git tree ({tree_url})"), Some(TAG_POOLS));
            return;
        };
        let current = self.current_sha.lock().unwrap_or_else(|e| e.into_inner()).clone();
        log("debug", &format!("pools-v2.json sha | Current: {} | Github: {github_sha}", current.as_deref().unwrap_or("null")), Some(TAG_POOLS));
        if current.as_deref() == Some(github_sha.as_str()) {
            return;
        }
        if current.is_some() && !cfg.is_true("MEMPOOL", "AUTOMATIC_POOLS_UPDATE") && std::env::var_os("npm_config_update_pools").is_none() {
            log("warn", &format!("Updated mining pools data is available ({github_sha}) but AUTOMATIC_POOLS_UPDATE is disabled"), Some(TAG_POOLS));
            log(
                "info",
                "You can update your mining pools using the --update-pools command flag. You may want to clear your nginx cache as well if applicable",
                Some(TAG_POOLS),
            );
            return;
        }
        let network = if cfg.truthy("SOCKS5PROXY", "ENABLED") { "tor" } else { "clearnet" };
        let pools_url = cfg.str("MEMPOOL", "POOLS_JSON_URL");
        if current.is_none() {
            log("info", &format!("Downloading pools-v2.json for the first time from {pools_url} over {network}"), Some(TAG_POOLS));
        } else {
            log("warn", &format!("pools-v2.json is outdated, fetching latest from {pools_url} over {network}"), Some(TAG_POOLS));
        }
        let Some(pools) = self.query(cfg, &pools_url) else { return };
        if !cfg.is_true("DATABASE", "ENABLED") {
            log("info", &format!("Mining pools-v2.json ({github_sha}) import completed (no database)"), Some(TAG_POOLS));
            return;
        }
        let mut sql = String::from("START TRANSACTION; DELETE FROM state where name=\"pools_json_sha\"; ");
        sql.push_str(&format!("INSERT INTO state VALUES('pools_json_sha', NULL, {}); ", q(&github_sha)));
        sql.push_str(&unknown_pool_sql());
        if let Value::Arr(list) = &pools {
            for p in list {
                let Some(id) = p.get("id").and_then(Value::as_i64) else { continue };
                let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                let slug: String = name.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
                let addresses = p.get("addresses").cloned().unwrap_or(Value::Arr(vec![])).compact();
                let regexes = p.get("tags").cloned().unwrap_or(Value::Arr(vec![])).compact();
                sql.push_str(&format!(
                    "INSERT INTO pools(name, link, addresses, regexes, slug, unique_id) SELECT {}, {}, {}, {}, {}, {id} FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM pools WHERE unique_id = {id}); ",
                    q(name),
                    q(p.get("link").and_then(Value::as_str).unwrap_or_default()),
                    q(&addresses),
                    q(&regexes),
                    q(&slug)
                ));
            }
        }
        sql.push_str("COMMIT;");
        match db.exec(&sql) {
            Ok(()) => *self.current_sha.lock().unwrap_or_else(|e| e.into_inner()) = Some(github_sha.clone()),
            Err(e) => {
                log("err", &format!("Could not migrate mining pools, rolling back. Exception: {}", s(&e).compact()), Some(TAG_POOLS));
                let _ = db.exec("ROLLBACK;");
            }
        }
        log("info", &format!("Mining pools-v2.json ({github_sha}) import completed"), Some(TAG_POOLS));
    }
}

fn unknown_pool_sql() -> String {
    "INSERT INTO pools(name, link, regexes, addresses, slug, unique_id) SELECT \"Unknown\", \"https://learnmeabitcoin.com/technical/coinbase-transaction\", \"[]\", \"[]\", \"unknown\", 0 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM pools WHERE name = \"Unknown\"); ".into()
}

// ---------------------------------------------------------------------------------------------
// @mempool/electrum-client

struct Electrum {
    host: String,
    port: u16,
    tls: bool,
    status: AtomicU8,
    writer: Mutex<Option<TcpStream>>,
    pending: Mutex<HashMap<u64, Sender<Result<Value, String>>>>,
    next_id: AtomicU64,
    last_call: Mutex<Instant>,
}

impl Electrum {
    fn where_(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn request(&self, method: &str, params: Vec<Value>) -> Result<Value, String> {
        if self.status.load(Ordering::SeqCst) == 0 {
            return Err("Connection to server lost, please retry".into());
        }
        *self.last_call.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let (tx, rx) = channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        let line = obj(vec![("jsonrpc", s("2.0")), ("method", s(method)), ("params", Value::Arr(params)), ("id", num(id))]).compact();
        let written = match self.writer.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(w) => w.write_all(format!("{line}\n").as_bytes()).is_ok(),
            None => false,
        };
        if !written {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            return Err("close connect".into());
        }
        rx.recv().unwrap_or_else(|_| Err("close connect".into()))
    }

    fn on_close(&self) {
        self.status.store(0, Ordering::SeqCst);
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = None;
        for (_, tx) in self.pending.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            let _ = tx.send(Err("close connect".into()));
        }
        info(format!("Disconnected from Electrum Server at {}", self.where_()));
    }

    /// initElectrum, then reconnects for ever (retryPeriod 1000 ms).
    fn run(self: Arc<Self>) {
        let mut first = true;
        loop {
            self.status.store(1, Ordering::SeqCst);
            let attempt = if self.tls {
                Err((
                    "TLS is not mirrored by the archy e2e stand-in".to_string(),
                    "{\"code\":\"ERR_STANDIN_NO_TLS\",\"message\":\"TLS is not mirrored by the archy e2e stand-in\"}".to_string(),
                ))
            } else {
                node_connect(&self.host, self.port, Duration::from_secs(60))
            };
            match attempt {
                Err((_, json_err)) => {
                    err(format!("Electrum error: {json_err}"));
                    if first {
                        err(format!("Error connecting to Electrum Server at {}", self.where_()));
                    } else {
                        err(format!("Electrum error: {json_err}"));
                    }
                    self.on_close();
                }
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let reader = stream.try_clone().ok();
                    *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
                    let closed = Arc::new(AtomicBool::new(false));
                    if let Some(r) = reader {
                        let me = self.clone();
                        let closed = closed.clone();
                        std::thread::spawn(move || {
                            let mut lines = BufReader::new(r);
                            loop {
                                let mut line = String::new();
                                match lines.read_line(&mut line) {
                                    Ok(0) | Err(_) => break,
                                    Ok(_) => me.on_message(line.trim()),
                                }
                            }
                            closed.store(true, Ordering::SeqCst);
                        });
                    }
                    match self.request("server.version", vec![s("mempool-v2"), s("1.4")]) {
                        Ok(v) => info(format!("Connected to Electrum Server at {} ({})", self.where_(), v.compact())),
                        Err(e) if first => {
                            let _ = e;
                            err(format!("Error connecting to Electrum Server at {}", self.where_()));
                        }
                        Err(e) => err(format!("Electrum error: {}", s(&e).compact())),
                    }
                    // keepAlive: a ping after 120 s without a request
                    while !closed.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(200));
                        let idle = self.last_call.lock().map(|t| t.elapsed()).unwrap_or_default();
                        if idle >= Duration::from_secs(120) && !closed.load(Ordering::SeqCst) {
                            let me = self.clone();
                            std::thread::spawn(move || {
                                if let Err(e) = me.request("server.ping", vec![]) {
                                    debug(format!("Keep-Alive ping failed: {e}"));
                                }
                            });
                            *self.last_call.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                        }
                    }
                    self.on_close();
                }
            }
            first = false;
            std::thread::sleep(Duration::from_millis(1000));
            debug("Electrum attempting reconnect...");
        }
    }

    fn on_message(&self, line: &str) {
        let Ok(msg) = json::parse(line) else { return };
        let answer = |m: &Value| {
            let Some(id) = m.get("id").and_then(Value::as_i64) else { return };
            if let Some(tx) = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&(id as u64)) {
                let r = match m.get("error") {
                    Some(e) if *e != Value::Null => Err(e.get("message").and_then(Value::as_str).map_or_else(|| e.compact(), str::to_string)),
                    _ => Ok(m.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = tx.send(r);
            }
        };
        match &msg {
            Value::Arr(items) => items.iter().for_each(answer),
            m if m.get("id").is_some() => answer(m),
            _ => {} // a notification: the subscriptions mempool makes none of
        }
    }
}

// ---------------------------------------------------------------------------------------------
// addresses: bitcoind's validateaddress, or (a stand-in bitcoind without it) a local decoding

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len() / 2).map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

fn base58check(addr: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut bytes: Vec<u8> = Vec::new();
    for c in addr.bytes() {
        let mut carry = ALPHABET.iter().position(|&a| a == c)? as u32;
        for b in bytes.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = addr.bytes().take_while(|&c| c == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(bytes);
    if out.len() < 5 {
        return None;
    }
    let (payload, check) = out.split_at(out.len() - 4);
    (sha256(&sha256(payload))[..4] == *check).then(|| payload.to_vec())
}

fn bech32_decode(addr: &str) -> Option<(String, u8, Vec<u8>)> {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    if addr.chars().any(|c| c.is_ascii_uppercase()) && addr.chars().any(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let a = addr.to_lowercase();
    let pos = a.rfind('1')?;
    let (hrp, data) = (&a[..pos], &a[pos + 1..]);
    if hrp.is_empty() || data.len() < 6 {
        return None;
    }
    let values: Vec<u8> = data.bytes().map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8)).collect::<Option<_>>()?;
    let polymod = |v: &[u8]| {
        let gen = [0x3b6a_57b2u32, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3];
        let mut chk = 1u32;
        for &x in v {
            let b = chk >> 25;
            chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(x);
            for (i, g) in gen.iter().enumerate() {
                if (b >> i) & 1 == 1 {
                    chk ^= g;
                }
            }
        }
        chk
    };
    let mut exp: Vec<u8> = hrp.bytes().map(|c| c >> 5).collect();
    exp.push(0);
    exp.extend(hrp.bytes().map(|c| c & 31));
    exp.extend(&values);
    let check = polymod(&exp);
    let version = *values.first()?;
    let want = if version == 0 { 1 } else { 0x2bc8_30a3 };
    if check != want {
        return None;
    }
    let mut acc = 0u32;
    let mut bits = 0;
    let mut prog = Vec::new();
    for &v in &values[1..values.len() - 6] {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            prog.push(((acc >> bits) & 0xff) as u8);
        }
    }
    if bits >= 5 || (acc & ((1 << bits) - 1)) != 0 {
        return None;
    }
    if prog.len() < 2 || prog.len() > 40 || version > 16 || (version == 0 && prog.len() != 20 && prog.len() != 32) {
        return None;
    }
    Some((hrp.to_string(), version, prog))
}

/// What `validateaddress` answers, decoded locally.
fn local_validateaddress(addr: &str, network: &str) -> Value {
    let (hrp, p2pkh, p2sh) = match network {
        "mainnet" => ("bc", 0x00, 0x05),
        "regtest" => ("bcrt", 0x6f, 0xc4),
        _ => ("tb", 0x6f, 0xc4),
    };
    if let Some(p) = base58check(addr).filter(|p| p.len() == 21) {
        if p[0] == p2pkh {
            return obj(vec![
                ("isvalid", Value::Bool(true)),
                ("address", s(addr)),
                ("scriptPubKey", s(&format!("76a914{}88ac", hex(&p[1..])))),
                ("isscript", Value::Bool(false)),
                ("iswitness", Value::Bool(false)),
            ]);
        }
        if p[0] == p2sh {
            return obj(vec![
                ("isvalid", Value::Bool(true)),
                ("address", s(addr)),
                ("scriptPubKey", s(&format!("a914{}87", hex(&p[1..])))),
                ("isscript", Value::Bool(true)),
                ("iswitness", Value::Bool(false)),
            ]);
        }
    }
    if let Some((h, version, prog)) = bech32_decode(addr).filter(|(h, _, _)| h == hrp) {
        let _ = h;
        let op = if version == 0 { 0 } else { 0x50 + version };
        return obj(vec![
            ("isvalid", Value::Bool(true)),
            ("address", s(&addr.to_lowercase())),
            ("scriptPubKey", s(&format!("{op:02x}{:02x}{}", prog.len(), hex(&prog)))),
            ("isscript", Value::Bool(version == 0 && prog.len() == 32 || version == 1)),
            ("iswitness", Value::Bool(true)),
            ("witness_version", num(version)),
            ("witness_program", s(&hex(&prog))),
        ]);
    }
    obj(vec![
        ("isvalid", Value::Bool(false)),
        ("error_locations", Value::Arr(vec![])),
        ("error", s("Invalid or unsupported Segwit (Bech32) or Base58 encoding.")),
    ])
}

/// The scripthash ElectrumX wants (sha256 of the script, bytes reversed).
fn script_hash(script_hex: &str) -> String {
    let mut h = sha256(&unhex(script_hex).unwrap_or_default());
    h.reverse();
    hex(&h)
}

// ---------------------------------------------------------------------------------------------
// the backend's state

struct Backend {
    cfg: Config,
    core: Core,
    db: Db,
    electrum: Arc<Electrum>,
    pools: PoolsUpdater,
    current_height: AtomicI64,
    blocks: Mutex<Vec<Value>>,
    last_difficulty_time: Mutex<Option<i64>>,
    in_sync: AtomicBool,
    mempool_info: Mutex<Value>,
    mempool_size: AtomicU64,
    core_version: Mutex<String>,
    once: Mutex<Vec<&'static str>>,
}

impl Backend {
    /// A stand-in gap, logged once.
    fn standin_once(&self, key: &'static str, msg: &str) {
        let mut once = self.once.lock().unwrap_or_else(|e| e.into_inner());
        if !once.contains(&key) {
            once.push(key);
            warn(format!("archy e2e stand-in: {msg}"));
        }
    }

    fn validate_address(&self, addr: &str) -> Result<Value, RpcErr> {
        match self.core.call("validateaddress", vec![s(addr)]) {
            Err(e) if e.method_not_found() => {
                self.standin_once("validateaddress", "bitcoind answers no validateaddress (Method not found): decoding addresses locally");
                Ok(local_validateaddress(addr, &self.cfg.network()))
            }
            r => r,
        }
    }

    fn cache_dir(&self) -> String {
        self.cfg.str("MEMPOOL", "CACHE_DIR")
    }

    /// `$saveCacheToDisk` (async flavour): tmp files renamed over cache*.json.
    fn save_cache(&self) {
        if !self.cfg.truthy("MEMPOOL", "CACHE_ENABLED") {
            return;
        }
        let dir = self.cache_dir();
        debug("Writing mempool and blocks data to disk cache (async)...");
        let blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let summaries: Vec<Value> = blocks
            .iter()
            .map(|b| obj(vec![("id", b.get("id").cloned().unwrap_or(Value::Null)), ("height", b.get("height").cloned().unwrap_or(Value::Null)), ("transactions", Value::Arr(vec![]))]))
            .collect();
        let main = obj(vec![
            ("network", s(&self.cfg.network())),
            ("cacheSchemaVersion", num(3)),
            ("blocks", Value::Arr(blocks)),
            ("blockSummaries", Value::Arr(summaries)),
            ("mempool", obj(vec![])),
            ("mempoolArray", Value::Arr(vec![])),
        ]);
        let write = || -> std::io::Result<()> {
            std::fs::write(format!("{dir}/tmp-cache.json"), main.compact())?;
            for i in 1..25 {
                std::fs::write(format!("{dir}/tmp-cache{i}.json"), "{\"mempool\":{},\"mempoolArray\":[]}")?;
            }
            std::fs::rename(format!("{dir}/tmp-cache.json"), format!("{dir}/cache.json"))?;
            for i in 1..25 {
                std::fs::rename(format!("{dir}/tmp-cache{i}.json"), format!("{dir}/cache{i}.json"))?;
            }
            Ok(())
        };
        match write() {
            Ok(()) => debug("Mempool and blocks data saved to disk cache"),
            Err(e) => warn(format!("Error writing to cache file: {}", node_fs_error(&e, &format!("{dir}/tmp-cache.json")))),
        }
        debug("Writing rbf data to disk cache (async)...");
        let rbf = obj(vec![
            ("network", s(&self.cfg.network())),
            ("rbfCacheSchemaVersion", num(1)),
            ("rbf", obj(vec![("txs", Value::Arr(vec![])), ("trees", Value::Arr(vec![])), ("expiring", Value::Arr(vec![]))])),
        ]);
        let r = std::fs::write(format!("{dir}/tmp-rbfcache.json"), rbf.compact())
            .and_then(|_| std::fs::rename(format!("{dir}/tmp-rbfcache.json"), format!("{dir}/rbfcache.json")));
        match r {
            Ok(()) => debug("Rbf data saved to disk cache"),
            Err(e) => warn(format!("Error writing rbf data to cache file: {}", node_fs_error(&e, &format!("{dir}/tmp-rbfcache.json")))),
        }
    }

    /// `$loadMempoolCache`.
    fn load_cache(&self) {
        if !self.cfg.truthy("MEMPOOL", "CACHE_ENABLED") {
            return;
        }
        let file = format!("{}/cache.json", self.cache_dir());
        let Ok(text) = std::fs::read_to_string(&file) else { return };
        let start = Instant::now();
        if text.is_empty() {
            return;
        }
        info("Restoring mempool and blocks data from disk cache");
        let data = match json::parse(&text) {
            Ok(d) => d,
            Err(e) => {
                warn(format!("Failed to parse mempoool and blocks cache. Skipping. Reason: {e}"));
                return;
            }
        };
        if data.get("cacheSchemaVersion").and_then(Value::as_i64) != Some(3) {
            notice("Disk cache contains an outdated schema version. Clearing it and skipping the cache loading.");
            return self.wipe_cache();
        }
        if let Some(n) = data.get("network").and_then(Value::as_str) {
            if !n.is_empty() && n != self.cfg.network() {
                notice("Disk cache contains data from a different network. Clearing it and skipping the cache loading.");
                return self.wipe_cache();
            }
        }
        info(format!("Loaded mempool from disk cache in {} ms", start.elapsed().as_millis()));
        if let Some(Value::Arr(b)) = data.get("blocks") {
            *self.blocks.lock().unwrap_or_else(|e| e.into_inner()) = b.clone();
        }
        if let Ok(t) = std::fs::read_to_string(format!("{}/rbfcache.json", self.cache_dir())) {
            if !t.is_empty() {
                info("Restoring rbf data from disk cache");
            }
        }
    }

    fn wipe_cache(&self) {
        notice("Wiping nodejs backend cache/cache*.json files");
        let dir = self.cache_dir();
        let _ = std::fs::remove_file(format!("{dir}/cache.json"));
        for i in 1..25 {
            let _ = std::fs::remove_file(format!("{dir}/cache{i}.json"));
        }
    }

    fn unknown_pool_id(&self) -> Result<i64, String> {
        let sel = "SELECT id FROM pools where name = \"Unknown\"";
        let rows = self.db.query(sel)?;
        if let Some(id) = rows.first().and_then(|r| r.first().cloned().flatten()).and_then(|v| v.parse().ok()) {
            return Ok(id);
        }
        if let Err(e) = self.db.exec(&unknown_pool_sql()) {
            err(format!("Unable to insert or update \"Unknown\" mining pool. Reason: {e}"));
        }
        let rows = self.db.query(sel)?;
        rows.first().and_then(|r| r.first().cloned().flatten()).and_then(|v| v.parse().ok()).ok_or_else(|| "no Unknown pool".into())
    }

    /// One block as `$updateBlocks` handles it; the BlockExtended.
    fn process_block(&self, height: i64) -> Result<Value, String> {
        let rpc = |m: &str, p: Vec<Value>| self.core.call(m, p).map_err(|e| e.message);
        let hash = rpc("getblockhash", vec![num(height)])?.as_str().unwrap_or_default().to_string();
        let vb = rpc("getblock", vec![s(&hash), num(2)])?;
        let txs = match vb.get("tx") {
            Some(Value::Arr(a)) => a.clone(),
            _ => vec![],
        };
        let txids: Vec<String> = txs
            .iter()
            .map(|t| match t {
                Value::Str(id) => id.clone(),
                o => o.get("txid").and_then(Value::as_str).unwrap_or_default().to_string(),
            })
            .collect();
        let time = vb.get("time").and_then(Value::as_i64).unwrap_or(0);
        let subsidy = 5_000_000_000i64 >> (height / 210_000).min(63);
        // the transactions: each from getrawtransaction <txid> true (tried twice), as upstream
        let mut coinbase: Option<Value> = None;
        if txs.iter().any(|t| matches!(t, Value::Str(_))) {
            self.standin_once("getblock2", "bitcoind's getblock <hash> 2 lists transactions as ids only: synthesizing each block's coinbase");
            coinbase = Some(obj(vec![
                ("txid", s(txids.first().map_or("", String::as_str))),
                ("vin", Value::Arr(vec![obj(vec![("coinbase", s(&format!("03{:06x}", height)))])])),
                ("vout", Value::Arr(vec![obj(vec![("value", num(format!("{}.{:08}", subsidy / 100_000_000, subsidy % 100_000_000))), ("scriptPubKey", obj(vec![("hex", s("6a")), ("asm", s("OP_RETURN"))]))])])),
            ]));
        } else {
            for (i, txid) in txids.iter().enumerate() {
                let once = self.core.call("getrawtransaction", vec![s(txid), Value::Bool(true)]);
                let tx = match once {
                    Ok(t) => t,
                    Err(e) => {
                        err(format!("Cannot fetch tx {txid}. Reason: {}", e.message));
                        match self.core.call("getrawtransaction", vec![s(txid), Value::Bool(true)]) {
                            Ok(t) => t,
                            Err(e) => {
                                let msg = format!("Cannot fetch tx {txid}. Reason: {}", e.message);
                                err(&msg);
                                return Err(msg);
                            }
                        }
                    }
                };
                if i == 0 {
                    coinbase = Some(tx);
                }
            }
        }
        let Some(cb) = coinbase.filter(|c| c.get("vin").and_then(|v| match v {
            Value::Arr(a) => a.first().and_then(|x| x.get("coinbase")).cloned(),
            _ => None,
        }).is_some()) else {
            let msg = "Expected first tx in a block to be a coinbase, but found something else".to_string();
            err(&msg);
            return Err(msg);
        };
        let reward: i64 = match cb.get("vout") {
            Some(Value::Arr(v)) => v
                .iter()
                .map(|o| o.get("value").and_then(|x| match x {
                    Value::Num(n) => n.parse::<f64>().ok(),
                    _ => None,
                }).map_or(0, |b| (b * 1e8).round() as i64))
                .sum(),
            _ => 0,
        };
        let coinbase_raw = match cb.get("vin") {
            Some(Value::Arr(a)) => a.first().and_then(|x| x.get("coinbase")).and_then(Value::as_str).unwrap_or_default().to_string(),
            _ => String::new(),
        };
        let stats = match self.core.call("getblockstats", vec![s(&hash)]) {
            Ok(st) => st,
            Err(e) if e.method_not_found() => {
                self.standin_once("getblockstats", "bitcoind answers no getblockstats (Method not found): zero block stats");
                obj(vec![])
            }
            Err(e) => return Err(e.message),
        };
        let stat = |k: &str| stats.get(k).and_then(|v| match v {
            Value::Num(n) => n.parse::<f64>().ok(),
            _ => None,
        }).unwrap_or(0.0);
        let header = rpc("getblockheader", vec![s(&hash), Value::Bool(false)])?.as_str().unwrap_or_default().to_string();
        let pool_id = if self.cfg.is_true("DATABASE", "ENABLED") { self.unknown_pool_id()? } else { 0 };
        let bits = vb.get("bits").and_then(Value::as_str).and_then(|b| i64::from_str_radix(b, 16).ok()).unwrap_or(0);
        let weight = vb.get("weight").and_then(Value::as_i64).unwrap_or(0);
        let difficulty = vb.get("difficulty").cloned().unwrap_or(num(0));
        let block = obj(vec![
            ("id", s(&hash)),
            ("height", num(height)),
            ("version", vb.get("version").cloned().unwrap_or(num(0))),
            ("timestamp", num(time)),
            ("bits", num(bits)),
            ("nonce", vb.get("nonce").cloned().unwrap_or(num(0))),
            ("difficulty", difficulty.clone()),
            ("merkle_root", vb.get("merkleroot").cloned().unwrap_or(s(""))),
            ("tx_count", num(vb.get("nTx").and_then(Value::as_i64).unwrap_or(txids.len() as i64))),
            ("size", vb.get("size").cloned().unwrap_or(num(0))),
            ("weight", num(weight)),
            ("previousblockhash", vb.get("previousblockhash").cloned().unwrap_or(Value::Null)),
            ("mediantime", vb.get("mediantime").cloned().unwrap_or(num(time))),
            ("stale", Value::Bool(vb.get("confirmations").and_then(Value::as_i64) == Some(-1))),
            (
                "extras",
                obj(vec![
                    ("reward", num(reward)),
                    ("coinbaseRaw", s(&coinbase_raw)),
                    ("orphans", Value::Arr(vec![])),
                    ("medianFee", num(0)),
                    ("feeRange", Value::Arr(vec![num(0); 7])),
                    ("totalFees", num(stat("totalfee") as i64)),
                    ("avgFee", num(stat("avgfee") as i64)),
                    ("avgFeeRate", num(stat("avgfeerate") as i64)),
                    ("utxoSetChange", num(stat("utxo_increase") as i64)),
                    ("avgTxSize", num(stat("total_size") / stat("txs").max(1.0))),
                    ("totalInputs", num(stat("ins") as i64)),
                    ("totalOutputs", num(stat("outs") as i64)),
                    ("totalOutputAmt", num(stat("total_out") as i64)),
                    ("virtualSize", num(weight as f64 / 4.0)),
                    ("coinbaseAddress", Value::Null),
                    ("coinbaseAddresses", Value::Arr(vec![])),
                    ("coinbaseSignature", Value::Null),
                    ("coinbaseSignatureAscii", s("")),
                    ("header", s(&header)),
                    ("utxoSetSize", Value::Null),
                    ("totalInputAmt", Value::Null),
                    ("pool", obj(vec![("id", num(pool_id)), ("name", s("Unknown")), ("slug", s("unknown")), ("minerNames", Value::Null)])),
                    ("matchRate", Value::Null),
                    ("expectedFees", Value::Null),
                    ("expectedWeight", Value::Null),
                ]),
            ),
        ]);
        if self.cfg.indexing_enabled() {
            let sha = self.pools.current_sha.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let sql = format!(
                "INSERT INTO blocks(height, hash, blockTimestamp, size, weight, tx_count, coinbase_raw, difficulty, pool_id, fees, fee_span, median_fee, reward, version, bits, nonce, merkle_root, previous_block_hash, avg_fee, avg_fee_rate, median_timestamp, header, coinbase_signature_ascii, avg_tx_size, total_inputs, total_outputs, total_output_amt, definition_hash, index_version, stale) VALUE ({height}, {}, FROM_UNIXTIME({time}), {}, {weight}, {}, {}, {}, {pool_id}, {}, {}, 0, {reward}, {}, {bits}, {}, {}, {}, {}, {}, FROM_UNIXTIME({}), {}, '', {}, {}, {}, {}, {}, 1, {})",
                q(&hash),
                vb.get("size").and_then(Value::as_i64).unwrap_or(0),
                txids.len(),
                q(&coinbase_raw),
                difficulty.compact(),
                stat("totalfee") as i64,
                q("[0,0,0,0,0,0,0]"),
                vb.get("version").and_then(Value::as_i64).unwrap_or(0),
                vb.get("nonce").and_then(Value::as_i64).unwrap_or(0),
                q(vb.get("merkleroot").and_then(Value::as_str).unwrap_or_default()),
                vb.get("previousblockhash").and_then(Value::as_str).map_or("NULL".to_string(), q),
                stat("avgfee") as i64,
                stat("avgfeerate") as i64,
                vb.get("mediantime").and_then(Value::as_i64).unwrap_or(time),
                q(&header),
                stat("total_size") / stat("txs").max(1.0),
                stat("ins") as i64,
                stat("outs") as i64,
                stat("total_out") as i64,
                sha.as_deref().map_or("NULL".to_string(), q),
                i64::from(vb.get("confirmations").and_then(Value::as_i64) == Some(-1)),
            );
            if let Err(e) = self.db.exec(&sql) {
                if e.contains("Duplicate entry") {
                    debug(format!("$saveBlockInDatabase() - Block {height} has already been indexed, ignoring"));
                } else {
                    err(format!("Cannot save indexed block into db. Reason: {e}"));
                    return Err(e);
                }
            }
        }
        Ok(block)
    }

    /// `blocks.$updateBlocks`: how many blocks were handled.
    fn update_blocks(&self) -> Result<usize, String> {
        let rpc = |m: &str, p: Vec<Value>| self.core.call(m, p).map_err(|e| e.message);
        let initial = self.cfg.num("MEMPOOL", "INITIAL_BLOCKS_AMOUNT");
        let tip = rpc("getblockcount", vec![])?.as_i64().unwrap_or(0);
        let last = self.blocks.lock().unwrap_or_else(|e| e.into_inner()).last().and_then(|b| b.get("height").and_then(Value::as_i64));
        let mut current = match last {
            None => (tip - initial).max(-1),
            Some(h) => h,
        };
        self.current_height.store(current, Ordering::SeqCst);
        if tip - current > initial * 2 {
            info(format!("{} blocks since tip. Fast forwarding to the {initial} recent blocks", tip - current));
            current = tip - initial;
            self.current_height.store(current, Ordering::SeqCst);
            info("Re-indexing skipped blocks and corresponding hashrates data");
        }
        let known = self.last_difficulty_time.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        if !known {
            let bci = rpc("getblockchaininfo", vec![])?;
            let (b, h) = (bci.get("blocks").and_then(Value::as_i64).unwrap_or(0), bci.get("headers").and_then(Value::as_i64).unwrap_or(0));
            if b == h {
                let diff = tip % 2016;
                let hash = rpc("getblockhash", vec![num(tip - diff)])?;
                let block = rpc("getblock", vec![hash])?;
                *self.last_difficulty_time.lock().unwrap_or_else(|e| e.into_inner()) = Some(block.get("time").and_then(Value::as_i64).unwrap_or(0));
                if tip >= 2016 {
                    let prev = rpc("getblockhash", vec![num(tip - diff - 2016)])?;
                    rpc("getblock", vec![prev])?;
                    debug("Initial difficulty adjustment data set.");
                }
            } else {
                debug(format!("Blockchain headers ({h}) and blocks ({b}) not in sync. Waiting..."));
            }
        }
        let mut handled = 0;
        while current < tip {
            if current == 0 {
                current = tip;
            } else {
                current += 1;
                debug(format!("New block found (#{current})!"));
            }
            self.current_height.store(current, Ordering::SeqCst);
            let block = self.process_block(current)?;
            {
                let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
                blocks.push(block);
                let keep = (initial * 4).max(1) as usize;
                if blocks.len() > keep {
                    let cut = blocks.len() - keep;
                    blocks.drain(..cut);
                }
            }
            let interval = self.cfg.num("MEMPOOL", "DISK_CACHE_BLOCK_INTERVAL").max(1);
            if self.cfg.truthy("MEMPOOL", "CACHE_ENABLED") && current % interval == 0 {
                self.save_cache();
            }
            handled += 1;
        }
        Ok(handled)
    }

    /// One `runMainUpdateLoop` iteration.
    fn main_iteration(&self) -> Result<usize, String> {
        match self.core.call("getmempoolinfo", vec![]) {
            Ok(mi) => *self.mempool_info.lock().unwrap_or_else(|e| e.into_inner()) = mi,
            Err(e) => debug(format!("updateMempoolInfo: {}", e.message)),
        }
        let raw = self.core.call("getrawmempool", vec![]).map_err(|e| e.message)?;
        let handled = self.update_blocks()?;
        if handled == 0 {
            let n = match &raw {
                Value::Arr(a) => a.len(),
                _ => 0,
            };
            self.mempool_size.store(n as u64, Ordering::SeqCst);
            if !self.in_sync.load(Ordering::SeqCst) {
                self.in_sync.store(true, Ordering::SeqCst);
                notice("The mempool is now in sync!");
            }
        }
        Ok(handled)
    }

    fn main_loop(self: Arc<Self>) {
        let poll = Duration::from_millis(self.cfg.num("MEMPOOL", "POLL_RATE_MS").max(1) as u64);
        let mut retries = 0;
        loop {
            let start = Instant::now();
            match self.main_iteration() {
                Ok(handled) => {
                    retries = 0;
                    if handled == 0 {
                        std::thread::sleep(poll.saturating_sub(start.elapsed()));
                    }
                }
                Err(e) => {
                    retries += 1;
                    let msg = format!("Exception in runMainUpdateLoop() (count: {retries}). Retrying in 1 sec. Reason: {e}.");
                    if retries >= 5 {
                        warn(msg);
                        self.in_sync.store(false, Ordering::SeqCst);
                    } else {
                        debug(msg);
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn statistics_loop(self: Arc<Self>) {
        info("Starting statistics service");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        std::thread::sleep(Duration::from_secs(60 - now % 60));
        loop {
            if self.in_sync.load(Ordering::SeqCst) {
                debug("Running statistics");
                let zeros = vec!["0"; 46].join(", ");
                let cols = "added, unconfirmed_transactions, tx_per_second, vbytes_per_second, mempool_byte_weight, fee_data, total_fee, min_fee, vsize_0, vsize_1, vsize_2, vsize_3, vsize_4, vsize_5, vsize_6, vsize_8, vsize_10, vsize_12, vsize_15, vsize_20, vsize_30, vsize_40, vsize_50, vsize_60, vsize_70, vsize_80, vsize_90, vsize_100, vsize_125, vsize_150, vsize_175, vsize_200, vsize_250, vsize_300, vsize_350, vsize_400, vsize_500, vsize_600, vsize_700, vsize_800, vsize_900, vsize_1000, vsize_1200, vsize_1400, vsize_1600, vsize_1800, vsize_2000";
                if let Err(e) = self.db.exec(&format!("INSERT INTO statistics({cols}) VALUES (NOW(), {zeros})")) {
                    err(format!("$create() error{e}"));
                }
            }
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

fn node_fs_error(e: &std::io::Error, path: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("ENOENT: no such file or directory, open '{path}'"),
        std::io::ErrorKind::PermissionDenied => format!("EACCES: permission denied, open '{path}'"),
        _ => format!("{e}, open '{path}'"),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP (express)

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
    let Some(a) = req.header("Accept") else { return true };
    a.split(',').any(|t| {
        let t = t.split(';').next().unwrap_or_default().trim().to_lowercase();
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

fn route(b: &Arc<Backend>, req: Request) -> Response {
    let path = req.path.split('?').next().unwrap_or_default().to_string();
    let prefix = b.cfg.str("MEMPOOL", "API_URL_PREFIX");
    let not_found = || {
        let mut r = text_res(
            404,
            &format!("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot {} {path}</pre>\n</body>\n</html>\n", req.method),
        );
        r.headers.push(("Content-Security-Policy".into(), "default-src 'none'".into()));
        r.headers.push(("X-Content-Type-Options".into(), "nosniff".into()));
        r
    };
    if req.method == "OPTIONS" {
        return express(204, "text/plain", "");
    }
    if req.method != "GET" {
        return not_found();
    }
    let Some(rest) = path.strip_prefix(prefix.as_str()) else { return not_found() };
    let parts: Vec<&str> = rest.split('/').collect();
    let backend = b.cfg.str("MEMPOOL", "BACKEND");
    let valid_addr = |a: &str| (2..=120).contains(&a.len()) && a.chars().all(|c| c.is_ascii_alphanumeric());
    match parts.as_slice() {
        ["backend-info"] => {
            let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
            json_res(
                200,
                &obj(vec![
                    ("hostname", s(&hostname)),
                    ("version", s(VERSION)),
                    ("gitCommit", s(GIT_COMMIT)),
                    ("lightning", Value::Bool(b.cfg.truthy("LIGHTNING", "ENABLED"))),
                    ("backend", s(&backend)),
                    ("coreVersion", s(&b.core_version.lock().map(|v| v.clone()).unwrap_or_default())),
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
        ["blocks", "tip", "hash"] if backend != "esplora" => match b.core.call("getbestblockhash", vec![]) {
            Ok(h) => express(200, "text/plain; charset=utf-8", h.as_str().unwrap_or_default().to_string()),
            Err(_) => handle_error(&req, 500, "Failed to get hash at tip"),
        },
        ["fees", "recommended"] => {
            if !b.in_sync.load(Ordering::SeqCst) {
                return text_res(503, "Service Unavailable");
            }
            let mi = b.mempool_info.lock().map(|v| v.clone()).unwrap_or(Value::Null);
            let minfee = mi.get("mempoolminfee").and_then(|v| match v {
                Value::Num(n) => n.parse::<f64>().ok(),
                _ => None,
            }).unwrap_or(0.00001);
            // no projected blocks: every recommendation is the purge rate (fee-api.ts)
            let purge = (minfee * 100000.0 / 1.0).ceil() * 1.0;
            let fee = num(purge.max(1.0) as i64);
            json_res(
                200,
                &obj(vec![("fastestFee", fee.clone()), ("halfHourFee", fee.clone()), ("hourFee", fee.clone()), ("economyFee", fee.clone()), ("minimumFee", fee)]),
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
                return handle_error(&req, 405, "Address lookups cannot be used with bitcoind as backend.");
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
            let sh = script_hash(info.get("scriptPubKey").and_then(Value::as_str).unwrap_or_default());
            let bal = b.electrum.request("blockchain.scripthash.get_balance", vec![s(&sh)]);
            let hist = bal.as_ref().ok().map(|_| b.electrum.request("blockchain.scripthash.get_history", vec![s(&sh)]));
            match (bal, hist) {
                (Ok(bal), Some(Ok(hist))) => json_res(200, &address_json("address", info.get("address").cloned().unwrap_or(s(addr)), &bal, &hist)),
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
                return handle_error(&req, 405, "Address lookups cannot be used with bitcoind as backend.");
            }
            if sh.is_empty() || sh.len() % 2 != 0 || !sh.chars().all(|c| c.is_ascii_hexdigit()) {
                return handle_error(&req, 501, "Invalid scripthash");
            }
            let le: String = (0..sh.len() / 2).rev().map(|i| &sh[2 * i..2 * i + 2]).collect();
            let bal = b.electrum.request("blockchain.scripthash.get_balance", vec![s(&le)]);
            let hist = bal.as_ref().ok().map(|_| b.electrum.request("blockchain.scripthash.get_history", vec![s(&le)]));
            match (bal, hist) {
                (Ok(bal), Some(Ok(hist))) => json_res(200, &address_json("scripthash", s(&le), &bal, &hist)),
                (Err(e), _) | (_, Some(Err(e))) if e.contains("too long") || e.contains("confirmed status") => handle_error(&req, 413, &e),
                _ => handle_error(&req, 500, "Failed to get script hash"),
            }
        }
        _ => not_found(),
    }
}

fn address_json(key: &str, id: Value, bal: &Value, hist: &Value) -> Value {
    let n = |v: Option<&Value>| v.and_then(|x| match x {
        Value::Num(n) => n.parse::<f64>().ok(),
        _ => None,
    }).unwrap_or(0.0);
    let confirmed = n(bal.get("confirmed"));
    let unconfirmed = n(bal.get("unconfirmed"));
    let (total, unconf) = match hist {
        Value::Arr(h) => (h.len() as i64, h.iter().filter(|x| x.get("fee").is_some_and(js_truthy)).count() as i64),
        _ => (0, 0),
    };
    let js = |x: f64| if x.fract() == 0.0 { num(x as i64) } else { num(x) };
    obj(vec![
        (key, id),
        (
            "chain_stats",
            obj(vec![
                ("funded_txo_count", num(0)),
                ("funded_txo_sum", js(if confirmed != 0.0 { confirmed } else { 0.0 })),
                ("spent_txo_count", num(0)),
                ("spent_txo_sum", js(if confirmed < 0.0 { confirmed } else { 0.0 })),
                ("tx_count", num(total - unconf)),
            ]),
        ),
        (
            "mempool_stats",
            obj(vec![
                ("funded_txo_count", num(0)),
                ("funded_txo_sum", js(if unconfirmed > 0.0 { unconfirmed } else { 0.0 })),
                ("spent_txo_count", num(0)),
                ("spent_txo_sum", js(if unconfirmed < 0.0 { -unconfirmed } else { 0.0 })),
                ("tx_count", num(unconf)),
            ]),
        ),
        ("electrum", Value::Bool(true)),
    ])
}

// ---------------------------------------------------------------------------------------------
// signals (index.ts: SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2 -> forceExit -> exitCleanup)

extern "C" {
    fn signal(signum: c_int, handler: usize) -> usize;
    fn unlink(path: *const c_char) -> c_int;
    fn _exit(code: c_int) -> !;
}

static PID_FILE: AtomicPtr<c_char> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_signal(_sig: c_int) {
    let p = PID_FILE.load(Ordering::SeqCst);
    // SAFETY: only async-signal-safe calls; the pointer is a leaked NUL-terminated string
    unsafe {
        if !p.is_null() {
            unlink(p);
        }
        _exit(0);
    }
}

fn install_signals() {
    // SAFETY: the handler only makes async-signal-safe calls
    unsafe {
        for sig in [1, 2, 15, 10, 12] {
            signal(sig, on_signal as *const () as usize);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// database.ts: the PID lock

/// getPidLock; Err is the process's exit (an unhandled rejection).
fn pid_lock(cfg: &Config) -> Result<(), i32> {
    let dir = cfg.str("DATABASE", "PID_DIR");
    let dir = if dir.is_empty() { PACKAGE_DIR.to_string() } else { dir };
    let path = normalize(&Path::new(&dir).join(format!("mempool-{}.pid", cfg.str("DATABASE", "DATABASE"))));
    let shown = path.display().to_string();
    let me = std::process::id();
    if path.exists() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let digits: String = text.trim_start().chars().take_while(char::is_ascii_digit).collect();
        let pid: Option<u32> = digits.parse().ok();
        let pid_s = pid.map_or("NaN".to_string(), |p| p.to_string());
        if pid == Some(me) {
            warn("PID file already exists for this process");
        } else {
            let ps = Command::new("ps").args(["-p", &pid_s, "-o", "args="]).output();
            match ps {
                Ok(o) if o.status.success() => {
                    if String::from_utf8_lossy(&o.stdout).contains("node") {
                        let msg = format!("Another mempool nodejs process is already running on PID {pid_s}");
                        err(&msg);
                        eprintln!("unhandledRejection: Error: {msg}");
                        return Err(1);
                    }
                    warn(format!("Stale PID file at {shown}, but the PID {pid_s} does not belong to a running mempool instance"));
                }
                _ => warn(format!("Stale PID file at {shown}, but no process running on that PID {pid_s}")),
            }
        }
    }
    if let Err(e) = std::fs::write(&path, me.to_string()) {
        eprintln!("unhandledRejection: Error: {}", node_fs_error(&e, &shown));
        return Err(1);
    }
    if let Ok(c) = CString::new(shown) {
        PID_FILE.store(c.into_raw(), Ordering::SeqCst);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// node

pub fn node(argv: &[String]) -> i32 {
    let mut i = 0;
    while let Some(a) = argv.get(i) {
        if !a.starts_with('-') {
            break;
        }
        if a == "--version" || a == "-v" {
            println!("{NODE_VERSION}");
            return 0;
        }
        i += 1;
    }
    let Some(script) = argv.get(i) else {
        eprintln!("node (archy e2e stand-in): a REPL or a script on stdin is not mirrored; it runs {SCRIPT}");
        return 9;
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let path = normalize(&cwd.join(script));
    if !path.is_file() {
        return node_fatal(&format!(
            "node:internal/modules/cjs/loader:1386\n  throw err;\n  ^\n\nError: Cannot find module '{}'\n    at Function._resolveFilename (node:internal/modules/cjs/loader:1383:15) {{\n  code: 'MODULE_NOT_FOUND',\n  requireStack: []\n}}",
            path.display()
        ));
    }
    if path != Path::new(SCRIPT) {
        eprintln!("node (archy e2e stand-in): only {SCRIPT} is mirrored, not {}", path.display());
        return 1;
    }
    let cfg = match load_config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_logger(&cfg);
    run(cfg)
}

fn run(cfg: Config) -> i32 {
    install_signals();
    let electrum = Arc::new(Electrum {
        host: cfg.str("ELECTRUM", "HOST"),
        port: cfg.num("ELECTRUM", "PORT") as u16,
        tls: cfg.truthy("ELECTRUM", "TLS_ENABLED"),
        status: AtomicU8::new(0),
        writer: Mutex::new(None),
        pending: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        last_call: Mutex::new(Instant::now()),
    });
    let b = Arc::new(Backend {
        core: Core::from(&cfg),
        db: Db::from(&cfg),
        electrum: electrum.clone(),
        pools: PoolsUpdater { last_run: Mutex::new(0.0), current_sha: Mutex::new(None) },
        current_height: AtomicI64::new(0),
        blocks: Mutex::new(Vec::new()),
        last_difficulty_time: Mutex::new(None),
        in_sync: AtomicBool::new(false),
        mempool_info: Mutex::new(obj(vec![("mempoolminfee", num("0.00001"))])),
        mempool_size: AtomicU64::new(0),
        core_version: Mutex::new("?".into()),
        once: Mutex::new(Vec::new()),
        cfg,
    });
    // module load: backend-info asks bitcoind for its version; the electrum backend connects
    {
        let b = b.clone();
        std::thread::spawn(move || loop {
            match b.core.call("getnetworkinfo", vec![]) {
                Ok(ni) => *b.core_version.lock().unwrap_or_else(|e| e.into_inner()) = ni.get("subversion").and_then(Value::as_str).unwrap_or("?").to_string(),
                Err(e) => err(format!("Exception in $updateCoreVersion. Reason: {}", e.message)),
            }
            std::thread::sleep(Duration::from_secs(600));
        });
    }
    if b.cfg.str("MEMPOOL", "BACKEND") == "electrum" {
        std::thread::spawn(move || electrum.run());
    }
    notice(format!("Starting Mempool Server... ({})", &GIT_COMMIT[..7]));
    let cfg = &b.cfg;
    if cfg.truthy("DATABASE", "ENABLED") {
        if let Err(code) = pid_lock(cfg) {
            return code;
        }
        match b.db.query("SELECT 1") {
            Ok(_) => info("Database connection established."),
            Err(e) => {
                err(format!("Could not connect to database: {e}"));
                return 1;
            }
        }
        if let Err(code) = migrate(&b.db, cfg) {
            return code;
        }
    }
    if cfg.truthy("DATABASE", "ENABLED") && cfg.truthy("FIAT_PRICE", "ENABLED") {
        info("archy e2e stand-in: the price updater is not mirrored (it fetches exchange rates from the internet)");
    }
    b.pools.update(cfg, &b.db);
    let sha_missing = b.pools.current_sha.lock().map_or(true, |s| s.is_none());
    if cfg.is_true("DATABASE", "ENABLED") && js_truthy(&cfg.get("MEMPOOL", "ENABLED")) && cfg.is_bitcoin() && sha_missing {
        err("Failed to retreive pools-v2.json sha, cannot run block indexing. Please make sure you've set valid urls in your mempool-config.json::MEMPOOL::POOLS_JSON_URL and mempool-config.json::MEMPOOL::POOLS_JSON_TREE_UR, aborting now");
        if let Some(p) = std::ptr::NonNull::new(PID_FILE.load(Ordering::SeqCst)) {
            // process.exit(1) runs exitCleanup: the PID lock is released
            // SAFETY: a leaked NUL-terminated string
            unsafe { unlink(p.as_ptr()) };
        }
        return 1;
    }
    if let Value::Arr(assets) = cfg.get("MEMPOOL", "EXTERNAL_ASSETS") {
        if !assets.is_empty() {
            info("archy e2e stand-in: MEMPOOL.EXTERNAL_ASSETS downloads are not mirrored");
        }
    }
    if js_truthy(&cfg.get("MEMPOOL", "ENABLED")) {
        b.load_cache();
    }
    if cfg.truthy("STATISTICS", "ENABLED") && cfg.truthy("DATABASE", "ENABLED") {
        let b = b.clone();
        std::thread::spawn(move || b.statistics_loop());
    }
    if cfg.truthy("FIAT_PRICE", "ENABLED") {
        debug("archy e2e stand-in: no exchange rates are fetched");
    }
    if let Err(e) = b.core.call("getchaintips", vec![]) {
        err(format!("Cannot get fetch orphaned blocks. Reason: {}", e.message));
    }
    if js_truthy(&cfg.get("MEMPOOL", "ENABLED")) {
        let b = b.clone();
        std::thread::spawn(move || b.main_loop());
        if cfg.indexing_enabled() {
            debug("archy e2e stand-in: the mining indexer (blocks, hashrates, difficulty adjustments) is not mirrored");
        }
    }
    let port = cfg.num("MEMPOOL", "HTTP_PORT");
    let listener = match TcpListener::bind(format!("[::]:{port}")).or_else(|_| TcpListener::bind(format!("0.0.0.0:{port}"))) {
        Ok(l) => l,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::AddrInUse { "EADDRINUSE" } else { "EACCES" };
            eprintln!("uncaughtException: Error: listen {code}: address already in use :::{port}");
            return 1;
        }
    };
    notice(format!("Mempool Server is running on port {port}"));
    {
        let b = b.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(10));
            b.pools.update(&b.cfg, &b.db);
        });
    }
    let srv = b.clone();
    http::serve(listener, move |req| Some(route(&srv, req)));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_per_section() {
        let file = json::parse(r#"{"MEMPOOL":{"BACKEND":"electrum","HTTP_PORT":8999},"ELECTRUM":{"HOST":"archy-electrumx","PORT":50001,"TLS_ENABLED":false},"EXTRA":{"X":1}}"#).unwrap();
        let c = Config(merge(&file, json::parse(DEFAULTS).unwrap()));
        assert_eq!(c.str("MEMPOOL", "BACKEND"), "electrum");
        assert_eq!(c.str("MEMPOOL", "NETWORK"), "mainnet");
        assert_eq!(c.num("ELECTRUM", "PORT"), 50001);
        assert!(!c.truthy("ELECTRUM", "TLS_ENABLED"));
        assert!(c.truthy("SYSLOG", "ENABLED"));
        assert_eq!(c.str("MEMPOOL", "STDOUT_LOG_MIN_PRIORITY"), "debug");
        assert_eq!(c.num("EXTRA", "X"), 1);
        assert!(!c.is_true("MEMPOOL", "AUTOMATIC_POOLS_UPDATE"));
    }

    #[test]
    fn addresses() {
        let v = local_validateaddress("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "mainnet");
        assert_eq!(v.get("scriptPubKey").and_then(Value::as_str), Some("76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"));
        let v = local_validateaddress("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "mainnet");
        assert_eq!(v.get("scriptPubKey").and_then(Value::as_str), Some("0014e8df018c7e326cc253faac7e46cdc51e68542c42"));
        let v = local_validateaddress("bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297", "mainnet");
        assert_eq!(v.get("isvalid"), Some(&Value::Bool(true)));
        assert_eq!(local_validateaddress("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "mainnet").get("isvalid"), Some(&Value::Bool(false)));
        // the scripthash of the genesis address' script, as Electrum computes it
        assert_eq!(script_hash("76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"), "8b01df4e368ea28f8dc0423bcf7a4923e3a12d307c875e47a0cfbf90b5c39161");
    }

    #[test]
    fn sql_quoting() {
        assert_eq!(q("a'b\\c"), "'a\\'b\\\\c'");
    }
}
