//! NBXplorer 2.6.10 (`dotnet NBXplorer.dll`, image docker.io/nicolasdorier/nbxplorer:2.6.10), as
//! BTCPay Server, archy and a real PostgreSQL see it. Upstream files are btcpayserver/NBXplorer at
//! tag v2.6.10 unless another repository is named.
//!
//! Configuration (`NicolasDorier.StandardConfiguration` 2.0.1, NicolasDorier/NicolasDorier.Tools
//! `StandardConfiguration/DefaultConfiguration.cs`): `NBXPLORER_*` variables, then the ini file
//! `<datadir>/<Main|TestNet|RegTest|...>/settings.config` (written with a commented template if
//! missing: "Creating configuration file"), then `--key=value` arguments, later ones winning;
//! `bind`/`port` become the listen address (default 127.0.0.1:24444 on mainnet,
//! `NBXplorerDefaultSettings.cs`); keys are read as `btc.rpc.url` or `btcrpcurl`
//! (`Configuration/ConfigurationExtensions.cs`). `Configuration/ExplorerConfiguration.cs`,
//! `DefaultConfiguration.cs`, `Configuration/RPCArgs.cs`: network (an unknown one is a
//! ConfigException: logged, exit 0, as `Program.cs` catches it), chains (only BTC is modelled),
//! RPC credentials (url+user+password, else `btc.rpc.cookiefile`, else `btc.rpc.auth`, else
//! `$HOME/.bitcoin/.cookie` where NBitcoin has a default, else "RPC connection settings not
//! configured"), `btc.node.endpoint`, `signalfilesdir`, `noauth`, `instancename`, gap sizes;
//! `NBXPLORER_POSTGRES` is required ("POSTGRES is required", `ConfigurationExtensions.cs`).
//! With neither `bind` nor `port`, ASPNETCORE_URLS decides, as StandardConfiguration leaves
//! `urls` unset then. Run elsewhere than next to `NBXplorer.dll` (another WORKDIR), the .NET
//! muxer's "The application 'NBXplorer.dll' does not exist." and status 145 (wording and code
//! inferred, not verified). SIGTERM: exit 0 at once, the signal file removed.
//!
//! Startup order (`Program.cs`, `Extensions.cs` AddNBXplorer, `Startup.cs`): database setup first
//! (`HostedServices/DatabaseSetupHostedService.cs`): connect (`Extensions.cs`
//! ReliableOpenConnectionAsync: only transient server errors are retried, 10 times; anything
//! else, a refused connection or a wrong password, leaves `host.StartAsync` and the process dies
//! of the unhandled exception, exit 134 as .NET aborts); on 3D000 reconnect without a database
//! (the server then picks the one named like the user) and `CREATE DATABASE <name> TEMPLATE
//! 'template0' LC_CTYPE 'C' LC_COLLATE 'C' ENCODING 'UTF8'`; then the migrations not yet listed
//! in `nbxv1_migrations`, each with its INSERT. The stand-in's scripts are its own, a subset of
//! upstream's `DBScripts/001.Migrations.sql`, `002.Model.sql`, `003.Legacy.sql` (same tables and
//! columns: nbxv1_migrations, blks, scripts, descriptors, descriptors_scripts, wallets,
//! wallets_descriptors, wallets_scripts, nbxv1_settings; no triggers or functions) recorded under
//! those three names. Then the indexer starts, `<datadir>/<Main>/.cookie` is written
//! (`CookieRepository.cs`: `__cookie__:<64 hex>`, new every start, unless noauth) and the port
//! opens ("Now listening on: ...").
//!
//! PostgreSQL is reached by running Debian's `psql` (the image has postgresql-client-17); the
//! Npgsql connection string is parsed as Npgsql 10.0.3 does (npgsql/npgsql
//! `src/Npgsql/NpgsqlConnectionStringBuilder.cs`: keywords and synonyms, "Couldn't set X" for an
//! unknown one) and the password found as Npgsql does (`Internal/NpgsqlConnector.Auth.cs`
//! GetPassword, `PgPassFile.cs`: Password, PGPASSWORD, then `Passfile`/PGPASSFILE/~/.pgpass,
//! first matching `host:port:db:user:password` line, no permission check, read only when the
//! server asks); errors are reported as Npgsql's exceptions (`PostgresException.cs` IsTransient).
//!
//! The indexer (`Backend/Indexer.cs` ConnectNode, IndexerLoop, UpdateState;
//! `RPCClientExtensions.cs`; MetacoSA/NBitcoin v10.0.8 `NBitcoin/RPC/RPCClient.cs`,
//! `NBitcoin/Protocol/Node.cs`, `NodeConnectionParameters.cs`): a P2P connection to
//! `btc.node.endpoint` with the handshake (version with user agent `NBXplorer-<random>`,
//! services 0, relay; sendaddrv2 if the peer is at 70016+; verack; then sendheaders), then RPC:
//! getblockchaininfo (-28 and "Loading ..." are retried; any other failure, a 401 included, logs
//! "Error connecting to RPC server ..." and the loop retries after 0, 5, 10 ... 60 s; a cookie is
//! re-read on 401 as NBitcoin's TryRenewCookie does), the capability probes and getnetworkinfo
//! (minimum version 150000), getindexinfo txindex, getpeerinfo (whitelisted or not, found by its
//! user agent or not: the upstream warnings), getnetworkinfo, getblockchaininfo while the node is
//! in IBD (state CoreSynching; IsSynching: initialblockdownload, a median time over 150 days old,
//! or headers - blocks > 6), createwallet/loadwallet (errors tolerated as upstream), getblockheader
//! of the tip, state NBXplorerSynching, getheaders over P2P from the saved locator or the tip's
//! parent, then Ready when headers - last indexed height < 6. A disconnect sets NotStarted and
//! reconnects. Each state change is logged ("BTC: Node state changed: A => B",
//! `Events/BitcoinDStateChangedEvent.cs`) and drives `<signalfilesdir>/btc_fully_synched`
//! (`HostedServices/RPCReadyFileHostedService.cs`: the unix time when Ready, deleted otherwise, at
//! start and at stop). Not modelled: indexing blocks and transactions (the bitcoind stand-in's
//! chain does not grow; announced headers are ignored), the watchdog, regtest mining, events,
//! websockets, PSBTs, UTXOs, balances.
//!
//! HTTP (`Startup.cs`, `Authentication/BasicAuthenticationHandler.cs`: Basic with the cookie,
//! user and password compared case-insensitively, 401 with an empty body otherwise, everything
//! anonymous under noauth; `Filters/NBXplorerExceptionFilter.cs` errors as
//! `{"httpCode","code","message","reason"}`):
//! - `GET /health`, anonymous (`HealthChecks/NodesHealthCheck.cs`, `HealthCheckWriters.cs`):
//!   200 with indented JSON, "Healthy" when the indexer is CoreSynching, NBXplorerSynching or
//!   Ready, "Degraded" ("Some nodes are not running") otherwise, data `{"BTC": "<state>"}`.
//! - `GET /v1/cryptos/BTC/status` (`Controllers/MainController.cs` GetStatus,
//!   `NBXplorer.Client/Models/StatusResult.cs`): bitcoinStatus from a live getblockchaininfo,
//!   isFullySynched = node synced, state Ready and headers - syncHeight < 3.
//! - `POST /v1/cryptos/BTC/derivations/{scheme}` (`Controllers/DerivationSchemesController.cs`
//!   TrackWallet, `Backend/Repository.cs` GenerateAddressesCore): rows in wallets, descriptors,
//!   wallets_descriptors, then 30 addresses per feature (Deposit 0/*, Change 1/*) in scripts,
//!   descriptors_scripts, wallets_scripts; wallet and descriptor ids as
//!   `NBXplorer.Client/DBUtils.cs` computes them. `GET` of the same path: 200 if tracked, else 404.
//! - `GET .../derivations/{scheme}/addresses/unused?feature=&skip=&reserve=` (MainController
//!   GetUnusedAddress, Repository GetUnused): the first unused row, marked used when reserve
//!   (the pool refilled to 30 once the gap falls under 20), as KeyPathInformation JSON
//!   (`Models/KeyPathInformation.cs`); `null` if the scheme is not tracked.
//! - `GET /v1/cryptos/BTC/fees/{blocks}` (estimatesmartfee) and `POST /v1/cryptos/BTC/rpc`
//!   (only the upstream whitelist of methods is forwarded).
//!
//! Derivation schemes: a single extended public key (xpub on mainnet, tpub elsewhere, checked
//! by its base58check and version) with an optional `-[legacy]`, `-[p2sh]` or `-[taproot]`;
//! multisig and other forms are refused as invalid. ADDRESSES ARE NOT BIP32-DERIVED: the
//! stand-in has no secp256k1, so each address is a well-formed one (bech32/bech32m/base58check,
//! the scheme's type) whose 20- or 32-byte program is SHA-256 of the scheme and key path. They
//! are deterministic and distinct, and no key controls them.

use crate::http::{self, Request, Response};
use crate::json::{self, num, obj, s, Value};
use base64::Engine as _;
use std::collections::HashMap;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const VERSION: &str = "2.6.10";
const CAT_CONF: &str = "Configuration";
const CAT_DB: &str = "NBXplorer.DatabaseSetup";
const CAT_IDX: &str = "NBXplorer.Indexer.BTC";
const CAT_EVT: &str = "NBXplorer.Events";

// ---------------------------------------------------------------------------------------------
// shared with the BTCPay stand-in: .NET-style logs, StandardConfiguration, networks, exits

/// A line as the upstream console logger writes it: `info: Category:  message`.
pub(crate) fn dlog(level: &str, category: &str, msg: &str) {
    let mut head = format!("{category}: ");
    while head.len() < 18 {
        head.push(' ');
    }
    crate::log!("{level}: {head}{}", msg.replace('\n', "\n      "));
}

/// How a .NET program ends early: a ConfigException caught in Main (logged, exit 0) or an
/// unhandled exception (the runtime prints it and aborts: exit 134).
pub(crate) enum Exit {
    Config(String),
    Crash(String),
}

pub(crate) fn finish(e: Exit, category: &str) -> i32 {
    match e {
        Exit::Config(m) => {
            if !m.is_empty() {
                dlog("fail", category, &m);
            }
            0
        }
        Exit::Crash(m) => {
            crate::log!("Unhandled exception. {m}");
            134
        }
    }
}

/// Microsoft.Extensions.Configuration as StandardConfiguration layers it: keys are
/// case-insensitive, later layers win.
#[derive(Default, Clone)]
pub(crate) struct DotnetConf {
    layers: Vec<Vec<(String, String)>>,
    /// `--bind` values from the command line (they add to the `bind` key)
    cli_binds: Vec<String>,
}

impl DotnetConf {
    fn raw(&self, k: &str) -> Option<String> {
        for layer in self.layers.iter().rev() {
            if let Some((_, v)) = layer.iter().rev().find(|(lk, _)| lk == k) {
                return Some(v.clone());
            }
        }
        None
    }

    /// `configuration[key] ?? configuration[key without dots]` (ConfigurationExtensions.cs).
    pub fn get(&self, key: &str) -> Option<String> {
        let k = key.to_ascii_lowercase();
        self.raw(&k).or_else(|| self.raw(&k.replace('.', "")))
    }

