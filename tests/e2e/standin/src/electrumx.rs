//! ElectrumX 1.16.0 (spesmilo/electrumx tag 1.16.0, as docker.io/lukechilds/electrumx:v1.16.0
//! runs it): `electrumx_server` and `electrumx_rpc`. What is mirrored, and from where:
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
//!   `BitcoinSegwit` (any case) with `NET` `mainnet`, `testnet` or `regtest` (no signet, no
//!   testnet4 in 1.16.0: "unknown coin Bitcoin and network signet combination"); integers as
//!   Python's `int()`; booleans "non-empty after strip" (so `PEER_ANNOUNCE=` is off);
//!   `EVENT_LOOP_POLICY` unset or `uvloop`; `DB_ENGINE` leveldb or rocksdb; `SERVICES` and
//!   `REPORT_SERVICES` parsed with upstream's rules and error texts (a missing host means all
//!   interfaces, `rpc` defaults to localhost:8000, `.onion` hosts and two services on one address
//!   refused, `ssl`/`wss` need `SSL_CERTFILE` and `SSL_KEYFILE`); `MAX_SESSIONS` lowered to the
//!   open-file limit minus 350 with upstream's warning; `COST_HARD_LIMIT` >= `COST_SOFT_LIMIT`.
//!   Other coins than Bitcoin's three networks are refused as unknown (upstream knows many).
//! - The daemon (`electrumx/server/daemon.py`): `DAEMON_URL`, comma-separated for fail-over,
//!   sanitised as `Coin.sanitize_url` does (`user:pass@` mandatory, default port by network:
//!   8332, 18332, and 18332 for regtest in 1.16.0, `http://` and `/` added); JSON-RPC 1.0-style
//!   POSTs with HTTP Basic auth from the URL (percent-decoded, as aiohttp does), bodies as
//!   Python's `json.dumps`. Every call retries forever with backoff 0.25 s doubling to 4 s,
//!   logging at most once a minute per call: "connection problem - check your daemon is
//!   running", "daemon service refused: Unauthorized" (any non-JSON reply: a 401, a 403),
//!   "starting up checking blocks" (-28), "timeout error" (300 s, aiohttp's default), then
//!   "connection restored"/"running normally". `getblockcount` is the first call, before any
//!   listener opens, so with a wrong password nothing ever listens, not even the local RPC.
//!   Other RPC errors are `DaemonError`s as upstream raises them.
//! - Sync (`electrumx/server/block_processor.py`, `db.py`, `history.py`): follows
//!   `getblockcount` only: 1.16.0 never calls `getblockchaininfo`, so while bitcoind is in
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
//!   to height N", "ElectrumX 1.16.0 synced to height N", the mempool's first sync
//!   (`getrawmempool`), then new blocks are polled every 5 s and sessions notified.
//! - Listeners (`electrumx/server/session.py` `SessionManager.serve`): `rpc` services at once
//!   after the daemon test; `tcp` only once caught up and the mempool synced ("ElectrumX will not
//!   serve any incoming connections until it has fully caught up with your bitcoin daemon",
//!   docs/environment.rst). `ssl`, `ws` and `wss` are parsed and validated but not served (no TLS
//!   or WebSocket here; logged). Sessions speak newline-framed JSON-RPC (aiorpcX 0.18.7
//!   `JSONRPCAutoDetect`, `NewlineFramer`): JSON-RPC 2.0, 1.0 or loose, batches, upstream's
//!   error codes and texts ("unknown method", argument-count errors), answers encoded as
//!   Python's `json.dumps`; a client's EOF closes the session, as asyncio's default does; idle
//!   sessions close after `SESSION_TIMEOUT`.
//! - Electrum protocol 1.4–1.4.2 (`ElectrumX` session class): `server.version` (negotiation,
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
//!   `transaction.get_merkle`, `id_from_pos` (no tx index), costs and throttling, peer discovery
//!   (with `PEER_DISCOVERY` on it only logs that it would start), `DROP_CLIENT` matching.
//! - Local RPC (`LocalRPC`, `SessionManager.rpc_*`): `getinfo` with upstream's keys (coin,
//!   daemon, "daemon height", "db height", db_flush_count, groups, "history cache", "merkle
//!   cache", pid, peers, "request counts", "request total", sessions, "tx hashes cache", "txs
//!   sent", uptime, version), `stop`, `sessions`, `groups`, `peers`, `query`, `reorg`,
//!   `daemon_url`, `log`, `disconnect`, `add_peer`.
//! - `electrumx_rpc` (`electrumx_rpc` @1.16.0): `-p/--port` or `RPC_PORT` or 8000, connects to
//!   localhost (every address it resolves to), prints `json.dumps(result, indent=4,
//!   sort_keys=True)`, the text tables for sessions/groups/peers, the lines for query; exit 1
//!   with "cannot connect - is ElectrumX catching up, not running, or is {port} the wrong RPC
//!   port?" or "error making request: ..."; argparse's usage errors (exit 2).
//! - SIGTERM/SIGINT: upstream's shutdown lines, exit 0 (state is already flushed per batch).
//!
//! Not mirrored: Python itself (the image has no python3; a health check must use busybox's
//! `nc`/`wget` or `electrumx_rpc`), LevelDB, `electrumx_compact_history`, `LOG_SESSIONS`' periodic
//! session logs.

use crate::json::{self, num, obj, s, Value};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const VERSION: &str = "ElectrumX 1.16.0";
const VERSION_SHORT: &str = "1.16.0";
const AIORPCX_VERSION: &str = "0.18.7";
const PROTOCOL_MIN: &[i64] = &[1, 4];
const PROTOCOL_MAX: &[i64] = &[1, 4, 2];
const BAD_REQUEST: i64 = 1;
const DAEMON_ERROR: i64 = 2;
const DEFAULT_RATE: u64 = 150_000;
const STATE_FILE: &str = "utxo/archy-standin-state";

extern "C" {
    fn geteuid() -> u32;
    fn getpid() -> i32;
}

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
    let fmt = std::env::var("LOG_FORMAT").unwrap_or_else(|_| "%(levelname)s:%(name)s:%(message)s".into());
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
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, da, h, mi, se) = civil(d.as_secs() as i64);
    format!("{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{se:02},{:03}", d.subsec_millis())
}

/// Seconds since the epoch to UTC (year, month, day, hour, minute, second).
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

/// Python's `f'{n:,d}'`.
fn commas(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// `electrumx.lib.util.formatted_time`.
fn formatted_time(t: i64, sep: &str) -> String {
    let mut t = t.max(0);
    let mut parts: Vec<String> = Vec::new();
    for (unit, n) in [("d", 86400), ("h", 3600), ("m", 60)] {
        let val = t / n;
        if !parts.is_empty() || val > 0 {
            parts.push(if unit == "d" { format!("{val}d") } else { format!("{val:02}{unit}") });
        }
        t %= n;
    }
    if parts.len() < 3 {
        parts.push(format!("{t:02}s"));
    }
    parts.join(sep)
}

// ---------------------------------------------------------------------------------------------
// Python's json.dumps and repr, for answers and log lines

/// A JSON number as Python would print it after `json.loads`: ints unchanged, floats as `repr`.
fn py_num(n: &str) -> String {
    if !n.contains(['.', 'e', 'E']) {
        return n.to_string();
    }
    let Ok(x) = n.parse::<f64>() else { return n.to_string() };
    py_float(x)
}

fn py_float(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    if !x.is_finite() {
        return if x.is_nan() { "NaN".into() } else if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    // shortest round-trip digits and the decimal exponent
    let e = format!("{:e}", x.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let m = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
        let es = if exp < 0 { format!("-{:02}", -exp) } else { format!("+{exp:02}") };
        return format!("{sign}{m}e{es}");
    }
    let n = digits.len() as i32;
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point >= n {
        format!("{digits}{}.0", "0".repeat((point - n) as usize))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    };
    format!("{sign}{body}")
}

fn py_str(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `json.dumps(v)`: separators ", " and ": ", ASCII only.
fn py_dumps(v: &Value) -> String {
    let mut out = String::new();
    py_write(&mut out, v, None, 0, false);
    out
}

/// `json.dumps(v, indent=4, sort_keys=True)`.
fn py_dumps_pretty(v: &Value) -> String {
    let mut out = String::new();
    py_write(&mut out, v, Some(4), 0, true);
    out
}

fn py_write(out: &mut String, v: &Value, indent: Option<usize>, depth: usize, sort: bool) {
    let nl = |out: &mut String, d: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * d));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Num(n) => out.push_str(&py_num(n)),
        Value::Str(x) => py_str(out, x),
        Value::Arr(a) if a.is_empty() => out.push_str("[]"),
        Value::Obj(m) if m.is_empty() => out.push_str("{}"),
        Value::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, depth + 1);
                py_write(out, x, indent, depth + 1, sort);
            }
            nl(out, depth);
            out.push(']');
        }
        Value::Obj(m) => {
            let mut items: Vec<&(String, Value)> = m.iter().collect();
            if sort {
                items.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (k, x)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, depth + 1);
                py_str(out, k);
                out.push_str(": ");
                py_write(out, x, indent, depth + 1, sort);
            }
            nl(out, depth);
            out.push('}');
        }
    }
}

/// Python's `repr` of a value loaded from JSON (for DaemonError texts).
fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Num(n) => py_num(n),
        Value::Str(x) => py_repr_str(x),
        Value::Arr(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Obj(m) => format!(
            "{{{}}}",
            m.iter().map(|(k, x)| format!("{}: {}", py_repr_str(k), py_repr(x))).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn py_repr_str(x: &str) -> String {
    let q = if x.contains('\'') && !x.contains('"') { '"' } else { '\'' };
    let mut out = String::new();
    out.push(q);
    for c in x.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// `str(value)` as an f-string prints a JSON-loaded value.
fn py_fstr(v: &Value) -> String {
    match v {
        Value::Str(x) => x.clone(),
        other => py_repr(other),
    }
}

// ---------------------------------------------------------------------------------------------
// exceptions as upstream raises them

#[derive(Debug)]
struct PyErr {
    class: String,
    msg: String,
}

fn err(class: &str, msg: impl Into<String>) -> PyErr {
    PyErr { class: class.into(), msg: msg.into() }
}

const ENV_ERROR: &str = "electrumx.lib.env_base.EnvBase.Error";
const COIN_ERROR: &str = "electrumx.lib.coins.CoinError";
const SERVICE_ERROR: &str = "electrumx.server.env.ServiceError";

// ---------------------------------------------------------------------------------------------
// coins (electrumx/lib/coins.py @1.16.0: Bitcoin, BitcoinTestnet, BitcoinRegtest and the
// BitcoinSegwit* aliases)

#[derive(Clone, Debug)]
struct Coin {
    class: &'static str,
    name: &'static str,
    net: &'static str,
    shortname: &'static str,
    genesis: &'static str,
    rpc_port: u16,
    reorg_limit: i64,
    tx_count: i64,
    tx_count_height: i64,
    tx_per_block: i64,
}

fn lookup_coin(name: &str, net: &str) -> Result<Coin, PyErr> {
    let segwit = match name.to_lowercase().as_str() {
        "bitcoin" => false,
        "bitcoinsegwit" => true,
        _ => return Err(err(COIN_ERROR, format!("unknown coin {name} and network {net} combination"))),
    };
    let base = match net.to_lowercase().as_str() {
        "mainnet" => Coin {
            class: if segwit { "BitcoinSegwit" } else { "Bitcoin" },
            name: "",
            net: "mainnet",
            shortname: "BTC",
            genesis: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
            rpc_port: 8332,
            reorg_limit: 200,
            tx_count: 565_436_782,
            tx_count_height: 646_855,
            tx_per_block: 2200,
        },
        "testnet" => Coin {
            class: if segwit { "BitcoinSegwitTestnet" } else { "BitcoinTestnet" },
            name: "",
            net: "testnet",
            shortname: "XTN",
            genesis: "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
            rpc_port: 18332,
            reorg_limit: 8000,
            tx_count: 12_242_438,
            tx_count_height: 1_035_428,
            tx_per_block: 21,
        },
        "regtest" => Coin {
            class: if segwit { "BitcoinSegwitRegtest" } else { "BitcoinRegtest" },
            name: "",
            net: "regtest",
            shortname: "XTN",
            genesis: "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
            rpc_port: 18332,
            reorg_limit: 8000,
            tx_count: 1,
            tx_count_height: 1,
            tx_per_block: 21,
        },
        _ => return Err(err(COIN_ERROR, format!("unknown coin {name} and network {net} combination"))),
    };
    Ok(Coin { name: if segwit { "BitcoinSegwit" } else { "Bitcoin" }, ..base })
}

impl Coin {
    /// `Coin.sanitize_url`: the regex `.+@(\[[0-9a-fA-F:]+\]|[^:]+)(:[0-9]+)?` (re.match: anchored
    /// at the start only), the network's port if none, `http://` and a trailing `/`.
    fn sanitize_url(&self, url: &str) -> Result<String, PyErr> {
        let url = url.trim().trim_end_matches('/');
        let mut port_given = None;
        for (at, _) in url.rmatch_indices('@') {
            if at == 0 {
                continue;
            }
            let rest = &url[at + 1..];
            let host_len = if let Some(r) = rest.strip_prefix('[') {
                match r.find(']') {
                    Some(end) if end > 0 && r[..end].chars().all(|c| c.is_ascii_hexdigit() || c == ':') => Some(end + 2),
                    _ => None,
                }
                .or_else(|| rest.find(':').map_or(Some(rest.len()), Some).filter(|&n| n > 0))
            } else {
                Some(rest.find(':').unwrap_or(rest.len())).filter(|&n| n > 0)
            };
            let Some(hl) = host_len else { continue };
            let after = &rest[hl..];
            let digits = after.strip_prefix(':').map_or(0, |a| a.chars().take_while(char::is_ascii_digit).count());
            port_given = Some(digits > 0);
            break;
        }
        let Some(has_port) = port_given else {
            return Err(err(COIN_ERROR, format!("invalid daemon URL: \"{url}\"")));
        };
        let mut url = url.to_string();
        if !has_port {
            url = format!("{url}:{}", self.rpc_port);
        }
        if !url.starts_with("http://") && !url.starts_with("https://") {
            url = format!("http://{url}");
        }
        Ok(url + "/")
    }
}

// ---------------------------------------------------------------------------------------------
// services (aiorpcX 0.18.7 util.py Service/NetAddress, electrumx env.py)

#[derive(Clone, Debug, PartialEq)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

#[derive(Clone, Debug, PartialEq)]
struct Service {
    protocol: String,
    host: Host,
    port: u16,
}

impl Service {
    fn address(&self) -> String {
        match &self.host {
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]:{}", self.port),
            Host::Ip(ip) => format!("{ip}:{}", self.port),
            Host::Name(n) => format!("{n}:{}", self.port),
        }
    }

    fn text(&self) -> String {
        format!("{}://{}", self.protocol, self.address())
    }
}

fn is_valid_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.is_empty() || h.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = h.split('.').collect();
    if labels.last().is_some_and(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit())) {
        return false;
    }
    labels.iter().all(|l| {
        let b = l.as_bytes();
        let edge = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let mid = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        !b.is_empty() && b.len() <= 63 && edge(b[0]) && edge(b[b.len() - 1]) && b.iter().all(|&c| mid(c))
    })
}

