//! `electrumx_server`: the shared state, start-up (electrumx/lib/server_base.py,
//! electrumx/server/controller.py) and the listeners (`SessionManager.serve`).

use super::daemon::{logged_url, Daemon, DaemonError};
use super::db::{open_dbs, synth_header, DbState, HEADERS};
use super::env::Env;
use super::listeners::start_servers;
use super::python::{commas, formatted_time, py_dumps_compact, py_repr};
use super::session::SessionInfo;
use super::sync::sync_loop;
use super::{
    err, error, info, terminated_abnormally, PyErr, AIORPCX_VERSION, LEVEL, STATE_FILE, VERSION,
};
use crate::json::{num, obj, s, Value};
use crate::util::{hex, os_error_text, unhex};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

extern "C" {
    fn geteuid() -> u32;
}

pub(super) struct Server {
    pub(super) env: Env,
    pub(super) daemon: Daemon,
    pub(super) db: Mutex<DbState>,
    pub(super) started: Instant,
    pub(super) caught_up: AtomicBool,
    pub(super) serving: AtomicBool,
    pub(super) sessions: Mutex<Vec<Arc<SessionInfo>>>,
    pub(super) session_ids: AtomicU64,
    pub(super) method_counts: Mutex<BTreeMap<String, u64>>,
    pub(super) txs_sent: AtomicU64,
    pub(super) hsub: Mutex<Option<Value>>,
    pub(super) mempool_txs: AtomicU64,
    pub(super) synthesize: AtomicBool,
    pub(super) reorg_count: AtomicI64,
}

impl Server {
    pub(super) fn db_height(&self) -> i64 {
        self.db.lock().unwrap_or_else(|e| e.into_inner()).height
    }

    pub(super) fn raw_header(&self, height: i64) -> Option<Vec<u8>> {
        if height < 0 || height > self.db_height() {
            return None;
        }
        let h = HEADERS.read(height as u64 * 80, 80);
        if h.iter().any(|&b| b != 0) {
            return Some(h);
        }
        // not stored (the stand-in samples blocks): ask the daemon, store it
        let hash = self
            .daemon
            .vector("getblockhash", vec![vec![num(height)]])
            .ok()?
            .first()?
            .as_str()?
            .to_string();
        let header = self.fetch_header(&hash, height, "0");
        let _ = HEADERS.write(height as u64 * 80, &header);
        Some(header)
    }

    /// The raw header of a block from `getblock <hash> false` (as the prefetcher fetches blocks).
    pub(super) fn fetch_header(&self, hash: &str, height: i64, prev: &str) -> Vec<u8> {
        if !self.synthesize.load(Ordering::Relaxed) {
            match self
                .daemon
                .vector("getblock", vec![vec![s(hash), Value::Bool(false)]])
            {
                Ok(v) => {
                    if let Some(raw) = v
                        .first()
                        .and_then(Value::as_str)
                        .and_then(|h| unhex(h.get(..160)?))
                    {
                        return raw;
                    }
                }
                Err(e) if e.0.compact().contains("-32601") => self.start_synthesizing(&e),
                Err(_) => {}
            }
        }
        synth_header(height, prev)
    }

    pub(super) fn start_synthesizing(&self, e: &DaemonError) {
        if !self.synthesize.swap(true, Ordering::SeqCst) {
            info(
                "Prefetcher",
                format!("ignoring daemon error: {} (stand-in: the daemon lacks the method; synthesizing block data)", py_repr(&e.0)),
            );
        }
    }

