//! The configuration (`config.ts`): `require(MEMPOOL_CONFIG_FILE || '../mempool-config.json')`
//! and each section merged over config.ts's defaults, with node's errors for a missing,
//! unreadable or broken file.

use super::{BITCOIN_NETWORKS, NODE_VERSION, PACKAGE_DIR, SCRIPT};
use crate::json::{self, s, Value};
use std::path::{Path, PathBuf};

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

pub(super) struct Config(Value);

impl Config {
    pub(super) fn get(&self, section: &str, key: &str) -> Value {
        self.0
            .get(section)
            .and_then(|s| s.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    }
    pub(super) fn str(&self, section: &str, key: &str) -> String {
        match self.get(section, key) {
            Value::Str(x) => x,
            Value::Num(n) => n,
            Value::Bool(b) => b.to_string(),
            _ => String::new(),
        }
    }
    pub(super) fn num(&self, section: &str, key: &str) -> i64 {
        match self.get(section, key) {
            Value::Num(n) => n.parse::<f64>().map_or(0, |f| f as i64),
            Value::Str(x) => x.trim().parse::<f64>().map_or(0, |f| f as i64),
            Value::Bool(b) => i64::from(b),
            _ => 0,
        }
    }
    /// JavaScript truthiness (`if (config.X.Y)`).
    pub(super) fn truthy(&self, section: &str, key: &str) -> bool {
        js_truthy(&self.get(section, key))
    }
    /// `=== true`.
    pub(super) fn is_true(&self, section: &str, key: &str) -> bool {
        self.get(section, key) == Value::Bool(true)
    }
    pub(super) fn network(&self) -> String {
        self.str("MEMPOOL", "NETWORK")
    }
    pub(super) fn is_bitcoin(&self) -> bool {
        BITCOIN_NETWORKS.contains(&self.network().as_str())
    }
    pub(super) fn indexing_enabled(&self) -> bool {
        self.is_bitcoin()
            && self.is_true("DATABASE", "ENABLED")
            && self.num("MEMPOOL", "INDEXING_BLOCKS_AMOUNT") != 0
    }
}

pub(super) fn js_truthy(v: &Value) -> bool {
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
    let Value::Obj(mut out) = defaults else {
        return defaults;
    };
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

pub(super) fn node_fatal(text: &str) -> i32 {
    eprintln!("{text}\n\nNode.js {NODE_VERSION}");
    1
}

pub(super) fn load_config() -> Result<Config, i32> {
    let require = std::env::var("MEMPOOL_CONFIG_FILE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "../mempool-config.json".into());
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
            return Err(node_fatal(&format!(
                "Error: EACCES: permission denied, open '{shown}'"
            )));
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

pub(super) fn normalize(p: &Path) -> PathBuf {
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
}