fn classify_host(h: &str) -> Result<Host, String> {
    if is_valid_hostname(h) {
        return Ok(Host::Name(h.to_string()));
    }
    h.parse::<IpAddr>().map(Host::Ip).map_err(|_| format!("'{h}' does not appear to be an IPv4 or IPv6 address"))
}

fn validate_port(p: &str) -> Result<u16, String> {
    if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(n) = p.parse::<u32>() {
            if n > 0 && n <= 65535 {
                return Ok(n as u16);
            }
            return Err(format!("invalid port: {n}"));
        }
    }
    Err(format!("invalid port: {p}"))
}

fn split_address(a: &str) -> (String, String) {
    if let Some(r) = a.strip_prefix('[') {
        if let Some(end) = r.find(']') {
            if r.len() == end + 1 {
                return (r[..end].to_string(), String::new());
            }
            if r.as_bytes()[end + 1] == b':' {
                return (r[..end].to_string(), r[end + 2..].to_string());
            }
        }
    }
    match a.find(':') {
        None => (a.to_string(), String::new()),
        Some(c) => (a[..c].to_string(), a[c + 1..].to_string()),
    }
}

const KNOWN_PROTOCOLS: &[&str] = &["ssl", "tcp", "ws", "wss", "rpc"];

/// Service.from_string with env.py's default_part (or none, for REPORT_SERVICES).
fn parse_service(text: &str, with_defaults: bool) -> Result<Service, String> {
    let defaults = |protocol: &str| -> (Option<&'static str>, Option<&'static str>) {
        match protocol {
            "rpc" => (Some("localhost"), Some("8000")),
            p if KNOWN_PROTOCOLS.contains(&p) => (Some("all_interfaces"), None),
            _ => (None, None),
        }
    };
    let (protocol, address) = match text.split_once("://") {
        Some((p, a)) => (p.to_string(), a.to_string()),
        None => {
            let (h, p) = defaults(text);
            if with_defaults && h.is_some() && p.is_some() {
                (text.to_string(), String::new())
            } else {
                return Err(format!("invalid service string: {text}"));
            }
        }
    };
    let (mut host, mut port) = split_address(&address);
    if with_defaults {
        let (dh, dp) = defaults(&protocol.to_lowercase());
        if host.is_empty() {
            host = dh.unwrap_or_default().to_string();
        }
        if port.is_empty() {
            port = dp.unwrap_or_default().to_string();
        }
        if host.is_empty() || port.is_empty() {
            return Err(format!("invalid address string: {address}"));
        }
    }
    let host = classify_host(&host)?;
    let port = validate_port(&port)?;
    let valid_protocol = {
        let b = protocol.as_bytes();
        b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1..].iter().all(|&c| c.is_ascii_alphanumeric() || (b'+'..=b'.').contains(&c))
    };
    if !valid_protocol {
        return Err(format!("invalid protocol: {protocol}"));
    }
    Ok(Service { protocol: protocol.to_lowercase(), host, port })
}

fn parse_services(text: &str, with_defaults: bool) -> Result<Vec<Service>, PyErr> {
    let mut out: Vec<Service> = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            continue;
        }
        let svc = parse_service(item, with_defaults).map_err(|e| err(SERVICE_ERROR, format!("\"{item}\" invalid: {e}")))?;
        if !KNOWN_PROTOCOLS.contains(&svc.protocol.as_str()) {
            return Err(err(SERVICE_ERROR, format!("\"{item}\" invalid: unknown protocol")));
        }
        out.push(svc);
    }
    for (i, a) in out.iter().enumerate() {
        if out.iter().skip(i + 1).any(|b| b.host == a.host && b.port == a.port) {
            return Err(err(SERVICE_ERROR, format!("address {} has multiple services", a.address())));
        }
    }
    Ok(out)
}

fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_loopback() || v6.is_unspecified() || (seg[0] & 0xfe00) == 0xfc00 || (seg[0] & 0xffc0) == 0xfe80 || seg[0] == 0x2001 && seg[1] == 0xdb8
        }
    }
}

// ---------------------------------------------------------------------------------------------
// environment (electrumx/server/env.py, electrumx/lib/env_base.py)

#[derive(Clone, Debug)]
struct Env {
    coin: Coin,
    db_dir: String,
    daemon_url: String,
    services: Vec<Service>,
    report_services: Vec<Service>,
    peer_discovery: &'static str,
    peer_announce: bool,
    db_engine: String,
    banner_file: Option<String>,
    donation_address: String,
    log_level: String,
    cache_mb: i64,
    reorg_limit: i64,
    max_send: i64,
    max_sessions: i64,
    cost_soft_limit: i64,
    cost_hard_limit: i64,
    bw_unit_cost: i64,
    initial_concurrent: i64,
    request_sleep: i64,
    request_timeout: i64,
    session_timeout: i64,
    drop_client_unknown: bool,
    allow_root: bool,
    uvloop: bool,
}

fn env_get(k: &str) -> Option<String> {
    std::env::var_os(k).map(|v| v.to_string_lossy().into_owned())
}

fn env_bool(k: &str, default: bool) -> bool {
    !env_get(k).unwrap_or_else(|| if default { "Yes".into() } else { String::new() }).trim().is_empty()
}

