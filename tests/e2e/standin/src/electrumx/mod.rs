//! ElectrumX 1.18.0 (spesmilo/electrumx tag 1.18.0, as docker.io/lukechilds/electrumx:v1.18.0
//! runs it): `electrumx_server` and `electrumx_rpc`. What is mirrored, and from where (paths at
//! 1.18.0 are below `src/`; unchanged since 1.16.0 unless said):
//!
//! - Start-up (`electrumx_server`, `electrumx/lib/server_base.py`, `electrumx/server/controller.py`):
//!   logs to stdout as `LEVEL:Class:message` (`LOG_FORMAT`, `CompactFormatter`); any exception
//!   while configuring or running is logged as "ElectrumX server terminated abnormally" with the
//!   exception's class and text, and the process then exits **0**, as upstream's `main()` returns
//!   normally (a Python traceback's frames are not reproduced). Running as euid 0 needs
//!   `ALLOW_ROOT` non-empty ("RUNNING AS ROOT IS STRONGLY DISCOURAGED!").
//! - Environment (`electrumx/server/env.py`, `electrumx/lib/env_base.py`, `electrumx/lib/coins.py`,
//!   aiorpcX 0.18.7 `aiorpcx/util.py` for `Service`/`NetAddress`): required `DB_DIRECTORY`,
//!   `DAEMON_URL`, `COIN` ("required envvar X not set" only when unset; empty passes); obsolete
//!   variables (`HOST`, `RPC_PORT`, `TCP_PORT`, ...) refused when non-empty; `COIN` `Bitcoin` or
//!   `Bitcoin` (any case; `BitcoinSegwit` is "unknown coin BitcoinSegwit and network mainnet
//!   combination" since 1.17.0) with `NET` `mainnet`, `testnet`, `testnet4`, `signet` or `regtest`
//!   (signet and testnet4 from 1.17.0); MAX_SEND 8,100,000 by default, MAX_RECV (parsed, not
//!   enforced), DAEMON_POLL_INTERVAL_BLOCKS and _MEMPOOL (ms, 5000: the block and mempool polls),
//!   all from 1.17.0; integers as
//!   Python's `int()`; booleans "non-empty after strip" (so `PEER_ANNOUNCE=` is off);
//!   `EVENT_LOOP_POLICY` unset or `uvloop`; `DB_ENGINE` leveldb or rocksdb; `SERVICES` and
//!   `REPORT_SERVICES` parsed with upstream's rules and error texts (a missing host means all
//!   interfaces, `rpc` defaults to localhost:8000, `.onion` hosts and two services on one address
//!   refused, `ssl`/`wss` need `SSL_CERTFILE` and `SSL_KEYFILE`); `MAX_SESSIONS` lowered to the
//!   open-file limit minus 350 with upstream's warning; `COST_HARD_LIMIT` >= `COST_SOFT_LIMIT`.
//!   Other coins than Bitcoin's three networks are refused as unknown (upstream knows many).
//! - The daemon (`electrumx/server/daemon.py`): `DAEMON_URL`, comma-separated for fail-over,
//!   sanitised as `Coin.sanitize_url` does (`user:pass@` mandatory, default port by network:
//!   8332, 18332, 48332, 38332, 18443, `http://` and `/` added); JSON-RPC 1.0-style
//!   POSTs with HTTP Basic auth from the URL (percent-decoded, as aiohttp does), bodies as
//!   Python's `json.dumps`. Every call retries forever with backoff 0.25 s doubling to 4 s,
//!   logging at most once a minute per call: "connection problem - check your daemon is
//!   running", "daemon service refused: Unauthorized" (any non-JSON reply: a 401, a 403),
//!   "starting up checking blocks" (-28), "timeout error" (300 s, aiohttp's default), then
//!   "connection restored"/"running normally". `getblockcount` is the first call, before any
//!   listener opens, so with a wrong password nothing ever listens, not even the local RPC.
//!   Other RPC errors are `DaemonError`s as upstream raises them (1.17.0's retry of
//!   RPC_PARSE_ERROR, -32700, is not mirrored: the stand-in bitcoind never answers it).
//! - Sync (`electrumx/server/block_processor.py`, `db.py`, `history.py`): follows
//!   `getblockcount` only: it never calls `getblockchaininfo`, so while bitcoind is in
//!   initial block download it indexes up to the blocks bitcoind has and, once level with them,
//!   serves (it cannot know more headers exist). Blocks come from `getblockhash` (batched) and
//!   `getblock <hash> false`. The stand-in does not fetch every block: it indexes at a fake rate
//!   (150,000 blocks a second; a number in the file `standin-blocks-per-second` in
//!   `DB_DIRECTORY` overrides it), fetching the genesis block (checked against the coin's
//!   genesis hash: "genesis block has hash X expected Y"), the last block of each batch and every
//!   block of the last ten before the daemon's height, whose headers it stores. A block's hash
//!   is the one `getblockhash` gives (the stand-in bitcoind's headers do not hash to their
//!   names; upstream hashes the header). On first start it creates `utxo/`, `hist/`, `meta/` and
//!   the `COIN` file upstream writes ("ElectrumX databases and metadata for Bitcoin mainnet");
//!   headers go to `meta/headers00`, ... (upstream's `LogicalFile` split, sparse here), the state
//!   (height, tip, tx count, first sync, flush count) to `utxo/archy-standin-state` after every
//!   batch, so a restart resumes from the stored height. No UTXO or history index: every
//!   scripthash has no history, balance 0 and no unspent outputs. After catching up: "caught up
//!   to height N", "ElectrumX 1.18.0 synced to height N", the mempool's first sync
//!   (`getrawmempool`), then new blocks are polled every 5 s and sessions notified.
//! - Listeners (`electrumx/server/session.py` `SessionManager.serve`): `rpc` services at once
//!   after the daemon test; `tcp` only once caught up and the mempool synced ("ElectrumX will not
//!   serve any incoming connections until it has fully caught up with your bitcoin daemon",
//!   docs/environment.rst). `ssl`, `ws` and `wss` are parsed and validated but not served (no TLS
//!   or WebSocket here; logged). Sessions speak newline-framed JSON-RPC (aiorpcX 0.25.0
//!   `JSONRPCAutoDetect`, `NewlineFramer`): JSON-RPC 2.0, 1.0 or loose, batches, upstream's
//!   error codes and texts ("unknown method", argument-count errors), answers encoded compactly
//!   (`separators=(',', ':')`); TCP answers padded and paced as 1.18.0's `PaddedRSTransport`
//!   does (see session.rs); a client's EOF closes the session, as asyncio's default does; idle
//!   sessions close after `SESSION_TIMEOUT`.
//! - Electrum protocol 1.4–1.4.3 (`ElectrumX` session class; 1.4.3 adds nothing for Bitcoin): `server.version` (negotiation,
//!   "server.version already sent", "unsupported protocol version"), `server.banner`
//!   (`BANNER_FILE` with its `$VARIABLES`), `server.features`, `server.ping`,
//!   `server.donation_address`, `server.peers.subscribe` (empty), `server.add_peer` (false),
//!   `blockchain.headers.subscribe` (and notifications), `blockchain.block.header(s)` (stored
//!   headers; one not stored is asked of the daemon, where upstream reads its DB),
//!   `blockchain.estimatefee` (probes `estimatesmartfee` once, falls back to `estimatefee`),
//!   `blockchain.relayfee` (`getnetworkinfo`, cached 60 s), `blockchain.scripthash.get_balance`,
//!   `get_history`, `get_mempool`, `listunspent`, `subscribe`, `unsubscribe` (1.4.2),
//!   `blockchain.transaction.get` and `broadcast` (the daemon, as upstream),
//!   `mempool.get_fee_histogram` (empty: no mempool transactions are fetched). Not mirrored:
//!   `blockchain.transaction.broadcast_package` (1.17.0, experimental),
//!   `transaction.get_merkle`, `id_from_pos` (no tx index), costs and throttling, peer discovery
//!   (with `PEER_DISCOVERY` on it only logs that it would start), `DROP_CLIENT` matching.
//! - Local RPC (`LocalRPC`, `SessionManager.rpc_*`): `getinfo` with upstream's keys (coin,
//!   daemon, "daemon height", "db height", db_flush_count, groups, "history cache", "merkle txid
//!   cache", pid, peers, "request counts", "request total", sessions, "txids cache", "txs sent",
//!   uptime, version; the caches as "N lookups, H hits, E entries"), `stop`, `sessions`, `groups`, `peers`, `query`, `reorg`,
//!   `daemon_url`, `log`, `disconnect`, `add_peer`.
//! - `electrumx_rpc` (`src/electrumx/cli/electrumx_rpc.py`): `-p/--port` or `RPC_PORT` or 8000, connects to
//!   localhost (every address it resolves to), prints `json.dumps(result, indent=4,
//!   sort_keys=True)`, the text tables for sessions/groups/peers, the lines for query; exit 1
//!   with "cannot connect - is ElectrumX catching up, not running, or is {port} the wrong RPC
//!   port?" or "error making request: ..."; argparse's usage errors (exit 2).
//! - SIGTERM/SIGINT: upstream's shutdown lines, exit 0 (state is already flushed per batch).
//!
//! Not mirrored: Python itself (the image has python3 3.13, but no nc, wget or curl: the catalog's
//! health check uses bash's `/dev/tcp` and `electrumx_rpc`), LevelDB, `electrumx_compact_history`, `LOG_SESSIONS`' periodic
//! session logs.

