//! The backend's state and its loops: the disk cache (`api/disk-cache.ts`), the main loop
//! (`index.ts runMainUpdateLoop`, `api/mempool.ts`) and the statistics (`statistics.ts`).

use super::address::local_validateaddress;
use super::bitcoind::{Core, RpcErr};
use super::config::Config;
use super::db::Db;
use super::electrum::Electrum;
use super::log::{debug, err, info, notice, warn};
use super::node_fs_error;
use super::pools::{unknown_pool_sql, PoolsUpdater};
use crate::json::{self, num, obj, s, Value};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(super) struct Backend {
    pub(super) cfg: Config,
    pub(super) core: Core,
    pub(super) db: Db,
    pub(super) electrum: Arc<Electrum>,
    pub(super) pools: PoolsUpdater,
    pub(super) current_height: AtomicI64,
    pub(super) blocks: Mutex<Vec<Value>>,
    pub(super) last_difficulty_time: Mutex<Option<i64>>,
    pub(super) in_sync: AtomicBool,
    pub(super) mempool_info: Mutex<Value>,
    pub(super) mempool_size: AtomicU64,
    pub(super) core_version: Mutex<String>,
    pub(super) once: Mutex<Vec<&'static str>>,
}

impl Backend {
    pub(super) fn new(cfg: Config, electrum: Arc<Electrum>) -> Backend {
        Backend {
            core: Core::from(&cfg),
            db: Db::from(&cfg),
            electrum,
            pools: PoolsUpdater {
                last_run: Mutex::new(0.0),
                current_sha: Mutex::new(None),
            },
            current_height: AtomicI64::new(0),
            blocks: Mutex::new(Vec::new()),
            last_difficulty_time: Mutex::new(None),
            in_sync: AtomicBool::new(false),
            mempool_info: Mutex::new(obj(vec![("mempoolminfee", num("0.00001"))])),
            mempool_size: AtomicU64::new(0),
            core_version: Mutex::new("?".into()),
            once: Mutex::new(Vec::new()),
            cfg,
        }
    }

    /// A stand-in gap, logged once.
    pub(super) fn standin_once(&self, key: &'static str, msg: &str) {
        let mut once = self.once.lock().unwrap_or_else(|e| e.into_inner());
        if !once.contains(&key) {
            once.push(key);
            warn(format!("archy e2e stand-in: {msg}"));
        }
    }