/// Python's `int(str)`: surrounding whitespace, a sign, digits with single underscores.
fn py_int(v: &str) -> Option<i64> {
    let t = v.trim();
    let (neg, d) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if d.is_empty() || d.starts_with('_') || d.ends_with('_') || d.contains("__") || !d.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    let n: i64 = d.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

fn env_int(k: &str, default: i64) -> Result<i64, PyErr> {
    match env_get(k) {
        None => Ok(default),
        Some(v) => py_int(&v).ok_or_else(|| err(ENV_ERROR, format!("cannot convert envvar {k} value {v} to an integer"))),
    }
}

fn required(k: &str) -> Result<String, PyErr> {
    env_get(k).ok_or_else(|| err(ENV_ERROR, format!("required envvar {k} not set")))
}

fn nofile_limit() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

impl Env {
    fn load() -> Result<Env, PyErr> {
        // EnvBase.__init__
        let allow_root = env_bool("ALLOW_ROOT", false);
        let uvloop = match env_get("EVENT_LOOP_POLICY") {
            None => false,
            Some(p) if p == "uvloop" => true,
            Some(p) => return Err(err(ENV_ERROR, format!("unknown event loop policy \"{p}\""))),
        };
        // Env.__init__
        let obsolete = [
            "MAX_SUBSCRIPTIONS", "MAX_SUBS", "MAX_SESSION_SUBS", "BANDWIDTH_LIMIT", "HOST", "TCP_PORT", "SSL_PORT",
            "RPC_HOST", "RPC_PORT", "REPORT_HOST", "REPORT_TCP_PORT", "REPORT_SSL_PORT", "REPORT_HOST_TOR",
            "REPORT_TCP_PORT_TOR", "REPORT_SSL_PORT_TOR",
        ];
        let bad: Vec<String> = obsolete.iter().filter(|k| env_get(k).is_some_and(|v| !v.is_empty())).map(|k| format!("'{k}'")).collect();
        if !bad.is_empty() {
            return Err(err(ENV_ERROR, format!("remove obsolete environment variables [{}]", bad.join(", "))));
        }
        let db_dir = required("DB_DIRECTORY")?;
        let daemon_url = required("DAEMON_URL")?;
        let coin_name = required("COIN")?.trim().to_string();
        let net = env_get("NET").unwrap_or_else(|| "mainnet".into()).trim().to_string();
        let coin = lookup_coin(&coin_name, &net)?;
        let pd = env_get("PEER_DISCOVERY").unwrap_or_else(|| "on".into()).trim().to_lowercase();
        let peer_discovery = match pd.as_str() {
            "off" | "" => "OFF",
            "self" => "SELF",
            _ => "ON",
        };
        let peer_announce = env_bool("PEER_ANNOUNCE", true);
        let _force_proxy = env_bool("FORCE_PROXY", false);
        let _tor_proxy_port = env_int("TOR_PROXY_PORT", 0)?;
        let db_engine = env_get("DB_ENGINE").unwrap_or_else(|| "leveldb".into());
        let banner_file = env_get("BANNER_FILE");
        let _anon = env_bool("ANON_LOGS", false);
        let _log_sessions = env_int("LOG_SESSIONS", 3600)?;
        let log_level = env_get("LOG_LEVEL").unwrap_or_else(|| "info".into()).to_uppercase();
        let donation_address = env_get("DONATION_ADDRESS").unwrap_or_default();
        let drop_client_unknown = env_bool("DROP_CLIENT_UNKNOWN", false);
        let cache_mb = env_int("CACHE_MB", 1200)?;
        let reorg_limit = env_int("REORG_LIMIT", coin.reorg_limit)?;
        let max_send = env_int("MAX_SEND", 1_000_000)?;
        let env_sessions = env_int("MAX_SESSIONS", 1000)?;
        let mut max_sessions = env_sessions;
        if let Some(nofile) = nofile_limit() {
            max_sessions = 0.max(env_sessions.min(nofile - 350));
            if max_sessions < env_sessions {
                warning(
                    "Env",
                    format!(
                        "lowered maximum sessions from {} to {} because your open file limit is {}",
                        commas(env_sessions),
                        commas(max_sessions),
                        commas(nofile)
                    ),
                );
            }
        }
        let cost_soft_limit = env_int("COST_SOFT_LIMIT", 1000)?;
        let mut cost_hard_limit = env_int("COST_HARD_LIMIT", 10000)?;
        let bw_unit_cost = env_int("BANDWIDTH_UNIT_COST", 5000)?;
        let initial_concurrent = env_int("INITIAL_CONCURRENT", 10)?;
        let request_sleep = env_int("REQUEST_SLEEP", 2500)?;
        let request_timeout = env_int("REQUEST_TIMEOUT", 30)?;
        let session_timeout = env_int("SESSION_TIMEOUT", 600)?;
        env_int("SESSION_GROUP_BY_SUBNET_IPV4", 24)?;
        env_int("SESSION_GROUP_BY_SUBNET_IPV6", 48)?;
        if cost_hard_limit < cost_soft_limit {
            return Err(err(
                ENV_ERROR,
                format!(
                    "COST_HARD_LIMIT must be >= COST_SOFT_LIMIT. got (COST_HARD_LIMIT={cost_hard_limit} and COST_SOFT_LIMIT={cost_soft_limit})"
                ),
            ));
        }
        if cost_hard_limit == cost_soft_limit && cost_soft_limit > 0 {
            info("Env", "found COST_HARD_LIMIT == COST_SOFT_LIMIT. bumping COST_HARD_LIMIT by 1.");
            cost_hard_limit = cost_soft_limit + 1;
        }
        let services = parse_services(&env_get("SERVICES").unwrap_or_default(), true)?;
        for svc in &services {
            if let Host::Name(n) = &svc.host {
                if n.ends_with(".onion") {
                    return Err(err(SERVICE_ERROR, format!("bad host for SERVICES: {}", svc.text())));
                }
            }
        }
        if services.iter().any(|s| s.protocol == "ssl" || s.protocol == "wss") {
            required("SSL_CERTFILE")?;
            required("SSL_KEYFILE")?;
        }
        let report_services = parse_services(&env_get("REPORT_SERVICES").unwrap_or_default(), false)?;
        for svc in &report_services {
            if svc.protocol == "rpc" {
                return Err(err(SERVICE_ERROR, format!("bad protocol for REPORT_SERVICES: {}", svc.protocol)));
            }
            match &svc.host {
                Host::Ip(ip) if ip.is_multicast() || ip.is_unspecified() || (is_private(ip) && peer_announce) => {
                    return Err(err(SERVICE_ERROR, format!("bad IP address for REPORT_SERVICES: {ip}")));
                }
                Host::Name(n) if n.eq_ignore_ascii_case("localhost") => {
                    return Err(err(SERVICE_ERROR, format!("bad host for REPORT_SERVICES: {n}")));
                }
                _ => {}
            }
        }
        Ok(Env {
            coin,
            db_dir,
            daemon_url,
            services,
            report_services,
            peer_discovery,
            peer_announce,
            db_engine,
            banner_file,
            donation_address,
            log_level,
            cache_mb,
            reorg_limit,
            max_send: max_send.max(350_000),
            max_sessions,
            cost_soft_limit,
            cost_hard_limit,
            bw_unit_cost,
            initial_concurrent,
            request_sleep,
            request_timeout,
            session_timeout,
            drop_client_unknown,
            allow_root,
            uvloop,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// the daemon (electrumx/server/daemon.py)

enum Failure {
    Timeout,
    Disconnected,
    Reset,
    Connection,
    Refused(String),
    Warming,
}

#[derive(Debug, Clone)]
struct DaemonError(Value);

impl DaemonError {
    fn repr(&self) -> String {
        format!("DaemonError({})", py_repr(&self.0))
    }
    fn code(&self) -> Option<i64> {
        self.0.get("code").and_then(Value::as_i64)
    }
}

struct Daemon {
    urls: Mutex<(Vec<String>, usize)>,
    cached_height: AtomicI64,
    ids: AtomicU64,
    available: Mutex<BTreeMap<String, bool>>,
    netinfo: Mutex<Option<(Value, Instant)>>,
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One POST as aiohttp would send it; Ok((status, reason, content type, body)).
fn http_post(url: &str, body: &str) -> Result<(u16, String, String, String), Failure> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).unwrap_or(url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let addrs: Vec<SocketAddr> = hostport.to_socket_addrs().map_err(|_| Failure::Connection)?.collect();
    let mut stream = None;
    for a in addrs {
        if let Ok(st) = TcpStream::connect_timeout(&a, Duration::from_secs(300)) {
            stream = Some(st);
            break;
        }
    }
    let mut st = stream.ok_or(Failure::Connection)?;
    let _ = st.set_read_timeout(Some(Duration::from_secs(300)));
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\nUser-Agent: Python/3.7 aiohttp/3.7.4\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(ui) = userinfo {
        let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", pct_decode(u), pct_decode(p)));
        req.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    st.write_all(req.as_bytes()).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionReset => Failure::Reset,
        _ => Failure::Disconnected,
    })?;
    let mut raw = Vec::new();
    if let Err(e) = st.read_to_end(&mut raw) {
        return Err(match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Failure::Timeout,
            std::io::ErrorKind::ConnectionReset => Failure::Reset,
            _ => Failure::Disconnected,
        });
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return Err(Failure::Disconnected) };
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    parts.next();
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or(Failure::Disconnected)?;
    let reason = parts.next().unwrap_or_default().to_string();
    let ctype = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    Ok((status, reason, ctype, body.to_string()))
}

impl Daemon {
    fn new(coin: &Coin, url: &str) -> Result<Daemon, PyErr> {
        let d = Daemon {
            urls: Mutex::new((Vec::new(), 0)),
            cached_height: AtomicI64::new(i64::MIN),
            ids: AtomicU64::new(0),
            available: Mutex::new(BTreeMap::new()),
            netinfo: Mutex::new(None),
        };
        d.set_url(coin, url)?;
        Ok(d)
    }

    fn set_url(&self, coin: &Coin, url: &str) -> Result<(), PyErr> {
        let urls: Vec<String> = url.split(',').map(|u| coin.sanitize_url(u)).collect::<Result<_, _>>()?;
        for (n, u) in urls.iter().enumerate() {
            let status = if n == 0 { " (current)" } else { "" };
            info("Daemon", format!("daemon #{} at {}{status}", n + 1, logged_url(u)));
        }
        *self.urls.lock().unwrap_or_else(|e| e.into_inner()) = (urls, 0);
        Ok(())
    }

    fn current_url(&self) -> String {
        let g = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        g.0.get(g.1).cloned().unwrap_or_default()
    }

    fn failover(&self) -> bool {
        let mut g = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.len() > 1 {
            g.1 = (g.1 + 1) % g.0.len();
            let u = g.0[g.1].clone();
            drop(g);
            info("Daemon", format!("failing over to {}", logged_url(&u)));
            return true;
        }
        false
    }

    /// `_send`: retries forever; Err only for a DaemonError from the processor.
    fn send(&self, payload: &str, vector: bool) -> Result<Value, DaemonError> {
        let mut last_log: Option<Instant> = None;
        let mut retry = 0.25f64;
        let mut on_good: Option<&str> = None;
        loop {
            let failure = match http_post(&self.current_url(), payload) {
                Ok((status, reason, ctype, body)) => {
                    if ctype == "application/json" {
                        match json::parse(body.trim()) {
                            Ok(v) => match process(v, vector) {
                                Ok(r) => {
                                    if let Some(m) = on_good {
                                        info("Daemon", m);
                                    }
                                    return Ok(r);
                                }
                                Err(None) => Failure::Warming,
                                Err(Some(e)) => return Err(e),
                            },
                            Err(_) => Failure::Refused(reason.clone()),
                        }
                    } else {
                        let t = body.trim();
                        let _ = status;
                        Failure::Refused(if t.is_empty() { reason } else { t.to_string() })
                    }
                }
                Err(f) => f,
            };
            let (text, good) = match failure {
                Failure::Timeout => ("timeout error".to_string(), on_good),
                Failure::Disconnected => ("disconnected".to_string(), Some("connection restored")),
                Failure::Reset => ("connection reset".to_string(), Some("connection restored")),
                Failure::Connection => ("connection problem - check your daemon is running".to_string(), Some("connection restored")),
                Failure::Refused(t) => (format!("daemon service refused: {t}"), Some("running normally")),
                Failure::Warming => ("starting up checking blocks".to_string(), Some("running normally")),
            };
            on_good = good;
            if last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                last_log = Some(Instant::now());
                error("Daemon", format!("{text}.  Retrying occasionally..."));
            }
            if retry >= 4.0 && self.failover() {
                retry = 0.0;
            }
            std::thread::sleep(Duration::from_secs_f64(retry));
            retry = (retry * 2.0).clamp(0.25, 4.0);
        }
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::SeqCst)
    }

    fn single(&self, method: &str, params: Vec<Value>) -> Result<Value, DaemonError> {
        let mut payload = vec![("method", s(method)), ("id", num(self.next_id()))];
        if !params.is_empty() {
            payload.push(("params", Value::Arr(params)));
        }
        self.send(&py_dumps(&obj(payload)), false)
    }

    fn vector(&self, method: &str, params: Vec<Vec<Value>>) -> Result<Vec<Value>, DaemonError> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let payload: Vec<Value> =
            params.into_iter().map(|p| obj(vec![("method", s(method)), ("params", Value::Arr(p)), ("id", num(self.next_id()))])).collect();
        match self.send(&py_dumps(&Value::Arr(payload)), true)? {
            Value::Arr(a) => Ok(a),
            other => Ok(vec![other]),
        }
    }

    fn height(&self) -> Result<i64, DaemonError> {
        let h = self.single("getblockcount", vec![])?.as_i64().unwrap_or(0);
        self.cached_height.store(h, Ordering::SeqCst);
        Ok(h)
    }

    fn cached(&self) -> Option<i64> {
        let h = self.cached_height.load(Ordering::SeqCst);
        (h != i64::MIN).then_some(h)
    }

    fn is_rpc_available(&self, method: &str) -> bool {
        if let Some(a) = self.available.lock().unwrap_or_else(|e| e.into_inner()).get(method) {
            return *a;
        }
        let available = match self.single(method, vec![]) {
            Ok(_) => true,
            Err(e) => e.code() != Some(-32601),
        };
        self.available.lock().unwrap_or_else(|e| e.into_inner()).insert(method.to_string(), available);
        available
    }

    fn estimatefee(&self, number: i64, mode: Option<&str>) -> Result<Value, DaemonError> {
        let mut args = vec![num(number)];
        if let Some(m) = mode {
            args.push(s(m));
        }
        if self.is_rpc_available("estimatesmartfee") {
            let est = self.single("estimatesmartfee", args)?;
            return Ok(est.get("feerate").cloned().unwrap_or(num(-1)));
        }
        self.single("estimatefee", args)
    }

    fn getnetworkinfo(&self) -> Result<Value, DaemonError> {
        let mut g = self.netinfo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, t)) = g.as_ref() {
            if t.elapsed() < Duration::from_secs(60) {
                return Ok(v.clone());
            }
        }
        let v = self.single("getnetworkinfo", vec![])?;
        *g = Some((v.clone(), Instant::now()));
        Ok(v)
    }
}

/// The processors of `_send_single` and `_send_vector`: Err(None) while warming up.
fn process(v: Value, vector: bool) -> Result<Value, Option<DaemonError>> {
    if vector {
        let Value::Arr(items) = v else { return Err(Some(DaemonError(v))) };
        let errs: Vec<Value> = items.iter().filter_map(|i| i.get("error").filter(|e| truthy(e)).cloned()).collect();
        if errs.iter().any(|e| e.get("code").and_then(Value::as_i64) == Some(-28)) {
            return Err(None);
        }
        if !errs.is_empty() {
            return Err(Some(DaemonError(Value::Arr(errs))));
        }
        return Ok(Value::Arr(items.iter().map(|i| i.get("result").cloned().unwrap_or(Value::Null)).collect()));
    }
    match v.get("error") {
        Some(e) if truthy(e) => {
            if e.get("code").and_then(Value::as_i64) == Some(-28) {
                Err(None)
            } else {
                Err(Some(DaemonError(e.clone())))
            }
        }
        _ => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Obj(m) => !m.is_empty(),
        Value::Arr(a) => !a.is_empty(),
        Value::Str(x) => !x.is_empty(),
        Value::Num(n) => n.parse::<f64>().map_or(true, |x| x != 0.0),
    }
}

fn logged_url(u: &str) -> String {
    u.rfind('@').map_or(u.to_string(), |i| u[i + 1..].to_string())
}

// ---------------------------------------------------------------------------------------------
// the DB: state, headers (electrumx/server/db.py)

#[derive(Clone, Debug)]
struct DbState {
    height: i64,
    tx_count: i64,
    tip: String,
    first_sync: bool,
    flush_count: i64,
    wall_time: f64,
}

impl DbState {
    fn fresh() -> DbState {
        DbState { height: -1, tx_count: 0, tip: "0".repeat(64), first_sync: true, flush_count: 0, wall_time: 0.0 }
    }

    fn text(&self, genesis: &str) -> String {
        format!(
            "{{'genesis': '{genesis}', 'height': {}, 'tx_count': {}, 'tip': '{}', 'utxo_flush_count': {}, 'wall_time': {}, 'first_sync': {}, 'db_version': 8}}\n",
            self.height,
            self.tx_count,
            self.tip,
            self.flush_count,
            self.wall_time as i64,
            if self.first_sync { "True" } else { "False" }
        )
    }

    fn parse(text: &str) -> Option<(DbState, String)> {
        let field = |k: &str| -> Option<String> {
            let start = text.find(&format!("'{k}': "))? + k.len() + 4;
            let rest = &text[start..];
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Some(rest[..end].trim().trim_matches('\'').to_string())
        };
        let st = DbState {
            height: field("height")?.parse().ok()?,
            tx_count: field("tx_count")?.parse().ok()?,
            tip: field("tip")?,
            first_sync: field("first_sync")? == "True",
            flush_count: field("utxo_flush_count")?.parse().ok()?,
            wall_time: field("wall_time")?.parse().ok()?,
        };
        Some((st, field("genesis")?))
    }
}

/// `util.LogicalFile`: a logical file split into files of `size` bytes named prefix + NN.
struct LogicalFile {
    prefix: &'static str,
    digits: usize,
    size: u64,
}

impl LogicalFile {
    fn path(&self, idx: u64) -> String {
        format!("{}{:0width$}", self.prefix, idx, width = self.digits)
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut off = offset;
        let mut data = data;
        while !data.is_empty() {
            let idx = off / self.size;
            let within = off % self.size;
            let n = ((self.size - within) as usize).min(data.len());
            let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(self.path(idx))?;
            f.seek(SeekFrom::Start(within))?;
            f.write_all(&data[..n])?;
            data = &data[n..];
            off += n as u64;
        }
        Ok(())
    }

    fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let idx = offset / self.size;
        let within = offset % self.size;
        let mut buf = vec![0u8; len];
        if let Ok(mut f) = std::fs::File::open(self.path(idx)) {
            if f.seek(SeekFrom::Start(within)).is_ok() {
                let mut got = 0;
                while got < len {
                    match f.read(&mut buf[got..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
            }
        }
        buf
    }
}

const HEADERS: LogicalFile = LogicalFile { prefix: "meta/headers", digits: 2, size: 16_000_000 };

fn hex_decode(h: &str) -> Option<Vec<u8>> {
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len() / 2).map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256d(b: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(b)).into()
}

/// A header for a height the daemon gave none of (stand-in bitcoind without getblock).
fn synth_header(height: i64, prev_hex: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(80);
    b.extend_from_slice(&0x2000_0000u32.to_le_bytes());
    let mut prev = hex_decode(prev_hex).unwrap_or_else(|| vec![0; 32]);
    prev.reverse();
    b.extend(prev);
    b.extend(sha256d(format!("archy-standin-electrumx-{height}").as_bytes()));
    b.extend_from_slice(&((1_231_006_505 + 600 * height.max(0)) as u32).to_le_bytes());
    b.extend_from_slice(&0x1703_0ecdu32.to_le_bytes());
    b.extend_from_slice(&(height as u32).to_le_bytes());
    b
}

fn estimated_tx_count(coin: &Coin, height: i64) -> i64 {
    if height < 0 {
        return 0;
    }
    if height <= coin.tx_count_height {
        (coin.tx_count as f64 * (height as f64 / coin.tx_count_height as f64).powi(2)) as i64 + height + 1
    } else {
        coin.tx_count + (height - coin.tx_count_height) * coin.tx_per_block
    }
}

// ---------------------------------------------------------------------------------------------
// the server's shared state

struct SessionInfo {
    id: u64,
    kind: &'static str,
    peer: String,
    client: Mutex<String>,
    proto: Mutex<String>,
    writer: Mutex<TcpStream>,
    subscribe_headers: AtomicBool,
    subs: Mutex<Vec<String>>,
    recv_count: AtomicU64,
    recv_size: AtomicU64,
    send_count: AtomicU64,
    send_size: AtomicU64,
    txs_sent: AtomicU64,
    started: Instant,
    errors: AtomicU64,
}

impl SessionInfo {
    fn send_line(&self, line: &str) -> bool {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let ok = w.write_all(line.as_bytes()).and_then(|_| w.write_all(b"\n")).and_then(|_| w.flush()).is_ok();
        self.send_count.fetch_add(1, Ordering::Relaxed);
        self.send_size.fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
        ok
    }
}

struct Server {
    env: Env,
    daemon: Daemon,
    db: Mutex<DbState>,
    started: Instant,
    caught_up: AtomicBool,
    serving: AtomicBool,
    sessions: Mutex<Vec<Arc<SessionInfo>>>,
    session_ids: AtomicU64,
    method_counts: Mutex<BTreeMap<String, u64>>,
    txs_sent: AtomicU64,
    hsub: Mutex<Option<Value>>,
    mempool_txs: AtomicU64,
    synthesize: AtomicBool,
    reorg_count: AtomicI64,
}

impl Server {
    fn db_height(&self) -> i64 {
        self.db.lock().unwrap_or_else(|e| e.into_inner()).height
    }