    pub(super) fn info_value(&self) -> Value {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let counts = self.method_counts.lock().unwrap_or_else(|e| e.into_inner());
        let cache = |n: u64| s(&format!("{n} lookups, 0 hits, 0 entries"));
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner()).clone();
        obj(vec![
            ("coin", s(self.env.coin.class)),
            ("daemon", s(&logged_url(&self.daemon.current_url()))),
            (
                "daemon height",
                self.daemon.cached().map_or(Value::Null, num),
            ),
            ("db height", num(db.height)),
            ("db_flush_count", num(db.flush_count)),
            ("groups", num(0)),
            ("history cache", cache(0)),
            ("merkle txid cache", cache(0)),
            ("pid", num(std::process::id())),
            (
                "peers",
                obj(vec![
                    ("bad", num(0)),
                    ("good", num(0)),
                    ("never", num(0)),
                    ("stale", num(0)),
                    ("total", num(0)),
                ]),
            ),
            (
                "request counts",
                Value::Obj(counts.iter().map(|(k, v)| (k.clone(), num(*v))).collect()),
            ),
            ("request total", num(counts.values().sum::<u64>())),
            (
                "sessions",
                obj(vec![
                    ("count", num(sessions.len())),
                    (
                        "count with subs",
                        num(sessions
                            .iter()
                            .filter(|x| !x.subs.lock().map_or(true, |v| v.is_empty()))
                            .count()),
                    ),
                    (
                        "errors",
                        num(sessions
                            .iter()
                            .map(|x| x.errors.load(Ordering::Relaxed))
                            .sum::<u64>()),
                    ),
                    ("logged", num(0)),
                    ("pending requests", num(0)),
                    (
                        "subs",
                        num(sessions
                            .iter()
                            .map(|x| x.subs.lock().map_or(0, |v| v.len()))
                            .sum::<usize>()),
                    ),
                ]),
            ),
            ("txids cache", cache(0)),
            ("txs sent", num(self.txs_sent.load(Ordering::Relaxed))),
            (
                "uptime",
                s(&formatted_time(
                    self.started.elapsed().as_secs() as i64,
                    " ",
                )),
            ),
            ("version", s(VERSION)),
        ])
    }

    pub(super) fn refresh_hsub(&self) {
        let height = self.db_height();
        if let Some(raw) = self.raw_header(height) {
            *self.hsub.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(obj(vec![("hex", s(&hex(&raw))), ("height", num(height))]));
        }
    }

    pub(super) fn notify_headers(&self) {
        self.refresh_hsub();
        let Some(h) = self.hsub.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return;
        };
        let note = py_dumps_compact(&obj(vec![
            ("jsonrpc", s("2.0")),
            ("method", s("blockchain.headers.subscribe")),
            ("params", Value::Arr(vec![h])),
        ]));
        for sess in self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            if sess.subscribe_headers.load(Ordering::Relaxed) {
                sess.send_line(&note);
            }
        }
    }

    pub(super) fn save_state(&self) {
        let text = self
            .db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .text(self.env.coin.genesis);
        let tmp = format!("{STATE_FILE}.tmp");
        if std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, STATE_FILE))
            .is_err()
        {
            error(
                "DB",
                format!("cannot write {}/{STATE_FILE}", self.env.db_dir),
            );
        }
    }
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
        other => {
            return terminated_abnormally(&err("ValueError", format!("Unknown level: '{other}'")))
        }
    };
    LEVEL.store(lvl, Ordering::Relaxed);
    // ServerBase.__init__
    info(
        "Controller",
        "Python version: 3.7 (archy e2e stand-in: no Python)",
    );
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
    info("Controller", "supported protocol versions: 1.4-1.4.3");
    info(
        "Controller",
        format!(
            "event loop policy: {}",
            if env.uvloop {
                "<uvloop.EventLoopPolicy object at 0x7f3c2a1b5e10>"
            } else {
                "None"
            }
        ),
    );
    info(
        "Controller",
        format!("reorg limit is {} blocks", commas(env.reorg_limit)),
    );
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
    info(
        "DB",
        format!("switching current directory to {}", env.db_dir),
    );
    if let Err(e) = std::env::set_current_dir(&env.db_dir) {
        let errno = e.raw_os_error().unwrap_or(0);
        let class = if e.kind() == std::io::ErrorKind::NotFound {
            "FileNotFoundError"
        } else {
            "OSError"
        };
        let text = os_error_text(&e);
        return shutdown_abnormally(err(
            class,
            format!("[Errno {errno}] {text}: '{}'", env.db_dir),
        ));
    }
    if !["leveldb", "rocksdb"].contains(&env.db_engine.to_lowercase().as_str()) {
        return shutdown_abnormally(err(
            "RuntimeError",
            format!("unrecognised DB engine \"{}\"", env.db_engine),
        ));
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
                info(
                    "Prefetcher",
                    format!(
                        "catching up to daemon height {} ({} blocks behind)",
                        commas(dh),
                        commas(behind)
                    ),
                );
            } else {
                info(
                    "Prefetcher",
                    format!("caught up to daemon height {}", commas(dh)),
                );
            }
        }
        Err(e) => info(
            "Prefetcher",
            format!("ignoring daemon error: {}", py_repr(&e.0)),
        ),
    }
    sync_loop(&srv);
    0
}