    pub fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_string())
    }

    /// GetOrDefault<bool>: 1/true/0/false, anything else a FormatException (not caught: a crash).
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, Exit> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v == "1" || v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v == "0" || v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => {
                Err(Exit::Crash("System.FormatException: One of the identified items was in an invalid format.".into()))
            }
        }
    }

    pub fn int(&self, key: &str, default: i64) -> Result<i64, Exit> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                Exit::Crash(format!("System.FormatException: The input string '{v}' was not in a correct format."))
            }),
        }
    }

    fn env_layer(prefix: &str) -> Vec<(String, String)> {
        std::env::vars()
            .filter_map(|(k, v)| {
                let head = k.get(..prefix.len())?;
                (k.len() > prefix.len() && head.eq_ignore_ascii_case(prefix))
                    .then(|| (k[prefix.len()..].replace("__", ":").to_ascii_lowercase(), v))
            })
            .collect()
    }

    /// Microsoft.Extensions.Configuration.Ini: `key=value`, `[section]`, `;`/`#`/`/` comments.
    fn ini_layer(path: &Path) -> Result<Vec<(String, String)>, Exit> {
        let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
        let mut out: Vec<(String, String)> = Vec::new();
        let mut section = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') || line.starts_with('/') {
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') {
                section = format!("{}:", line[1..line.len() - 1].trim());
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(Exit::Crash(format!("System.FormatException: Unrecognized line format: '{line}'.")));
            };
            let key = format!("{section}{}", k.trim()).to_ascii_lowercase();
            let mut v = v.trim();
            if v.len() > 1 && v.starts_with('"') && v.ends_with('"') {
                v = &v[1..v.len() - 1];
            }
            if out.iter().any(|(k2, _)| *k2 == key) {
                return Err(Exit::Crash(format!("System.FormatException: A duplicate key '{key}' was found.")));
            }
            out.push((key, v.to_string()));
        }
        Ok(out)
    }

    fn cli_layer(args: &[String]) -> Result<(Vec<(String, String)>, Vec<String>), Exit> {
        let mut out = Vec::new();
        let mut binds = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if matches!(a.as_str(), "-?" | "-h" | "--help") {
                println!("Usage: dotnet <App>.dll [options] (the archy e2e stand-in: options are --key=value)");
                return Err(Exit::Config(String::new()));
            }
            let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
                return Err(Exit::Config(format!("Unrecognized command or argument '{a}'")));
            };
            let (k, v) = match body.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => match args.get(i + 1) {
                    Some(next) if !next.starts_with('-') => {
                        i += 1;
                        (body.to_string(), next.clone())
                    }
                    _ => (body.to_string(), "true".to_string()),
                },
            };
            let k = match k.as_str() {
                "c" => "conf",
                "p" => "port",
                "b" => "bind",
                "d" => "datadir",
                "n" => "network",
                "v" => "verbose",
                other => other,
            }
            .to_ascii_lowercase();
            if k == "bind" {
                binds.extend(v.split(';').map(str::to_string));
            }
            out.push((k, v));
            i += 1;
        }
        Ok((out, binds))
    }

    /// The variables and arguments alone: what picks the network before the file is read.
    pub fn early(prefix: &str, args: &[String]) -> DotnetConf {
        DotnetConf {
            layers: vec![Self::env_layer(prefix), Self::cli_layer(args).map(|c| c.0).unwrap_or_default()],
            cli_binds: vec![],
        }
    }

    /// StandardConfiguration's CreateConfigurationBuilder: `datadir_of` and `conf_file_of` are
    /// the program's GetDefaultDataDir and GetDefaultConfigurationFile.
    pub fn load(
        prefix: &str,
        args: &[String],
        datadir_of: &dyn Fn(&DotnetConf) -> Result<PathBuf, Exit>,
        conf_file_of: &dyn Fn(&DotnetConf) -> Result<PathBuf, Exit>,
        template: &str,
    ) -> Result<DotnetConf, Exit> {
        let env = Self::env_layer(prefix);
        let (cli, cli_binds) = Self::cli_layer(args)?;
        let mut conf = DotnetConf { layers: vec![env.clone(), cli.clone()], cli_binds: cli_binds.clone() };
        if let Some(c) = conf.raw("conf") {
            if Path::new(&c).exists() {
                conf.layers = vec![env.clone(), Self::ini_layer(Path::new(&c))?, cli.clone()];
            }
        }
        let datadir = match conf.raw("datadir") {
            Some(d) => PathBuf::from(d),
            None => datadir_of(&conf)?,
        };
        if let Err(e) = std::fs::create_dir_all(&datadir) {
            return Err(Exit::Crash(format!(
                "System.UnauthorizedAccessException: Access to the path '{}' is denied. ({e})",
                datadir.display()
            )));
        }
        dlog("info", CAT_CONF, &format!("Data Directory: {}", absolute(&datadir).display()));
        let conf_file = match conf.raw("conf") {
            Some(c) => PathBuf::from(c),
            None => conf_file_of(&conf)?,
        };
        dlog("info", CAT_CONF, &format!("Configuration File: {}", absolute(&conf_file).display()));
        if !conf_file.exists() {
            dlog("info", CAT_CONF, "Creating configuration file");
            if let Err(e) = std::fs::write(&conf_file, template) {
                return Err(Exit::Crash(format!("System.IO.IOException: {}: {e}", conf_file.display())));
            }
        }
        let ini = Self::ini_layer(&conf_file)?;
        Ok(DotnetConf { layers: vec![env, ini, cli], cli_binds })
    }

    /// The listen addresses StandardConfiguration puts in `urls`: `--bind`s and `bind`, each
    /// `host[:port]` (the port defaults to `port`, then the program's); a host that is neither an
    /// IP nor resolvable is "Invalid IP Endpoint" (a crash).
    pub fn binds(&self, default_ip: &str, default_port: u16) -> Result<Vec<String>, Exit> {
        let mut binds = self.cli_binds.clone();
        if let Some(b) = self.get("bind").filter(|b| !b.is_empty()) {
            binds.push(b);
        }
        if self.get("port").is_none() && binds.is_empty() {
            // no `urls` from StandardConfiguration: Kestrel takes ASPNETCORE_URLS
            if let Ok(urls) = std::env::var("ASPNETCORE_URLS").map(|u| u.trim().to_string()) {
                if !urls.is_empty() {
                    return Ok(urls
                        .split(';')
                        .filter_map(|u| {
                            u.trim()
                                .strip_prefix("http://")
                                .map(|h| h.trim_end_matches('/').replace('*', "0.0.0.0").replace('+', "0.0.0.0"))
                        })
                        .collect());
                }
            }
        }
        let port = self.get("port").and_then(|p| p.trim().parse::<u16>().ok()).unwrap_or(default_port);
        if binds.is_empty() {
            binds.push(format!("{default_ip}:{port}"));
        }
        binds.iter().map(|b| convert_to_endpoint(b, port)).collect()
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// StandardConfiguration's ConvertToEndpoint.
fn convert_to_endpoint(spec: &str, default_port: u16) -> Result<String, Exit> {
    let mut host = spec.to_string();
    let mut port = default_port;
    if let Some(colon) = spec.rfind(':') {
        let bracketed = spec.starts_with('[') && colon > 0 && spec.as_bytes()[colon - 1] == b']';
        let multi = spec[..colon].contains(':');
        if colon == 0 || bracketed || !multi {
            if let Ok(n) = spec[colon + 1..].parse::<u32>() {
                if n > 0 && n < 0x10000 {
                    host = spec[..colon].to_string();
                    port = n as u16;
                }
            }
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        host = host[1..host.len() - 1].to_string();
    }
    let ip = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match (host.as_str(), 0u16).to_socket_addrs().ok().and_then(|mut a| a.next()) {
            Some(a) => a.ip(),
            None => return Err(Exit::Crash("System.FormatException: Invalid IP Endpoint".into())),
        },
    };
    Ok(match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    })
}

/// A Bitcoin network as NBitcoin and the two apps name it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Net {
    /// NBitcoin's ChainName, as status JSON and logs print it
    pub chain_name: &'static str,
    /// NBXplorerDefaultSettings.GetFolderName
    pub folder: &'static str,
    /// bitcoind's name for the chain (p2p::magic)
    pub core: &'static str,
    pub nbx_port: u16,
    pub btcpay_port: u16,
    pub rpc_port: u16,
    pub p2p_port: u16,
    pub hrp: &'static str,
    pub p2pkh: u8,
    pub p2sh: u8,
    pub xpub: [u8; 4],
}

pub(crate) const MAIN: Net = Net {
    chain_name: "Mainnet",
    folder: "Main",
    core: "main",
    nbx_port: 24444,
    btcpay_port: 23000,
    rpc_port: 8332,
    p2p_port: 8333,
    hrp: "bc",
    p2pkh: 0x00,
    p2sh: 0x05,
    xpub: [0x04, 0x88, 0xb2, 0x1e],
};

fn net_named(name: &str) -> Option<Net> {
    let test = |chain_name, folder, core, nbx_port, btcpay_port, rpc_port, p2p_port, hrp| Net {
        chain_name,
        folder,
        core,
        nbx_port,
        btcpay_port,
        rpc_port,
        p2p_port,
        hrp,
        p2pkh: 0x6f,
        p2sh: 0xc4,
        xpub: [0x04, 0x35, 0x87, 0xcf],
    };
    // NBitcoin's names and aliases (NBitcoin/Bitcoin.*.cs)
    Some(match name.to_ascii_lowercase().as_str() {
        "main" | "mainnet" | "btc-mainnet" => MAIN,
        "testnet" | "test" | "testnet3" | "btc-testnet" => {
            test("Testnet", "TestNet", "test", 24445, 23001, 18332, 18333, "tb")
        }
        "regtest" | "reg" | "regnet" | "btc-regtest" => {
            test("Regtest", "RegTest", "regtest", 24446, 23002, 18443, 18444, "bcrt")
        }
        "signet" | "bitcoin-signet" | "btc-signet" => {
            test("Signet", "Signet", "signet", 24447, 23001, 38332, 38333, "tb")
        }
        "testnet4" | "test4" | "btc-testnet4" => {
            test("Testnet4", "Testnet4", "testnet4", 24447, 23001, 48332, 48333, "tb")
        }
        _ => return None,
    })
}

/// DefaultConfiguration.GetNetworkType (both apps): `network`, else the legacy flags.
pub(crate) fn network_of(conf: &DotnetConf) -> Result<Net, Exit> {
    if let Some(n) = conf.get("network") {
        return net_named(&n).ok_or_else(|| Exit::Config(format!("Invalid network parameter '{n}'")));
    }
    Ok(if conf.bool("regtest", false)? {
        net_named("regtest").unwrap_or(MAIN)
    } else if conf.bool("testnet", false)? {
        net_named("testnet").unwrap_or(MAIN)
    } else if conf.bool("signet", false)? {
        net_named("signet").unwrap_or(MAIN)
    } else {
        MAIN
    })
}