mod coin;
mod daemon;
mod db;
mod env;
mod listeners;
mod local_rpc;
mod methods;
mod python;
mod rpc;
mod server;
mod services;
mod session;
mod sync;

pub use rpc::rpc;
pub use server::server;

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

const VERSION: &str = "ElectrumX 1.18.0";
const VERSION_SHORT: &str = "1.18.0";
const AIORPCX_VERSION: &str = "0.25.0";
const PROTOCOL_MIN: &[i64] = &[1, 4];
const PROTOCOL_MAX: &[i64] = &[1, 4, 3];
const BAD_REQUEST: i64 = 1;
const DAEMON_ERROR: i64 = 2;
const DEFAULT_RATE: u64 = 150_000;
const STATE_FILE: &str = "utxo/archy-standin-state";

// ---------------------------------------------------------------------------------------------
// logging: Python's logging with LOG_FORMAT (default '%(levelname)s:%(name)s:%(message)s')

static LEVEL: AtomicU8 = AtomicU8::new(20);

fn log_at(level: u8, name: &str, msg: &str) {
    if level < LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let lname = match level {
        10 => "DEBUG",
        20 => "INFO",
        30 => "WARNING",
        40 => "ERROR",
        _ => "CRITICAL",
    };
    let fmt =
        std::env::var("LOG_FORMAT").unwrap_or_else(|_| "%(levelname)s:%(name)s:%(message)s".into());
    let line = fmt
        .replace("%(levelname)s", lname)
        .replace("%(name)s", name)
        .replace("%(asctime)s", &asctime())
        .replace("%(message)s", msg);
    let out = std::io::stdout();
    let mut out = out.lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn info(name: &str, msg: impl AsRef<str>) {
    log_at(20, name, msg.as_ref());
}
fn warning(name: &str, msg: impl AsRef<str>) {
    log_at(30, name, msg.as_ref());
}
fn error(name: &str, msg: impl AsRef<str>) {
    log_at(40, name, msg.as_ref());
}

fn asctime() -> String {
    let d = crate::util::unix_now();
    let (y, mo, da, h, mi, se) = crate::util::utc(d.as_secs() as i64);
    format!(
        "{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{se:02},{:03}",
        d.subsec_millis()
    )
}

// ---------------------------------------------------------------------------------------------
// exceptions as upstream raises them

#[derive(Debug)]
struct PyErr {
    class: String,
    msg: String,
}

fn err(class: &str, msg: impl Into<String>) -> PyErr {
    PyErr {
        class: class.into(),
        msg: msg.into(),
    }
}

const ENV_ERROR: &str = "electrumx.lib.env_base.EnvBase.Error";
const COIN_ERROR: &str = "electrumx.lib.coins.CoinError";
const SERVICE_ERROR: &str = "electrumx.server.env.ServiceError";

fn terminated_abnormally(e: &PyErr) -> i32 {
    error("electrumx", "ElectrumX server terminated abnormally");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Traceback (most recent call last):\n  (Python frames not mirrored by the archy e2e stand-in)\n{}: {}", e.class, e.msg);
    let _ = out.flush();
    0
}
