//! The environment (electrumx/server/env.py, electrumx/lib/env_base.py): required and obsolete
//! variables, integers and booleans as Python reads them, the limits.

use super::coin::{lookup_coin, Coin};
use super::python::{commas, py_int};
use super::services::{is_private, parse_services, Host, Service};
use super::{err, info, warning, PyErr, ENV_ERROR, SERVICE_ERROR};
use std::time::Duration;

#[derive(Clone, Debug)]
pub(super) struct Env {
    pub(super) coin: Coin,
    pub(super) db_dir: String,
    pub(super) daemon_url: String,
    pub(super) services: Vec<Service>,
    pub(super) report_services: Vec<Service>,
    pub(super) peer_discovery: &'static str,
    pub(super) peer_announce: bool,
    pub(super) db_engine: String,
    pub(super) banner_file: Option<String>,
    pub(super) donation_address: String,
    pub(super) log_level: String,
    pub(super) cache_mb: i64,
    pub(super) reorg_limit: i64,
    pub(super) max_send: i64,
    /// DAEMON_POLL_INTERVAL_BLOCKS and _MEMPOOL: the prefetcher's and the mempool's waits.
    pub(super) poll_blocks: Duration,
    pub(super) poll_mempool: Duration,
    pub(super) max_sessions: i64,
    pub(super) cost_soft_limit: i64,
    pub(super) cost_hard_limit: i64,
    pub(super) bw_unit_cost: i64,
    pub(super) initial_concurrent: i64,
    pub(super) request_sleep: i64,
    pub(super) request_timeout: i64,
    pub(super) session_timeout: i64,
    pub(super) drop_client_unknown: bool,
    pub(super) allow_root: bool,
    pub(super) uvloop: bool,
}

pub(super) fn env_get(k: &str) -> Option<String> {
    std::env::var_os(k).map(|v| v.to_string_lossy().into_owned())
}

fn env_bool(k: &str, default: bool) -> bool {
    !env_get(k)
        .unwrap_or_else(|| if default { "Yes".into() } else { String::new() })
        .trim()
        .is_empty()
}

fn env_int(k: &str, default: i64) -> Result<i64, PyErr> {
    match env_get(k) {
        None => Ok(default),
        Some(v) => py_int(&v).ok_or_else(|| {
            err(
                ENV_ERROR,
                format!("cannot convert envvar {k} value {v} to an integer"),
            )
        }),
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
    pub(super) fn load() -> Result<Env, PyErr> {
        // EnvBase.__init__
        let allow_root = env_bool("ALLOW_ROOT", false);
        let uvloop = match env_get("EVENT_LOOP_POLICY") {
            None => false,
            Some(p) if p == "uvloop" => true,
            Some(p) => return Err(err(ENV_ERROR, format!("unknown event loop policy \"{p}\""))),
        };
        // Env.__init__
        let obsolete = [
            "MAX_SUBSCRIPTIONS",
            "MAX_SUBS",
            "MAX_SESSION_SUBS",
            "BANDWIDTH_LIMIT",
            "HOST",
            "TCP_PORT",
            "SSL_PORT",
            "RPC_HOST",
            "RPC_PORT",
            "REPORT_HOST",
            "REPORT_TCP_PORT",
            "REPORT_SSL_PORT",
            "REPORT_HOST_TOR",
            "REPORT_TCP_PORT_TOR",
            "REPORT_SSL_PORT_TOR",
        ];
        let bad: Vec<String> = obsolete
            .iter()
            .filter(|k| env_get(k).is_some_and(|v| !v.is_empty()))
            .map(|k| format!("'{k}'"))
            .collect();
        if !bad.is_empty() {
            return Err(err(
                ENV_ERROR,
                format!("remove obsolete environment variables [{}]", bad.join(", ")),
            ));
        }
        let db_dir = required("DB_DIRECTORY")?;
        let daemon_url = required("DAEMON_URL")?;
        let coin_name = required("COIN")?.trim().to_string();
        let net = env_get("NET")
            .unwrap_or_else(|| "mainnet".into())
            .trim()
            .to_string();
        let coin = lookup_coin(&coin_name, &net)?;
        let pd = env_get("PEER_DISCOVERY")
            .unwrap_or_else(|| "on".into())
            .trim()
            .to_lowercase();
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
        let log_level = env_get("LOG_LEVEL")
            .unwrap_or_else(|| "info".into())
            .to_uppercase();
        let donation_address = env_get("DONATION_ADDRESS").unwrap_or_default();
        let drop_client_unknown = env_bool("DROP_CLIENT_UNKNOWN", false);
        let cache_mb = env_int("CACHE_MB", 1200)?;
        let reorg_limit = env_int("REORG_LIMIT", coin.reorg_limit)?;
        // 8,100,000 since 1.17.0 (2969ab1); MAX_RECV and the daemon poll intervals (ms) are new
        let max_send = env_int("MAX_SEND", 8_100_000)?;
        // MAX_RECV bounds a client frame (NewlineFramer max_size): parsed, not enforced here
        let _max_recv = env_int("MAX_RECV", 1_000_000)?;
        let poll_blocks_ms = env_int("DAEMON_POLL_INTERVAL_BLOCKS", 5000)?;
        let poll_mempool_ms = env_int("DAEMON_POLL_INTERVAL_MEMPOOL", 5000)?;
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
            info(
                "Env",
                "found COST_HARD_LIMIT == COST_SOFT_LIMIT. bumping COST_HARD_LIMIT by 1.",
            );
            cost_hard_limit = cost_soft_limit + 1;
        }
        let services = parse_services(&env_get("SERVICES").unwrap_or_default(), true)?;
        for svc in &services {
            if let Host::Name(n) = &svc.host {
                if n.ends_with(".onion") {
                    return Err(err(
                        SERVICE_ERROR,
                        format!("bad host for SERVICES: {}", svc.text()),
                    ));
                }
            }
        }
        if services
            .iter()
            .any(|s| s.protocol == "ssl" || s.protocol == "wss")
        {
            required("SSL_CERTFILE")?;
            required("SSL_KEYFILE")?;
        }
        let report_services =
            parse_services(&env_get("REPORT_SERVICES").unwrap_or_default(), false)?;
        for svc in &report_services {
            if svc.protocol == "rpc" {
                return Err(err(
                    SERVICE_ERROR,
                    format!("bad protocol for REPORT_SERVICES: {}", svc.protocol),
                ));
            }
            match &svc.host {
                Host::Ip(ip)
                    if ip.is_multicast()
                        || ip.is_unspecified()
                        || (is_private(ip) && peer_announce) =>
                {
                    return Err(err(
                        SERVICE_ERROR,
                        format!("bad IP address for REPORT_SERVICES: {ip}"),
                    ));
                }
                Host::Name(n) if n.eq_ignore_ascii_case("localhost") => {
                    return Err(err(
                        SERVICE_ERROR,
                        format!("bad host for REPORT_SERVICES: {n}"),
                    ));
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
            poll_blocks: Duration::from_millis(poll_blocks_ms.max(0) as u64),
            poll_mempool: Duration::from_millis(poll_mempool_ms.max(0) as u64),
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