    fn raw_header(&self, height: i64) -> Option<Vec<u8>> {
        if height < 0 || height > self.db_height() {
            return None;
        }
        let h = HEADERS.read(height as u64 * 80, 80);
        if h.iter().any(|&b| b != 0) {
            return Some(h);
        }
        // not stored (the stand-in samples blocks): ask the daemon, store it
        let hash = self.daemon.vector("getblockhash", vec![vec![num(height)]]).ok()?.first()?.as_str()?.to_string();
        let header = self.fetch_header(&hash, height, "0");
        let _ = HEADERS.write(height as u64 * 80, &header);
        Some(header)
    }

    /// The raw header of a block from `getblock <hash> false` (as the prefetcher fetches blocks).
    fn fetch_header(&self, hash: &str, height: i64, prev: &str) -> Vec<u8> {
        if !self.synthesize.load(Ordering::Relaxed) {
            match self.daemon.vector("getblock", vec![vec![s(hash), Value::Bool(false)]]) {
                Ok(v) => {
                    if let Some(raw) = v.first().and_then(Value::as_str).and_then(|h| hex_decode(h.get(..160)?)) {
                        return raw;
                    }
                }
                Err(e) if e.0.compact().contains("-32601") => self.start_synthesizing(&e),
                Err(_) => {}
            }
        }
        synth_header(height, prev)
    }

    fn start_synthesizing(&self, e: &DaemonError) {
        if !self.synthesize.swap(true, Ordering::SeqCst) {
            info(
                "Prefetcher",
                format!("ignoring daemon error: {} (stand-in: the daemon lacks the method; synthesizing block data)", py_repr(&e.0)),
            );
        }
    }

    fn info_value(&self) -> Value {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let counts = self.method_counts.lock().unwrap_or_else(|e| e.into_inner());
        let cache = |n: u64| s(&format!("{} lookups {} hits {} entries", commas(n as i64), commas(0), commas(0)));
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner()).clone();
        obj(vec![
            ("coin", s(self.env.coin.class)),
            ("daemon", s(&logged_url(&self.daemon.current_url()))),
            ("daemon height", self.daemon.cached().map_or(Value::Null, num)),
            ("db height", num(db.height)),
            ("db_flush_count", num(db.flush_count)),
            ("groups", num(0)),
            ("history cache", cache(0)),
            ("merkle cache", cache(0)),
            // SAFETY: getpid has no preconditions
            ("pid", num(unsafe { getpid() })),
            ("peers", obj(vec![("bad", num(0)), ("good", num(0)), ("never", num(0)), ("stale", num(0)), ("total", num(0))])),
            ("request counts", Value::Obj(counts.iter().map(|(k, v)| (k.clone(), num(*v))).collect())),
            ("request total", num(counts.values().sum::<u64>())),
            (
                "sessions",
                obj(vec![
                    ("count", num(sessions.len())),
                    ("count with subs", num(sessions.iter().filter(|x| !x.subs.lock().map_or(true, |v| v.is_empty())).count())),
                    ("errors", num(sessions.iter().map(|x| x.errors.load(Ordering::Relaxed)).sum::<u64>())),
                    ("logged", num(0)),
                    ("pending requests", num(0)),
                    ("subs", num(sessions.iter().map(|x| x.subs.lock().map_or(0, |v| v.len())).sum::<usize>())),
                ]),
            ),
            ("tx hashes cache", cache(0)),
            ("txs sent", num(self.txs_sent.load(Ordering::Relaxed))),
            ("uptime", s(&formatted_time(self.started.elapsed().as_secs() as i64, " "))),
            ("version", s(VERSION)),
        ])
    }

    fn refresh_hsub(&self) {
        let height = self.db_height();
        if let Some(raw) = self.raw_header(height) {
            *self.hsub.lock().unwrap_or_else(|e| e.into_inner()) = Some(obj(vec![("hex", s(&hex_encode(&raw))), ("height", num(height))]));
        }
    }

    fn notify_headers(&self) {
        self.refresh_hsub();
        let Some(h) = self.hsub.lock().unwrap_or_else(|e| e.into_inner()).clone() else { return };
        let note = py_dumps(&obj(vec![("jsonrpc", s("2.0")), ("method", s("blockchain.headers.subscribe")), ("params", Value::Arr(vec![h]))]));
        for sess in self.sessions.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if sess.subscribe_headers.load(Ordering::Relaxed) {
                sess.send_line(&note);
            }
        }
    }

    fn save_state(&self) {
        let text = self.db.lock().unwrap_or_else(|e| e.into_inner()).text(self.env.coin.genesis);
        let tmp = format!("{STATE_FILE}.tmp");
        if std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, STATE_FILE)).is_err() {
            error("DB", format!("cannot write {}/{STATE_FILE}", self.env.db_dir));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// electrumx_server

fn terminated_abnormally(e: &PyErr) -> i32 {
    error("electrumx", "ElectrumX server terminated abnormally");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Traceback (most recent call last):\n  (Python frames not mirrored by the archy e2e stand-in)\n{}: {}", e.class, e.msg);
    let _ = out.flush();
    0
}

pub fn server(_argv: &[String]) -> i32 {
    info("electrumx", "ElectrumX server starting");
    let env = match Env::load() {
        Ok(e) => e,
        Err(e) => return terminated_abnormally(&e),
    };
    info("electrumx", format!("logging level: {}", env.log_level));
    let lvl = match env.log_level.as_str() {
        "DEBUG" => 10,
        "INFO" => 20,
        "WARNING" | "WARN" => 30,
        "ERROR" => 40,
        "CRITICAL" | "FATAL" => 50,
        other => return terminated_abnormally(&err("ValueError", format!("Unknown level: '{other}'"))),
    };
    LEVEL.store(lvl, Ordering::Relaxed);
    // ServerBase.__init__
    info("Controller", "Python version: 3.7 (archy e2e stand-in: no Python)");
    // SAFETY: geteuid has no preconditions
    if unsafe { geteuid() } == 0 && !env.allow_root {
        return terminated_abnormally(&err(
            "RuntimeError",
            "RUNNING AS ROOT IS STRONGLY DISCOURAGED!\nYou shoud create an unprivileged user account and use that.\nTo continue as root anyway, restart with environment variable ALLOW_ROOT non-empty",
        ));
    }
    // Controller.serve
    info("Controller", format!("software version: {VERSION}"));
    info("Controller", format!("aiorpcX version: {AIORPCX_VERSION}"));
    info("Controller", "supported protocol versions: 1.4-1.4.2");
    info(
        "Controller",
        format!("event loop policy: {}", if env.uvloop { "<uvloop.EventLoopPolicy object at 0x7f3c2a1b5e10>" } else { "None" }),
    );
    info("Controller", format!("reorg limit is {} blocks", commas(env.reorg_limit)));
    let shutdown_abnormally = |e: PyErr| {
        info("Controller", "shutting down");
        info("Controller", "shutdown complete");
        terminated_abnormally(&e)
    };
    let daemon = match Daemon::new(&env.coin, &env.daemon_url) {
        Ok(d) => d,
        Err(e) => return shutdown_abnormally(e),
    };
    // DB.__init__
    info("DB", format!("switching current directory to {}", env.db_dir));
    if let Err(e) = std::env::set_current_dir(&env.db_dir) {
        let errno = e.raw_os_error().unwrap_or(0);
        let class = if e.kind() == std::io::ErrorKind::NotFound { "FileNotFoundError" } else { "OSError" };
        let text = e.to_string();
        let text = text.split(" (os error").next().unwrap_or(&text).to_string();
        return shutdown_abnormally(err(class, format!("[Errno {errno}] {text}: '{}'", env.db_dir)));
    }
    if !["leveldb", "rocksdb"].contains(&env.db_engine.to_lowercase().as_str()) {
        return shutdown_abnormally(err("RuntimeError", format!("unrecognised DB engine \"{}\"", env.db_engine)));
    }
    info("DB", format!("using {} for DB backend", env.db_engine));
    // signals: upstream's clean shutdown (the state is flushed after every batch already)
    crate::sys::exit_on_signals(
        "WARNING:Controller:received SIGTERM signal, initiating shutdown\nINFO:Controller:shutting down\nINFO:BlockProcessor:flushing to DB for a clean shutdown...\nINFO:Controller:shutdown complete\nINFO:electrumx:ElectrumX server terminated normally",
    );
    let srv = Arc::new(Server {
        env: env.clone(),
        daemon,
        db: Mutex::new(DbState::fresh()),
        started: Instant::now(),
        caught_up: AtomicBool::new(false),
        serving: AtomicBool::new(false),
        sessions: Mutex::new(Vec::new()),
        session_ids: AtomicU64::new(0),
        method_counts: Mutex::new(BTreeMap::new()),
        txs_sent: AtomicU64::new(0),
        hsub: Mutex::new(None),
        mempool_txs: AtomicU64::new(0),
        synthesize: AtomicBool::new(false),
        reorg_count: AtomicI64::new(0),
    });
    // test daemon authentication, and also ensure it has a cached height
    if let Err(e) = srv.daemon.height() {
        return shutdown_abnormally(err("electrumx.server.daemon.DaemonError", py_repr(&e.0)));
    }
    // session_mgr.serve: the RPC services at once
    start_servers(&srv, true);
    // bp.fetch_and_process_blocks
    if let Err(e) = open_dbs(&srv, true) {
        return shutdown_abnormally(e);
    }
    let height = srv.db_height();
    match srv.daemon.height() {
        Ok(dh) => {
            let behind = dh - height;
            if behind > 0 {
                info("Prefetcher", format!("catching up to daemon height {} ({} blocks behind)", commas(dh), commas(behind)));
            } else {
                info("Prefetcher", format!("caught up to daemon height {}", commas(dh)));
            }
        }
        Err(e) => info("Prefetcher", format!("ignoring daemon error: {}", py_repr(&e.0))),
    }
    sync_loop(&srv);
    0
}

fn open_dbs(srv: &Server, for_sync: bool) -> Result<(), PyErr> {
    let coin = &srv.env.coin;
    if !Path::new("utxo").is_dir() {
        info("DB", "created new database");
        info("DB", "creating metadata directory");
        let io = |e: std::io::Error| err("OSError", e.to_string());
        // LevelDB creates the utxo directory and its LOCK first (plyvel's error)
        std::fs::create_dir_all("utxo").map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::PermissionDenied { "Permission denied".to_string() } else { e.to_string() };
            err("plyvel._plyvel.IOError", format!("b'IO error: utxo/LOCK: {what}'"))
        })?;
        std::fs::create_dir("meta").map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => err("FileExistsError", "[Errno 17] File exists: 'meta'"),
            _ => err("OSError", e.to_string()),
        })?;
        std::fs::write("COIN", format!("ElectrumX databases and metadata for {} {}", coin.name, coin.net)).map_err(io)?;
        *srv.db.lock().unwrap_or_else(|e| e.into_inner()) = DbState::fresh();
        srv.save_state();
    } else {
        info("DB", format!("opened UTXO DB (for sync: {})", if for_sync { "True" } else { "False" }));
        let text = std::fs::read_to_string(STATE_FILE).unwrap_or_default();
        match DbState::parse(&text) {
            Some((st, genesis)) => {
                if genesis != coin.genesis {
                    return Err(err(
                        "electrumx.server.db.DB.DBError",
                        format!("DB genesis hash {genesis} does not match coin {}", coin.genesis),
                    ));
                }
                *srv.db.lock().unwrap_or_else(|e| e.into_inner()) = st;
            }
            None => *srv.db.lock().unwrap_or_else(|e| e.into_inner()) = DbState::fresh(),
        }
    }
    let _ = std::fs::create_dir_all("hist");
    let st = srv.db.lock().unwrap_or_else(|e| e.into_inner()).clone();
    info("DB", "UTXO DB version: 8");
    info("DB", format!("coin: {}", coin.name));
    info("DB", format!("network: {}", coin.net));
    info("DB", format!("height: {}", commas(st.height)));
    info("DB", format!("tip: {}", st.tip));
    info("DB", format!("tx count: {}", commas(st.tx_count)));
    if for_sync {
        info("DB", format!("flushing DB cache at {} MB", commas(srv.env.cache_mb)));
    }
    if st.first_sync {
        info("DB", format!("sync time so far: {}", formatted_time(st.wall_time as i64, " ")));
    }
    info("History", "history DB version: 1");
    info("History", format!("flush count: {}", commas(st.flush_count)));
    Ok(())
}

