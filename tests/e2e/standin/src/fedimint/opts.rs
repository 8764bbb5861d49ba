//! The options (fedimintd src/lib.rs `ServerOpts`; env names fedimintd-envs src/lib.rs) as clap
//! parses them: flags with env fallbacks, value parsers, argument groups, clap's errors.

use super::url::Url;
use super::VERSION;
use std::net::SocketAddr;

/// id, --long, env, VALUE name (None: a flag), default
type Spec = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

const SPECS: &[Spec] = &[
    (
        "data_dir",
        "--data-dir",
        Some("FM_DATA_DIR"),
        Some("DATA_DIR"),
        None,
    ),
    (
        "bitcoin_network",
        "--bitcoin-network",
        Some("FM_BITCOIN_NETWORK"),
        Some("BITCOIN_NETWORK"),
        Some("regtest"),
    ),
    (
        "bitcoind_username",
        "--bitcoind-username",
        Some("FM_BITCOIND_USERNAME"),
        Some("BITCOIND_USERNAME"),
        None,
    ),
    (
        "bitcoind_password",
        "--bitcoind-password",
        Some("FM_BITCOIND_PASSWORD"),
        Some("BITCOIND_PASSWORD"),
        None,
    ),
    (
        "bitcoind_url",
        "--bitcoind-url",
        Some("FM_BITCOIND_URL"),
        Some("BITCOIND_URL"),
        None,
    ),
    (
        "bitcoind_url_password_file",
        "--bitcoind-url-password-file",
        Some("FM_BITCOIND_URL_PASSWORD_FILE"),
        Some("BITCOIND_URL_PASSWORD_FILE"),
        None,
    ),
    (
        "esplora_url",
        "--esplora-url",
        Some("FM_ESPLORA_URL"),
        Some("ESPLORA_URL"),
        None,
    ),
    (
        "bind_p2p",
        "--bind-p2p",
        Some("FM_BIND_P2P"),
        Some("BIND_P2P"),
        Some("0.0.0.0:8173"),
    ),
    (
        "bind_api",
        "--bind-api",
        Some("FM_BIND_API"),
        Some("BIND_API"),
        Some("0.0.0.0:8174"),
    ),
    (
        "bind_ui",
        "--bind-ui",
        Some("FM_BIND_UI"),
        Some("BIND_UI"),
        Some("127.0.0.1:8175"),
    ),
    (
        "p2p_url",
        "--p2p-url",
        Some("FM_P2P_URL"),
        Some("P2P_URL"),
        None,
    ),
    (
        "api_url",
        "--api-url",
        Some("FM_API_URL"),
        Some("API_URL"),
        None,
    ),
    (
        "enable_iroh",
        "--enable-iroh",
        Some("FM_ENABLE_IROH"),
        None,
        None,
    ),
    (
        "iroh_dns",
        "--iroh-dns",
        Some("FM_IROH_DNS"),
        Some("IROH_DNS"),
        None,
    ),
    (
        "iroh_relays",
        "--iroh-relays",
        Some("FM_IROH_RELAY"),
        Some("IROH_RELAYS"),
        None,
    ),
    (
        "db_checkpoint_retention",
        "--db-checkpoint-retention",
        Some("FM_DB_CHECKPOINT_RETENTION"),
        Some("DB_CHECKPOINT_RETENTION"),
        Some("1"),
    ),
    (
        "bind_tokio_console",
        "--bind-tokio-console",
        Some("FM_BIND_TOKIO_CONSOLE"),
        Some("BIND_TOKIO_CONSOLE"),
        None,
    ),
    ("with_jaeger", "--with-jaeger", None, None, None),
    (
        "bind_metrics",
        "--bind-metrics",
        Some("FM_BIND_METRICS"),
        Some("BIND_METRICS"),
        Some("127.0.0.1:8176"),
    ),
    (
        "force_api_secrets",
        "--force-api-secrets",
        Some("FM_FORCE_API_SECRETS"),
        Some("FORCE_API_SECRETS"),
        Some(""),
    ),
    (
        "iroh_api_max_connections",
        "--iroh-api-max-connections",
        Some("FM_IROH_API_MAX_CONNECTIONS"),
        Some("IROH_API_MAX_CONNECTIONS"),
        Some("1000"),
    ),
    (
        "iroh_api_max_requests_per_connection",
        "--iroh-api-max-requests-per-connection",
        Some("FM_IROH_API_MAX_REQUESTS_PER_CONNECTION"),
        Some("IROH_API_MAX_REQUESTS_PER_CONNECTION"),
        Some("50"),
    ),
];

const USAGE: &str = "Usage: fedimintd [OPTIONS] --data-dir <DATA_DIR> <--bitcoind-url <BITCOIND_URL>|--esplora-url <ESPLORA_URL>>";

fn spec(id: &str) -> &'static Spec {
    SPECS.iter().find(|s| s.0 == id).expect("known id")
}

/// How clap names an argument in errors: `--data-dir <DATA_DIR>`
fn shown(id: &str) -> String {
    let s = spec(id);
    s.3.map_or(s.1.to_string(), |v| format!("{} <{v}>", s.1))
}

fn clap_error(msg: &str) -> Result<Opts, i32> {
    eprint!("error: {msg}\n\n{USAGE}\n\nFor more information, try '--help'.\n");
    Err(2)
}

