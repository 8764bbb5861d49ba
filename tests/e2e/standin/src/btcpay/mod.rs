//! BTCPay Server 2.4.2 (`dotnet BTCPayServer.dll`, image docker.io/btcpayserver/btcpayserver:2.4.2,
//! run by `/app/docker-entrypoint.sh`), as archy, NBXplorer and a real PostgreSQL see it. Upstream
//! files are btcpayserver/btcpayserver at tag v2.4.1 (2.4.2, a security release for Greenfield's
//! Basic auth, is not in the mirror this was written from) unless another repository is named.
//!
//! Configuration: StandardConfiguration as for NBXplorer (see `dotnet/config.rs`) with the `BTCPAY_`
//! prefix (`BTCPayServer/Configuration/DefaultConfiguration.cs`); `<datadir>/<Main|...>/settings.config`;
//! listen address from `bind`/`port`, default 127.0.0.1:23000 on mainnet; `postgres` is required
//! ("No database option was configured.", an InvalidOperationException nothing catches: exit 134,
//! `BTCPayServer/Hosting/BTCPayServerServices.cs`); `btc.explorer.url` (default
//! http://127.0.0.1:24444/) and `btc.explorer.cookiefile` (default `$HOME/.nbxplorer/Main/.cookie`),
//! logged as `BTCPayServer/ExplorerClientProvider.cs` does ("Explorer url is", "Cookie file is",
//! "Using cookie auth against NBXplorer, but ... is not found"; `0` or empty: no authentication).
//!
//! Startup (`BTCPayServer/Program.cs`, `Extensions/HostExtensions.cs` StartWithTasksAsync): the
//! startup tasks run before the host, so the HTTP port stays closed until the migrations are done
//! (`Hosting/MigrationStartupTask.cs` Migrate: "Running the migration scripts...", on any error
//! "Error while running migration scripts, retrying..." with the exception, again after 1 s,
//! forever; then "All migration scripts ran successfully"). As EF Core's MigrateAsync does, a
//! missing database is created from the `postgres` database (the role needs CREATEDB) and
//! applied migrations are listed in `__EFMigrationsHistory`. The stand-in's migration is its own
//! (`00000000000000_ArchyE2EStandin`): tables named and shaped after upstream's model
//! (`BTCPayServer.Data/Migrations/ApplicationDbContextModelSnapshot.cs`) for what it stores:
//! AspNetUsers, Stores, UserStore, ApiKeys, Invoices, AddressInvoices, WalletObjects.
//!
//! Test hook (not upstream's): after the migrations, on a database without it, the stand-in
//! creates a user, a store (default currency BTC) whose on-chain wallet is BIP-32 test vector 1's
//! master xpub (as a tpub off mainnet; a P2WPKH scheme), and an API key with
//! `btcpay.store.canmodifystoresettings:<storeId>`, tracks the scheme with NBXplorer (best
//! effort: the invoice path tracks it again if NBXplorer says it is unknown, as
//! `Services/Wallets/BTCPayWallet.cs` ReserveAddressAsync does) and writes the key to
//! `<datadir>/standin-apikey` and the store id to `<datadir>/standin-storeid` (0600).
//!
//! NBXplorer (`HostedServices/NBXplorerWaiter.cs`; btcpayserver/NBXplorer v2.6.10
//! `NBXplorer.Client/ExplorerClient.cs`): Basic auth with the cookie file's content, re-read and
//! retried once on 401; the waiter polls `GET v1/cryptos/BTC/status` (and getmempoolinfo through
//! NBXplorer's RPC proxy, errors ignored): NotConnected -> Synching (isFullySynched false) or
//! Ready, every 10 s while Synching, every minute otherwise; an error ("BTC: NBXplorer error
//! `...`"), a 404 ("NBXplorer does not support this cryptocurrency") or another chain type make
//! it NotConnected. The dashboard is fully synched when the last status said isFullySynched.
//!
//! HTTP:
//! - `GET /api/v1/health`, anonymous, always 200: `{"synchronized": bool}`
//!   (`Controllers/GreenField/GreenfieldHealthController.cs`).
//! - Greenfield with `Authorization: token <key>` (or `bearer`,
//!   `Security/GreenField/APIKeyExtensions.cs`); no key: 401 `{"code":"unauthenticated",
//!   "message":"Authentication is required for accessing this endpoint"}`, an unknown one:
//!   "ApiKey authentication failed: Unknown API Key" (`APIKeysAuthenticationHandler.cs`,
//!   `GreenfieldAuthenticationHandler.cs`); a key without the policy for that store: 403
//!   `missing-permission`. Basic auth is not modelled (the stand-in's user has no password).
//! - `GET /api/v1/stores`, `GET /api/v1/stores/{storeId}`.
//! - `POST /api/v1/stores/{storeId}/invoices` (`GreenfieldInvoiceController.cs` CreateInvoice,
//!   `Controllers/UIInvoiceController.cs` CreateInvoiceCoreRaw,
//!   `Payments/Bitcoin/BitcoinLikePaymentHandler.cs`): validation as upstream (amount >= 0, an
//!   expiration of 30 s or more, a tolerance 0-100, known payment methods: 422); an address is
//!   reserved from NBXplorer (`addresses/unused?reserve=true`), then "Full node not available"
//!   unless the dashboard is synched, the dust threshold, the fee rate from NBXplorer's `fees/1`;
//!   a failed payment method is a 400 "Error retrieving a matching payment method or rate." with
//!   the invoice logs. Only BTC and SATS invoices can be priced (the stand-in has no rate source;
//!   upstream would fetch an exchange rate). Rows: Invoices, AddressInvoices, WalletObjects.
//! - `GET /api/v1/stores/{storeId}/invoices[/{invoiceId}[/payment-methods]]` and
//!   `/api/v1/invoices/{invoiceId}[/payment-methods]`: InvoiceData and
//!   InvoicePaymentMethodDataModel JSON (`BTCPayServer.Client/Models/InvoiceData.cs`,
//!   `InvoicePaymentMethodDataModel.cs`), destination and BIP-21 link
//!   (`Payments/Bitcoin/BitcoinPaymentLinkExtension.cs`).
//!
//! Not modelled: the UI, users and logins, payments (no transactions reach the stand-ins),
//! invoice expiry, webhooks, Lightning, plugins, the other startup tasks' data migrations.

