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

mod api;
mod db;
mod indexer;
mod node;
mod rpc;
mod scheme;

use crate::dotnet::{self, dlog, finish, load_conf, Exit, Net, Never};
use crate::json::Value;
use crate::postgres as pg;
use rpc::{Rpc, RpcAuth};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub const VERSION: &str = "2.6.10";
const CAT_CONF: &str = "Configuration";
const CAT_DB: &str = "NBXplorer.DatabaseSetup";
const CAT_IDX: &str = "NBXplorer.Indexer.BTC";
const CAT_EVT: &str = "NBXplorer.Events";

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
        dlog(
            "info",
            CAT_EVT,
            &format!("BTC: Node state changed: {old:?} => {new:?}"),
        );
        if new == State::Ready {
            if let Err(e) = std::fs::write(&self.signal_file, crate::util::unix_secs().to_string())
            {
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
        matches!(
            self.state(),
            State::CoreSynching | State::NBXplorerSynching | State::Ready
        )
    }
}

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
        return dotnet::missing_app("NBXplorer.dll");
    }
    dlog("info", CAT_CONF, &format!("NBXplorer version {VERSION}"));
    match run(argv) {
        Ok(never) => match never {},
        Err(e) => finish(e, CAT_CONF),
    }
}

fn run(argv: &[String]) -> Result<Never, Exit> {
    crate::sys::exit_on_signals(
        "info: NBXplorer.Indexer.BTC: Node disconnected (NBXplorer stopping...)",
    );
    let conf = load_conf("NBXPLORER_", ".nbxplorer", argv, template)?;

    // ExplorerConfiguration.LoadArgs
    let net = dotnet::network_of(&conf)?;
    let base = match conf.get("datadir") {
        Some(d) => PathBuf::from(d),
        None => dotnet::home().join(".nbxplorer"),
    };
    dlog("info", CAT_CONF, &format!("Network: {}", net.chain_name));
    let chains: Vec<String> = conf
        .string("chains", "btc")
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| c.trim().to_uppercase())
        .collect();
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
    let invalid: Vec<&str> = chains
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "BTC" && !OTHER_CHAINS.contains(c))
        .collect();
    let btc = chains.iter().any(|c| c == "BTC");
    let mut rpc = None;
    let mut node_endpoint = String::new();
    let mut start_height = -1;
    let mut expose_rpc = false;
    if btc {
        let url = conf.string(
            "btc.rpc.url",
            &format!("http://localhost:{}/", net.rpc_port),
        );
        let user = conf.get("btc.rpc.user");
        let password = conf.get("btc.rpc.password");
        let mut auth = match (&user, &password) {
            (Some(u), Some(p)) => Some(RpcAuth::Fixed(format!("{u}:{p}"))),
            _ => conf
                .get("btc.rpc.cookiefile")
                .map(|c| RpcAuth::Cookie(PathBuf::from(c))),
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
                "main" => RpcAuth::Cookie(dotnet::home().join(".bitcoin/.cookie")),
                "test" => RpcAuth::Cookie(dotnet::home().join(".bitcoin/testnet3/.cookie")),
                "regtest" => RpcAuth::Cookie(dotnet::home().join(".bitcoin/regtest/.cookie")),
                _ => {
                    dlog(
                        "fail",
                        CAT_CONF,
                        "BTC: RPC connection settings not configured",
                    );
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
        if node_endpoint
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            == Some(net.rpc_port)
        {
            dlog("warn", CAT_CONF, &format!("BTC: It seems that the node endpoint port ({}) is equal to the default RPC port ({}), this is probably a misconfiguration.", net.rpc_port, net.rpc_port));
        }
        start_height = conf.int("btc.startheight", -1)?;
        let global = conf.bool("exposerpc", false)?;
        expose_rpc = conf.bool("btc.exposerpc", global)?;
        rpc = Some(r);
    }
    if !invalid.is_empty() {
        return Err(Exit::Config(format!(
            "Invalid chains {} for {}",
            invalid.join(","),
            net.chain_name
        )));
    }
    dlog(
        "info",
        CAT_CONF,
        &format!("Supported chains: {}", chains.join(",")),
    );
    let min_gap = conf.int("mingapsize", 20)?;
    let max_gap = conf.int("maxgapsize", 30)?;
    if min_gap > max_gap {
        return Err(Exit::Config(
            "mingapsize should be equal or lower than maxgapsize".into(),
        ));
    }
    let datadir = base.join(net.folder);
    let _ = std::fs::create_dir_all(&datadir);
    let signal_dir = conf
        .get("signalfilesdir")
        .map_or(datadir.clone(), PathBuf::from);
    let _ = std::fs::create_dir_all(&signal_dir);
    let noauth = conf.bool("noauth", false)?;
    let instance_name = conf.string("instancename", "");
    let Some(rpc) = rpc else {
        crate::log!(
            "the archy e2e stand-in models the BTC chain only (chains={})",
            chains.join(",")
        );
        std::process::exit(1);
    };
    // DbConnectionFactory
    let Some(postgres) = conf.get("postgres") else {
        return Err(Exit::Config("POSTGRES is required".into()));
    };
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
        idx: Mutex::new(Indexer {
            state: State::NotStarted,
            last_indexed: None,
            network_info: None,
            caps: None,
        }),
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
        let written = std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(format!("__cookie__:{pass}").as_bytes()));
        if let Err(e) = written {
            return Err(Exit::Crash(format!(
                "System.UnauthorizedAccessException: Access to the path '{}' is denied. ({e})",
                path.display()
            )));
        }
        cookie = Some(("__cookie__".to_string(), pass));
    }
    *ctx.cookie.lock().unwrap_or_else(|e| e.into_inner()) = cookie;
    dotnet::serve(&binds, move |req| ctx.handle(req))
}