    pub(super) fn validate_address(&self, addr: &str) -> Result<Value, RpcErr> {
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
    pub(super) fn save_cache(&self) {
        if !self.cfg.truthy("MEMPOOL", "CACHE_ENABLED") {
            return;
        }
        let dir = self.cache_dir();
        debug("Writing mempool and blocks data to disk cache (async)...");
        let blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let summaries: Vec<Value> = blocks
            .iter()
            .map(|b| {
                obj(vec![
                    ("id", b.get("id").cloned().unwrap_or(Value::Null)),
                    ("height", b.get("height").cloned().unwrap_or(Value::Null)),
                    ("transactions", Value::Arr(vec![])),
                ])
            })
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
                std::fs::write(
                    format!("{dir}/tmp-cache{i}.json"),
                    "{\"mempool\":{},\"mempoolArray\":[]}",
                )?;
            }
            std::fs::rename(format!("{dir}/tmp-cache.json"), format!("{dir}/cache.json"))?;
            for i in 1..25 {
                std::fs::rename(
                    format!("{dir}/tmp-cache{i}.json"),
                    format!("{dir}/cache{i}.json"),
                )?;
            }
            Ok(())
        };
        match write() {
            Ok(()) => debug("Mempool and blocks data saved to disk cache"),
            Err(e) => warn(format!(
                "Error writing to cache file: {}",
                node_fs_error(&e, &format!("{dir}/tmp-cache.json"))
            )),
        }
        debug("Writing rbf data to disk cache (async)...");
        let rbf = obj(vec![
            ("network", s(&self.cfg.network())),
            ("rbfCacheSchemaVersion", num(1)),
            (
                "rbf",
                obj(vec![
                    ("txs", Value::Arr(vec![])),
                    ("trees", Value::Arr(vec![])),
                    ("expiring", Value::Arr(vec![])),
                ]),
            ),
        ]);
        let r = std::fs::write(format!("{dir}/tmp-rbfcache.json"), rbf.compact()).and_then(|_| {
            std::fs::rename(
                format!("{dir}/tmp-rbfcache.json"),
                format!("{dir}/rbfcache.json"),
            )
        });
        match r {
            Ok(()) => debug("Rbf data saved to disk cache"),
            Err(e) => warn(format!(
                "Error writing rbf data to cache file: {}",
                node_fs_error(&e, &format!("{dir}/tmp-rbfcache.json"))
            )),
        }
    }

    /// `$loadMempoolCache`.
    pub(super) fn load_cache(&self) {
        if !self.cfg.truthy("MEMPOOL", "CACHE_ENABLED") {
            return;
        }
        let file = format!("{}/cache.json", self.cache_dir());
        let Ok(text) = std::fs::read_to_string(&file) else {
            return;
        };
        let start = Instant::now();
        if text.is_empty() {
            return;
        }
        info("Restoring mempool and blocks data from disk cache");
        let data = match json::parse(&text) {
            Ok(d) => d,
            Err(e) => {
                warn(format!(
                    "Failed to parse mempoool and blocks cache. Skipping. Reason: {e}"
                ));
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
        info(format!(
            "Loaded mempool from disk cache in {} ms",
            start.elapsed().as_millis()
        ));
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

    pub(super) fn unknown_pool_id(&self) -> Result<i64, String> {
        let sel = "SELECT id FROM pools where name = \"Unknown\"";
        let rows = self.db.query(sel)?;
        if let Some(id) = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|v| v.parse().ok())
        {
            return Ok(id);
        }
        if let Err(e) = self.db.exec(&unknown_pool_sql()) {
            err(format!(
                "Unable to insert or update \"Unknown\" mining pool. Reason: {e}"
            ));
        }
        let rows = self.db.query(sel)?;
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| "no Unknown pool".into())
    }

    /// One `runMainUpdateLoop` iteration.
    fn main_iteration(&self) -> Result<usize, String> {
        match self.core.call("getmempoolinfo", vec![]) {
            Ok(mi) => *self.mempool_info.lock().unwrap_or_else(|e| e.into_inner()) = mi,
            Err(e) => debug(format!("updateMempoolInfo: {}", e.message)),
        }
        let raw = self
            .core
            .call("getrawmempool", vec![])
            .map_err(|e| e.message)?;
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

    pub(super) fn main_loop(self: Arc<Self>) {
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

    pub(super) fn statistics_loop(self: Arc<Self>) {
        info("Starting statistics service");
        let now = crate::util::unix_now().as_secs();
        std::thread::sleep(Duration::from_secs(60 - now % 60));
        loop {
            if self.in_sync.load(Ordering::SeqCst) {
                debug("Running statistics");
                let zeros = vec!["0"; 46].join(", ");
                let cols = "added, unconfirmed_transactions, tx_per_second, vbytes_per_second, mempool_byte_weight, fee_data, total_fee, min_fee, vsize_0, vsize_1, vsize_2, vsize_3, vsize_4, vsize_5, vsize_6, vsize_8, vsize_10, vsize_12, vsize_15, vsize_20, vsize_30, vsize_40, vsize_50, vsize_60, vsize_70, vsize_80, vsize_90, vsize_100, vsize_125, vsize_150, vsize_175, vsize_200, vsize_250, vsize_300, vsize_350, vsize_400, vsize_500, vsize_600, vsize_700, vsize_800, vsize_900, vsize_1000, vsize_1200, vsize_1400, vsize_1600, vsize_1800, vsize_2000";
                if let Err(e) = self.db.exec(&format!(
                    "INSERT INTO statistics({cols}) VALUES (NOW(), {zeros})"
                )) {
                    err(format!("$create() error{e}"));
                }
            }
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}