mod api;
mod explorer;
mod invoices;
mod models;
mod store;
mod waiter;

use crate::dotnet::{self, dlog, finish, load_conf, Exit, Net, Never};
use crate::postgres as pg;
use explorer::Explorer;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use waiter::{Dashboard, WState};

const CAT_CONF: &str = "Configuration";
const CAT_MIG: &str = "BTCPayServer.Hosting.MigrationStartupTask";
const CAT_EF: &str = "Microsoft.EntityFrameworkCore.Migrations";
const CAT_PAY: &str = "PayServer";
const MIGRATION_ID: &str = "00000000000000_ArchyE2EStandin";
const KEY_LABEL: &str = "archy-e2e-standin";
/// BIP-32 test vector 1, chain m: a public key everyone knows, for a wallet nobody spends from
const STANDIN_XPUB: &str =
    "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
const PM: &str = "BTC-CHAIN";

struct Ctx {
    net: Net,
    datadir: PathBuf,
    pg: pg::Pg,
    explorer: Explorer,
    dash: Mutex<Dashboard>,
    /// the stand-in's store, once set up: (store id, derivation scheme)
    store: Mutex<Option<(String, String)>>,
}

struct StoreRow {
    default_currency: String,
    scheme: String,
}

fn template(net: &Net) -> String {
    format!(
        "### Global settings ###\n## (written by the archy e2e stand-in where upstream writes its commented template; every line is a comment)\n\
         #network=mainnet\n#postgres=User ID=root;Host=127.0.0.1;Port=5432;Database=btcpayserver\n\
         #btc.explorer.url=http://127.0.0.1:{nbx}/\n#btc.explorer.cookiefile=~/.nbxplorer/{folder}/.cookie\n\
         ### Server settings ###\n#port={port}\n#bind=127.0.0.1\n",
        nbx = net.nbx_port,
        folder = net.folder,
        port = net.btcpay_port
    )
}

