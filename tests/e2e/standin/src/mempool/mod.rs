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

mod address;
mod api;
mod backend;
mod bitcoind;
mod blocks;
mod config;
mod db;
mod electrum;
mod log;
mod migrations;
mod pools;

use crate::http;
use crate::json::Value;
use backend::Backend;
use config::{js_truthy, load_config, node_fatal, normalize, Config};
use electrum::Electrum;
use log::{debug, err, info, init_logger, notice};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const VERSION: &str = "3.3.1";
const GIT_COMMIT: &str = "9332d9db";
const NODE_VERSION: &str = "v24.13.0";
const SCRIPT: &str = "/backend/package/index.js";
const PACKAGE_DIR: &str = "/backend/package";
const BITCOIN_NETWORKS: &[&str] = &["mainnet", "testnet", "signet", "testnet4", "regtest"];

fn node_fs_error(e: &std::io::Error, path: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("ENOENT: no such file or directory, open '{path}'"),
        std::io::ErrorKind::PermissionDenied => format!("EACCES: permission denied, open '{path}'"),
        _ => format!("{e}, open '{path}'"),
    }
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
        eprintln!(
            "node (archy e2e stand-in): only {SCRIPT} is mirrored, not {}",
            path.display()
        );
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
    // index.ts: SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2 -> forceExit -> exitCleanup
    crate::sys::exit_on(&[1, 2, 15, 10, 12]);
    let electrum = Arc::new(Electrum::new(&cfg));
    let b = Arc::new(Backend::new(cfg, electrum.clone()));
    // module load: backend-info asks bitcoind for its version; the electrum backend connects
    {
        let b = b.clone();
        std::thread::spawn(move || loop {
            match b.core.call("getnetworkinfo", vec![]) {
                Ok(ni) => {
                    *b.core_version.lock().unwrap_or_else(|e| e.into_inner()) = ni
                        .get("subversion")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string()
                }
                Err(e) => err(format!(
                    "Exception in $updateCoreVersion. Reason: {}",
                    e.message
                )),
            }
            std::thread::sleep(Duration::from_secs(600));
        });
    }
    if b.cfg.str("MEMPOOL", "BACKEND") == "electrum" {
        std::thread::spawn(move || electrum.run());
    }
    notice(format!("Starting Mempool Server... ({})", &GIT_COMMIT[..7]));
    let cfg = &b.cfg;
    let mut pid_file = None;
    if cfg.truthy("DATABASE", "ENABLED") {
        match db::pid_lock(cfg) {
            Ok(p) => pid_file = Some(p),
            Err(code) => return code,
        }
        match b.db.query("SELECT 1") {
            Ok(_) => info("Database connection established."),
            Err(e) => {
                err(format!("Could not connect to database: {e}"));
                return 1;
            }
        }
        if let Err(code) = migrations::migrate(&b.db, cfg) {
            return code;
        }
    }
    if cfg.truthy("DATABASE", "ENABLED") && cfg.truthy("FIAT_PRICE", "ENABLED") {
        info("archy e2e stand-in: the price updater is not mirrored (it fetches exchange rates from the internet)");
    }
    b.pools.update(cfg, &b.db);
    let sha_missing = b.pools.current_sha.lock().map_or(true, |s| s.is_none());
    if cfg.is_true("DATABASE", "ENABLED")
        && js_truthy(&cfg.get("MEMPOOL", "ENABLED"))
        && cfg.is_bitcoin()
        && sha_missing
    {
        err("Failed to retreive pools-v2.json sha, cannot run block indexing. Please make sure you've set valid urls in your mempool-config.json::MEMPOOL::POOLS_JSON_URL and mempool-config.json::MEMPOOL::POOLS_JSON_TREE_UR, aborting now");
        if let Some(p) = &pid_file {
            // process.exit(1) runs exitCleanup: the PID lock is released
            let _ = std::fs::remove_file(p);
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
        err(format!(
            "Cannot get fetch orphaned blocks. Reason: {}",
            e.message
        ));
    }
    if js_truthy(&cfg.get("MEMPOOL", "ENABLED")) {
        let b = b.clone();
        std::thread::spawn(move || b.main_loop());
        if cfg.indexing_enabled() {
            debug("archy e2e stand-in: the mining indexer (blocks, hashrates, difficulty adjustments) is not mirrored");
        }
    }
    let port = cfg.num("MEMPOOL", "HTTP_PORT");
    let listener = match TcpListener::bind(format!("[::]:{port}"))
        .or_else(|_| TcpListener::bind(format!("0.0.0.0:{port}")))
    {
        Ok(l) => l,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::AddrInUse {
                "EADDRINUSE"
            } else {
                "EACCES"
            };
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
    http::serve(listener, move |req| Some(api::route(&srv, req)));
    0
}