pub(crate) fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `%XX` decoding of a path segment or query value.
pub(crate) fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/a/b?x=1&y=2` -> (["a", "b"] decoded, {x: 1, y: 2} with lower-case keys).
pub(crate) fn split_target(target: &str) -> (Vec<String>, HashMap<String, String>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segs = path.split('/').filter(|p| !p.is_empty()).map(|p| pct_decode(&p.replace('+', "%2B"))).collect();
    let q = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k).to_ascii_lowercase(), pct_decode(v))
        })
        .collect();
    (segs, q)
}

pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// How .NET's HttpClient words a failure of `http::request` to `host:port`.
pub(crate) fn dotnet_http_error(e: &str, hostport: &str, timeout_s: u64) -> String {
    if e.contains("Connection refused") {
        format!("Connection refused ({hostport})")
    } else if e.starts_with("resolving") {
        format!("Name or service not known ({hostport})")
    } else if e.contains("timeout") || e.contains("timed out") {
        format!("The request was canceled due to the configured HttpClient.Timeout of {timeout_s} seconds elapsing.")
    } else if e.contains("No route to host") {
        format!("No route to host ({hostport})")
    } else {
        "An error occurred while sending the request.".to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL through psql, with Npgsql's connection strings, password lookup and exceptions

pub(crate) mod pg {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    #[derive(Clone, Debug, Default)]
    pub struct ConnString {
        pub host: Option<String>,
        pub port: u16,
        pub database: Option<String>,
        pub username: Option<String>,
        pub password: Option<String>,
        pub passfile: Option<String>,
        pub application_name: Option<String>,
        pub timeout: u64,
        pub ssl_mode: Option<String>,
    }

    /// Npgsql's keywords (display names, property names, synonyms), upper case.
    const KNOWN: &[&str] = &[
        "ENLIST",
        "SEARCH PATH",
        "SEARCHPATH",
        "CLIENT ENCODING",
        "CLIENTENCODING",
        "ENCODING",
        "TIMEZONE",
        "SSL NEGOTIATION",
        "SSLNEGOTIATION",
        "GSS ENCRYPTION MODE",
        "GSSENCRYPTIONMODE",
        "SSL CERTIFICATE",
        "SSLCERTIFICATE",
        "SSL KEY",
        "SSLKEY",
        "SSL PASSWORD",
        "SSLPASSWORD",
        "ROOT CERTIFICATE",
        "ROOTCERTIFICATE",
        "CHECK CERTIFICATE REVOCATION",
        "CHECKCERTIFICATEREVOCATION",
        "KERBEROS SERVICE NAME",
        "KERBEROSSERVICENAME",
        "KRBSRVNAME",
        "INCLUDE REALM",
        "INCLUDEREALM",
        "PERSIST SECURITY INFO",
        "PERSISTSECURITYINFO",
        "LOG PARAMETERS",
        "LOGPARAMETERS",
        "INCLUDE ERROR DETAIL",
        "INCLUDEERRORDETAIL",
        "INCLUDE FAILED BATCHED COMMAND",
        "INCLUDEFAILEDBATCHEDCOMMAND",
        "CHANNEL BINDING",
        "CHANNELBINDING",
        "REQUIRE AUTH",
        "REQUIREAUTH",
        "POOLING",
        "MINIMUM POOL SIZE",
        "MINPOOLSIZE",
        "MAXIMUM POOL SIZE",
        "MAXPOOLSIZE",
        "CONNECTION IDLE LIFETIME",
        "CONNECTIONIDLELIFETIME",
        "CONNECTION PRUNING INTERVAL",
        "CONNECTIONPRUNINGINTERVAL",
        "CONNECTION LIFETIME",
        "CONNECTIONLIFETIME",
        "LOAD BALANCE TIMEOUT",
        "COMMAND TIMEOUT",
        "COMMANDTIMEOUT",
        "CANCELLATION TIMEOUT",
        "CANCELLATIONTIMEOUT",
        "TARGET SESSION ATTRIBUTES",
        "TARGETSESSIONATTRIBUTES",
        "LOAD BALANCE HOSTS",
        "LOADBALANCEHOSTS",
        "HOST RECHECK SECONDS",
        "HOSTRECHECKSECONDS",
        "KEEPALIVE",
        "TCP KEEPALIVE",
        "TCPKEEPALIVE",
        "TCP KEEPALIVE TIME",
        "TCPKEEPALIVETIME",
        "TCP KEEPALIVE INTERVAL",
        "TCPKEEPALIVEINTERVAL",
        "READ BUFFER SIZE",
        "READBUFFERSIZE",
        "WRITE BUFFER SIZE",
        "WRITEBUFFERSIZE",
        "SOCKET RECEIVE BUFFER SIZE",
        "SOCKETRECEIVEBUFFERSIZE",
        "SOCKET SEND BUFFER SIZE",
        "SOCKETSENDBUFFERSIZE",
        "MAX AUTO PREPARE",
        "MAXAUTOPREPARE",
        "AUTO PREPARE MIN USAGES",
        "AUTOPREPAREMINUSAGES",
        "NO RESET ON CLOSE",
        "NORESETONCLOSE",
        "REPLICATION MODE",
        "REPLICATIONMODE",
        "OPTIONS",
        "ARRAY NULLABILITY MODE",
        "ARRAYNULLABILITYMODE",
        "MULTIPLEXING",
        "WRITE COALESCING BUFFER THRESHOLD BYTES",
        "WRITECOALESCINGBUFFERTHRESHOLDBYTES",
        "LOAD TABLE COMPOSITES",
        "LOADTABLECOMPOSITES",
        "SERVER COMPATIBILITY MODE",
        "SERVERCOMPATIBILITYMODE",
        "TRUST SERVER CERTIFICATE",
        "TRUSTSERVERCERTIFICATE",
        "INTERNAL COMMAND TIMEOUT",
        "INTERNALCOMMANDTIMEOUT",
    ];

    fn couldnt_set(kw: &str, inner: &str) -> String {
        format!("System.ArgumentException: Couldn't set {kw} (Parameter '{kw}')\n ---> {inner}")
    }

    /// DbConnectionStringBuilder's `key=value;...` (values may be quoted with ' or ").
    pub fn parse(text: &str) -> Result<ConnString, String> {
        let mut cs = ConnString { port: 5432, timeout: 15, ..Default::default() };
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            while i < chars.len() && (chars[i] == ';' || chars[i].is_whitespace()) {
                i += 1;
            }
            if i >= chars.len() {
                break;
            }
            let start = i;
            while i < chars.len() && chars[i] != '=' && chars[i] != ';' {
                i += 1;
            }
            if i >= chars.len() || chars[i] != '=' {
                return Err(format!(
                    "System.ArgumentException: Format of the initialization string does not conform to specification starting at index {start}."
                ));
            }
            let key: String = chars[start..i].iter().collect::<String>().trim().to_string();
            i += 1;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            let value: String = if i < chars.len() && (chars[i] == '\'' || chars[i] == '"') {
                let q = chars[i];
                i += 1;
                let mut v = String::new();
                while i < chars.len() {
                    if chars[i] == q {
                        if chars.get(i + 1) == Some(&q) {
                            v.push(q);
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    v.push(chars[i]);
                    i += 1;
                }
                while i < chars.len() && chars[i] != ';' {
                    i += 1;
                }
                v
            } else {
                let vs = i;
                while i < chars.len() && chars[i] != ';' {
                    i += 1;
                }
                chars[vs..i].iter().collect::<String>().trim().to_string()
            };
            let kw = key.to_uppercase();
            match kw.as_str() {
                "HOST" | "SERVER" => cs.host = Some(value),
                "PORT" => {
                    cs.port = value.parse().map_err(|_| {
                        couldnt_set(
                            &key,
                            &format!("System.FormatException: The input string '{value}' was not in a correct format."),
                        )
                    })?
                }
                "DATABASE" | "DB" => cs.database = Some(value),
                "USERNAME" | "USER NAME" | "USERID" | "USER ID" | "UID" => cs.username = Some(value),
                "PASSWORD" | "PSW" | "PWD" => cs.password = Some(value),
                "PASSFILE" => cs.passfile = Some(value),
                "APPLICATION NAME" | "APPLICATIONNAME" => cs.application_name = Some(value),
                "TIMEOUT" => {
                    cs.timeout = value.parse().map_err(|_| {
                        couldnt_set(
                            &key,
                            &format!("System.FormatException: The input string '{value}' was not in a correct format."),
                        )
                    })?
                }
                "SSL MODE" | "SSLMODE" => cs.ssl_mode = Some(value),
                k if KNOWN.contains(&k) => {}
                _ => return Err(couldnt_set(
                    &key,
                    "System.Collections.Generic.KeyNotFoundException: The given key was not present in the dictionary.",
                )),
            }
        }
        Ok(cs)
    }

    #[derive(Debug, Clone)]
    pub enum PgError {
        /// PostgresException: the server said so, with a SQLSTATE
        Server { sqlstate: String, message: String },
        /// NpgsqlException (a socket or protocol failure), with its inner exception
        Client { message: String, inner: Option<String> },
        /// any other .NET exception, already as `Type: message`
        Other(String),
    }

    impl PgError {
        /// As the exception's ToString() starts.
        pub fn dotnet(&self) -> String {
            match self {
                PgError::Server { sqlstate, message } => {
                    format!("Npgsql.PostgresException (0x80004005): {sqlstate}: {message}")
                }
                PgError::Client { message, inner } => match inner {
                    Some(i) => format!("Npgsql.NpgsqlException (0x80004005): {message}\n ---> {i}"),
                    None => format!("Npgsql.NpgsqlException (0x80004005): {message}"),
                },
                PgError::Other(s) => s.clone(),
            }
        }

        pub fn sqlstate(&self) -> Option<&str> {
            match self {
                PgError::Server { sqlstate, .. } => Some(sqlstate),
                _ => None,
            }
        }

        /// PostgresException.IsTransient (Npgsql 10.0.3).
        pub fn transient(&self) -> bool {
            matches!(
                self.sqlstate(),
                Some(
                    "53000"
                        | "53100"
                        | "53200"
                        | "53300"
                        | "53400"
                        | "57P03"
                        | "58000"
                        | "58030"
                        | "40001"
                        | "40P01"
                        | "55P03"
                        | "55006"
                        | "55000"
                        | "08000"
                        | "08003"
                        | "08006"
                        | "08001"
                        | "08004"
                        | "08007"
                        | "57P01"
                        | "57P02"
                        | "57P05"
                )
            )
        }
    }

    /// A `host:port:database:username:password` line (PgPassFile.cs): `*` matches anything, `\:`
    /// and `\\` are escapes.
    fn pgpass_entry(line: &str) -> Result<[Option<String>; 5], String> {
        let mut parts: Vec<Option<String>> = Vec::new();
        let mut cur = String::new();
        let mut it = line.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\\' if it.peek().is_some() => {
                    let n = it.next().unwrap_or('\\');
                    if n != ':' && n != '\\' {
                        cur.push('\\');
                    }
                    cur.push(n);
                }
                ':' => {
                    parts.push(if cur == "*" { None } else { Some(cur.clone()) });
                    cur.clear();
                }
                c => cur.push(c),
            }
        }
        parts.push(if cur == "*" { None } else { Some(cur) });
        if parts.len() != 5 {
            return Err("System.FormatException: pgpass entry was not well-formed. Please ensure all non-comment entries are formatted as hostname:port:database:username:password. If colon is included, it must be escaped like \\:.".into());
        }
        if let Some(p) = &parts[1] {
            if p.parse::<u16>().is_err() {
                return Err(
                    "System.FormatException: pgpass entry was not formatted correctly. Port must be a valid integer."
                        .into(),
                );
            }
        }
        Ok([parts[0].take(), parts[1].take(), parts[2].take(), parts[3].take(), parts[4].take()])
    }

    fn psql_path() -> PathBuf {
        for p in ["/usr/lib/postgresql/17/bin/psql", "/usr/lib/postgresql/18/bin/psql", "/usr/bin/psql"] {
            if Path::new(p).exists() {
                return PathBuf::from(p);
            }
        }
        PathBuf::from("psql")
    }

    fn quote_conninfo(v: &str) -> String {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    /// An SQL string literal.
    pub fn lit(v: &str) -> String {
        format!("'{}'", v.replace('\'', "''"))
    }

    /// An SQL identifier, quoted.
    pub fn ident(v: &str) -> String {
        format!("\"{}\"", v.replace('"', "\"\""))
    }

    #[derive(Clone, Debug)]
    pub struct Pg {
        pub cs: ConnString,
    }

    impl Pg {
        pub fn new(cs: ConnString) -> Pg {
            Pg { cs }
        }

        /// The same connection with another database (None: none sent, the server's default).
        pub fn with_database(&self, db: Option<&str>) -> Pg {
            let mut cs = self.cs.clone();
            cs.database = db.map(str::to_string);
            Pg { cs }
        }

        pub fn username(&self) -> String {
            self.cs
                .username
                .clone()
                .or_else(|| std::env::var("PGUSER").ok())
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "root".into())
        }

        /// GetPassword's order; Err is what reading the pass file threw (only raised if the
        /// server asks for a password).
        fn password(&self, user: &str) -> Result<Option<String>, String> {
            if let Some(p) = &self.cs.password {
                return Ok(Some(p.clone()));
            }
            if let Ok(p) = std::env::var("PGPASSWORD") {
                return Ok(Some(p));
            }
            let file = self.cs.passfile.clone().or_else(|| std::env::var("PGPASSFILE").ok()).or_else(|| {
                let d = super::home().join(".pgpass");
                d.exists().then(|| d.to_string_lossy().into_owned())
            });
            let Some(file) = file else { return Ok(None) };
            let bytes = std::fs::read(&file).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("System.IO.FileNotFoundException: Could not find file '{file}'.")
                }
                std::io::ErrorKind::PermissionDenied => {
                    format!("System.UnauthorizedAccessException: Access to the path '{file}' is denied.")
                }
                _ => format!("System.IO.IOException: {file}: {e}"),
            })?;
            let text = String::from_utf8_lossy(&bytes);
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let e = pgpass_entry(line)?;
                let host = self.cs.host.clone();
                let port = self.cs.port.to_string();
                let m = |q: &Option<String>, a: &Option<String>| q.is_none() || a.is_none() || q == a;
                if m(&host, &e[0])
                    && m(&Some(port), &e[1])
                    && m(&self.cs.database, &e[2])
                    && m(&Some(user.to_string()), &e[3])
                {
                    return Ok(e[4].clone());
                }
            }
            Ok(None)
        }

        /// Run SQL (several statements are fine; only the last result's rows come back), in one
        /// transaction if `single_tx`.
        pub fn run(&self, sql: &str, single_tx: bool) -> Result<Vec<Vec<String>>, PgError> {
            let user = self.username();
            let pw = self.password(&user);
            let host = self.cs.host.clone().unwrap_or_else(|| "localhost".into());
            let mut ci = format!(
                "host={} port={} user={} connect_timeout={}",
                quote_conninfo(&host),
                self.cs.port,
                quote_conninfo(&user),
                self.cs.timeout.max(2)
            );
            if let Some(db) = &self.cs.database {
                ci.push_str(&format!(" dbname={}", quote_conninfo(db)));
            }
            if let Some(a) = &self.cs.application_name {
                ci.push_str(&format!(" application_name={}", quote_conninfo(a)));
            }
            if let Some(m) = &self.cs.ssl_mode {
                let m = match m.to_ascii_lowercase().as_str() {
                    "verifyca" | "verify-ca" => "verify-ca".to_string(),
                    "verifyfull" | "verify-full" => "verify-full".to_string(),
                    other => other.to_string(),
                };
                ci.push_str(&format!(" sslmode={m}"));
            }
            let mut cmd = Command::new(psql_path());
            cmd.env_clear()
                .env("PGPASSFILE", "/dev/null")
                .env("PGCLIENTENCODING", "UTF8")
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"])
                .args(["-F", "\u{1f}", "-R", "\u{1e}"]);
            if single_tx {
                cmd.arg("-1");
            }
            cmd.args(["-f", "-", "-d", &ci]);
            if let Ok(Some(p)) = &pw {
                cmd.env("PGPASSWORD", p);
            }
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child =
                cmd.spawn().map_err(|e| PgError::Other(format!("System.ComponentModel.Win32Exception: psql: {e}")))?;
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                let _ = stdin.write_all(sql.as_bytes());
            }
            let out =
                child.wait_with_output().map_err(|e| PgError::Other(format!("System.IO.IOException: psql: {e}")))?;
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout);
                let text = text.trim_end_matches('\n');
                return Ok(if text.is_empty() {
                    Vec::new()
                } else {
                    text.split('\u{1e}')
                        .map(|r| r.trim_start_matches('\n').split('\u{1f}').map(str::to_string).collect())
                        .collect()
                });
            }
            Err(classify(&stderr, self.cs.port, &pw))
        }

        pub fn query(&self, sql: &str) -> Result<Vec<Vec<String>>, PgError> {
            self.run(sql, false)
        }
    }

    /// psql's complaint, as the Npgsql exception the real program would have seen.
    fn classify(stderr: &str, port: u16, pw: &Result<Option<String>, String>) -> PgError {
        // an error while running SQL: "psql:<stdin>:1: ERROR:  42P01: relation ... does not exist"
        if let Some(pos) = stderr.find("ERROR:  ") {
            let rest = &stderr[pos + 8..];
            let line = rest.lines().next().unwrap_or_default();
            if let Some((code, msg)) = line.split_once(": ") {
                if code.len() == 5 {
                    return PgError::Server { sqlstate: code.to_string(), message: msg.to_string() };
                }
            }
            return PgError::Server { sqlstate: "XX000".into(), message: line.to_string() };
        }
        let ip = stderr
            .split_once("\" (")
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(ip, _)| ip.to_string())
            .unwrap_or_default();
        if let Some(pos) = stderr.find("FATAL:  ") {
            let msg = stderr[pos + 8..].lines().next().unwrap_or_default().to_string();
            let sqlstate = if msg.contains("password authentication failed") {
                "28P01"
            } else if msg.starts_with("database") && msg.contains("does not exist") {
                "3D000"
            } else if msg.starts_with("role") && msg.contains("does not exist") || msg.contains("no pg_hba.conf entry")
            {
                "28000"
            } else if msg.contains("starting up")
                || msg.contains("shutting down")
                || msg.contains("not yet accepting")
                || msg.contains("recovery mode")
            {
                "57P03"
            } else if msg.contains("too many clients") || msg.contains("connection slots") {
                "53300"
            } else if msg.contains("permission denied") {
                "42501"
            } else {
                "XX000"
            };
            return PgError::Server { sqlstate: sqlstate.into(), message: msg };
        }
        if stderr.contains("no password supplied") {
            return match pw {
                Err(e) => PgError::Other(e.clone()),
                _ => PgError::Client {
                    message: "No password has been provided but the backend requires one (in SASL/SCRAM-SHA-256)"
                        .into(),
                    inner: None,
                },
            };
        }
        if stderr.contains("Connection refused") {
            return PgError::Client {
                message: format!("Failed to connect to {ip}:{port}"),
                inner: Some("System.Net.Sockets.SocketException (111): Connection refused".into()),
            };
        }
        if stderr.contains("No route to host") {
            return PgError::Client {
                message: format!("Failed to connect to {ip}:{port}"),
                inner: Some("System.Net.Sockets.SocketException (113): No route to host".into()),
            };
        }
        if stderr.contains("could not translate host name") {
            return PgError::Other(
                "System.Net.Sockets.SocketException (00000005, 0xFFFDFFFF): Name or service not known".into(),
            );
        }
        if stderr.contains("timeout expired") {
            return PgError::Client {
                message: "Exception while connecting".into(),
                inner: Some("System.TimeoutException: Timeout during connection attempt".into()),
            };
        }
        let first = stderr.lines().next().unwrap_or("psql failed").trim_start_matches("psql: error: ").to_string();
        PgError::Client { message: first, inner: None }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn connection_strings() {
            let cs = parse("Host=archy-btcpay-postgres;Port=5432;Username=nbxplorer;Database=nbxplorer;Passfile=/etc/nbxplorer/pgpass").unwrap();
            assert_eq!(cs.host.as_deref(), Some("archy-btcpay-postgres"));
            assert_eq!(cs.username.as_deref(), Some("nbxplorer"));
            assert_eq!(cs.passfile.as_deref(), Some("/etc/nbxplorer/pgpass"));
            let cs =
                parse("User ID=postgres;Server=pg;Application Name=nbxplorer;MaxPoolSize=20;Password='a;b'").unwrap();
            assert_eq!(cs.username.as_deref(), Some("postgres"));
            assert_eq!(cs.password.as_deref(), Some("a;b"));
            assert!(parse("Host=x;Frobnicate=1").unwrap_err().contains("Couldn't set Frobnicate"));
            assert!(parse("Host=x;Port=abc").is_err());
        }

        #[test]
        fn pgpass_lines() {
            let e = pgpass_entry("*:*:*:nbxplorer:pa\\:ss").unwrap();
            assert_eq!(e[3].as_deref(), Some("nbxplorer"));
            assert_eq!(e[4].as_deref(), Some("pa:ss"));
            assert!(e[0].is_none());
            assert!(pgpass_entry("a:b").is_err());
        }

        #[test]
        fn errors() {
            let e = classify("psql: error: connection to server at \"pg\" (10.89.0.2), port 5432 failed: FATAL:  password authentication failed for user \"nbxplorer\"\n", 5432, &Ok(None));
            assert_eq!(
                e.dotnet(),
                "Npgsql.PostgresException (0x80004005): 28P01: password authentication failed for user \"nbxplorer\""
            );
            let e = classify("psql: error: connection to server at \"pg\" (10.89.0.2), port 5432 failed: Connection refused\n\tIs the server running", 5432, &Ok(None));
            assert!(e.dotnet().contains("Failed to connect to 10.89.0.2:5432"), "{}", e.dotnet());
            let e = classify(
                "psql:<stdin>:1: ERROR:  42P01: relation \"nbxv1_migrations\" does not exist\nLINE 1",
                5432,
                &Ok(None),
            );
            assert_eq!(e.sqlstate(), Some("42P01"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bitcoin encodings: base58check, bech32/bech32m, extended public keys, derivation schemes

pub(crate) mod coin {
    use sha2::{Digest, Sha256};

    const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    pub fn sha256(d: &[u8]) -> [u8; 32] {
        Sha256::digest(d).into()
    }

    pub fn sha256d(d: &[u8]) -> [u8; 32] {
        sha256(&sha256(d))
    }

    pub fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub fn b58encode(data: &[u8]) -> String {
        let zeros = data.iter().take_while(|&&b| b == 0).count();
        let mut digits: Vec<u8> = Vec::new();
        for &byte in data {
            let mut carry = byte as u32;
            for d in digits.iter_mut() {
                carry += (*d as u32) << 8;
                *d = (carry % 58) as u8;
                carry /= 58;
            }
            while carry > 0 {
                digits.push((carry % 58) as u8);
                carry /= 58;
            }
        }
        let mut s = String::new();
        for _ in 0..zeros {
            s.push('1');
        }
        for d in digits.iter().rev() {
            s.push(B58[*d as usize] as char);
        }
        s
    }

    pub fn b58decode(s: &str) -> Option<Vec<u8>> {
        let zeros = s.bytes().take_while(|&c| c == b'1').count();
        let mut bytes: Vec<u8> = Vec::new();
        for c in s.bytes() {
            let mut carry = B58.iter().position(|&x| x == c)? as u32;
            for b in bytes.iter_mut() {
                carry += (*b as u32) * 58;
                *b = (carry & 0xff) as u8;
                carry >>= 8;
            }
            while carry > 0 {
                bytes.push((carry & 0xff) as u8);
                carry >>= 8;
            }
        }
        let mut out = vec![0u8; zeros];
        out.extend(bytes.iter().rev());
        Some(out)
    }

    pub fn b58check_encode(payload: &[u8]) -> String {
        let mut v = payload.to_vec();
        v.extend_from_slice(&sha256d(payload)[..4]);
        b58encode(&v)
    }

    pub fn b58check_decode(s: &str) -> Option<Vec<u8>> {
        let v = b58decode(s)?;
        if v.len() < 5 {
            return None;
        }
        let (payload, check) = v.split_at(v.len() - 4);
        (sha256d(payload)[..4] == *check).then(|| payload.to_vec())
    }

    fn polymod(values: &[u8]) -> u32 {
        const G: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
        let mut chk: u32 = 1;
        for &v in values {
            let b = chk >> 25;
            chk = ((chk & 0x1ffffff) << 5) ^ v as u32;
            for (i, g) in G.iter().enumerate() {
                if (b >> i) & 1 == 1 {
                    chk ^= g;
                }
            }
        }
        chk
    }

    /// A segwit address (BIP-173 bech32 for version 0, BIP-350 bech32m above).
    pub fn segwit_address(hrp: &str, version: u8, program: &[u8]) -> String {
        const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        let mut data = vec![version];
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in program {
            acc = (acc << 8) | b as u32;
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                data.push(((acc >> bits) & 31) as u8);
            }
        }
        if bits > 0 {
            data.push(((acc << (5 - bits)) & 31) as u8);
        }
        let mut values: Vec<u8> = hrp.bytes().map(|c| c >> 5).collect();
        values.push(0);
        values.extend(hrp.bytes().map(|c| c & 31));
        values.extend(&data);
        values.extend([0u8; 6]);
        let constant = if version == 0 { 1 } else { 0x2bc830a3 };
        let pm = polymod(&values) ^ constant;
        let mut s = format!("{hrp}1");
        for d in data {
            s.push(CHARSET[d as usize] as char);
        }
        for i in 0..6 {
            s.push(CHARSET[((pm >> (5 * (5 - i))) & 31) as usize] as char);
        }
        s
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Kind {
        Segwit,
        P2shSegwit,
        Legacy,
        Taproot,
    }

    #[derive(Clone, Debug)]
    pub struct Strategy {
        pub text: String,
        pub kind: Kind,
    }

    /// A single-key derivation scheme as NBXplorer writes them: `<extpubkey>[-[legacy|p2sh|taproot]]`.
    pub fn parse_strategy(text: &str, version: [u8; 4]) -> Result<Strategy, String> {
        let (key, kind) = if let Some(k) = text.strip_suffix("-[legacy]") {
            (k, Kind::Legacy)
        } else if let Some(k) = text.strip_suffix("-[p2sh]") {
            (k, Kind::P2shSegwit)
        } else if let Some(k) = text.strip_suffix("-[taproot]") {
            (k, Kind::Taproot)
        } else {
            (text, Kind::Segwit)
        };
        let raw = b58check_decode(key).ok_or("Invalid derivation scheme")?;
        if raw.len() != 78 || raw[..4] != version {
            return Err("Invalid derivation scheme".into());
        }
        Ok(Strategy { text: text.to_string(), kind })
    }

    /// The stand-in's address for `keypath` (not BIP32: see the module's doc).
    /// Returns (scriptPubKey hex, address, redeem script hex).
    pub fn derive(st: &Strategy, keypath: &str, net: &super::Net) -> (String, String, Option<String>) {
        let h = sha256(format!("archy-standin-nbxplorer|{}|{keypath}", st.text).as_bytes());
        match st.kind {
            Kind::Segwit => {
                let script = format!("0014{}", hex(&h[..20]));
                (script.clone(), segwit_address(net.hrp, 0, &h[..20]), Some(script))
            }
            Kind::Taproot => (format!("5120{}", hex(&h)), segwit_address(net.hrp, 1, &h), None),
            Kind::Legacy => {
                let mut p = vec![net.p2pkh];
                p.extend_from_slice(&h[..20]);
                (format!("76a914{}88ac", hex(&h[..20])), b58check_encode(&p), None)
            }
            Kind::P2shSegwit => {
                let redeem = format!("0014{}", hex(&h[..20]));
                let rh = sha256(redeem.as_bytes());
                let mut p = vec![net.p2sh];
                p.extend_from_slice(&rh[..20]);
                (format!("a914{}87", hex(&rh[..20])), b58check_encode(&p), Some(redeem))
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn encodings() {
            // BIP-173's example: the P2WPKH of 751e76e8199196d454941c45d1b3a323f1433bd6
            let prog = [
                0x75, 0x1e, 0x76, 0xe8, 0x19, 0x91, 0x96, 0xd4, 0x54, 0x94, 0x1c, 0x45, 0xd1, 0xb3, 0xa3, 0x23, 0xf1,
                0x43, 0x3b, 0xd6,
            ];
            assert_eq!(segwit_address("bc", 0, &prog), "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
            let xpub = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
            let raw = b58check_decode(xpub).unwrap();
            assert_eq!(raw.len(), 78);
            assert_eq!(b58check_encode(&raw), xpub);
            assert!(parse_strategy(xpub, [0x04, 0x88, 0xb2, 0x1e]).is_ok());
            assert!(parse_strategy(&format!("{xpub}-[p2sh]"), [0x04, 0x88, 0xb2, 0x1e]).is_ok());
            assert!(parse_strategy("xpub123", [0x04, 0x88, 0xb2, 0x1e]).is_err());
            assert!(parse_strategy(xpub, [0x04, 0x35, 0x87, 0xcf]).is_err());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// bitcoind's RPC, as NBitcoin's RPCClient talks to it

#[derive(Clone, Debug)]
enum RpcAuth {
    Fixed(String),
    Cookie(PathBuf),
}

#[derive(Debug, Clone)]
enum RpcError {
    /// an RPCException: bitcoind's error code and message
    Rpc(i64, String),
    /// an HttpRequestException (or a timeout), as .NET words it
    Http(String),
}

impl RpcError {
    fn dotnet(&self) -> String {
        match self {
            RpcError::Rpc(_, m) => format!("NBitcoin.RPC.RPCException: {m}"),
            RpcError::Http(m) if m.starts_with("The request was canceled") => {
                format!("System.Threading.Tasks.TaskCanceledException: {m}")
            }
            RpcError::Http(m) => format!("System.Net.Http.HttpRequestException: {m}"),
        }
    }
}

struct Rpc {
    host: String,
    port: u16,
    path: String,
    uri: String,
    auth: RpcAuth,
    cached: Mutex<Option<String>>,
    timeout: Duration,
    next_id: Mutex<u64>,
}

impl Rpc {
    fn new(url: &str, auth: RpcAuth) -> Result<Rpc, String> {
        let rest = url.strip_prefix("http://").ok_or("rpc.url is not an url")?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => (h.to_string(), p.parse().map_err(|_| "rpc.url is not an url")?),
            _ if !hostport.is_empty() => (hostport.to_string(), 80),
            _ => return Err("rpc.url is not an url".into()),
        };
        let cached = match &auth {
            RpcAuth::Fixed(s) => Some(s.clone()),
            RpcAuth::Cookie(p) => std::fs::read_to_string(p).ok(),
        };
        Ok(Rpc {
            uri: format!("http://{host}:{port}{path}"),
            host,
            port,
            path: path.to_string(),
            auth,
            cached: Mutex::new(cached),
            // RPCClientProvider's HttpClient (Startup.cs): 10 minutes
            timeout: Duration::from_secs(600),
            next_id: Mutex::new(0),
        })
    }

    /// TryRenewCookie: re-read the cookie; true if it changed.
    fn renew(&self) -> bool {
        let RpcAuth::Cookie(p) = &self.auth else { return false };
        let Ok(new) = std::fs::read_to_string(p) else { return false };
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if c.as_deref() == Some(new.as_str()) {
            return false;
        }
        *c = Some(new);
        true
    }

    fn post(&self, body: &str, timeout: Duration) -> Result<String, RpcError> {
        let hostport = format!("{}:{}", self.host, self.port);
        let mut renewed = false;
        loop {
            let auth = self.cached.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut headers = vec![("Content-Type", "application/json-rpc".to_string())];
            if let Some(a) = auth {
                headers
                    .push(("Authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(a))));
            }
            let r = http::request(&hostport, "POST", &self.path, &headers, body, Some(timeout))
                .map_err(|e| RpcError::Http(dotnet_http_error(&e, &hostport, timeout.as_secs())))?;
            match r.status {
                200 => return Ok(r.body),
                401 if !renewed && self.renew() => renewed = true,
                status => {
                    if status != 401 {
                        if let Ok(v) = json::parse(r.body.trim()) {
                            if let Some(e) = v.get("error").filter(|e| **e != Value::Null) {
                                let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
                                let msg = e.get("message").and_then(Value::as_str).unwrap_or_default();
                                return Err(RpcError::Rpc(code, msg.to_string()));
                            }
                            if v.is_array() {
                                return Ok(r.body);
                            }
                        }
                    }
                    return Err(RpcError::Http(format!(
                        "Response status code does not indicate success: {status} ({}).",
                        reason_phrase(status)
                    )));
                }
            }
        }
    }

    fn id(&self) -> u64 {
        let mut n = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        *n
    }

    fn call_t(&self, method: &str, params: Vec<Value>, timeout: Duration) -> Result<Value, RpcError> {
        let body = obj(vec![
            ("jsonrpc", s("1.0")),
            ("id", num(self.id())),
            ("method", s(method)),
            ("params", Value::Arr(params)),
        ])
        .compact();
        let text = self.post(&body, timeout)?;
        let v = json::parse(text.trim()).map_err(|e| RpcError::Http(format!("invalid JSON-RPC response: {e}")))?;
        if let Some(e) = v.get("error").filter(|e| **e != Value::Null) {
            let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
            return Err(RpcError::Rpc(code, e.get("message").and_then(Value::as_str).unwrap_or_default().to_string()));
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, RpcError> {
        self.call_t(method, params, self.timeout)
    }

    /// A JSON-RPC batch: one result or (code, message) per call.
    fn batch(&self, calls: &[(&str, Vec<Value>)]) -> Result<Vec<Result<Value, (i64, String)>>, RpcError> {
        let reqs: Vec<Value> = calls
            .iter()
            .map(|(m, p)| {
                obj(vec![
                    ("jsonrpc", s("1.0")),
                    ("id", num(self.id())),
                    ("method", s(m)),
                    ("params", Value::Arr(p.clone())),
                ])
            })
            .collect();
        let text = self.post(&Value::Arr(reqs).compact(), self.timeout)?;
        let Ok(Value::Arr(replies)) = json::parse(text.trim()) else {
            return Err(RpcError::Http("invalid JSON-RPC batch response".into()));
        };
        Ok(replies
            .iter()
            .map(|r| match r.get("error").filter(|e| **e != Value::Null) {
                Some(e) => Err((
                    e.get("code").and_then(Value::as_i64).unwrap_or(0),
                    e.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
                )),
                None => Ok(r.get("result").cloned().unwrap_or(Value::Null)),
            })
            .collect())
    }
}

trait ValueExt {
    fn is_array(&self) -> bool;
    fn f64(&self) -> Option<f64>;
}

impl ValueExt for Value {
    fn is_array(&self) -> bool {
        matches!(self, Value::Arr(_))
    }
    fn f64(&self) -> Option<f64> {
        match self {
            Value::Num(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// getblockchaininfo's fields NBXplorer reads (GetBlockchainInfoResponse).
#[derive(Clone, Debug)]
struct ChainInfo {
    headers: i64,
    blocks: i64,
    progress: f64,
    median_time: Option<i64>,
    ibd: Option<bool>,
    best: String,
}

impl ChainInfo {
    fn from(v: &Value) -> ChainInfo {
        ChainInfo {
            headers: v.get("headers").and_then(Value::as_i64).unwrap_or(0),
            blocks: v.get("blocks").and_then(Value::as_i64).unwrap_or(0),
            progress: v.get("verificationprogress").and_then(|x| x.f64()).unwrap_or(0.0),
            median_time: v.get("mediantime").and_then(Value::as_i64),
            ibd: match v.get("initialblockdownload") {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            },
            best: v.get("bestblockhash").and_then(Value::as_str).unwrap_or_default().to_string(),
        }
    }

    /// RPCClientExtensions.IsSynching.
    fn synching(&self, net: &Net) -> bool {
        if self.headers == 0 && net.core == "regtest" {
            return false;
        }
        if self.ibd == Some(true) {
            return true;
        }
        if let Some(t) = self.median_time {
            if net.core != "regtest" && (unix_now() as i64 - t) > 150 * 24 * 3600 {
                return true;
            }
        }
        self.headers - self.blocks > 6
    }
}

// ---------------------------------------------------------------------------------------------
// the explorer

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    NotStarted,
    CoreSynching,
    NBXplorerSynching,
    Ready,
}

#[derive(Clone, Copy, Debug, Default)]
struct Caps {
    scan_utxo_set: bool,
    test_mempool_accept: bool,
    segwit: bool,
    taproot: bool,
}

struct Indexer {
    state: State,
    last_indexed: Option<i64>,
    network_info: Option<Value>,
    caps: Option<Caps>,
}

struct Ctx {
    net: Net,
    rpc: Rpc,
    node_endpoint: String,
    start_height: i64,
    pg: pg::Pg,
    cookie: Mutex<Option<(String, String)>>,
    instance_name: String,
    signal_file: PathBuf,
    min_gap: i64,
    max_gap: i64,
    expose_rpc: bool,
    idx: Mutex<Indexer>,
}

const RPC_WHITELIST: &[&str] = &[
    "sendrawtransaction",
    "getrawtransaction",
    "gettxout",
    "estimatesmartfee",
    "getmempoolinfo",
    "getmempoolentry",
    "gettxoutproof",
    "verifytxoutproof",
    "getblockchaininfo",
    "getblockhash",
    "getblockheader",
];

impl Ctx {
    fn state(&self) -> State {
        self.idx.lock().unwrap_or_else(|e| e.into_inner()).state
    }

    /// The State setter: the event's log line and the signal file.
    fn set_state(&self, new: State) {
        let old = {
            let mut g = self.idx.lock().unwrap_or_else(|e| e.into_inner());
            let old = g.state;
            g.state = new;
            old
        };
        if old == new {
            return;
        }
        dlog("info", CAT_EVT, &format!("BTC: Node state changed: {old:?} => {new:?}"));
        if new == State::Ready {
            if let Err(e) = std::fs::write(&self.signal_file, unix_now().to_string()) {
                dlog(
                    "fail",
                    CAT_EVT,
                    &format!(
                        "Error while calling event handler\nSystem.IO.IOException: {}: {e}",
                        self.signal_file.display()
                    ),
                );
            }
        } else if self.signal_file.exists() {
            let _ = std::fs::remove_file(&self.signal_file);
        }
    }

    fn connected(&self) -> bool {
        matches!(self.state(), State::CoreSynching | State::NBXplorerSynching | State::Ready)
    }

    // ---- the indexer loop

    fn indexer_loop(self: Arc<Self>) {
        let mut retry = 0u64;
        loop {
            match self.connect_node() {
                Ok(stream) => self.run_connection(stream),
                Err(e) => {
                    dlog(
                        "fail",
                        CAT_IDX,
                        &format!("Unhandled exception in the indexer, retrying in {retry} seconds\n{e}"),
                    );
                    std::thread::sleep(Duration::from_secs(retry));
                    retry = (retry + 5).min(60);
                }
            }
        }
    }

    fn p2p_handshake(&self, user_agent: &str) -> Result<TcpStream, String> {
        let magic = crate::p2p::magic(self.net.core);
        let addr = self
            .node_endpoint
            .to_socket_addrs()
            .map_err(|_| {
                "System.Net.Sockets.SocketException (00000005, 0xFFFDFFFF): Name or service not known".to_string()
            })?
            .next()
            .ok_or("System.Net.Sockets.SocketException (00000005, 0xFFFDFFFF): Name or service not known")?;
        let mut st = TcpStream::connect_timeout(&addr, Duration::from_secs(30)).map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "System.Net.Sockets.SocketException (111): Connection refused".to_string()
            }
            std::io::ErrorKind::TimedOut => {
                "System.Net.Sockets.SocketException (110): Connection timed out".to_string()
            }
            _ => format!("System.Net.Sockets.SocketException: {e}"),
        })?;
        dlog("info", CAT_IDX, "TCP Connection succeed, handshaking...");
        // NBitcoin puts no deadline on the handshake; a long one keeps a dead peer from pinning it
        let _ = st.set_read_timeout(Some(Duration::from_secs(20 * 60)));
        let closed = |e: std::io::Error| {
            format!("System.IO.IOException: The peer closed the connection during the handshake ({e})")
        };
        crate::p2p::write_msg(&mut st, magic, "version", &version_payload(&addr, user_agent, self.net.p2p_port))
            .map_err(closed)?;
        let mut peer_version = None;
        while peer_version.is_none() {
            let (cmd, payload) = crate::p2p::read_msg(&mut st, magic).map_err(closed)?;
            if cmd == "version" {
                peer_version = Some(crate::p2p::parse_version(&payload).map_or(0, |v| v.0));
            }
        }
        if peer_version.unwrap_or(0) >= 70016 {
            crate::p2p::write_msg(&mut st, magic, "sendaddrv2", &[]).map_err(closed)?;
        }
        crate::p2p::write_msg(&mut st, magic, "verack", &[]).map_err(closed)?;
        loop {
            let (cmd, _) = crate::p2p::read_msg(&mut st, magic).map_err(closed)?;
            if cmd == "verack" {
                break;
            }
        }
        dlog("info", CAT_IDX, "Handshaked");
        crate::p2p::write_msg(&mut st, magic, "sendheaders", &[]).map_err(closed)?;
        Ok(st)
    }

    /// Indexer.ConnectNode.
    fn connect_node(&self) -> Result<TcpStream, String> {
        self.set_state(State::NotStarted);
        let user_agent =
            format!("NBXplorer-{}", u64::from_str_radix(&crate::sys::random_hex(8), 16).unwrap_or(1) as i64);
        let mut stream = self.p2p_handshake(&user_agent)?;
        let rpc = &self.rpc;
        // RPCArgs.TestRPCAsync
        dlog("info", CAT_IDX, &format!("Testing RPC connection to {}", rpc.uri));
        let mut time = 0u64;
        loop {
            match rpc.call("getblockchaininfo", vec![]) {
                Ok(_) => break,
                Err(RpcError::Rpc(code, m))
                    if code == -28
                        || [
                            "Loading wallet...",
                            "Loading block index...",
                            "Loading P2P addresses...",
                            "Rewinding blocks...",
                            "Verifying blocks...",
                            "Loading addresses...",
                        ]
                        .iter()
                        .any(|t| m.contains(t)) =>
                {
                    dlog("info", CAT_IDX, &format!("Transient error '{m}', retrying soon..."));
                    time += 1;
                    std::thread::sleep(Duration::from_millis((1000 * time).min(10_000)));
                }
                Err(RpcError::Rpc(_, m)) => {
                    dlog("fail", CAT_IDX, &format!("Invalid response from RPC server {m}"));
                    return Err("NBXplorer.Configuration.ConfigException".into());
                }
                Err(RpcError::Http(m)) => {
                    dlog("fail", CAT_IDX, &format!("Error connecting to RPC server {m}"));
                    return Err("NBXplorer.Configuration.ConfigException".into());
                }
            }
        }
        dlog("info", CAT_IDX, "RPC connection successful");
        // RPCClient.ScanRPCCapabilitiesAsync
        let version = rpc
            .call("getnetworkinfo", vec![])
            .map_err(|e| e.dotnet())?
            .get("version")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let random = || vec![s("random")];
        let probe_addr = |v: u8| {
            coin::segwit_address(self.net.hrp, v, &coin::sha256(b"archy-standin-probe")[..if v == 0 { 20 } else { 32 }])
        };
        let probes = rpc
            .batch(&[
                ("scantxoutset", random()),
                ("signrawtransactionwithkey", random()),
                ("testmempoolaccept", random()),
                ("getblockfrompeer", random()),
                ("estimatesmartfee", random()),
                ("generatetoaddress", random()),
                ("validateaddress", vec![s(&probe_addr(0))]),
                ("validateaddress", vec![s(&probe_addr(1))]),
            ])
            .map_err(|e| e.dotnet())?;
        let supported = |i: usize| match probes.get(i) {
            Some(Err((code, _))) => *code != -32601 && *code != -32,
            Some(Ok(_)) => true,
            None => false,
        };
        let valid = |i: usize| match probes.get(i) {
            Some(Ok(v)) => v.get("isvalid") == Some(&Value::Bool(true)),
            Some(Err((code, _))) => *code == -3,
            None => false,
        };
        let caps = Caps {
            scan_utxo_set: supported(0),
            test_mempool_accept: supported(2),
            segwit: valid(6),
            taproot: valid(7),
        };
        if version < 150000 {
            dlog("fail", CAT_IDX, &format!("The minimum node version required is 150000 (detected: {version})"));
            return Err("NBXplorer.Configuration.ConfigException".into());
        }
        dlog("info", CAT_IDX, &format!("Full node version detected: {version}"));
        self.idx.lock().unwrap_or_else(|e| e.into_inner()).caps = Some(caps);
        // SupportTxIndex: errors mean "unknown"
        if let Ok(v) = rpc.call("getindexinfo", vec![s("txindex")]) {
            if v.get("txindex").is_some() {
                dlog("info", CAT_IDX, "Has txindex support");
            }
        }
        let peers = rpc.call("getpeerinfo", vec![]).map_err(|e| e.dotnet())?;
        let peer = match &peers {
            Value::Arr(a) => {
                a.iter().find(|p| p.get("subver").and_then(Value::as_str) == Some(user_agent.as_str())).cloned()
            }
            _ => None,
        };
        let whitelisted = peer.as_ref().is_some_and(|p| {
            p.get("whitelisted") == Some(&Value::Bool(true))
                || matches!(p.get("permissions"), Some(Value::Arr(perms)) if perms.iter().any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case("noban"))))
        });
        match &peer {
            _ if whitelisted => dlog("info", CAT_IDX, "NBXplorer is correctly whitelisted by the node"),
            None => dlog("warn", CAT_IDX, "BTC: The RPC server you are connecting to, doesn't seem to be the same server as the one providing the P2P connection. This is an untested setup and may have non-obvious side effects."),
            Some(p) => {
                let addr = p.get("addr").and_then(Value::as_str).unwrap_or_default();
                let ip = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(|c| c == '[' || c == ']');
                dlog("warn", CAT_IDX, &format!("BTC: Your NBXplorer server is not whitelisted by your node, you should add \"whitelist={ip}\" to the configuration file of your node. (Or use whitebind)"));
            }
        }
        let ni = rpc.call("getnetworkinfo", vec![]).map_err(|e| e.dotnet())?;
        self.idx.lock().unwrap_or_else(|e| e.into_inner()).network_info = Some(ni);
        let mut wait = 10u64;
        let info = loop {
            let info = ChainInfo::from(&rpc.call("getblockchaininfo", vec![]).map_err(|e| e.dotnet())?);
            if !info.synching(&self.net) {
                break info;
            }
            self.set_state(State::CoreSynching);
            std::thread::sleep(Duration::from_millis(wait * 2));
            wait = (wait * 2).min(5_000);
        };
        self.ensure_wallet();
        let _tip = rpc.call("getblockheader", vec![s(&info.best)]);
        self.set_state(State::NBXplorerSynching);
        if let Ok(ni) = rpc.call("getnetworkinfo", vec![]) {
            self.idx.lock().unwrap_or_else(|e| e.into_inner()).network_info = Some(ni);
        }
        // AskNextHeaders: from the saved locator, else the tip's parent (startheight -1)
        let locator = self.locator(&info)?;
        let mut payload = Vec::new();
        payload.extend_from_slice(&crate::p2p::PROTOCOL_VERSION.to_le_bytes());
        payload.push(locator.len() as u8);
        for h in &locator {
            let mut b: Vec<u8> =
                (0..32).filter_map(|i| u8::from_str_radix(h.get(i * 2..i * 2 + 2)?, 16).ok()).collect();
            b.reverse();
            payload.extend_from_slice(&b);
        }
        payload.extend_from_slice(&[0u8; 32]);
        crate::p2p::write_msg(&mut stream, crate::p2p::magic(self.net.core), "getheaders", &payload)
            .map_err(|e| format!("System.IO.IOException: {e}"))?;
        // the last indexed block: the first locator block NBXplorer has, else the locator's tip
        let known = self.last_indexed_in_db(&locator);
        let last = match known {
            Some(h) => Some(h),
            None => match rpc.call("getblockheader", vec![s(&locator[0])]) {
                Ok(v) if v.get("confirmations").and_then(Value::as_i64) != Some(-1) => {
                    v.get("height").and_then(Value::as_i64)
                }
                _ => None,
            },
        };
        self.idx.lock().unwrap_or_else(|e| e.into_inner()).last_indexed = last;
        self.update_state();
        Ok(stream)
    }

    /// RPCClientExtensions.EnsureWalletCreated, errors tolerated as upstream.
    fn ensure_wallet(&self) {
        let opts = vec![
            s(""),
            Value::Bool(false),
            Value::Bool(self.net.core != "regtest"),
            s(""),
            Value::Bool(false),
            Value::Bool(true),
            Value::Bool(true),
        ];
        let mut created = false;
        match self.rpc.call("createwallet", opts) {
            Ok(_) => {
                dlog("info", CAT_IDX, "BTC: Created RPC wallet \"\"");
                created = true;
            }
            Err(RpcError::Rpc(-32601, _)) => return,
            Err(RpcError::Rpc(-8, _)) => {
                dlog("info", CAT_IDX, "BTC: RPC wallet features are disabled because neither `btc.rpc.defaultwallet` nor `NBXPLORER_BTC_RPC_DEFAULTWALLET` is configured.");
                return;
            }
            Err(RpcError::Rpc(-4 | -35, _)) => {}
            Err(RpcError::Http(m)) if m.contains(" 401 ") || m.contains(" 403 ") => {
                dlog("info", CAT_IDX, "BTC: RPC wallet features are disabled due to the node's policy");
                return;
            }
            Err(e) => dlog(
                "warn",
                CAT_IDX,
                &format!("BTC: Failed to create a RPC wallet with unknown error, skipping...\n{}", e.dotnet()),
            ),
        }
        if self.rpc.call("loadwallet", vec![s(""), Value::Bool(true)]).is_ok() {
            dlog("info", CAT_IDX, "BTC: RPC Wallet loaded");
        }
        let _ = created;
    }

    /// Repository.GetIndexProgress, else GetDefaultCurrentLocation: block hashes, newest first.
    fn locator(&self, info: &ChainInfo) -> Result<Vec<String>, String> {
        let saved = self
            .pg
            .query("SELECT encode(data_bytes, 'hex') FROM nbxv1_settings WHERE code='BTC' AND key='BlockLocator-'")
            .map_err(|e| e.dotnet())?;
        if let Some(hexs) = saved.first().and_then(|r| r.first()).filter(|h| !h.is_empty()) {
            // the stand-in stores the hashes as hex text, 64 digits each, newest first
            let l: Vec<String> = hexs.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
            if !l.is_empty() {
                return Ok(l);
            }
        }
        if self.start_height > info.headers {
            return Err(format!(
                "System.InvalidOperationException: BTC: StartHeight ({}) should not be above the current tip ({})",
                self.start_height, info.headers
            ));
        }
        let hash = if self.start_height == -1 {
            self.rpc.call("getbestblockhash", vec![]).map_err(|e| e.dotnet())?.as_str().unwrap_or_default().to_string()
        } else {
            self.rpc
                .call("getblockhash", vec![num(self.start_height)])
                .map_err(|e| e.dotnet())?
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let h = self.rpc.call("getblockheader", vec![s(&hash)]).map_err(|e| e.dotnet())?;
        let prev = h.get("previousblockhash").and_then(Value::as_str).map(str::to_string).unwrap_or(hash);
        if self.start_height == -1 {
            dlog(
                "info",
                CAT_IDX,
                &format!(
                    "Current Index Progress not found, start syncing from the header's chain tip (At height: {})",
                    info.headers
                ),
            );
        } else {
            dlog(
                "info",
                CAT_IDX,
                &format!("Current Index Progress not found, start syncing at height {}", self.start_height),
            );
        }
        Ok(vec![prev])
    }

    fn last_indexed_in_db(&self, locator: &[String]) -> Option<i64> {
        let list: Vec<String> = locator.iter().map(|h| pg::lit(h)).collect();
        let rows = self
            .pg
            .query(&format!(
                "SELECT height FROM blks WHERE code='BTC' AND blk_id IN ({}) AND confirmed IS TRUE ORDER BY height DESC LIMIT 1",
                list.join(",")
            ))
            .ok()?;
        rows.first()?.first()?.parse().ok()
    }

    /// Indexer.UpdateState.
    fn update_state(&self) {
        let Ok(v) = self.rpc.call("getblockchaininfo", vec![]) else { return };
        let info = ChainInfo::from(&v);
        let last = self.idx.lock().unwrap_or_else(|e| e.into_inner()).last_indexed;
        if info.synching(&self.net) {
            self.set_state(State::CoreSynching);
        } else if let Some(l) = last {
            let min = if self.net.core == "regtest" { 200 } else { 6 };
            self.set_state(if info.headers - l < min { State::Ready } else { State::NBXplorerSynching });
        }
    }

    /// The connection's life after ConnectNode: ping/pong, until the peer goes away.
    fn run_connection(&self, stream: TcpStream) {
        let magic = crate::p2p::magic(self.net.core);
        let Ok(mut writer) = stream.try_clone() else { return };
        let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let g2 = gone.clone();
        let mut reader = stream;
        let _ = reader.set_read_timeout(None);
        let mut w2 = match writer.try_clone() {
            Ok(w) => w,
            Err(_) => return,
        };
        let t = std::thread::spawn(move || {
            let reason = loop {
                match crate::p2p::read_msg(&mut reader, magic) {
                    Ok((cmd, payload)) => {
                        if cmd == "ping" {
                            if crate::p2p::write_msg(&mut w2, magic, "pong", &payload).is_err() {
                                break "Socket error".to_string();
                            }
                        }
                        // headers, inv, blocks: not indexed by the stand-in
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        break "The peer has been disconnected".to_string()
                    }
                    Err(e) => break format!("{e}"),
                }
            };
            g2.store(true, std::sync::atomic::Ordering::SeqCst);
            reason
        });
        let mut since_ping = 0u64;
        while !gone.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(500));
            since_ping += 1;
            // NBitcoin's PingPongBehavior: a ping every 2 minutes
            if since_ping >= 240 {
                since_ping = 0;
                let nonce = u64::from_str_radix(&crate::sys::random_hex(8), 16).unwrap_or(7).to_le_bytes();
                if crate::p2p::write_msg(&mut writer, magic, "ping", &nonce).is_err() {
                    let _ = writer.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        let reason = t.join().unwrap_or_else(|_| "unknown".into());
        dlog("info", CAT_IDX, &format!("Node disconnected ({reason})"));
        self.set_state(State::NotStarted);
    }

    // ---- the database

    fn setup_database(&self) -> Result<(), Exit> {
        dlog("info", CAT_DB, "Postgres services activated");
        loop {
            match self.open_reliable(&self.pg) {
                Ok(()) => return self.run_scripts().map_err(|e| Exit::Crash(e.dotnet())),
                Err(e) if e.sqlstate() == Some("3D000") => {
                    let dbname = self.pg.cs.database.clone().unwrap_or_default();
                    dlog("info", CAT_DB, &format!("Database '{dbname}' doesn't exists, creating it..."));
                    let admin = self.pg.with_database(None);
                    self.open_reliable(&admin).map_err(|e| Exit::Crash(e.dotnet()))?;
                    admin
                        .query(&format!(
                            "CREATE DATABASE {dbname} TEMPLATE 'template0' LC_CTYPE 'C' LC_COLLATE 'C' ENCODING 'UTF8'"
                        ))
                        .map_err(|e| Exit::Crash(e.dotnet()))?;
                }
                Err(e) => return Err(Exit::Crash(e.dotnet())),
            }
        }
    }

    /// ReliableOpenConnectionAsync: transient server errors retried 10 times.
    fn open_reliable(&self, pg: &pg::Pg) -> Result<(), pg::PgError> {
        let mut retries = 10;
        loop {
            match pg.query("SELECT 1") {
                Ok(_) => return Ok(()),
                Err(e) if e.transient() && retries > 0 => {
                    retries -= 1;
                    std::thread::sleep(Duration::from_millis((10 - retries) * 100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn run_scripts(&self) -> Result<(), pg::PgError> {
        let executed: Vec<String> = match self.pg.query("SELECT script_name FROM nbxv1_migrations") {
            Ok(rows) => rows.into_iter().filter_map(|r| r.into_iter().next()).collect(),
            Err(e) if e.sqlstate() == Some("42P01") => Vec::new(),
            Err(e) => return Err(e),
        };
        for (name, sql) in SCRIPTS {
            if executed.iter().any(|e| e == name) {
                continue;
            }
            dlog("info", CAT_DB, &format!("Execute script {name}..."));
            self.pg.run(&format!("{sql};\nINSERT INTO nbxv1_migrations VALUES ({});", pg::lit(name)), true)?;
        }
        Ok(())
    }

    // ---- the repository

    fn wallet_id(&self, scheme: &str) -> String {
        let h = coin::sha256(format!("BTC|{scheme}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(&h[..21])
    }

    fn descriptor_id(&self, scheme: &str, feature: &str) -> String {
        let h = coin::sha256(format!("BTC|{scheme}|{feature}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(&h[..21])
    }

    fn keypath(feature: &str, i: i64) -> String {
        match feature {
            "Change" => format!("1/{i}"),
            _ => format!("0/{i}"),
        }
    }

    /// Repository.GenerateAddressesCore for one feature: the wallet rows, then the pool.
    fn generate(&self, st: &coin::Strategy, feature: &str, min: Option<i64>) -> Result<i64, pg::PgError> {
        let wid = self.wallet_id(&st.text);
        let did = self.descriptor_id(&st.text, feature);
        let template = if feature == "Change" { "1/*" } else { "0/*" };
        let wmeta =
            obj(vec![("type", s("NBXv1-Derivation")), ("code", s("BTC")), ("derivation", s(&st.text))]).compact();
        let dmeta = obj(vec![
            ("type", s("NBXv1-Derivation")),
            ("feature", s(feature)),
            ("derivation", s(&st.text)),
            ("keyPathTemplate", s(template)),
        ])
        .compact();
        let rows = self.pg.run(
            &format!(
                "INSERT INTO wallets (wallet_id, metadata) VALUES ({w}, {wm}::JSONB) ON CONFLICT DO NOTHING;\n\
                 INSERT INTO descriptors (code, descriptor, metadata) VALUES ('BTC', {d}, {dm}::JSONB) ON CONFLICT DO NOTHING;\n\
                 INSERT INTO wallets_descriptors (code, descriptor, wallet_id) VALUES ('BTC', {d}, {w}) ON CONFLICT DO NOTHING;\n\
                 SELECT gap, next_idx FROM descriptors WHERE code='BTC' AND descriptor={d};",
                w = pg::lit(&wid),
                wm = pg::lit(&wmeta),
                d = pg::lit(&did),
                dm = pg::lit(&dmeta)
            ),
            true,
        )?;
        let row = rows.first().cloned().unwrap_or_default();
        let gap: i64 = row.first().and_then(|v| v.parse().ok()).unwrap_or(0);
        let next: i64 = row.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut n = if gap >= self.min_gap { 0 } else { (self.max_gap - gap).max(0) };
        if let Some(m) = min {
            n = n.max(m);
        }
        if n == 0 {
            return Ok(0);
        }
        let mut sql = String::new();
        for i in next..next + n {
            let (script, addr, redeem) = coin::derive(st, &Self::keypath(feature, i), &self.net);
            let meta = redeem
                .map_or("NULL".to_string(), |r| format!("{}::JSONB", pg::lit(&obj(vec![("redeem", s(&r))]).compact())));
            sql.push_str(&format!(
                "INSERT INTO scripts (code, script, addr) VALUES ('BTC', {sc}, {a}) ON CONFLICT DO NOTHING;\n\
                 INSERT INTO descriptors_scripts (code, descriptor, idx, script, metadata) VALUES ('BTC', {d}, {i}, {sc}, {meta}) ON CONFLICT DO NOTHING;\n\
                 INSERT INTO wallets_scripts (code, script, wallet_id) VALUES ('BTC', {sc}, {w}) ON CONFLICT DO NOTHING;\n",
                sc = pg::lit(&script),
                a = pg::lit(&addr),
                d = pg::lit(&did),
                w = pg::lit(&wid),
            ));
        }
        sql.push_str(&format!(
            "UPDATE descriptors SET next_idx = {end}, gap = {end} - COALESCE((SELECT MAX(idx) + 1 FROM descriptors_scripts WHERE code='BTC' AND descriptor={d} AND used), 0) WHERE code='BTC' AND descriptor={d};",
            end = next + n,
            d = pg::lit(&did)
        ));
        self.pg.run(&sql, true)?;
        Ok(n)
    }

    fn is_tracked(&self, scheme: &str) -> Result<bool, pg::PgError> {
        let rows = self
            .pg
            .query(&format!("SELECT COUNT(*) FROM wallets WHERE wallet_id={}", pg::lit(&self.wallet_id(scheme))))?;
        Ok(rows.first().and_then(|r| r.first()).is_some_and(|c| c != "0"))
    }

    /// Repository.GetUnused, with its reservation.
    fn get_unused(
        &self,
        st: &coin::Strategy,
        feature: &str,
        skip: i64,
        reserve: bool,
    ) -> Result<Option<Value>, pg::PgError> {
        let did = self.descriptor_id(&st.text, feature);
        let mut regenerated = false;
        loop {
            let pick = format!(
                "SELECT ds.idx FROM descriptors_scripts ds WHERE ds.code='BTC' AND ds.descriptor={d} AND ds.used IS FALSE ORDER BY ds.idx LIMIT 1 OFFSET {skip}",
                d = pg::lit(&did)
            );
            let sql = if reserve {
                format!(
                    "WITH c AS ({pick} FOR UPDATE SKIP LOCKED), u AS (UPDATE descriptors_scripts ds SET used = TRUE FROM c WHERE ds.code='BTC' AND ds.descriptor={d} AND ds.idx=c.idx RETURNING ds.idx, ds.script, ds.metadata)\n\
                     SELECT u.idx, u.script, s.addr, COALESCE(u.metadata->>'redeem', '') FROM u JOIN scripts s ON s.code='BTC' AND s.script=u.script;",
                    d = pg::lit(&did)
                )
            } else {
                format!(
                    "SELECT ds.idx, ds.script, s.addr, COALESCE(ds.metadata->>'redeem', '') FROM descriptors_scripts ds JOIN scripts s ON s.code=ds.code AND s.script=ds.script WHERE ds.idx = ({pick}) AND ds.code='BTC' AND ds.descriptor={d};",
                    d = pg::lit(&did)
                )
            };
            let rows = self.pg.run(&sql, true)?;
            let Some(r) = rows.into_iter().next().filter(|r| r.len() >= 4) else {
                if !self.is_tracked(&st.text)? || regenerated {
                    return Ok(None);
                }
                regenerated = true;
                if self.generate(st, feature, None)? == 0 {
                    return Ok(None);
                }
                continue;
            };
            let idx: i64 = r[0].parse().unwrap_or(0);
            if reserve {
                // AddressPoolService refills the pool once the gap is under mingapsize
                let _ = self.pg.run(
                    &format!(
                        "UPDATE descriptors SET gap = next_idx - COALESCE((SELECT MAX(idx) + 1 FROM descriptors_scripts WHERE code='BTC' AND descriptor={d} AND used), 0) WHERE code='BTC' AND descriptor={d};",
                        d = pg::lit(&did)
                    ),
                    false,
                );
                let _ = self.generate(st, feature, None);
            }
            let mut fields = vec![
                ("trackedSource", s(&format!("DERIVATIONSCHEME:{}", st.text))),
                ("feature", s(feature)),
                ("derivationStrategy", s(&st.text)),
                ("keyPath", s(&Self::keypath(feature, idx))),
                ("scriptPubKey", s(&r[1])),
                ("address", s(&r[2])),
            ];
            if !r[3].is_empty() {
                fields.push(("redeem", s(&r[3])));
            }
            fields.push(("index", num(idx)));
            return Ok(Some(obj(fields)));
        }
    }

    // ---- HTTP

    fn authorized(&self, req: &Request) -> bool {
        let cookie = self.cookie.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some((user, pass)) = &cookie else { return true };
        let Some(h) = req.header("Authorization") else { return false };
        if h.len() < 6 || !h[..5].eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(h[5..].trim()) else { return false };
        // iso-8859-1, as BasicAuthenticationHandler decodes it
        let text: String = raw.iter().map(|&b| b as char).collect();
        let Some((u, p)) = text.split_once(':') else { return false };
        u.eq_ignore_ascii_case(user) && p.eq_ignore_ascii_case(pass)
    }

    fn handle(&self, req: Request) -> Response {
        let (segs, q) = split_target(&req.path);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        if req.method == "GET" && segs == ["health"] {
            return self.health();
        }
        if segs.first() != Some(&"v1") {
            return Response::new(404, "text/plain", "");
        }
        if !self.authorized(&req) {
            return Response::new(401, "text/plain", "");
        }
        let r = match (req.method.as_str(), &segs[1..]) {
            ("GET", ["cryptos", c, "status"]) => self.crypto(c).map(|_| self.status()),
            ("POST", ["cryptos", c, "derivations", scheme]) => self.crypto(c).and_then(|_| self.track(scheme)),
            ("GET", ["cryptos", c, "derivations", scheme]) => self.crypto(c).and_then(|_| self.tracked(scheme)),
            ("GET", ["cryptos", c, "derivations", scheme, "addresses", "unused"]) => {
                self.crypto(c).and_then(|_| self.unused(scheme, &q))
            }
            ("GET", ["cryptos", c, "fees", blocks]) => self.crypto(c).and_then(|_| self.fees(blocks)),
            ("POST", ["cryptos", c, "rpc"]) => self.crypto(c).and_then(|_| self.rpc_proxy(&req.body)),
            _ => Err(Response::new(404, "text/plain", "")),
        };
        r.unwrap_or_else(|e| e)
    }

    fn crypto(&self, code: &str) -> Result<(), Response> {
        if code.eq_ignore_ascii_case("BTC") {
            Ok(())
        } else {
            Err(nbx_error(404, "cryptoCode-not-supported", &format!("{} is not supported", code.to_uppercase())))
        }
    }

    fn health(&self) -> Response {
        let st = self.state();
        let ok = self.connected();
        let status = if ok { "Healthy" } else { "Degraded" };
        let desc = if ok { "null".to_string() } else { "\"Some nodes are not running\"".to_string() };
        let body = format!(
            "{{\n  \"status\": \"{status}\",\n  \"results\": {{\n    \"NodesHealthCheck\": {{\n      \"status\": \"{status}\",\n      \"description\": {desc},\n      \"data\": {{\n        \"BTC\": \"{st:?}\"\n      }}\n    }}\n  }}\n}}"
        );
        Response::new(200, "application/json", body)
    }

    /// MainController.GetStatus.
    fn status(&self) -> Response {
        let (state, last, ni, caps) = {
            let g = self.idx.lock().unwrap_or_else(|e| e.into_inner());
            (g.state, g.last_indexed, g.network_info.clone(), g.caps.unwrap_or_default())
        };
        let info = if self.connected() {
            self.rpc.call_t("getblockchaininfo", vec![], Duration::from_secs(10)).ok().map(|v| ChainInfo::from(&v))
        } else {
            None
        };
        let fee = |k: &str| -> Value {
            match ni.as_ref().and_then(|n| n.get(k)).and_then(|v| v.f64()) {
                Some(btc_per_kvb) => {
                    num(format!("{:.1}", btc_per_kvb * 1e8 / 1000.0).trim_end_matches(".0").to_string())
                }
                None => Value::Null,
            }
        };
        let mut full = true;
        let mut chain_height = 0;
        let bitcoin_status = match (&info, &ni) {
            (Some(i), Some(n)) => {
                let synched = !i.synching(&self.net);
                full &= synched;
                chain_height = i.headers;
                let ext: Vec<Value> = match n.get("localaddresses") {
                    Some(Value::Arr(a)) => a
                        .iter()
                        .map(|l| {
                            s(&format!(
                                "{}:{}",
                                l.get("address").and_then(Value::as_str).unwrap_or_default(),
                                l.get("port").and_then(Value::as_i64).unwrap_or(0)
                            ))
                        })
                        .collect(),
                    _ => vec![],
                };
                obj(vec![
                    ("blocks", num(i.blocks)),
                    ("headers", num(i.headers)),
                    ("verificationProgress", num(format!("{:?}", i.progress))),
                    ("isSynched", Value::Bool(synched)),
                    ("incrementalRelayFee", fee("incrementalfee")),
                    ("minRelayTxFee", fee("relayfee")),
                    ("externalAddresses", Value::Arr(ext)),
                    (
                        "capabilities",
                        obj(vec![
                            ("canScanTxoutSet", Value::Bool(caps.scan_utxo_set)),
                            ("canSupportSegwit", Value::Bool(caps.segwit)),
                            ("canSupportTaproot", Value::Bool(caps.taproot)),
                            ("canSupportTransactionCheck", Value::Bool(caps.test_mempool_accept)),
                        ]),
                    ),
                ])
            }
            _ => Value::Null,
        };
        full &= info.is_some()
            && state == State::Ready
            && last.is_some()
            && info.as_ref().map_or(0, |i| i.headers) - last.unwrap_or(0) < 3;
        let body = obj(vec![
            ("bitcoinStatus", bitcoin_status),
            ("isFullySynched", Value::Bool(full)),
            ("chainHeight", num(chain_height)),
            ("syncHeight", last.map_or(Value::Null, num)),
            ("instanceName", s(&self.instance_name)),
            ("networkType", s(self.net.chain_name)),
            ("cryptoCode", s("BTC")),
            ("supportedCryptoCodes", Value::Arr(vec![s("BTC")])),
            ("version", s(&format!("{VERSION}.0"))),
        ]);
        Response::new(200, "application/json; charset=utf-8", body.compact())
    }

    fn strategy(&self, scheme: &str) -> Result<coin::Strategy, Response> {
        coin::parse_strategy(scheme, self.net.xpub).map_err(|m| nbx_error(400, "invalid-format", &m))
    }

    fn db_failed(e: pg::PgError) -> Response {
        dlog(
            "fail",
            "Microsoft.AspNetCore.Server.Kestrel",
            &format!("Unhandled exception while processing the request\n{}", e.dotnet()),
        );
        Response::new(500, "text/plain", "")
    }

    fn track(&self, scheme: &str) -> Result<Response, Response> {
        let st = self.strategy(scheme)?;
        for f in ["Deposit", "Change"] {
            self.generate(&st, f, Some(3)).map_err(Self::db_failed)?;
        }
        Ok(Response::new(200, "text/plain", ""))
    }

    fn tracked(&self, scheme: &str) -> Result<Response, Response> {
        let st = self.strategy(scheme)?;
        if self.is_tracked(&st.text).map_err(Self::db_failed)? {
            Ok(Response::new(200, "text/plain", ""))
        } else {
            Ok(Response::new(404, "text/plain", ""))
        }
    }

    fn unused(&self, scheme: &str, q: &HashMap<String, String>) -> Result<Response, Response> {
        let st = self.strategy(scheme)?;
        let feature = match q.get("feature").map(|f| f.to_ascii_lowercase()) {
            None => "Deposit",
            Some(f) if f == "deposit" => "Deposit",
            Some(f) if f == "change" => "Change",
            Some(f) if f == "direct" || f == "custom" => {
                let name = if f == "direct" { "Direct" } else { "Custom" };
                return Err(nbx_error(
                    400,
                    "derivation-feature-not-supported",
                    &format!("The derivation feature {name} is not supported by this derivation scheme"),
                ));
            }
            Some(f) => {
                return Err(nbx_error(400, "invalid-format", &format!("The value '{f}' is not valid for feature.")))
            }
        };
        let skip: i64 = q.get("skip").and_then(|v| v.parse().ok()).unwrap_or(0);
        let reserve = q.get("reserve").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if skip >= self.min_gap {
            return Err(nbx_error(
                404,
                "strategy-not-found",
                "This strategy is not tracked, or you tried to skip too much unused addresses",
            ));
        }
        let r = self.get_unused(&st, feature, skip, reserve).map_err(Self::db_failed)?;
        Ok(Response::new(200, "application/json; charset=utf-8", r.map_or("null".to_string(), |v| v.compact())))
    }

    fn rpc_available(&self) -> Result<(), Response> {
        let caps = self.idx.lock().unwrap_or_else(|e| e.into_inner()).caps;
        if !self.connected() || caps.is_none() {
            return Err(nbx_error(400, "rpc-unavailable", "The RPC interface is currently not available."));
        }
        Ok(())
    }

    fn fees(&self, blocks: &str) -> Result<Response, Response> {
        self.rpc_available()?;
        let n: i64 = blocks.parse().map_err(|_| Response::new(404, "text/plain", ""))?;
        let unavailable = || {
            nbx_error(
                400,
                "fee-estimation-unavailable",
                "It is currently impossible to estimate fees, please try again later.",
            )
        };
        let v = self.rpc.call("estimatesmartfee", vec![num(n)]).map_err(|_| unavailable())?;
        let Some(rate) = v.get("feerate").and_then(|f| f.f64()) else { return Err(unavailable()) };
        let got = v.get("blocks").and_then(Value::as_i64).unwrap_or(n);
        let sat_vb = rate * 1e8 / 1000.0;
        let body = obj(vec![("feeRate", num(format!("{sat_vb}"))), ("blockCount", num(got))]);
        Ok(Response::new(200, "application/json; charset=utf-8", body.compact()))
    }

    /// MainController.RPCProxy: the whitelisted methods (all of them with exposerpc).
    fn rpc_proxy(&self, body: &[u8]) -> Result<Response, Response> {
        self.rpc_available()?;
        let text = String::from_utf8_lossy(body);
        let one = |r: &Value| -> Result<Value, Response> {
            let method = r.get("method").and_then(Value::as_str).unwrap_or_default().to_string();
            if !self.expose_rpc && !RPC_WHITELIST.contains(&method.as_str()) {
                return Err(nbx_error(
                    401,
                    "json-rpc-not-exposed",
                    &format!(
                        "JSON-RPC is not configured to be exposed. Only the following methods are available: {}",
                        RPC_WHITELIST.join(", ")
                    ),
                ));
            }
            let params = match r.get("params") {
                Some(Value::Arr(a)) => a.clone(),
                _ => vec![],
            };
            Ok(match self.rpc.call(&method, params) {
                Ok(v) => obj(vec![("result", v)]),
                Err(RpcError::Rpc(code, m)) => obj(vec![("error", obj(vec![("code", num(code)), ("message", s(&m))]))]),
                Err(RpcError::Http(m)) => {
                    dlog("fail", "Microsoft.AspNetCore.Server.Kestrel", &format!("Unhandled exception while processing the request\nSystem.Net.Http.HttpRequestException: {m}"));
                    return Err(Response::new(500, "text/plain", ""));
                }
            })
        };
        let out = match json::parse(text.trim()) {
            Ok(Value::Arr(reqs)) => {
                if !self.expose_rpc
                    && !reqs
                        .iter()
                        .all(|r| RPC_WHITELIST.contains(&r.get("method").and_then(Value::as_str).unwrap_or_default()))
                {
                    return Err(one(&obj(vec![("method", s("(batch)"))]))
                        .err()
                        .unwrap_or_else(|| Response::new(401, "text/plain", "")));
                }
                Value::Arr(reqs.iter().map(one).collect::<Result<Vec<_>, _>>()?)
            }
            Ok(r @ Value::Obj(_)) if r.get("method").is_some() => one(&r)?,
            _ => return Err(nbx_error(422, "no-json-rpc-request", "A JSON-RPC request was not provided in the body.")),
        };
        Ok(Response::new(200, "application/json; charset=utf-8", out.compact()))
    }
}

fn nbx_error(status: u16, code: &str, message: &str) -> Response {
    let v = obj(vec![("httpCode", num(status)), ("code", s(code)), ("message", s(message)), ("reason", Value::Null)]);
    Response::new(status, "application/json; charset=utf-8", v.compact())
}

/// NodeConnectionParameters.CreateVersion: services none, relay, height 0.
fn version_payload(peer: &std::net::SocketAddr, user_agent: &str, default_port: u16) -> Vec<u8> {
    let addr = |a: Option<&std::net::SocketAddr>| -> Vec<u8> {
        let mut v = Vec::with_capacity(26);
        v.extend_from_slice(&0u64.to_le_bytes());
        let (ip, port) = match a {
            Some(std::net::SocketAddr::V4(x)) => (x.ip().to_ipv6_mapped().octets(), x.port()),
            Some(std::net::SocketAddr::V6(x)) => (x.ip().octets(), x.port()),
            None => (std::net::Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets(), default_port),
        };
        v.extend_from_slice(&ip);
        v.extend_from_slice(&port.to_be_bytes());
        v
    };
    let mut v = Vec::new();
    v.extend_from_slice(&crate::p2p::PROTOCOL_VERSION.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    v.extend_from_slice(&(unix_now() as i64).to_le_bytes());
    v.extend(addr(Some(peer)));
    v.extend(addr(None));
    v.extend_from_slice(&u64::from_str_radix(&crate::sys::random_hex(8), 16).unwrap_or(1).to_le_bytes());
    v.push(user_agent.len() as u8);
    v.extend_from_slice(user_agent.as_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.push(1);
    v
}

/// The stand-in's migrations, under upstream's script names (see the module's doc).
const SCRIPTS: &[(&str, &str)] = &[
    (
        "001.Migrations",
        "CREATE TABLE nbxv1_migrations (script_name TEXT NOT NULL PRIMARY KEY, executed_at timestamptz DEFAULT CURRENT_TIMESTAMP)",
    ),
    (
        "002.Model",
        "CREATE TABLE IF NOT EXISTS blks (code TEXT NOT NULL, blk_id TEXT NOT NULL, height BIGINT, prev_id TEXT,
           confirmed BOOLEAN DEFAULT 'f', indexed_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (code, blk_id));
         CREATE TABLE IF NOT EXISTS scripts (code TEXT NOT NULL, script TEXT NOT NULL, addr TEXT NOT NULL,
           used BOOLEAN NOT NULL DEFAULT 'f', PRIMARY KEY (code, script));
         CREATE TABLE IF NOT EXISTS descriptors (code TEXT NOT NULL, descriptor TEXT NOT NULL, metadata JSONB NULL DEFAULT NULL,
           next_idx BIGINT DEFAULT 0, gap BIGINT DEFAULT 0, PRIMARY KEY (code, descriptor));
         CREATE TABLE IF NOT EXISTS descriptors_scripts (code TEXT NOT NULL, descriptor TEXT NOT NULL, idx BIGINT NOT NULL,
           script TEXT NOT NULL, metadata JSONB DEFAULT NULL, used BOOLEAN NOT NULL DEFAULT 'f',
           PRIMARY KEY (code, descriptor, idx), FOREIGN KEY (code, script) REFERENCES scripts ON DELETE CASCADE);
         CREATE INDEX IF NOT EXISTS descriptors_scripts_code_script ON descriptors_scripts (code, script);
         CREATE TABLE IF NOT EXISTS wallets (wallet_id TEXT NOT NULL PRIMARY KEY, metadata JSONB DEFAULT NULL,
           created_at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE IF NOT EXISTS wallets_scripts (code TEXT NOT NULL, script TEXT NOT NULL,
           wallet_id TEXT REFERENCES wallets ON DELETE CASCADE, ref_count INT DEFAULT 1, PRIMARY KEY (code, script, wallet_id),
           FOREIGN KEY (code, script) REFERENCES scripts ON DELETE CASCADE);
         CREATE TABLE IF NOT EXISTS wallets_descriptors (code TEXT NOT NULL, descriptor TEXT NOT NULL,
           wallet_id TEXT NOT NULL REFERENCES wallets ON DELETE CASCADE, PRIMARY KEY (code, descriptor, wallet_id),
           FOREIGN KEY (code, descriptor) REFERENCES descriptors ON DELETE CASCADE)",
    ),
    (
        "003.Legacy",
        "CREATE TABLE IF NOT EXISTS nbxv1_settings (code TEXT NOT NULL, key TEXT NOT NULL, data_bytes bytea DEFAULT NULL,
           data_json JSONB DEFAULT NULL, PRIMARY KEY (code, key))",
    ),
];

fn template(net: &Net) -> String {
    format!(
        "####Common Commands####\n\
         ## (written by the archy e2e stand-in where upstream writes its commented template; every line is a comment)\n\
         #btc.rpc.url=http://127.0.0.1:{rpc}/\n#btc.rpc.cookiefile=yourbitcoinfolder/.cookie\n#btc.node.endpoint=127.0.0.1:{p2p}\n\
         #btc.startheight=-1\n#noauth=0\n#chains=btc\n\n####Server Commands####\n#port={port}\n#bind=127.0.0.1\n",
        rpc = net.rpc_port,
        p2p = net.p2p_port,
        port = net.nbx_port
    )
}

pub fn nbxplorer(argv: &[String]) -> i32 {
    if !Path::new("NBXplorer.dll").exists() {
        return dotnet_missing_app("NBXplorer.dll");
    }
    dlog("info", CAT_CONF, &format!("NBXplorer version {VERSION}"));
    match run(argv) {
        Ok(never) => match never {},
        Err(e) => finish(e, CAT_CONF),
    }
}

/// The .NET muxer (a runtime without an SDK) asked to run an app that is not in the working
/// directory, e.g. under another WORKDIR (wording and status 0x80008091 inferred, not verified).
pub(crate) fn dotnet_missing_app(app: &str) -> i32 {
    crate::log!(
        "The command could not be loaded, possibly because:\n  * You intended to execute a .NET application:\n      The application '{app}' does not exist.\n  * You intended to execute a .NET SDK command:\n      No .NET SDKs were found."
    );
    145
}

enum Never {}

fn run(argv: &[String]) -> Result<Never, Exit> {
    crate::sys::exit_on_signals("info: NBXplorer.Indexer.BTC: Node disconnected (NBXplorer stopping...)");
    let netdir_default =
        |c: &DotnetConf| -> Result<PathBuf, Exit> { Ok(home().join(".nbxplorer").join(network_of(c)?.folder)) };
    let conf_file = |c: &DotnetConf| -> Result<PathBuf, Exit> {
        let net = network_of(c)?;
        let dir = match c.get("datadir") {
            Some(d) => PathBuf::from(d).join(net.folder),
            None => home().join(".nbxplorer").join(net.folder),
        };
        let _ = std::fs::create_dir_all(&dir);
        Ok(dir.join("settings.config"))
    };
    // the template needs the network: read it from the variables and arguments alone
    let pre = network_of(&DotnetConf::early("NBXPLORER_", argv)).unwrap_or(MAIN);
    let conf = DotnetConf::load("NBXPLORER_", argv, &netdir_default, &conf_file, &template(&pre))?;

    // ExplorerConfiguration.LoadArgs
    let net = network_of(&conf)?;
    let base = match conf.get("datadir") {
        Some(d) => PathBuf::from(d),
        None => home().join(".nbxplorer"),
    };
    dlog("info", CAT_CONF, &format!("Network: {}", net.chain_name));
    let chains: Vec<String> =
        conf.string("chains", "btc").split(',').filter(|c| !c.is_empty()).map(|c| c.trim().to_uppercase()).collect();
    const OTHER_CHAINS: &[&str] = &[
        "LTC",
        "BCH",
        "BTG",
        "DASH",
        "DOGE",
        "GRS",
        "MONA",
        "FTC",
        "POLIS",
        "VIA",
        "BTX",
        "TERRACOIN",
        "CHC",
        "COLX",
        "UFO",
        "MUE",
        "LBTC",
        "QTUM",
        "AGM",
        "XMCC",
        "PEP",
    ];
    let invalid: Vec<&str> =
        chains.iter().map(String::as_str).filter(|c| *c != "BTC" && !OTHER_CHAINS.contains(c)).collect();
    let btc = chains.iter().any(|c| c == "BTC");
    let mut rpc = None;
    let mut node_endpoint = String::new();
    let mut start_height = -1;
    let mut expose_rpc = false;
    if btc {
        let url = conf.string("btc.rpc.url", &format!("http://localhost:{}/", net.rpc_port));
        let user = conf.get("btc.rpc.user");
        let password = conf.get("btc.rpc.password");
        let mut auth = match (&user, &password) {
            (Some(u), Some(p)) => Some(RpcAuth::Fixed(format!("{u}:{p}"))),
            _ => conf.get("btc.rpc.cookiefile").map(|c| RpcAuth::Cookie(PathBuf::from(c))),
        };
        if !matches!(auth, Some(RpcAuth::Fixed(_))) {
            if let Some(a) = conf.get("btc.rpc.auth") {
                auth = Some(match a.strip_prefix("cookiefile=") {
                    Some(p) => RpcAuth::Cookie(PathBuf::from(p)),
                    None => RpcAuth::Fixed(a),
                });
            }
        }
        let auth = match auth {
            Some(a) => a,
            None => match net.core {
                "main" => RpcAuth::Cookie(home().join(".bitcoin/.cookie")),
                "test" => RpcAuth::Cookie(home().join(".bitcoin/testnet3/.cookie")),
                "regtest" => RpcAuth::Cookie(home().join(".bitcoin/regtest/.cookie")),
                _ => {
                    dlog("fail", CAT_CONF, "BTC: RPC connection settings not configured");
                    return Err(Exit::Config(String::new()));
                }
            },
        };
        let r = Rpc::new(&url, auth).map_err(Exit::Config)?;
        if r.port == net.p2p_port {
            dlog("warn", CAT_CONF, &format!("BTC: It seems that the RPC port ({}) is equal to the default P2P port ({}), this is probably a misconfiguration.", r.port, net.p2p_port));
        }
        let ep = conf.string("btc.node.endpoint", "127.0.0.1");
        node_endpoint = match ep.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() && !h.is_empty() => ep.clone(),
            _ => format!("{ep}:{}", net.p2p_port),
        };
        if node_endpoint.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()) == Some(net.rpc_port) {
            dlog("warn", CAT_CONF, &format!("BTC: It seems that the node endpoint port ({}) is equal to the default RPC port ({}), this is probably a misconfiguration.", net.rpc_port, net.rpc_port));
        }
        start_height = conf.int("btc.startheight", -1)?;
        let global = conf.bool("exposerpc", false)?;
        expose_rpc = conf.bool("btc.exposerpc", global)?;
        rpc = Some(r);
    }
    if !invalid.is_empty() {
        return Err(Exit::Config(format!("Invalid chains {} for {}", invalid.join(","), net.chain_name)));
    }
    dlog("info", CAT_CONF, &format!("Supported chains: {}", chains.join(",")));
    let min_gap = conf.int("mingapsize", 20)?;
    let max_gap = conf.int("maxgapsize", 30)?;
    if min_gap > max_gap {
        return Err(Exit::Config("mingapsize should be equal or lower than maxgapsize".into()));
    }
    let datadir = base.join(net.folder);
    let _ = std::fs::create_dir_all(&datadir);
    let signal_dir = conf.get("signalfilesdir").map_or(datadir.clone(), PathBuf::from);
    let _ = std::fs::create_dir_all(&signal_dir);
    let noauth = conf.bool("noauth", false)?;
    let instance_name = conf.string("instancename", "");
    let Some(rpc) = rpc else {
        crate::log!("the archy e2e stand-in models the BTC chain only (chains={})", chains.join(","));
        std::process::exit(1);
    };
    // DbConnectionFactory
    let Some(postgres) = conf.get("postgres") else { return Err(Exit::Config("POSTGRES is required".into())) };
    let cs = pg::parse(&postgres).map_err(Exit::Crash)?;
    let binds = conf.binds("127.0.0.1", net.nbx_port)?;

    let signal_file = signal_dir.join("btc_fully_synched");
    let ctx = Arc::new(Ctx {
        net,
        rpc,
        node_endpoint,
        start_height,
        pg: pg::Pg::new(cs),
        // no cookie yet; no request is served before it is written
        cookie: Mutex::new(None),
        instance_name,
        signal_file: signal_file.clone(),
        min_gap,
        max_gap,
        expose_rpc,
        idx: Mutex::new(Indexer { state: State::NotStarted, last_indexed: None, network_info: None, caps: None }),
    });
    ctx.setup_database()?;
    // RPCReadyFileHostedService: no signal file until Ready, none after a stop
    let _ = std::fs::remove_file(&signal_file);
    crate::sys::remove_on_exit(&signal_file);
    {
        let c = ctx.clone();
        std::thread::spawn(move || c.indexer_loop());
    }
    // CookieRepository.Initialize (Startup.Configure), then Kestrel
    let mut cookie = None;
    if !noauth {
        let pass = crate::sys::random_hex(32);
        let path = datadir.join(".cookie");
        let written =
            std::fs::File::create(&path).and_then(|mut f| f.write_all(format!("__cookie__:{pass}").as_bytes()));
        if let Err(e) = written {
            return Err(Exit::Crash(format!(
                "System.UnauthorizedAccessException: Access to the path '{}' is denied. ({e})",
                path.display()
            )));
        }
        cookie = Some(("__cookie__".to_string(), pass));
    }
    *ctx.cookie.lock().unwrap_or_else(|e| e.into_inner()) = cookie;
    let mut listeners = Vec::new();
    for b in &binds {
        match TcpListener::bind(b.as_str()) {
            Ok(l) => listeners.push((b.clone(), l)),
            Err(e) => {
                return Err(Exit::Crash(format!(
                    "System.IO.IOException: Failed to bind to address http://{b}: {}.",
                    if e.kind() == std::io::ErrorKind::AddrInUse {
                        "address already in use".to_string()
                    } else {
                        e.to_string()
                    }
                )))
            }
        }
    }
    for (b, l) in listeners {
        dlog("info", CAT_CONF, &format!("Now listening on: http://{b}"));
        let c = ctx.clone();
        std::thread::spawn(move || http::serve(l, move |req| Some(c.handle(req))));
    }
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(convert_to_endpoint("0.0.0.0:32838", 24444).ok(), Some("0.0.0.0:32838".to_string()));
        assert_eq!(convert_to_endpoint("127.0.0.1", 24444).ok(), Some("127.0.0.1:24444".to_string()));
        assert_eq!(convert_to_endpoint("[::]:1234", 1).ok(), Some("[::]:1234".to_string()));
        assert!(convert_to_endpoint("no-such-host.invalid", 1).is_err());
    }

    #[test]
    fn ids() {
        // wallet ids are 21 bytes of SHA-256 in base64: 28 characters
        let h = coin::sha256(b"BTC|xpub");
        assert_eq!(base64::engine::general_purpose::STANDARD.encode(&h[..21]).len(), 28);
    }

    #[test]
    fn targets() {
        let (segs, q) =
            split_target("/v1/cryptos/BTC/derivations/xpub1-%5Bp2sh%5D/addresses/unused?feature=Deposit&reserve=true");
        assert_eq!(segs[4], "xpub1-[p2sh]");
        assert_eq!(q.get("reserve").map(String::as_str), Some("true"));
    }
}