pub fn btcpay(argv: &[String]) -> i32 {
    let mut argv = argv.to_vec();
    // `dotnet BTCPayServer.dll run ...` is accepted for dotnet watch (Program.cs)
    if argv.first().map(String::as_str) == Some("run") {
        argv.remove(0);
    }
    if !Path::new("BTCPayServer.dll").exists() {
        return dotnet::missing_app("BTCPayServer.dll");
    }
    match run(&argv) {
        Ok(never) => match never {},
        Err(Exit::Config(m)) => {
            // Program.Main: the ConfigException's message, then "Configuration error" (no host)
            let code = finish(Exit::Config(m), CAT_CONF);
            dlog("fail", CAT_CONF, "Configuration error");
            code
        }
        Err(e) => finish(e, CAT_CONF),
    }
}

fn run(argv: &[String]) -> Result<Never, Exit> {
    crate::sys::exit_on_signals(
        "info: Microsoft.Hosting.Lifetime: Application is shutting down...",
    );
    let conf = load_conf("BTCPAY_", ".btcpayserver", argv, template)?;
    let net = dotnet::network_of(&conf)?;
    let datadir = conf.get("datadir").map_or_else(
        || dotnet::home().join(".btcpayserver").join(net.folder),
        PathBuf::from,
    );
    let chains: Vec<String> = conf
        .string("chains", "btc")
        .split(',')
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_uppercase())
        .collect();
    if !chains.iter().any(|c| c == "BTC" || c == "*") {
        crate::log!(
            "the archy e2e stand-in models the BTC chain only (chains={})",
            chains.join(",")
        );
        std::process::exit(1);
    }
    let binds = conf.binds("127.0.0.1", net.btcpay_port)?;
    // ExplorerClientProvider
    let url = conf.string(
        "btc.explorer.url",
        &format!("http://127.0.0.1:{}/", net.nbx_port),
    );
    let cookie_setting = conf.get("btc.explorer.cookiefile");
    let cookie_default = dotnet::home()
        .join(".nbxplorer")
        .join(net.folder)
        .join(".cookie")
        .to_string_lossy()
        .into_owned();
    let cookie_file = cookie_setting.clone().unwrap_or(cookie_default);
    dlog("info", CAT_CONF, &format!("BTC: Explorer url is {url}"));
    dlog(
        "info",
        CAT_CONF,
        &format!("BTC: Cookie file is {cookie_file}"),
    );
    let cookie = if cookie_file.trim() == "0" || cookie_file.trim().is_empty() {
        dlog("warn", CAT_CONF, "BTC: Not using cookie authentication");
        None
    } else {
        Some(PathBuf::from(&cookie_file))
    };
    let explorer = Explorer::new(&url, cookie.clone()).map_err(Exit::Crash)?;
    if cookie.as_ref().is_some_and(|c| !c.exists()) || cookie.is_none() {
        dlog(
            "warn",
            CAT_CONF,
            &format!("BTC: Using cookie auth against NBXplorer, but {cookie_file} is not found"),
        );
    }
    // DatabaseOptions: required, but only resolved once the startup tasks run
    let Some(postgres) = conf.get("postgres").filter(|p| !p.is_empty()) else {
        return Err(Exit::Crash(
            "System.InvalidOperationException: No database option was configured.".into(),
        ));
    };
    let _ = std::fs::create_dir_all(&datadir);
    // the MigrationStartupTask: a connection string Npgsql refuses fails inside the retry loop
    let cs = loop {
        match pg::parse(&postgres) {
            Ok(cs) => break cs,
            Err(e) => {
                dlog("info", CAT_MIG, "Running the migration scripts...");
                dlog(
                    "warn",
                    CAT_MIG,
                    &format!("Error while running migration scripts, retrying...\n{e}"),
                );
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    let ctx = Arc::new(Ctx {
        net,
        datadir: datadir.clone(),
        pg: pg::Pg::new(cs),
        explorer,
        dash: Mutex::new(Dashboard {
            state: WState::NotConnected,
            status: None,
            error: None,
        }),
        store: Mutex::new(None),
    });
    ctx.migrate();
    if let Err(e) = ctx.setup_store() {
        return Err(Exit::Crash(e));
    }
    {
        let c = ctx.clone();
        std::thread::spawn(move || c.track_store_wallet());
        let c = ctx.clone();
        std::thread::spawn(move || c.waiter());
    }
    dotnet::serve(&binds, move |req| ctx.handle(req))
}
