//! The mining pools (`tasks/pools-updater.ts`): the sha of pools-v2.json from `state` and GitHub's
//! API, the download and import, fetched with the image's curl as axios would.

use super::config::Config;
use super::db::{q, Db};
use super::log::log;
use super::VERSION;
use crate::json::{self, s, Value};
use std::net::ToSocketAddrs;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

fn fetch_json(cfg: &Config, url: &str) -> Result<Value, String> {
    let agent = if cfg.str("MEMPOOL", "USER_AGENT") == "mempool" {
        format!("mempool/v{VERSION}")
    } else {
        cfg.str("MEMPOOL", "USER_AGENT")
    };
    let timeout = if cfg.truthy("SOCKS5PROXY", "ENABLED") {
        30
    } else {
        10
    };
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--fail",
        "--max-time",
        &timeout.to_string(),
        "-A",
        &agent,
    ]);
    if cfg.truthy("SOCKS5PROXY", "ENABLED") {
        cmd.arg("--socks5-hostname").arg(format!(
            "{}:{}",
            cfg.str("SOCKS5PROXY", "HOST"),
            cfg.str("SOCKS5PROXY", "PORT")
        ));
    }
    let out = cmd
        .arg(url)
        .output()
        .map_err(|e| format!("spawn curl: {e}"))?;
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_string();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(match out.status.code() {
            Some(6) => {
                let again = (host.as_str(), 443)
                    .to_socket_addrs()
                    .err()
                    .is_some_and(|e| e.to_string().contains("Temporary"));
                format!(
                    "getaddrinfo {} {host}",
                    if again { "EAI_AGAIN" } else { "ENOTFOUND" }
                )
            }
            Some(7) => format!("connect ECONNREFUSED {host}"),
            Some(28) => format!("timeout of {}ms exceeded", timeout * 1000),
            Some(22) => {
                let code = stderr
                    .split("error: ")
                    .nth(1)
                    .and_then(|x| x.split_whitespace().next())
                    .unwrap_or("?")
                    .to_string();
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

pub(super) struct PoolsUpdater {
    pub(super) last_run: Mutex<f64>,
    pub(super) current_sha: Mutex<Option<String>>,
}

const TAG_POOLS: &str = "PoolsUpdater";

impl PoolsUpdater {
    fn query(&self, cfg: &Config, url: &str) -> Option<Value> {
        let mut retry = 0;
        while retry < cfg.num("MEMPOOL", "EXTERNAL_MAX_RETRY") {
            match fetch_json(cfg, url) {
                Ok(v) => return Some(v),
                Err(e) => {
                    log(
                        "err",
                        &format!("Could not connect to Github. Reason: {e}"),
                        Some(TAG_POOLS),
                    );
                    retry += 1;
                }
            }
            std::thread::sleep(Duration::from_secs(
                cfg.num("MEMPOOL", "EXTERNAL_RETRY_INTERVAL").max(0) as u64,
            ));
        }
        None
    }

    pub(super) fn update(&self, cfg: &Config, db: &Db) {
        if !cfg.is_bitcoin() || cfg.get("MEMPOOL", "ENABLED") == Value::Bool(false) {
            return;
        }
        let now = crate::util::unix_now().as_secs_f64();
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
                    log(
                        "err",
                        &format!("Cannot fetch pools-v2.json sha from db. Reason: {e}"),
                        Some(TAG_POOLS),
                    );
                    None
                }
            };
            *self.current_sha.lock().unwrap_or_else(|e| e.into_inner()) = sha;
        }
        let tree_url = cfg.str("MEMPOOL", "POOLS_JSON_TREE_URL");
        let github_sha = self
            .query(cfg, &tree_url)
            .and_then(|tree| match tree.get("tree") {
                Some(Value::Arr(files)) => files
                    .iter()
                    .find(|f| f.get("path").and_then(Value::as_str) == Some("pools-v2.json"))
                    .and_then(|f| f.get("sha").and_then(Value::as_str).map(str::to_string)),
                _ => None,
            });
        let Some(github_sha) = github_sha else {
            log(
                "err",
                &format!("Cannot find \"pools-v2.json\" in git tree ({tree_url})"),
                Some(TAG_POOLS),
            );
            return;
        };
        let current = self
            .current_sha
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        log(
            "debug",
            &format!(
                "pools-v2.json sha | Current: {} | Github: {github_sha}",
                current.as_deref().unwrap_or("null")
            ),
            Some(TAG_POOLS),
        );
        if current.as_deref() == Some(github_sha.as_str()) {
            return;
        }
        if current.is_some()
            && !cfg.is_true("MEMPOOL", "AUTOMATIC_POOLS_UPDATE")
            && std::env::var_os("npm_config_update_pools").is_none()
        {
            log("warn", &format!("Updated mining pools data is available ({github_sha}) but AUTOMATIC_POOLS_UPDATE is disabled"), Some(TAG_POOLS));
            log(
                "info",
                "You can update your mining pools using the --update-pools command flag. You may want to clear your nginx cache as well if applicable",
                Some(TAG_POOLS),
            );
            return;
        }
        let network = if cfg.truthy("SOCKS5PROXY", "ENABLED") {
            "tor"
        } else {
            "clearnet"
        };
        let pools_url = cfg.str("MEMPOOL", "POOLS_JSON_URL");
        if current.is_none() {
            log(
                "info",
                &format!(
                    "Downloading pools-v2.json for the first time from {pools_url} over {network}"
                ),
                Some(TAG_POOLS),
            );
        } else {
            log(
                "warn",
                &format!(
                    "pools-v2.json is outdated, fetching latest from {pools_url} over {network}"
                ),
                Some(TAG_POOLS),
            );
        }
        let Some(pools) = self.query(cfg, &pools_url) else {
            return;
        };
        if !cfg.is_true("DATABASE", "ENABLED") {
            log(
                "info",
                &format!("Mining pools-v2.json ({github_sha}) import completed (no database)"),
                Some(TAG_POOLS),
            );
            return;
        }
        let mut sql =
            String::from("START TRANSACTION; DELETE FROM state where name=\"pools_json_sha\"; ");
        sql.push_str(&format!(
            "INSERT INTO state VALUES('pools_json_sha', NULL, {}); ",
            q(&github_sha)
        ));
        sql.push_str(&unknown_pool_sql());
        if let Value::Arr(list) = &pools {
            for p in list {
                let Some(id) = p.get("id").and_then(Value::as_i64) else {
                    continue;
                };
                let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                let slug: String = name
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_lowercase();
                let addresses = p
                    .get("addresses")
                    .cloned()
                    .unwrap_or(Value::Arr(vec![]))
                    .compact();
                let regexes = p
                    .get("tags")
                    .cloned()
                    .unwrap_or(Value::Arr(vec![]))
                    .compact();
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
            Ok(()) => {
                *self.current_sha.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(github_sha.clone())
            }
            Err(e) => {
                log(
                    "err",
                    &format!(
                        "Could not migrate mining pools, rolling back. Exception: {}",
                        s(&e).compact()
                    ),
                    Some(TAG_POOLS),
                );
                let _ = db.exec("ROLLBACK;");
            }
        }
        log(
            "info",
            &format!("Mining pools-v2.json ({github_sha}) import completed"),
            Some(TAG_POOLS),
        );
    }
}

pub(super) fn unknown_pool_sql() -> String {
    "INSERT INTO pools(name, link, regexes, addresses, slug, unique_id) SELECT \"Unknown\", \"https://learnmeabitcoin.com/technical/coinbase-transaction\", \"[]\", \"[]\", \"unknown\", 0 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM pools WHERE name = \"Unknown\"); ".into()
}