pub(super) struct Opts {
    given: Vec<(&'static str, String)>,
}

impl Opts {
    pub(super) fn get(&self, id: &str) -> Option<&str> {
        self.given
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| v.as_str())
            .or(spec(id).4)
    }

    fn present(&self, id: &str) -> bool {
        self.given.iter().any(|(k, _)| *k == id)
    }
}

pub(super) fn parse_args(argv: &[String]) -> Result<Opts, i32> {
    let mut given: Vec<(&'static str, String)> = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        match a.as_str() {
            "-h" | "--help" => {
                println!("Usage: fedimintd [OPTIONS]\n\nOptions: (archy e2e stand-in of fedimintd {VERSION}; see fedimintd --help upstream)");
                for s in SPECS {
                    println!(
                        "      {}{}",
                        shown(s.0),
                        s.2.map_or(String::new(), |e| format!(" [env: {e}=]"))
                    );
                }
                return Err(0);
            }
            "-V" | "--version" => {
                println!("fedimintd {VERSION}");
                return Err(0);
            }
            _ => {}
        }
        let (name, inline) = a
            .split_once('=')
            .map_or((a.as_str(), None), |(n, v)| (n, Some(v.to_string())));
        let Some(sp) = SPECS.iter().find(|s| s.1 == name && a.starts_with("--")) else {
            return clap_error(&format!("unexpected argument '{a}' found"));
        };
        if given.iter().any(|(k, _)| *k == sp.0) {
            return clap_error(&format!(
                "the argument '{}' cannot be used multiple times",
                shown(sp.0)
            ));
        }
        let value = match (sp.3, inline) {
            (None, None) => "true".to_string(),
            (None, Some(v)) => {
                return clap_error(&format!(
                    "unexpected value '{v}' for '{}' found; no more were expected",
                    sp.1
                ))
            }
            (Some(_), Some(v)) => v,
            (Some(_), None) => match argv.get(i) {
                Some(v) if !v.starts_with("--") => {
                    i += 1;
                    v.clone()
                }
                _ => {
                    return clap_error(&format!(
                        "a value is required for '{}' but none was supplied",
                        shown(sp.0)
                    ))
                }
            },
        };
        given.push((sp.0, value));
    }
    for sp in SPECS {
        if given.iter().any(|(k, _)| *k == sp.0) {
            continue;
        }
        if let Some(v) =
            sp.2.and_then(|e| std::env::var(e).ok())
                .filter(|v| !v.is_empty())
        {
            given.push((sp.0, v));
        }
    }
    // value parsers
    for (id, v) in &given {
        let bad =
            |why: &str| clap_error(&format!("invalid value '{v}' for '{}': {why}", shown(id)));
        let ok = match *id {
            "bitcoin_network" => {
                if !["bitcoin", "testnet", "testnet4", "signet", "regtest"].contains(&v.as_str()) {
                    return bad(&format!("failed to parse {v} as network"));
                }
                true
            }
            "bind_p2p" | "bind_api" | "bind_ui" | "bind_metrics" | "bind_tokio_console" => {
                v.parse::<SocketAddr>().is_ok()
            }
            "bitcoind_url" | "esplora_url" | "p2p_url" | "api_url" | "iroh_dns" => {
                match Url::parse(v) {
                    Ok(_) => true,
                    Err(e) => return bad(&e),
                }
            }
            "db_checkpoint_retention"
            | "iroh_api_max_connections"
            | "iroh_api_max_requests_per_connection" => {
                if v.parse::<u64>().is_err() {
                    return bad("invalid digit found in string");
                }
                true
            }
            "enable_iroh" | "with_jaeger" => {
                if v != "true" && v != "false" {
                    eprint!("error: invalid value '{v}' for '{}'\n  [possible values: true, false]\n\nFor more information, try '--help'.\n", spec(id).1);
                    return Err(2);
                }
                true
            }
            _ => true,
        };
        if !ok {
            return bad("invalid socket address syntax");
        }
    }
    let o = Opts { given };
    if o.present("bitcoind_password") && o.present("bitcoind_url_password_file") {
        return clap_error(&format!(
            "the argument '{}' cannot be used with '{}'",
            shown("bitcoind_password"),
            shown("bitcoind_url_password_file")
        ));
    }
    let mut missing = Vec::new();
    if !o.present("data_dir") {
        missing.push(shown("data_dir"));
    }
    if !o.present("bitcoind_url") && !o.present("esplora_url") {
        missing.push(format!(
            "<{}|{}>",
            shown("bitcoind_url"),
            shown("esplora_url")
        ));
    }
    if o.present("bitcoind_url") {
        if !o.present("bitcoind_username") {
            missing.push(shown("bitcoind_username"));
        }
        if !o.present("bitcoind_password") && !o.present("bitcoind_url_password_file") {
            missing.push(format!(
                "<{}|{}>",
                shown("bitcoind_password"),
                shown("bitcoind_url_password_file")
            ));
        }
    }
    for id in ["iroh_dns", "iroh_relays"] {
        if o.present(id) && o.get("enable_iroh") != Some("true") {
            missing.push(shown("enable_iroh"));
        }
    }
    if !missing.is_empty() {
        missing.dedup();
        let list: String = missing.iter().map(|m| format!("  {m}\n")).collect();
        return clap_error(&format!(
            "the following required arguments were not provided:\n{}",
            list.trim_end()
        ));
    }
    Ok(o)
}