fn blocks_per_second(db_dir: &str) -> u64 {
    std::fs::read_to_string(Path::new(db_dir).join("standin-blocks-per-second"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(DEFAULT_RATE)
}

/// The block hashes of heights `first..=last` (batched getblockhash), or None to synthesize.
fn block_hashes(srv: &Server, heights: &[i64]) -> Result<Option<Vec<String>>, DaemonError> {
    if srv.synthesize.load(Ordering::Relaxed) {
        return Ok(None);
    }
    match srv.daemon.vector("getblockhash", heights.iter().map(|h| vec![num(*h)]).collect()) {
        Ok(v) => Ok(Some(v.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())),
        Err(e) if e.0.compact().contains("-32601") => {
            srv.start_synthesizing(&e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn synth_hash(height: i64) -> String {
    let mut h = sha256d(format!("archy-standin-electrumx-block-{height}").as_bytes());
    h.reverse();
    hex_encode(&h)
}

/// Header prev-hash field as hex (byte-reversed).
fn prev_of(header: &[u8]) -> String {
    let mut p = header.get(4..36).map(<[u8]>::to_vec).unwrap_or_default();
    p.reverse();
    hex_encode(&p)
}

/// The prefetcher and block processor, as one loop.
fn sync_loop(srv: &Arc<Server>) {
    let coin = srv.env.coin.clone();
    let tick = Duration::from_millis(500);
    let sync_started = Instant::now();
    let mut last_flush_tx = srv.db.lock().unwrap_or_else(|e| e.into_inner()).tx_count;
    let mut last_flush = Instant::now();
    loop {
        let daemon_height = match srv.daemon.height() {
            Ok(h) => h,
            Err(e) => {
                info("Prefetcher", format!("ignoring daemon error: {}", py_repr(&e.0)));
                std::thread::sleep(Duration::from_secs(5));
                continue;
            }
        };
        let height = srv.db_height();
        if height == daemon_height && !srv.caught_up.load(Ordering::SeqCst) {
            first_caught_up(srv);
            continue;
        }
        let reorg = srv.reorg_count.swap(0, Ordering::SeqCst);
        if reorg > 0 {
            back_up(srv, reorg, "faking a reorg of");
            continue;
        }
        let caught_up = srv.caught_up.load(Ordering::SeqCst);
        let per_tick = ((blocks_per_second(&srv.env.db_dir) as f64) * tick.as_secs_f64()).max(1.0) as i64;
        let count = (daemon_height - height).min(per_tick);
        if count <= 0 {
            std::thread::sleep(if caught_up { Duration::from_secs(5) } else { tick });
            continue;
        }
        let t0 = Instant::now();
        let first = height + 1;
        let last = height + count;
        // which blocks to really fetch: the genesis block, the last of the batch, the last ten
        let mut fetch: Vec<i64> = Vec::new();
        if first == 0 {
            fetch.push(0);
        }
        for h in first.max(daemon_height - 9)..=last {
            if !fetch.contains(&h) {
                fetch.push(h);
            }
        }
        if !fetch.contains(&last) {
            fetch.push(last);
        }
        let hashes = match block_hashes(srv, &fetch) {
            Ok(h) => h,
            Err(e) => {
                info("Prefetcher", format!("ignoring daemon error: {}", py_fstr(&e.0)));
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let mut tip = srv.db.lock().unwrap_or_else(|e| e.into_inner()).tip.clone();
        let mut size = 0usize;
        let mut reorged = false;
        for (i, &h) in fetch.iter().enumerate() {
            let hash = hashes.as_ref().map_or_else(|| synth_hash(h), |v| v[i].clone());
            if h == 0 {
                if hash != coin.genesis {
                    error("Prefetcher", "ignoring unexpected exception");
                    let _ = writeln!(
                        std::io::stdout(),
                        "Traceback (most recent call last):\n  (Python frames not mirrored by the archy e2e stand-in)\n{COIN_ERROR}: genesis block has hash {hash} expected {}",
                        coin.genesis
                    );
                    std::thread::sleep(Duration::from_secs(1));
                    reorged = true;
                    break;
                }
                info("Prefetcher", format!("verified genesis block with hash {hash}"));
            }
            let zero = "0".repeat(64);
            let header = srv.fetch_header(&hash, h, if h == 0 { &zero } else { &tip });
            size += 285;
            // blocks fetched in sequence must chain onto our tip (the daemon's hashes, not the
            // header's double SHA-256: the stand-in bitcoind's headers do not hash to their names)
            let contiguous = i > 0 && fetch[i - 1] == h - 1 || i == 0 && h == first;
            if contiguous && h > 0 && hashes.is_some() && !srv.synthesize.load(Ordering::Relaxed) && prev_of(&header) != tip {
                if h == first && h > 0 {
                    info("BlockProcessor", "chain reorg detected");
                    back_up(srv, 0, "");
                } else {
                    warning("BlockProcessor", "daemon blocks do not form a chain; resetting the prefetcher");
                }
                reorged = true;
                break;
            }
            let _ = HEADERS.write(h as u64 * 80, &header);
            tip = hash;
        }
        if reorged {
            continue;
        }
        if caught_up {
            info("Prefetcher", format!("new block height {} hash {}", commas(last), tip));
        }
        {
            let mut db = srv.db.lock().unwrap_or_else(|e| e.into_inner());
            db.height = last;
            db.tip = tip;
            db.tx_count = estimated_tx_count(&coin, last);
            db.flush_count += 1;
            db.wall_time += t0.elapsed().as_secs_f64().max(tick.as_secs_f64());
        }
        srv.save_state();
        let db = srv.db.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if caught_up {
            info(
                "BlockProcessor",
                format!("processed {} block{} size {:.2} MB in {:.1}s", commas(count), if count == 1 { "" } else { "s" }, size as f64 / 1e6, t0.elapsed().as_secs_f64()),
            );
            srv.notify_headers();
        } else {
            let elapsed = last_flush.elapsed().as_secs_f64().max(0.001);
            let delta = db.tx_count - last_flush_tx;
            info(
                "DB",
                format!("flush #{} took {:.1}s.  Height {} txs: {} (+{})", commas(db.flush_count), 0.0, commas(db.height), commas(db.tx_count), commas(delta)),
            );
            let since_genesis = (db.tx_count as f64 / db.wall_time.max(0.001)) as i64;
            let since_last = 1 + (delta as f64 / elapsed) as i64;
            let remaining = (daemon_height - db.height) * coin.tx_per_block;
            info("DB", format!("tx/sec since genesis: {}, since last flush: {}", commas(since_genesis), commas(since_last)));
            info(
                "DB",
                format!("sync time: {}  ETA: {}", formatted_time(sync_started.elapsed().as_secs() as i64, " "), formatted_time(remaining / since_last.max(1), " ")),
            );
            last_flush_tx = db.tx_count;
            last_flush = Instant::now();
            let rest = tick.saturating_sub(t0.elapsed());
            std::thread::sleep(rest);
        }
    }
}

/// Back up `count` blocks (a faked reorg), or to where our stored headers and the daemon agree.
fn back_up(srv: &Server, count: i64, what: &str) {
    let height = srv.db_height();
    let start = if count > 0 {
        info("BlockProcessor", format!("{what} {} blocks", commas(count)));
        height - count + 1
    } else {
        // walk back while the stored header's successor disagrees with the daemon's hash
        let mut h = height;
        let mut n = 0;
        while h > 0 && n < srv.env.reorg_limit {
            let stored_next_prev = HEADERS.read((h as u64 + 1) * 80, 80);
            let daemon_hash = srv.daemon.vector("getblockhash", vec![vec![num(h)]]).ok().and_then(|v| v.first()?.as_str().map(str::to_string));
            let ours = if stored_next_prev.iter().any(|&b| b != 0) { Some(prev_of(&stored_next_prev)) } else { None };
            if ours.is_none() || ours == daemon_hash {
                break;
            }
            h -= 1;
            n += 1;
        }
        h.max(height - 1)
    };
    let start = start.max(1);
    let n = height - start + 1;
    info(
        "BlockProcessor",
        format!("chain was reorganised replacing {} block{} at heights {}-{}", commas(n), if n == 1 { "" } else { "s" }, commas(start), commas(height)),
    );
    let new_tip = srv
        .daemon
        .vector("getblockhash", vec![vec![num(start - 1)]])
        .ok()
        .and_then(|v| v.first()?.as_str().map(str::to_string))
        .unwrap_or_else(|| synth_hash(start - 1));
    {
        let mut db = srv.db.lock().unwrap_or_else(|e| e.into_inner());
        db.height = start - 1;
        db.tip = new_tip;
        db.tx_count = estimated_tx_count(&srv.env.coin, start - 1);
    }
    srv.save_state();
    info("BlockProcessor", format!("backed up to height {}", commas(start - 1)));
    info("SessionManager", "reorg signalled; clearing tx_hashes and merkle caches");
}

fn first_caught_up(srv: &Arc<Server>) {
    let height = srv.db_height();
    info("BlockProcessor", format!("caught up to height {height}"));
    let first_sync = {
        let mut db = srv.db.lock().unwrap_or_else(|e| e.into_inner());
        let f = db.first_sync;
        db.first_sync = false;
        f
    };
    srv.save_state();
    if first_sync {
        info("BlockProcessor", format!("{VERSION} synced to height {}", commas(height)));
    }
    info("DB", "closing DBs to re-open for serving");
    if let Err(e) = open_dbs(srv, false) {
        error("BlockProcessor", format!("{}: {}", e.class, e.msg));
    }
    srv.caught_up.store(true, Ordering::SeqCst);
    // wait_for_catchup: the header merkle cache, then the mempool, then external services
    let srv = srv.clone();
    std::thread::spawn(move || {
        info("DB", "populating header merkle cache...");
        info("DB", "header merkle cache populated in 0.0s");
        info("MemPool", "beginning processing of daemon mempool.  This can take some time...");
        let t0 = Instant::now();
        refresh_mempool(&srv);
        info("MemPool", format!("synced in {:.2}s", t0.elapsed().as_secs_f64()));
        info("MemPool", format!("{} txs 0.00 MB touching 0 addresses", commas(srv.mempool_txs.load(Ordering::Relaxed) as i64)));
        info("MemPool", "compact fee histogram: []");
        serve_external(&srv);
        let mut last_status = Instant::now();
        loop {
            std::thread::sleep(Duration::from_secs(5));
            refresh_mempool(&srv);
            if last_status.elapsed() >= Duration::from_secs(60) {
                info("MemPool", format!("{} txs 0.00 MB touching 0 addresses", commas(srv.mempool_txs.load(Ordering::Relaxed) as i64)));
                last_status = Instant::now();
            }
        }
    });
}

/// `MemPool._refresh_hashes`, once: the daemon's mempool txids at a stable height.
fn refresh_mempool(srv: &Server) {
    loop {
        let height = srv.daemon.cached();
        let hashes = match srv.daemon.single("getrawmempool", vec![]) {
            Ok(Value::Arr(a)) => a.len(),
            Ok(_) => 0,
            Err(e) if e.code() == Some(-32601) => {
                // upstream would crash on this DaemonError; the stand-in bitcoind may lack it
                0
            }
            Err(_) => 0,
        };
        if srv.daemon.height().ok() != height {
            continue;
        }
        srv.mempool_txs.store(hashes as u64, Ordering::Relaxed);
        return;
    }
}

fn serve_external(srv: &Arc<Server>) {
    let env = &srv.env;
    info("SessionManager", format!("max session count: {}", commas(env.max_sessions)));
    info("SessionManager", format!("session timeout: {} seconds", commas(env.session_timeout)));
    info("SessionManager", format!("session cost hard limit {}", commas(env.cost_hard_limit)));
    info("SessionManager", format!("session cost soft limit {}", commas(env.cost_soft_limit)));
    info("SessionManager", format!("bandwidth unit cost {}", commas(env.bw_unit_cost)));
    info("SessionManager", format!("request sleep {}ms", commas(env.request_sleep)));
    info("SessionManager", format!("request timeout {}s", commas(env.request_timeout)));
    info("SessionManager", format!("initial concurrent {}", commas(env.initial_concurrent)));
    info("SessionManager", format!("max response size {} bytes", commas(env.max_send)));
    for svc in &env.report_services {
        info("SessionManager", format!("advertising service {}", svc.text()));
    }
    srv.refresh_hsub();
    start_servers(srv, false);
    srv.serving.store(true, Ordering::SeqCst);
    info("PeerManager", format!("peer discovery: {}", env.peer_discovery));
    if env.peer_discovery != "ON" {
        info("PeerManager", "peer discovery is disabled");
    } else {
        info("PeerManager", format!("announce ourself: {}", if env.peer_announce { "True" } else { "False" }));
        info("PeerManager", "beginning peer discovery...");
        info("PeerManager", "(archy e2e stand-in: peer discovery is not mirrored; no peer is contacted)");
    }
}

/// `_start_servers`: rpc ones, or the others.
fn start_servers(srv: &Arc<Server>, rpc: bool) {
    for svc in srv.env.services.iter().filter(|s| (s.protocol == "rpc") == rpc) {
        let kind = svc.protocol.to_uppercase();
        if matches!(svc.protocol.as_str(), "ssl" | "ws" | "wss") {
            if svc.protocol != "ws" {
                let cert = env_get("SSL_CERTFILE").unwrap_or_default();
                let key = env_get("SSL_KEYFILE").unwrap_or_default();
                for f in [&cert, &key] {
                    if std::fs::metadata(f).is_err() {
                        terminated_abnormally(&err("FileNotFoundError", "[Errno 2] No such file or directory"));
                        std::process::exit(0);
                    }
                }
            }
            error("SessionManager", format!("{kind} server failed to listen on {}: not mirrored by the archy e2e stand-in (no TLS or WebSocket)", svc.address()));
            continue;
        }
        let binds: Vec<String> = match &svc.host {
            Host::Name(n) if n == "all_interfaces" => vec![format!("[::]:{}", svc.port), format!("0.0.0.0:{}", svc.port)],
            Host::Name(n) => match (n.as_str(), svc.port).to_socket_addrs() {
                Ok(a) => a.map(|a| a.to_string()).collect(),
                Err(e) => {
                    error("SessionManager", format!("{kind} server failed to listen on {}: [Errno -2] {e}", svc.address()));
                    continue;
                }
            },
            Host::Ip(IpAddr::V6(ip)) => vec![format!("[{ip}]:{}", svc.port)],
            Host::Ip(ip) => vec![format!("{ip}:{}", svc.port)],
        };
        let mut listeners = Vec::new();
        let mut last_err = None;
        for b in &binds {
            match TcpListener::bind(b.as_str()) {
                Ok(l) => {
                    listeners.push(l);
                    // [::] is dual-stack on Linux: 0.0.0.0 then fails, and is not needed
                    if b.starts_with("[::]") {
                        break;
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        if listeners.is_empty() {
            let e = last_err.map(|e| e.to_string()).unwrap_or_default();
            let errno = e.split("os error ").nth(1).map(|x| x.trim_end_matches(')').to_string()).unwrap_or_default();
            let text = e.split(" (os error").next().unwrap_or_default();
            error("SessionManager", format!("{kind} server failed to listen on {}: [Errno {errno}] {text}", svc.address()));
            continue;
        }
        info("SessionManager", format!("{kind} server listening on {}", svc.address()));
        for l in listeners {
            let srv = srv.clone();
            let kind: &'static str = if rpc { "RPC" } else { "TCP" };
            std::thread::spawn(move || {
                for conn in l.incoming() {
                    let Ok(stream) = conn else { continue };
                    let srv = srv.clone();
                    std::thread::spawn(move || session(&srv, stream, kind));
                }
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// sessions: aiorpcX JSON-RPC over newline framing

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Unknown,
    V1,
    V2,
    Loose,
}

struct RpcError(i64, String);

fn peer_string(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{}", v6.port()),
            None => format!("[{}]:{}", v6.ip(), v6.port()),
        },
        SocketAddr::V4(v4) => v4.to_string(),
    }
}

fn session(srv: &Arc<Server>, stream: TcpStream, kind: &'static str) {
    let peer = stream.peer_addr().map(|a| peer_string(&a)).unwrap_or_default();
    let Ok(writer) = stream.try_clone() else { return };
    let id = srv.session_ids.fetch_add(1, Ordering::SeqCst);
    let class = if kind == "RPC" { "LocalRPC" } else { "ElectrumX" };
    let total = srv.sessions.lock().map_or(0, |v| v.len());
    info(class, format!("[{id}] {kind} {peer}, {} total", commas(total as i64)));
    let info_ = Arc::new(SessionInfo {
        id,
        kind,
        peer: peer.clone(),
        client: Mutex::new(if kind == "RPC" { "RPC".into() } else { "unknown".into() }),
        proto: Mutex::new(if kind == "RPC" { "RPC".into() } else { "1.4".into() }),
        writer: Mutex::new(writer),
        subscribe_headers: AtomicBool::new(false),
        subs: Mutex::new(Vec::new()),
        recv_count: AtomicU64::new(0),
        recv_size: AtomicU64::new(0),
        send_count: AtomicU64::new(0),
        send_size: AtomicU64::new(0),
        txs_sent: AtomicU64::new(0),
        started: Instant::now(),
        errors: AtomicU64::new(0),
    });
    srv.sessions.lock().unwrap_or_else(|e| e.into_inner()).push(info_.clone());
    let _ = stream.set_read_timeout(Some(Duration::from_secs(srv.env.session_timeout.max(1) as u64)));
    let mut reader = BufReader::new(stream);
    let mut proto = Proto::Unknown;
    let mut sv_seen = false;
    let mut ptuple: Vec<i64> = PROTOCOL_MIN.to_vec();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(n) => {
                info_.recv_count.fetch_add(1, Ordering::Relaxed);
                info_.recv_size.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                info("SessionManager", format!("closing stale session ids {id}"));
                break;
            }
            Err(_) => break,
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let parsed = match json::parse(text) {
            Ok(v) => v,
            Err(_) => {
                info_.send_line(&error_msg(proto, -32700, "invalid JSON", &Value::Null));
                continue;
            }
        };
        if proto == Proto::Unknown {
            let first = match &parsed {
                Value::Arr(a) => a.first().cloned().unwrap_or(Value::Null),
                v => v.clone(),
            };
            proto = match first.get("jsonrpc").and_then(Value::as_str) {
                Some("2.0") => Proto::V2,
                Some("1.0") => Proto::V1,
                _ => Proto::Loose,
            };
        }
        let mut disconnect = false;
        let reply = match &parsed {
            Value::Arr(items) if items.is_empty() => Some(error_msg(proto, -32600, "batch is empty", &Value::Null)),
            Value::Arr(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|it| one_request(srv, &info_, kind, proto, it, &mut sv_seen, &mut ptuple, &mut disconnect))
                    .collect();
                (!parts.is_empty()).then(|| format!("[{}]", parts.join(", ")))
            }
            Value::Obj(_) => one_request(srv, &info_, kind, proto, &parsed, &mut sv_seen, &mut ptuple, &mut disconnect),
            _ => Some(error_msg(proto, -32600, "request object must be a dictionary", &Value::Null)),
        };
        if let Some(r) = reply {
            if !info_.send_line(&r) {
                break;
            }
        }
        if disconnect {
            break;
        }
    }
    let _ = info_.writer.lock().map(|w| w.shutdown(Shutdown::Both));
    srv.sessions.lock().unwrap_or_else(|e| e.into_inner()).retain(|x| x.id != id);
}

fn error_msg(proto: Proto, code: i64, message: &str, id: &Value) -> String {
    let e = obj(vec![("code", num(code)), ("message", s(message))]);
    if proto == Proto::V1 {
        py_dumps(&obj(vec![("result", Value::Null), ("error", e), ("id", id.clone())]))
    } else {
        py_dumps(&obj(vec![("jsonrpc", s("2.0")), ("error", e), ("id", id.clone())]))
    }
}

fn result_msg(proto: Proto, result: Value, id: &Value) -> String {
    if proto == Proto::V1 {
        py_dumps(&obj(vec![("result", result), ("error", Value::Null), ("id", id.clone())]))
    } else {
        py_dumps(&obj(vec![("jsonrpc", s("2.0")), ("result", result), ("id", id.clone())]))
    }
}

/// A handler's signature: parameter names and how many are required.
fn signature(kind: &str, method: &str, ptuple: &[i64]) -> Option<(&'static [&'static str], usize)> {
    if kind == "RPC" {
        return Some(match method {
            "getinfo" | "groups" | "peers" | "sessions" | "stop" => (&[], 0),
            "disconnect" | "log" => (&["session_ids"], 1),
            "add_peer" => (&["real_name"], 1),
            "daemon_url" => (&["daemon_url"], 0),
            "query" => (&["items", "limit"], 2),
            "reorg" => (&["count"], 1),
            _ => return None,
        });
    }
    Some(match method {
        "blockchain.block.header" => (&["height", "cp_height"], 1),
        "blockchain.block.headers" => (&["start_height", "count", "cp_height"], 2),
        "blockchain.estimatefee" => (&["number", "mode"], 1),
        "blockchain.headers.subscribe" | "blockchain.relayfee" | "mempool.get_fee_histogram" => (&[], 0),
        "blockchain.scripthash.get_balance"
        | "blockchain.scripthash.get_history"
        | "blockchain.scripthash.get_mempool"
        | "blockchain.scripthash.listunspent"
        | "blockchain.scripthash.subscribe" => (&["scripthash"], 1),
        "blockchain.scripthash.unsubscribe" if ptuple >= &[1, 4, 2][..] => (&["scripthash"], 1),
        "blockchain.transaction.broadcast" => (&["raw_tx"], 1),
        "blockchain.transaction.get" => (&["tx_hash", "verbose"], 1),
        "blockchain.transaction.get_merkle" => (&["tx_hash", "height"], 2),
        "blockchain.transaction.id_from_pos" => (&["height", "tx_pos", "merkle"], 2),
        "server.add_peer" => (&["features"], 1),
        "server.banner" | "server.donation_address" | "server.features" | "server.peers.subscribe" | "server.ping" => (&[], 0),
        "server.version" => (&["client_name", "protocol_version"], 0),
        _ => return None,
    })
}

/// `handler_invocation`: the arguments by position (None where a default applies).
fn bind_args(method: &str, params: &Value, names: &[&str], min: usize) -> Result<Vec<Option<Value>>, RpcError> {
    let inv = |m: String| RpcError(-32602, m);
    match params {
        Value::Arr(a) => {
            let n = a.len();
            let sfx = if n == 1 { "" } else { "s" };
            if n < min {
                return Err(inv(format!("{n} argument{sfx} passed to method \"{method}\" but it requires {min}")));
            }
            if n > names.len() {
                return Err(inv(format!("{n} argument{sfx} passed to method {method} taking at most {}", names.len())));
            }
            Ok((0..names.len()).map(|i| a.get(i).cloned()).collect())
        }
        Value::Obj(m) => {
            let mut missing: Vec<String> = names[..min].iter().filter(|k| !m.iter().any(|(x, _)| x == *k)).map(|k| format!("\"{k}\"")).collect();
            if !missing.is_empty() {
                missing.sort();
                let sfx = if missing.len() == 1 { "" } else { "s" };
                return Err(inv(format!("method \"{method}\" requires parameter{sfx} {}", missing.join(", "))));
            }
            let mut excess: Vec<String> = m.iter().filter(|(k, _)| !names.contains(&k.as_str())).map(|(k, _)| format!("\"{k}\"")).collect();
            if !excess.is_empty() {
                excess.sort();
                let sfx = if excess.len() == 1 { "" } else { "s" };
                return Err(inv(format!("method \"{method}\" does not take parameter{sfx} {}", excess.join(", "))));
            }
            Ok(names.iter().map(|k| m.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone())).collect())
        }
        other => Err(inv(format!("invalid request arguments: {}", py_fstr(other)))),
    }
}

#[allow(clippy::too_many_arguments)]
fn one_request(
    srv: &Arc<Server>,
    sess: &Arc<SessionInfo>,
    kind: &str,
    proto: Proto,
    req: &Value,
    sv_seen: &mut bool,
    ptuple: &mut Vec<i64>,
    disconnect: &mut bool,
) -> Option<String> {
    if !matches!(req, Value::Obj(_)) {
        return Some(error_msg(proto, -32600, "request object must be a dictionary", &Value::Null));
    }
    let id = req.get("id").cloned();
    let Some(method_v) = req.get("method") else {
        // a response to us: we send no requests
        return None;
    };
    let rid = id.clone().unwrap_or(Value::Null);
    if proto == Proto::V2 && req.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some(error_msg(proto, -32600, "\"jsonrpc\" is not \"2.0\"", &rid));
    }
    if proto == Proto::V1 && id.is_none() {
        return Some(error_msg(proto, -32600, "request has no \"id\"", &rid));
    }
    let Some(method) = method_v.as_str() else {
        return Some(error_msg(proto, -32601, "method must be a string", &rid));
    };
    let params = req.get("params").cloned().unwrap_or(Value::Arr(vec![]));
    let handler = signature(kind, method, ptuple);
    let counted = if handler.is_some() { method } else { "invalid method" };
    *srv.method_counts.lock().unwrap_or_else(|e| e.into_inner()).entry(counted.to_string()).or_insert(0) += 1;
    if kind != "RPC" && srv.env.drop_client_unknown && method != "server.version" && sess.client.lock().is_ok_and(|c| *c == "unknown") {
        info("ElectrumX", format!("[{}] disconnecting because client is unknown", sess.id));
        *disconnect = true;
        return Some(error_msg(proto, BAD_REQUEST, "use server.version to identify client", &rid));
    }
    let result = match handler {
        None => Err(RpcError(-32601, format!("unknown method \"{method}\""))),
        Some((names, min)) => match bind_args(method, &params, names, min) {
            Err(e) => Err(e),
            Ok(args) => {
                if kind == "RPC" {
                    local_rpc(srv, method, &args)
                } else {
                    electrum(srv, sess, method, &args, sv_seen, ptuple, disconnect)
                }
            }
        },
    };
    // a notification gets no answer
    id.as_ref()?;
    Some(match result {
        Ok(v) => result_msg(proto, v, &rid),
        Err(RpcError(code, msg)) => {
            sess.errors.fetch_add(1, Ordering::Relaxed);
            error_msg(proto, code, &msg, &rid)
        }
    })
}

fn non_negative_integer(v: &Option<Value>, default: i64) -> Result<i64, RpcError> {
    let Some(v) = v else { return Ok(default) };
    let n = match v {
        Value::Num(n) => n.parse::<i64>().ok().or_else(|| n.parse::<f64>().ok().map(|f| f.trunc() as i64)),
        Value::Str(x) => py_int(x),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    };
    match n {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(RpcError(BAD_REQUEST, format!("{} should be a non-negative integer", py_fstr(v)))),
    }
}

fn scripthash_check(v: &Option<Value>) -> Result<String, RpcError> {
    let text = v.as_ref().and_then(Value::as_str).unwrap_or_default();
    if text.len() == 64 && hex_decode(text).is_some() {
        return Ok(text.to_string());
    }
    Err(RpcError(BAD_REQUEST, format!("{} is not a valid script hash", v.as_ref().map_or("None".into(), py_fstr))))
}

fn tx_hash_check(v: &Option<Value>) -> Result<String, RpcError> {
    let text = v.as_ref().and_then(Value::as_str).unwrap_or_default();
    if text.len() == 64 && hex_decode(text).is_some() {
        return Ok(text.to_string());
    }
    Err(RpcError(BAD_REQUEST, format!("{} should be a transaction hash", v.as_ref().map_or("None".into(), py_fstr))))
}

fn daemon_request<T>(r: Result<T, DaemonError>) -> Result<T, RpcError> {
    r.map_err(|e| RpcError(DAEMON_ERROR, format!("daemon error: {}", e.repr())))
}

/// `util.protocol_tuple`.
fn protocol_tuple(v: &Value) -> Vec<i64> {
    v.as_str().and_then(|x| x.split('.').map(|p| p.trim().parse::<i64>().ok()).collect::<Option<Vec<i64>>>()).unwrap_or_else(|| vec![0])
}

fn version_string(t: &[i64]) -> String {
    let mut t = t.to_vec();
    while t.len() < 2 {
        t.push(0);
    }
    t.iter().map(i64::to_string).collect::<Vec<_>>().join(".")
}

fn electrum(
    srv: &Arc<Server>,
    sess: &Arc<SessionInfo>,
    method: &str,
    args: &[Option<Value>],
    sv_seen: &mut bool,
    ptuple: &mut Vec<i64>,
    disconnect: &mut bool,
) -> Result<Value, RpcError> {
    let arg = |i: usize| args.get(i).cloned().flatten();
    match method {
        "server.version" => {
            if *sv_seen {
                return Err(RpcError(BAD_REQUEST, "server.version already sent".into()));
            }
            *sv_seen = true;
            if let Some(name) = arg(0).filter(truthy) {
                let name = py_fstr(&name);
                *sess.client.lock().unwrap_or_else(|e| e.into_inner()) = name.chars().take(17).collect();
            }
            let (cmin, cmax) = match arg(1) {
                None | Some(Value::Null) => (PROTOCOL_MIN.to_vec(), PROTOCOL_MIN.to_vec()),
                Some(Value::Arr(a)) if a.len() == 2 => (protocol_tuple(&a[0]), protocol_tuple(&a[1])),
                Some(v) => (protocol_tuple(&v), protocol_tuple(&v)),
            };
            let result = if cmax.as_slice() < PROTOCOL_MAX { cmax.clone() } else { PROTOCOL_MAX.to_vec() };
            let floor = if cmin.as_slice() > PROTOCOL_MIN { cmin.clone() } else { PROTOCOL_MIN.to_vec() };
            if result < floor || result == vec![0] {
                if cmin.as_slice() > PROTOCOL_MIN {
                    info("ElectrumX", format!("[{}] client requested future protocol version {} - is your software out of date?", sess.id, version_string(&cmin)));
                }
                *disconnect = true;
                let pv = arg(1).map_or("None".to_string(), |v| py_fstr(&v));
                return Err(RpcError(BAD_REQUEST, format!("unsupported protocol version: {pv}")));
            }
            *ptuple = result.clone();
            *sess.proto.lock().unwrap_or_else(|e| e.into_inner()) = version_string(&result);
            Ok(Value::Arr(vec![s(VERSION), s(&version_string(&result))]))
        }
        "server.ping" => Ok(Value::Null),
        "server.banner" => {
            let mut banner = format!("You are connected to an {VERSION} server.");
            if let Some(f) = &srv.env.banner_file {
                match std::fs::read_to_string(f) {
                    Ok(text) => {
                        let ni = daemon_request(srv.daemon.getnetworkinfo())?;
                        let v = ni.get("version").and_then(Value::as_i64).unwrap_or(0);
                        let (major, minor) = (v / 1_000_000, v % 1_000_000);
                        let (minor, revision) = (minor / 10000, minor % 10000 / 100);
                        banner = text
                            .replace("$SERVER_VERSION", VERSION_SHORT)
                            .replace("$SERVER_SUBVERSION", VERSION)
                            .replace("$DAEMON_VERSION", &format!("{major}.{minor}.{revision}"))
                            .replace("$DAEMON_SUBVERSION", ni.get("subversion").and_then(Value::as_str).unwrap_or_default())
                            .replace("$DONATION_ADDRESS", &srv.env.donation_address);
                    }
                    Err(e) => error("ElectrumX", format!("[{}] reading banner file {f}: {e}", sess.id)),
                }
            }
            Ok(s(&banner))
        }
        "server.donation_address" => Ok(s(&srv.env.donation_address)),
        "server.features" => {
            let mut hosts: Vec<(String, Value)> = Vec::new();
            for svc in &srv.env.report_services {
                let h = match &svc.host {
                    Host::Ip(ip) => ip.to_string(),
                    Host::Name(n) => n.clone(),
                };
                let key = format!("{}_port", svc.protocol);
                match hosts.iter_mut().find(|(k, _)| *k == h) {
                    Some((_, Value::Obj(m))) => {
                        if !m.iter().any(|(k, _)| *k == key) {
                            m.push((key, num(svc.port)));
                        }
                    }
                    _ => hosts.push((h, Value::Obj(vec![(key, num(svc.port))]))),
                }
            }
            Ok(obj(vec![
                ("hosts", Value::Obj(hosts)),
                ("pruning", Value::Null),
                ("server_version", s(VERSION)),
                ("protocol_min", s("1.4")),
                ("protocol_max", s("1.4.2")),
                ("genesis_hash", s(srv.env.coin.genesis)),
                ("hash_function", s("sha256")),
                ("services", Value::Arr(srv.env.report_services.iter().map(|x| s(&x.text())).collect())),
            ]))
        }
        "server.peers.subscribe" => Ok(Value::Arr(vec![])),
        "server.add_peer" => Ok(Value::Bool(false)),
        "blockchain.headers.subscribe" => {
            sess.subscribe_headers.store(true, Ordering::Relaxed);
            if srv.hsub.lock().map_or(true, |h| h.is_none()) {
                srv.refresh_hsub();
            }
            Ok(srv.hsub.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or(Value::Null))
        }
        "blockchain.block.header" => {
            let height = non_negative_integer(&arg(0), 0)?;
            let cp = non_negative_integer(&arg(1), 0)?;
            let raw = srv.raw_header(height).ok_or_else(|| RpcError(BAD_REQUEST, format!("height {} out of range", commas(height))))?;
            if cp != 0 {
                return Err(RpcError(BAD_REQUEST, "merkle proofs (cp_height) are not mirrored by the archy e2e stand-in".into()));
            }
            Ok(s(&hex_encode(&raw)))
        }
        "blockchain.block.headers" => {
            let start = non_negative_integer(&arg(0), 0)?;
            let count = non_negative_integer(&arg(1), 0)?.min(2016);
            let _cp = non_negative_integer(&arg(2), 0)?;
            let db_height = srv.db_height();
            let count = count.min((db_height + 1 - start).max(0));
            let mut hex = String::new();
            for h in start..start + count {
                if let Some(raw) = srv.raw_header(h) {
                    hex.push_str(&hex_encode(&raw));
                }
            }
            Ok(obj(vec![("hex", s(&hex)), ("count", num(count)), ("max", num(2016))]))
        }
        "blockchain.estimatefee" => {
            let number = non_negative_integer(&arg(0), 0)?;
            let mode = arg(1);
            let mode_s = match &mode {
                None | Some(Value::Null) => None,
                Some(Value::Str(m)) if m == "CONSERVATIVE" || m == "ECONOMICAL" => Some(m.clone()),
                Some(v) => return Err(RpcError(BAD_REQUEST, format!("unknown estimatefee mode: {}", py_fstr(v)))),
            };
            let number = match number {
                n if n <= 1 => 1,
                n if n <= 12 => n,
                25 => 25,
                n if n <= 48 => n / 2 * 2,
                n if n <= 1008 => n / 24 * 24,
                _ => 1008,
            };
            daemon_request(srv.daemon.estimatefee(number, mode_s.as_deref()))
        }
        "blockchain.relayfee" => {
            let ni = daemon_request(srv.daemon.getnetworkinfo())?;
            Ok(ni.get("relayfee").cloned().unwrap_or(Value::Null))
        }
        "blockchain.scripthash.get_balance" => {
            scripthash_check(&arg(0))?;
            Ok(obj(vec![("confirmed", num(0)), ("unconfirmed", num(0))]))
        }
        "blockchain.scripthash.get_history" | "blockchain.scripthash.get_mempool" | "blockchain.scripthash.listunspent" => {
            scripthash_check(&arg(0))?;
            Ok(Value::Arr(vec![]))
        }
        "blockchain.scripthash.subscribe" => {
            let sh = scripthash_check(&arg(0))?;
            sess.subs.lock().unwrap_or_else(|e| e.into_inner()).push(sh);
            Ok(Value::Null)
        }
        "blockchain.scripthash.unsubscribe" => {
            let sh = scripthash_check(&arg(0))?;
            let mut subs = sess.subs.lock().unwrap_or_else(|e| e.into_inner());
            let had = subs.contains(&sh);
            subs.retain(|x| *x != sh);
            Ok(Value::Bool(had))
        }
        "blockchain.transaction.get" => {
            let txid = tx_hash_check(&arg(0))?;
            let verbose = match arg(1) {
                None => false,
                Some(Value::Bool(b)) => b,
                Some(_) => return Err(RpcError(BAD_REQUEST, "\"verbose\" must be a boolean".into())),
            };
            daemon_request(srv.daemon.single("getrawtransaction", vec![s(&txid), num(i64::from(verbose))]))
        }
        "blockchain.transaction.broadcast" => {
            let raw = arg(0).map_or(String::new(), |v| py_fstr(&v));
            match srv.daemon.single("sendrawtransaction", vec![s(&raw)]) {
                Ok(h) => {
                    srv.txs_sent.fetch_add(1, Ordering::Relaxed);
                    sess.txs_sent.fetch_add(1, Ordering::Relaxed);
                    info("ElectrumX", format!("[{}] sent tx: {}", sess.id, py_fstr(&h)));
                    Ok(h)
                }
                Err(e) => {
                    let message = e.0.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
                    info("ElectrumX", format!("[{}] error sending transaction: {message}", sess.id));
                    Err(RpcError(BAD_REQUEST, format!("the transaction was rejected by network rules.\n\n{message}\n[{raw}]")))
                }
            }
        }
        "blockchain.transaction.get_merkle" | "blockchain.transaction.id_from_pos" => {
            Err(RpcError(BAD_REQUEST, "not mirrored by the archy e2e stand-in (no transaction index)".into()))
        }
        "mempool.get_fee_histogram" => Ok(Value::Arr(vec![])),
        _ => Err(RpcError(-32601, format!("unknown method \"{method}\""))),
    }
}

fn local_rpc(srv: &Arc<Server>, method: &str, args: &[Option<Value>]) -> Result<Value, RpcError> {
    let arg = |i: usize| args.get(i).cloned().flatten();
    match method {
        "getinfo" => Ok(srv.info_value()),
        "stop" => {
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                info("Controller", "shutting down");
                info("BlockProcessor", "flushing to DB for a clean shutdown...");
                info("Controller", "shutdown complete");
                info("electrumx", "ElectrumX server terminated normally");
                std::process::exit(0);
            });
            Ok(s("stopping"))
        }
        "groups" | "peers" => Ok(Value::Arr(vec![])),
        "sessions" => {
            let list = srv.sessions.lock().unwrap_or_else(|e| e.into_inner());
            Ok(Value::Arr(
                list.iter()
                    .map(|x| {
                        Value::Arr(vec![
                            num(x.id),
                            s(&format!("{}10", &x.kind[..1])),
                            s(&x.peer),
                            s(&x.client.lock().map(|c| c.clone()).unwrap_or_default()),
                            s(&x.proto.lock().map(|c| c.clone()).unwrap_or_default()),
                            num(0),
                            num(0),
                            num(0),
                            num(x.txs_sent.load(Ordering::Relaxed)),
                            num(x.subs.lock().map_or(0, |v| v.len())),
                            num(x.recv_count.load(Ordering::Relaxed)),
                            num(x.recv_size.load(Ordering::Relaxed)),
                            num(x.send_count.load(Ordering::Relaxed)),
                            num(x.send_size.load(Ordering::Relaxed)),
                            num(x.started.elapsed().as_secs()),
                        ])
                    })
                    .collect(),
            ))
        }
        "reorg" => {
            let count = non_negative_integer(&arg(0), 3)?;
            if !srv.caught_up.load(Ordering::SeqCst) {
                return Err(RpcError(BAD_REQUEST, "still catching up with daemon".into()));
            }
            srv.reorg_count.store(count, Ordering::SeqCst);
            Ok(s(&format!("scheduled a reorg of {} blocks", commas(count))))
        }
        "daemon_url" => {
            let url = arg(0).map_or(String::new(), |v| py_fstr(&v));
            let url = if url.is_empty() { srv.env.daemon_url.clone() } else { url };
            srv.daemon.set_url(&srv.env.coin, &url).map_err(|e| RpcError(BAD_REQUEST, format!("an error occured: {}({})", e.class.rsplit('.').next().unwrap_or_default(), py_repr_str(&e.msg))))?;
            Ok(s(&format!("now using daemon at {}", logged_url(&srv.daemon.current_url()))))
        }
        "query" => {
            let mut lines = Vec::new();
            if let Some(Value::Arr(items)) = arg(0) {
                for item in items {
                    let t = py_fstr(&item);
                    if hex_decode(&t).is_some() {
                        lines.push(s(&format!("Script: {t}")));
                    } else {
                        lines.push(s(&format!("Address: {t}")));
                    }
                    lines.push(s("No history found"));
                    lines.push(s("No UTXOs found"));
                    lines.push(s(&format!("Balance: 0.000000 {}", srv.env.coin.shortname)));
                }
            }
            Ok(Value::Arr(lines))
        }
        "log" | "disconnect" => {
            let ids: Vec<String> = match arg(0) {
                Some(Value::Arr(a)) => a.iter().map(py_fstr).collect(),
                _ => vec![],
            };
            let mut out = Vec::new();
            let list = srv.sessions.lock().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                match list.iter().find(|x| x.id.to_string() == id) {
                    Some(x) => {
                        if method == "disconnect" {
                            let _ = x.writer.lock().map(|w| w.shutdown(Shutdown::Both));
                            out.push(s(&format!("disconnected {id}")));
                        } else {
                            out.push(s(&format!("logging {id}")));
                        }
                    }
                    None => out.push(s(&format!("unknown: {id}"))),
                }
            }
            Ok(Value::Arr(out))
        }
        "add_peer" => Ok(s(&format!("peer '{}' added", arg(0).map_or(String::new(), |v| py_fstr(&v))))),
        _ => Err(RpcError(-32601, format!("unknown method \"{method}\""))),
    }
}

// ---------------------------------------------------------------------------------------------
// electrumx_rpc

const RPC_USAGE: &str = "usage: electrumx_rpc [-h] [-p port_num]\n                     {getinfo,groups,peers,sessions,stop,disconnect,log,add_peer,daemon_url,query,reorg}\n                     ...";
const COMMANDS: &[&str] = &["getinfo", "groups", "peers", "sessions", "stop", "disconnect", "log", "add_peer", "daemon_url", "query", "reorg"];

fn usage_error(msg: &str) -> i32 {
    eprintln!("{RPC_USAGE}\nelectrumx_rpc: error: {msg}");
    2
}

pub fn rpc(argv: &[String]) -> i32 {
    let mut port: Option<String> = None;
    let mut command: Option<String> = None;
    let mut rest: Vec<String> = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if command.is_some() {
            rest.push(a.clone());
        } else if a == "-h" || a == "--help" {
            println!("{RPC_USAGE}\n\nSend electrumx an RPC command\n\npositional arguments:\n  {{getinfo,groups,peers,sessions,stop,disconnect,log,add_peer,daemon_url,query,reorg}}\n                        sub-command help\n\noptional arguments:\n  -h, --help            show this help message and exit\n  -p port_num, --port port_num\n                        RPC port number");
            return 0;
        } else if a == "-p" || a == "--port" {
            i += 1;
            match argv.get(i) {
                Some(p) => port = Some(p.clone()),
                None => return usage_error("argument -p/--port: expected one argument"),
            }
        } else if let Some(p) = a.strip_prefix("--port=") {
            port = Some(p.to_string());
        } else if let Some(p) = a.strip_prefix("-p").filter(|p| !p.is_empty()) {
            port = Some(p.to_string());
        } else if a.starts_with('-') && a.len() > 1 {
            rest.push(a.clone());
        } else {
            command = Some(a.clone());
        }
        i += 1;
    }
    let port: i64 = match port {
        Some(p) => match py_int(&p) {
            Some(n) => n,
            None => return usage_error(&format!("argument -p/--port: invalid int value: '{p}'")),
        },
        None => match std::env::var("RPC_PORT") {
            Ok(p) => match py_int(&p) {
                Some(n) => n,
                None => {
                    eprintln!("Traceback (most recent call last):\n  (Python frames not mirrored by the archy e2e stand-in)\nValueError: invalid literal for int() with base 10: '{p}'");
                    return 1;
                }
            },
            Err(_) => 8000,
        },
    };
    let Some(method) = command else {
        if let Some(r) = rest.first() {
            return usage_error(&format!("unrecognized arguments: {r}"));
        }
        println!("error making request: (-32601, 'method must be a string')");
        return 1;
    };
    if !COMMANDS.contains(&method.as_str()) {
        let choices = COMMANDS.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ");
        return usage_error(&format!("argument command: invalid choice: '{method}' (choose from {choices})"));
    }
    // the sub-command's arguments, as argparse gives them to send_request
    let args: Value = match method.as_str() {
        "disconnect" | "log" => {
            if rest.is_empty() {
                return usage_error("the following arguments are required: session_ids");
            }
            obj(vec![("session_ids", Value::Arr(rest.iter().map(|x| s(x)).collect()))])
        }
        "add_peer" => match rest.as_slice() {
            [one] => obj(vec![("real_name", s(one))]),
            [] => return usage_error("the following arguments are required: real_name"),
            [_, extra, ..] => return usage_error(&format!("unrecognized arguments: {extra}")),
        },
        "daemon_url" => obj(vec![("daemon_url", s(rest.first().map_or("", String::as_str)))]),
        "reorg" => {
            let count = match rest.first() {
                None => 3,
                Some(c) => match py_int(c) {
                    Some(n) => n,
                    None => return usage_error(&format!("argument count: invalid int value: '{c}'")),
                },
            };
            obj(vec![("count", num(count))])
        }
        "query" => {
            let mut limit = 1000;
            let mut items = Vec::new();
            let mut it = rest.iter();
            while let Some(x) = it.next() {
                if x == "-l" || x == "--limit" {
                    match it.next().and_then(|v| py_int(v)) {
                        Some(n) => limit = n,
                        None => return usage_error("argument -l/--limit: expected one argument"),
                    }
                } else {
                    items.push(s(x));
                }
            }
            if items.is_empty() {
                return usage_error("the following arguments are required: items");
            }
            obj(vec![("limit", num(limit)), ("items", Value::Arr(items))])
        }
        _ => {
            if let Some(r) = rest.first() {
                return usage_error(&format!("unrecognized arguments: {r}"));
            }
            obj(vec![])
        }
    };
    let cannot = || {
        println!("cannot connect - is ElectrumX catching up, not running, or is {port} the wrong RPC port?");
        1
    };
    let Ok(port16) = u16::try_from(port) else { return cannot() };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = None;
    for a in ("localhost", port16).to_socket_addrs().map(|a| a.collect::<Vec<_>>()).unwrap_or_default() {
        if let Ok(st) = TcpStream::connect_timeout(&a, Duration::from_secs(30)) {
            stream = Some(st);
            break;
        }
    }
    let Some(mut stream) = stream else { return cannot() };
    let req = py_dumps(&obj(vec![("jsonrpc", s("2.0")), ("method", s(&method)), ("id", num(0)), ("params", args)]));
    if stream.write_all(format!("{req}\n").as_bytes()).is_err() {
        return cannot();
    }
    let _ = stream.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))));
    let mut line = String::new();
    match BufReader::new(&stream).read_line(&mut line) {
        Ok(n) if n > 0 => {}
        Ok(_) => {
            println!("error making request: ");
            return 1;
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            println!("error making request: ");
            return 1;
        }
        Err(_) => return cannot(),
    }
    let Ok(reply) = json::parse(line.trim()) else {
        println!("error making request: (-32700, 'invalid JSON')");
        return 1;
    };
    if let Some(e) = reply.get("error").filter(|e| **e != Value::Null) {
        let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
        let msg = e.get("message").and_then(Value::as_str).unwrap_or_default();
        println!("error making request: ({code}, {})", py_repr_str(msg));
        return 1;
    }
    let result = reply.get("result").cloned().unwrap_or(Value::Null);
    match method.as_str() {
        "query" => {
            if let Value::Arr(lines) = &result {
                for l in lines {
                    println!("{}", py_fstr(l));
                }
            }
        }
        "sessions" => {
            for l in sessions_lines(&result) {
                println!("{l}");
            }
        }
        "groups" => println!(
            "{:<14} {:>9} {:>8} {:>8} {:>6} {:>6} {:>8}{:>7} {:>9} {:>7} {:>9}",
            "Name", "Sessions", "Cost", "Retained", "Reqs", "Txs", "Subs", "Recv", "Recv KB", "Sent", "Sent KB"
        ),
        "peers" => println!(
            "{:<62} {:<6} {:>5} {:>5} {:<17} {:>4} {:>4} {:>8} {:>11} {:>11} {:>5} {:>20} {:<15}",
            "Host", "Status", "TCP", "SSL", "Server", "Min", "Max", "Pruning", "Last Good", "Last Try", "Tries", "Source", "IP Address"
        ),
        _ => println!("{}", py_dumps_pretty(&result)),
    }
    0
}

/// `electrumx.lib.text.sessions_lines`.
fn sessions_lines(data: &Value) -> Vec<String> {
    let mut out = vec![format!(
        "{:<6} {:<5} {:>17} {:>5} {:>7} {:>7} {:>5} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>21}",
        "ID", "Flags", "Client", "Proto", "Cost", "XCost", "Reqs", "Txs", "Subs", "Recv", "Recv KB", "Sent", "Sent KB", "Time", "Peer"
    )];
    if let Value::Arr(rows) = data {
        for r in rows {
            let Value::Arr(f) = r else { continue };
            let n = |i: usize| f.get(i).and_then(Value::as_i64).unwrap_or(0);
            let t = |i: usize| f.get(i).map(py_fstr).unwrap_or_default();
            out.push(format!(
                "{:<6} {:<5} {:>17} {:>5} {:>7} {:>7} {:>5} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>21}",
                t(0),
                t(1),
                t(3),
                t(4),
                commas(n(5)),
                commas(n(6)),
                commas(n(7)),
                commas(n(8)),
                commas(n(9)),
                commas(n(10)),
                commas(n(11) / 1024),
                commas(n(12)),
                commas(n(13) / 1024),
                formatted_time(n(14), ""),
                t(2)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_floats() {
        assert_eq!(py_num("0.00001000"), "1e-05");
        assert_eq!(py_num("0.00012000"), "0.00012");
        assert_eq!(py_num("0.0001"), "0.0001");
        assert_eq!(py_num("126982285146989.3"), "126982285146989.3");
        assert_eq!(py_num("1e16"), "1e+16");
        assert_eq!(py_num("123.0"), "123.0");
        assert_eq!(py_num("42"), "42");
    }

    #[test]
    fn python_dumps() {
        let v = json::parse(r#"{"b": [1, 2.5], "a": {"x": null, "y": true}, "db height": 5, "db_flush_count": 1}"#).unwrap();
        assert_eq!(py_dumps(&v), r#"{"b": [1, 2.5], "a": {"x": null, "y": true}, "db height": 5, "db_flush_count": 1}"#);
        assert_eq!(
            py_dumps_pretty(&v),
            "{\n    \"a\": {\n        \"x\": null,\n        \"y\": true\n    },\n    \"b\": [\n        1,\n        2.5\n    ],\n    \"db height\": 5,\n    \"db_flush_count\": 1\n}"
        );
        assert_eq!(py_repr(&json::parse(r#"{"code": -32601, "message": "Method not found"}"#).unwrap()), "{'code': -32601, 'message': 'Method not found'}");
    }

    #[test]
    fn urls_as_sanitize_url() {
        let c = lookup_coin("bitcoin", "mainnet").unwrap();
        assert_eq!(c.sanitize_url("http://u:p@bitcoind:8332/").unwrap(), "http://u:p@bitcoind:8332/");
        assert_eq!(c.sanitize_url("u:p@bitcoind").unwrap(), "http://u:p@bitcoind:8332/");
        assert_eq!(c.sanitize_url(" u:p@[::1]:9 ").unwrap(), "http://u:p@[::1]:9/");
        assert!(c.sanitize_url("http://bitcoind:8332/").is_err());
        let r = lookup_coin("Bitcoin", "regtest").unwrap();
        assert_eq!(r.sanitize_url("u:p@h").unwrap(), "http://u:p@h:18332/");
        assert!(lookup_coin("Bitcoin", "signet").is_err());
        assert_eq!(lookup_coin("BitcoinSegwit", "testnet").unwrap().class, "BitcoinSegwitTestnet");
    }

    #[test]
    fn services_as_upstream() {
        // "rpc" alone is localhost:8000, another address than 127.0.0.1:8000
        assert_eq!(parse_services("tcp://:50001,rpc://127.0.0.1:8000,rpc", true).unwrap()[2].address(), "localhost:8000");
        let v = parse_services("tcp://:50001,rpc://127.0.0.1:8000", true).unwrap();
        assert_eq!(v[0].address(), "all_interfaces:50001");
        assert_eq!(v[1].address(), "127.0.0.1:8000");
        assert_eq!(parse_services("rpc://", true).unwrap()[0].address(), "localhost:8000");
        assert_eq!(parse_services("tcp://", true).unwrap_err().msg, "\"tcp://\" invalid: invalid address string: ");
        assert_eq!(parse_services("foo://:1", true).unwrap_err().msg, "\"foo://:1\" invalid: invalid address string: :1");
        assert_eq!(parse_services("tcp://:50001,tcp://:50001", true).unwrap_err().msg, "address all_interfaces:50001 has multiple services");
        assert_eq!(parse_services("tcp://:0", true).unwrap_err().msg, "\"tcp://:0\" invalid: invalid port: 0");
    }

    #[test]
    fn formatting() {
        assert_eq!(commas(900000), "900,000");
        assert_eq!(commas(-1), "-1");
        assert_eq!(formatted_time(5, " "), "05s");
        assert_eq!(formatted_time(3700, " "), "01h 01m 40s");
        assert_eq!(formatted_time(90000, " "), "1d 01h 00m");
        assert_eq!(py_int(" 1_000 "), Some(1000));
        assert_eq!(py_int("1.5"), None);
    }

    #[test]
    fn state_round_trip() {
        let st = DbState { height: 812000, tx_count: 5, tip: "ab".repeat(32), first_sync: false, flush_count: 3, wall_time: 7.0 };
        let (back, g) = DbState::parse(&st.text("gen")).unwrap();
        assert_eq!(back.height, 812000);
        assert_eq!(back.tip, st.tip);
        assert!(!back.first_sync);
        assert_eq!(g, "gen");
    }
}
