//! BTCPay Server 2.4.2 (`dotnet BTCPayServer.dll`, image docker.io/btcpayserver/btcpayserver:2.4.2,
//! run by `/app/docker-entrypoint.sh`), as archy, NBXplorer and a real PostgreSQL see it. Upstream
//! files are btcpayserver/btcpayserver at tag v2.4.1 (2.4.2, a security release for Greenfield's
//! Basic auth, is not in the mirror this was written from) unless another repository is named.
//!
//! Configuration: StandardConfiguration as for NBXplorer (see `nbxplorer.rs`) with the `BTCPAY_`
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
//! Not modelled: the UI, users and logins, payments (no transactions reach the stand-ins),
//! invoice expiry, webhooks, Lightning, plugins, the other startup tasks' data migrations.

use crate::http::{self, Request, Response};
use crate::json::{self, num, obj, s, Value};
use crate::nbxplorer::{self as nbx, coin, dlog, finish, pg, DotnetConf, Exit, Net};
use base64::Engine as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

// ---------------------------------------------------------------------------------------------
// NBXplorer's client, as NBXplorer.Client's ExplorerClient behaves

struct Explorer {
    hostport: String,
    base_path: String,
    cookie: Option<PathBuf>,
    cached: Mutex<Option<String>>,
}

impl Explorer {
    fn new(url: &str, cookie: Option<PathBuf>) -> Result<Explorer, String> {
        let rest =
            url.strip_prefix("http://").ok_or_else(|| format!("System.UriFormatException: Invalid URI: {url}"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let hostport = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        let mut base_path = path.to_string();
        if !base_path.ends_with('/') {
            base_path.push('/');
        }
        let e = Explorer { hostport, base_path, cookie, cached: Mutex::new(None) };
        e.refresh();
        Ok(e)
    }

    /// CookieAuthentication.RefreshCache: true whenever the file could be read.
    fn refresh(&self) -> bool {
        let Some(p) = &self.cookie else { return false };
        match std::fs::read_to_string(p) {
            Ok(c) => {
                *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                true
            }
            Err(_) => false,
        }
    }

    fn once(&self, method: &str, rel: &str, body: &str) -> Result<http::Reply, String> {
        let mut headers = Vec::new();
        if self.cookie.is_some() {
            if let Some(c) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                headers.push((
                    "Authorization",
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(c.as_bytes())),
                ));
            }
        }
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json; charset=utf-8".to_string()));
        }
        http::request(
            &self.hostport,
            method,
            &format!("{}{rel}", self.base_path),
            &headers,
            body,
            Some(Duration::from_secs(100)),
        )
        .map_err(|e| nbx::dotnet_http_error(&e, &self.hostport, 100))
    }

    /// SendAsync<T> and ParseResponse<T>: Ok(None) for a 404 or an empty/null answer; Err is the
    /// exception's message.
    fn send(&self, method: &str, rel: &str, body: &str) -> Result<Option<Value>, String> {
        let mut r = self.once(method, rel, body)?;
        if r.status == 404 {
            return Ok(None);
        }
        if r.status == 504 || r.status == 408 {
            return Err(format!("HTTP error {}", r.status));
        }
        if r.status == 401 && self.refresh() {
            r = self.once(method, rel, body)?;
        }
        if (200..300).contains(&r.status) {
            let t = r.body.trim();
            if t.is_empty() || t == "null" {
                return Ok(None);
            }
            return json::parse(t)
                .map(Some)
                .map_err(|e| format!("Unexpected character encountered while parsing value: {e}"));
        }
        let fail = || {
            format!("Response status code does not indicate success: {} ({}).", r.status, nbx::reason_phrase(r.status))
        };
        if r.status == 500 {
            return Err(fail());
        }
        match json::parse(r.body.trim()) {
            Ok(v) => match v.get("message").and_then(Value::as_str) {
                Some(m) => Err(m.to_string()),
                None => Err(fail()),
            },
            Err(_) => Err(fail()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the server

#[derive(Clone, Copy, Debug, PartialEq)]
enum WState {
    NotConnected,
    Synching,
    Ready,
}

struct Dashboard {
    state: WState,
    status: Option<Value>,
    error: Option<String>,
}

struct Ctx {
    net: Net,
    datadir: PathBuf,
    pg: pg::Pg,
    explorer: Explorer,
    dash: Mutex<Dashboard>,
    /// the stand-in's store, once set up: (store id, derivation scheme)
    store: Mutex<Option<(String, String)>>,
}

fn api_error(status: u16, code: &str, message: &str) -> Response {
    Response::new(
        status,
        "application/json; charset=utf-8",
        obj(vec![("code", s(code)), ("message", s(message))]).compact(),
    )
}

fn ok_json(v: &Value) -> Response {
    Response::new(200, "application/json; charset=utf-8", v.compact())
}

/// Which store-scoped policies a permission grants (the policy definitions in
/// `Hosting/BTCPayServerServices.cs`, as far as the stand-in's routes need them).
fn grants(perm: &str, policy: &str) -> bool {
    perm == policy
        || match perm {
            "btcpay.store.canmodifystoresettings" => matches!(
                policy,
                "btcpay.store.canviewstoresettings"
                    | "btcpay.store.canmodifyinvoices"
                    | "btcpay.store.canviewinvoices"
                    | "btcpay.store.cancreateinvoice"
            ),
            "btcpay.store.canmodifyinvoices" => {
                matches!(policy, "btcpay.store.canviewinvoices" | "btcpay.store.cancreateinvoice")
            }
            _ => false,
        }
}

/// A decimal amount in units of 1e-8 (BTC's divisibility).
fn parse_amount(v: &Value) -> Option<i128> {
    let t = match v {
        Value::Num(n) => n.clone(),
        Value::Str(s) => s.trim().to_string(),
        _ => return None,
    };
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut f = frac.to_string();
    f.truncate(8);
    while f.len() < 8 {
        f.push('0');
    }
    let v: i128 = format!("{}{f}", if int.is_empty() { "0" } else { int }).parse().ok()?;
    Some(if neg { -v } else { v })
}

fn fmt_amount(v: i128, decimals: u32) -> String {
    let neg = v < 0;
    let v = v.unsigned_abs();
    let unit = 10u128.pow(decimals);
    let mut out = format!("{}", v / unit);
    if decimals > 0 {
        let frac = format!("{:0width$}", v % unit, width = decimals as usize);
        let frac = frac.trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

fn utc_stamp() -> String {
    // InvoiceLog.ToString: "{Timestamp.UtcDateTime}:{Severity} {Log}"
    let t = nbx::unix_now();
    let (d, secs) = (t / 86400, t % 86400);
    // civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    let z = d as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let (h, mi, sec) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!("{m}/{day}/{y} {h12}:{mi:02}:{sec:02} {ampm}")
}

impl Ctx {
    // ---- migrations and the stand-in's store

    /// EF Core's MigrateAsync, as far as the stand-in's schema goes.
    fn migrate_once(&self) -> Result<(), pg::PgError> {
        match self.pg.query("SELECT 1") {
            Ok(_) => {}
            Err(e) if e.sqlstate() == Some("3D000") => {
                let name = self.pg.cs.database.clone().unwrap_or_else(|| self.pg.username());
                self.pg.with_database(Some("postgres")).query(&format!("CREATE DATABASE {}", pg::ident(&name)))?;
            }
            Err(e) => return Err(e),
        }
        self.pg.query(
            "CREATE TABLE IF NOT EXISTS \"__EFMigrationsHistory\" (\"MigrationId\" character varying(150) NOT NULL, \
             \"ProductVersion\" character varying(32) NOT NULL, CONSTRAINT \"PK___EFMigrationsHistory\" PRIMARY KEY (\"MigrationId\"))",
        )?;
        let applied =
            self.pg.query("SELECT \"MigrationId\" FROM \"__EFMigrationsHistory\" ORDER BY \"MigrationId\"")?;
        if applied.iter().any(|r| r.first().map(String::as_str) == Some(MIGRATION_ID)) {
            return Ok(());
        }
        dlog("info", CAT_EF, &format!("Applying migration '{MIGRATION_ID}'."));
        self.pg.run(
            &format!("{SCHEMA};\nINSERT INTO \"__EFMigrationsHistory\" VALUES ({}, '10.0.3');", pg::lit(MIGRATION_ID)),
            true,
        )?;
        Ok(())
    }

    fn migrate(&self) {
        loop {
            dlog("info", CAT_MIG, "Running the migration scripts...");
            match self.migrate_once() {
                Ok(()) => {
                    dlog("info", CAT_MIG, "All migration scripts ran successfully");
                    return;
                }
                Err(e) => {
                    dlog(
                        "warn",
                        CAT_MIG,
                        &format!("Error while running migration scripts, retrying...\n{}", e.dotnet()),
                    );
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn scheme(&self) -> String {
        if self.net.core == "main" {
            return STANDIN_XPUB.to_string();
        }
        let mut raw = coin::b58check_decode(STANDIN_XPUB).unwrap_or_default();
        if raw.len() == 78 {
            raw[..4].copy_from_slice(&self.net.xpub);
        }
        coin::b58check_encode(&raw)
    }

    /// The test hook: a user, a store with a wallet, an API key, written to the data directory.
    fn setup_store(&self) -> Result<(), String> {
        let scheme = self.scheme();
        let rows = self
            .pg
            .query(&format!(
                "SELECT k.\"Id\", k.\"StoreId\" FROM \"ApiKeys\" k JOIN \"Stores\" st ON st.\"Id\" = k.\"StoreId\" WHERE k.\"Label\" = {} LIMIT 1",
                pg::lit(KEY_LABEL)
            ))
            .map_err(|e| e.dotnet())?;
        let (key, store) = match rows.first() {
            Some(r) if r.len() == 2 => (r[0].clone(), r[1].clone()),
            _ => {
                let user = uuid();
                let store = coin::b58encode(&rand_bytes(32));
                let key = crate::sys::random_hex(20);
                let derivation = obj(vec![(
                    PM,
                    obj(vec![
                        ("accountDerivation", s(&scheme)),
                        ("accountOriginal", s(&scheme)),
                        ("label", s("archy e2e stand-in wallet")),
                        ("signingKey", s(&scheme.split('-').next().unwrap_or_default())),
                        ("source", s("ManualDerivationScheme")),
                    ]),
                )])
                .compact();
                let blob = obj(vec![
                    ("defaultCurrency", s("BTC")),
                    ("networkFeeMode", s("MultiplePaymentsOnly")),
                    ("invoiceExpiration", num(15)),
                    ("monitoringExpiration", num(1440)),
                    ("recommendedFeeBlockTarget", num(1)),
                ])
                .compact();
                let perms = obj(vec![(
                    "permissions",
                    Value::Arr(vec![s(&format!("btcpay.store.canmodifystoresettings:{store}"))]),
                )])
                .compact();
                self.pg
                    .run(
                        &format!(
                            "INSERT INTO \"AspNetUsers\" (\"Id\", \"UserName\", \"NormalizedUserName\", \"Email\", \"NormalizedEmail\", \"EmailConfirmed\", \"Created\", \"SecurityStamp\", \"ConcurrencyStamp\") \
                             VALUES ({u}, 'standin@archy.invalid', 'STANDIN@ARCHY.INVALID', 'standin@archy.invalid', 'STANDIN@ARCHY.INVALID', TRUE, now(), {ss}, {cs});\n\
                             INSERT INTO \"Stores\" (\"Id\", \"StoreName\", \"DefaultCrypto\", \"DerivationStrategies\", \"SpeedPolicy\", \"StoreBlob\") \
                             VALUES ({st}, 'archy e2e store', 'BTC', {der}::JSONB, 0, {blob}::JSONB);\n\
                             INSERT INTO \"UserStore\" (\"ApplicationUserId\", \"StoreDataId\", \"StoreRoleId\") VALUES ({u}, {st}, 'Owner');\n\
                             INSERT INTO \"ApiKeys\" (\"Id\", \"StoreId\", \"Type\", \"UserId\", \"Label\", \"Blob2\") VALUES ({k}, {st}, 0, {u}, {l}, {p}::JSONB);",
                            u = pg::lit(&user),
                            ss = pg::lit(&crate::sys::random_hex(16)),
                            cs = pg::lit(&uuid()),
                            st = pg::lit(&store),
                            der = pg::lit(&derivation),
                            blob = pg::lit(&blob),
                            k = pg::lit(&key),
                            l = pg::lit(KEY_LABEL),
                            p = pg::lit(&perms),
                        ),
                        true,
                    )
                    .map_err(|e| e.dotnet())?;
                dlog(
                    "info",
                    "archy-e2e-standin",
                    &format!("created store {store} with an on-chain wallet ({scheme}) and an API key"),
                );
                (key, store)
            }
        };
        for (name, value) in [("standin-apikey", &key), ("standin-storeid", &store)] {
            write_private(&self.datadir.join(name), value)
                .map_err(|e| format!("System.IO.IOException: {name}: {e}"))?;
        }
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = Some((store, scheme));
        Ok(())
    }

    /// As setting the store's payment method does: NBXplorer starts tracking the scheme (in the
    /// background, so that an absent NBXplorer does not hold the port closed).
    fn track_store_wallet(self: Arc<Self>) {
        let Some((_, scheme)) = self.store.lock().unwrap_or_else(|e| e.into_inner()).clone() else { return };
        if let Err(e) = self.explorer.send("POST", &format!("v1/cryptos/BTC/derivations/{}", pct(&scheme)), "") {
            dlog(
                "warn",
                "archy-e2e-standin",
                &format!("BTC: could not track the store's wallet with NBXplorer yet: {e}"),
            );
        }
    }

    // ---- the NBXplorer waiter

    fn waiter(self: Arc<Self>) {
        dlog("info", CAT_PAY, "Starting listening NBXplorer (BTC)");
        let mut poll = Duration::from_secs(60);
        loop {
            while let Some(p) = self.step() {
                poll = p;
            }
            std::thread::sleep(poll);
        }
    }

    /// NBXplorerWaiter.StepAsync: Some(the new poll interval) if the state changed.
    fn step(&self) -> Option<Duration> {
        let old = self.dash.lock().unwrap_or_else(|e| e.into_inner()).state;
        let mut error = None;
        let mut status = None;
        match self.explorer.send("GET", "v1/cryptos/BTC/status", "") {
            Ok(st) => status = st,
            Err(e) => error = Some(e),
        }
        let mut state = old;
        if let Some(st) = &status {
            let full = st.get("isFullySynched") == Some(&Value::Bool(true));
            state = if full { WState::Ready } else { WState::Synching };
        } else if error.is_none() {
            if old != WState::NotConnected {
                state = WState::NotConnected;
            }
            error = Some("BTC: NBXplorer does not support this cryptocurrency".into());
        }
        if let (Some(st), None) = (&status, &error) {
            let nt = st.get("networkType").and_then(Value::as_str).unwrap_or_default();
            if nt != self.net.chain_name {
                error = Some(format!(
                    "BTC: NBXplorer is on a different ChainType (actual: {nt}, expected: {})",
                    self.net.chain_name
                ));
            }
        }
        if let Some(e) = &error {
            state = WState::NotConnected;
            status = None;
            dlog("fail", CAT_PAY, &format!("BTC: NBXplorer error `{e}`"));
        }
        // the mempool information through NBXplorer's RPC proxy; failures do not matter
        let _ = self.explorer.send(
            "POST",
            "v1/cryptos/BTC/rpc",
            r#"{"jsonrpc":"1.0","id":1,"method":"getmempoolinfo","params":[]}"#,
        );
        {
            let mut d = self.dash.lock().unwrap_or_else(|e| e.into_inner());
            d.state = state;
            d.status = status;
            d.error = error;
        }
        (old != state)
            .then(|| if state == WState::Synching { Duration::from_secs(10) } else { Duration::from_secs(60) })
    }

    fn fully_synched(&self) -> bool {
        let d = self.dash.lock().unwrap_or_else(|e| e.into_inner());
        d.status.as_ref().and_then(|s| s.get("isFullySynched")) == Some(&Value::Bool(true))
    }

    // ---- HTTP

    /// The API key's permissions, or the 401 to answer.
    fn authenticate(&self, req: &Request) -> Result<Vec<String>, Response> {
        let unauth = |m: &str| api_error(401, "unauthenticated", m);
        let Some(h) = req.header("Authorization") else {
            return Err(unauth("Authentication is required for accessing this endpoint"));
        };
        let mut parts = h.split_whitespace();
        let scheme = parts.next().unwrap_or_default();
        let Some(key) =
            parts.next().filter(|_| scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        else {
            return Err(unauth("Authentication is required for accessing this endpoint"));
        };
        let rows = self
            .pg
            .query(&format!(
                "SELECT COALESCE(\"Blob2\"->'permissions', '[]'::jsonb)::text FROM \"ApiKeys\" WHERE \"Id\" = {}",
                pg::lit(key)
            ))
            .map_err(|e| self.server_error(e))?;
        let Some(perms) = rows.first().and_then(|r| r.first()) else {
            return Err(unauth("ApiKey authentication failed: Unknown API Key"));
        };
        Ok(match json::parse(perms) {
            Ok(Value::Arr(a)) => a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect(),
            _ => vec![],
        })
    }

    fn server_error(&self, e: pg::PgError) -> Response {
        dlog(
            "fail",
            "Microsoft.AspNetCore.Server.Kestrel",
            &format!("Unhandled exception while processing the request\n{}", e.dotnet()),
        );
        Response::new(500, "text/plain", "")
    }

    /// The policy for a store, or the 403.
    fn authorize(&self, perms: &[String], policy: &str, store: &str) -> Result<(), Response> {
        let ok = perms.iter().any(|p| match p.split_once(':') {
            Some((perm, scope)) => scope == store && grants(perm, policy),
            None => grants(p, policy),
        });
        if ok {
            return Ok(());
        }
        let v = obj(vec![
            ("missingPermission", s(policy)),
            ("code", s("missing-permission")),
            (
                "message",
                s(&format!(
                    "Insufficient API Permissions. Please use an API key with permission \"{policy}\". You can create an API key in your account's settings / Api Keys."
                )),
            ),
        ]);
        Err(Response::new(403, "application/json; charset=utf-8", v.compact()))
    }

    fn handle(&self, req: Request) -> Response {
        let (segs, q) = nbx::split_target(&req.path);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        if req.method == "GET" && segs == ["api", "v1", "health"] {
            return ok_json(&obj(vec![("synchronized", Value::Bool(self.fully_synched()))]));
        }
        if segs.len() < 3 || segs[0] != "api" || segs[1] != "v1" {
            return Response::new(404, "text/html", "");
        }
        let perms = match self.authenticate(&req) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let r = match (req.method.as_str(), &segs[2..]) {
            ("GET", ["stores"]) => Ok(self.stores(&perms, None)),
            ("GET", ["stores", st]) => {
                self.authorize(&perms, "btcpay.store.canviewstoresettings", st).map(|_| self.stores(&perms, Some(st)))
            }
            ("POST", ["stores", st, "invoices"]) => self
                .authorize(&perms, "btcpay.store.cancreateinvoice", st)
                .and_then(|_| self.create_invoice(st, &req, &q)),
            ("GET", ["stores", st, "invoices"]) => {
                self.authorize(&perms, "btcpay.store.canviewinvoices", st).and_then(|_| self.list_invoices(st, &req))
            }
            ("GET", ["stores", st, "invoices", id]) => self
                .authorize(&perms, "btcpay.store.canviewinvoices", st)
                .and_then(|_| self.get_invoice(Some(st), id, &req, &q, &perms)),
            ("GET", ["invoices", id]) => self.get_invoice(None, id, &req, &q, &perms),
            ("GET", ["stores", st, "invoices", id, "payment-methods"]) => self
                .authorize(&perms, "btcpay.store.canviewinvoices", st)
                .and_then(|_| self.payment_methods(Some(st), id, &q, &perms)),
            ("GET", ["invoices", id, "payment-methods"]) => self.payment_methods(None, id, &q, &perms),
            _ => Err(Response::new(404, "text/html", "")),
        };
        r.unwrap_or_else(|e| e)
    }

    fn stores(&self, perms: &[String], only: Option<&str>) -> Response {
        let rows = match self.pg.query("SELECT \"Id\", \"StoreName\", COALESCE(\"StoreBlob\"->>'defaultCurrency', 'USD'), \"Archived\" FROM \"Stores\" ORDER BY \"Id\"") {
            Ok(r) => r,
            Err(e) => return self.server_error(e),
        };
        let list: Vec<Value> = rows
            .iter()
            .filter(|r| {
                r.len() == 4
                    && only.is_none_or(|o| o == r[0])
                    && self.authorize(perms, "btcpay.store.canviewstoresettings", &r[0]).is_ok()
            })
            .map(|r| {
                obj(vec![
                    ("id", s(&r[0])),
                    ("name", s(&r[1])),
                    ("website", Value::Null),
                    ("defaultCurrency", s(&r[2])),
                    ("archived", Value::Bool(r[3] == "t")),
                    ("speedPolicy", s("HighSpeed")),
                    ("invoiceExpiration", num(900)),
                    ("monitoringExpiration", num(86400)),
                ])
            })
            .collect();
        match only {
            Some(_) => match list.into_iter().next() {
                Some(v) => ok_json(&v),
                None => api_error(404, "store-not-found", "The store was not found"),
            },
            None => ok_json(&Value::Arr(list)),
        }
    }

    fn host(req: &Request) -> String {
        req.header("Host").unwrap_or("localhost").to_string()
    }

    fn create_invoice(
        &self,
        store_id: &str,
        req: &Request,
        _q: &std::collections::HashMap<String, String>,
    ) -> Result<Response, Response> {
        let text = String::from_utf8_lossy(&req.body);
        let body = match json::parse(text.trim()) {
            Ok(v @ Value::Obj(_)) => v,
            _ => return Err(validation(vec![("", "A non-empty request body is required.")])),
        };
        let checkout = body.get("checkout").cloned().unwrap_or(Value::Obj(vec![]));
        let mut errors: Vec<(String, String)> = Vec::new();
        let amount = match body.get("amount") {
            None | Some(Value::Null) => None,
            Some(v) => match parse_amount(v) {
                Some(a) => Some(a),
                None => {
                    errors.push(("amount".into(), "The field amount is invalid.".into()));
                    None
                }
            },
        };
        if amount.is_some_and(|a| a < 0) {
            errors.push(("amount".into(), "The amount should be 0 or more.".into()));
        }
        if let Some(Value::Arr(pms)) = checkout.get("paymentMethods") {
            for (i, pm) in pms.iter().enumerate() {
                if !pm.as_str().is_some_and(|p| p.eq_ignore_ascii_case(PM) || p.eq_ignore_ascii_case("BTC")) {
                    errors.push((format!("checkout.paymentMethods[{i}]"), "Invalid PaymentMethodId".into()));
                }
            }
        }
        let expiration = checkout.get("expirationMinutes").and_then(|v| match v {
            Value::Num(n) => n.parse::<f64>().ok(),
            _ => None,
        });
        if expiration.is_some_and(|m| m * 60.0 < 30.0) {
            errors.push(("checkout.expirationMinutes".into(), "Expiration time must be at least 30 seconds".into()));
        }
        let tolerance = checkout.get("paymentTolerance").and_then(|v| match v {
            Value::Num(n) => n.parse::<f64>().ok(),
            _ => None,
        });
        if tolerance.is_some_and(|t| !(0.0..=100.0).contains(&t)) {
            errors.push((
                "checkout.paymentTolerance".into(),
                "PaymentTolerance can only be between 0 and 100 percent".into(),
            ));
        }
        if !errors.is_empty() {
            return Err(validation(errors.iter().map(|(p, m)| (p.as_str(), m.as_str())).collect()));
        }
        let store = self.store_row(store_id)?;
        let currency = body
            .get("currency")
            .and_then(Value::as_str)
            .filter(|c| !c.trim().is_empty())
            .map_or(store.default_currency.clone(), |c| c.trim().to_uppercase());
        let kind = if amount.is_none() { "TopUp" } else { "Standard" };
        let price = amount.unwrap_or(0);
        let now = nbx::unix_now();
        let exp_min = expiration.unwrap_or(15.0);
        let expiration_time = now + (exp_min * 60.0) as u64;
        let monitoring = expiration_time + 1440 * 60;
        let id = coin::b58encode(&rand_bytes(16));
        let mut logs: Vec<String> = vec![format!("{}:Info Creation of invoice starting", utc_stamp())];
        let mut prompt = None;
        if kind == "TopUp" || price != 0 {
            match self.prompt(&store, &currency, price, kind, &mut logs) {
                Ok(p) => prompt = Some(p),
                Err(()) => {
                    let mut m = String::from("Error retrieving a matching payment method or rate.\n");
                    for l in &logs {
                        m.push_str(l);
                        m.push('\n');
                    }
                    return Err(api_error(400, "generic-error", &m));
                }
            }
        }
        let metadata =
            body.get("metadata").cloned().filter(|m| matches!(m, Value::Obj(_))).unwrap_or(Value::Obj(vec![]));
        let entity = obj(vec![
            ("version", num(3)),
            ("id", s(&id)),
            ("storeId", s(store_id)),
            ("type", s(kind)),
            ("currency", s(&currency)),
            ("price", s(&fmt_amount(price, 8))),
            ("metadata", metadata),
            ("invoiceTime", num(now)),
            ("expirationTime", num(expiration_time)),
            ("monitoringExpiration", num(monitoring)),
            ("speedPolicy", s("HighSpeed")),
            ("paymentTolerance", num(tolerance.unwrap_or(0.0))),
            ("redirectURL", checkout.get("redirectURL").cloned().unwrap_or(Value::Null)),
            ("defaultLanguage", checkout.get("defaultLanguage").cloned().unwrap_or(Value::Null)),
            ("prompts", prompt.clone().map_or(Value::Obj(vec![]), |p| Value::Obj(vec![(PM.to_string(), p)]))),
            ("logs", Value::Arr(logs.iter().map(|l| s(l)).collect())),
        ]);
        let mut sql = format!(
            "INSERT INTO \"Invoices\" (\"Id\", \"Created\", \"StoreDataId\", \"Status\", \"ExceptionStatus\", \"Archived\", \"Currency\", \"Amount\", \"Blob2\") \
             VALUES ({i}, to_timestamp({now}), {st}, 'New', NULL, FALSE, {c}, {a}, {b}::JSONB);\n",
            i = pg::lit(&id),
            st = pg::lit(store_id),
            c = pg::lit(&currency),
            a = fmt_amount(price, 8),
            b = pg::lit(&entity.compact()),
        );
        if let Some(addr) = prompt.as_ref().and_then(|p| p.get("destination")).and_then(Value::as_str) {
            let wallet = format!("{store_id}-BTC");
            sql.push_str(&format!(
                "INSERT INTO \"AddressInvoices\" (\"Address\", \"PaymentMethodId\", \"InvoiceDataId\") VALUES ({a}, {pm}, {i}) ON CONFLICT (\"Address\", \"PaymentMethodId\") DO NOTHING;\n\
                 INSERT INTO \"WalletObjects\" (\"WalletId\", \"Type\", \"Id\", \"Data\") VALUES ({w}, 'address', {a}, '{{\"generatedBy\":\"invoice\"}}'::JSONB) ON CONFLICT DO NOTHING;\n\
                 INSERT INTO \"WalletObjects\" (\"WalletId\", \"Type\", \"Id\", \"Data\") VALUES ({w}, 'invoice', {i}, NULL) ON CONFLICT DO NOTHING;\n",
                a = pg::lit(addr),
                pm = pg::lit(PM),
                i = pg::lit(&id),
                w = pg::lit(&wallet),
            ));
        }
        self.pg.run(&sql, true).map_err(|e| self.server_error(e))?;
        Ok(ok_json(&self.invoice_model(&entity, "New", &Self::host(req), false)))
    }

    /// The on-chain payment prompt (BitcoinLikePaymentHandler BeforeFetchingRates and
    /// ConfigurePrompt); Err after writing why to the invoice logs.
    fn prompt(
        &self,
        store: &StoreRow,
        currency: &str,
        price: i128,
        kind: &str,
        logs: &mut Vec<String>,
    ) -> Result<Value, ()> {
        let fail = |logs: &mut Vec<String>, why: &str| {
            logs.push(format!("{}:Error {PM}: Payment method unavailable ({why})", utc_stamp()));
        };
        // the rate of BTC in the invoice's currency: X_X = 1; SATS is a fixed 1e8
        let due = match currency {
            "BTC" => price,
            "SATS" => price / 100_000_000,
            other => {
                logs.push(format!(
                    "{}:Error {PM}: Rate unavailable: the archy e2e stand-in has no rate source for BTC_{other} (only BTC and SATS invoices)",
                    utc_stamp()
                ));
                return Err(());
            }
        };
        let rate = if currency == "SATS" { "100000000" } else { "1" };
        // BeforeFetchingRates already asks NBXplorer for an address (ReserveAddressAsync)
        let reserved = self.reserve_address(&store.scheme);
        if !self.fully_synched() {
            fail(logs, "Full node not available");
            return Err(());
        }
        let fee = match self.explorer.send("GET", "v1/cryptos/BTC/fees/1", "") {
            Ok(Some(v)) => v.get("feeRate").cloned().unwrap_or(num(1)),
            _ => num(1),
        };
        if kind != "TopUp" && due < 294 {
            fail(logs, "Amount below the dust threshold. For amounts of this size, it is recommended to enable an off-chain (Lightning) payment method");
            return Err(());
        }
        let info = match reserved {
            Ok(i) => i,
            Err(e) => {
                logs.push(format!("{}:Error {PM}: Unexpected exception ({e})", utc_stamp()));
                return Err(());
            }
        };
        let address = info.get("address").and_then(Value::as_str).unwrap_or_default().to_string();
        let keypath = info.get("keyPath").and_then(Value::as_str).unwrap_or_default().to_string();
        let index = info.get("index").and_then(Value::as_i64).unwrap_or(0);
        Ok(obj(vec![
            ("currency", s("BTC")),
            ("divisibility", num(8)),
            ("destination", s(&address)),
            ("rate", s(rate)),
            ("due", s(&fmt_amount(due, 8))),
            ("paymentMethodFee", s("0")),
            ("activated", Value::Bool(true)),
            (
                "details",
                obj(vec![
                    ("feeMode", s("MultiplePaymentsOnly")),
                    ("paymentMethodFeeRate", fee.clone()),
                    ("payjoinEnabled", Value::Bool(false)),
                    ("recommendedFeeRate", fee),
                    ("keyPath", s(&keypath)),
                    ("keyIndex", num(index)),
                    ("accountDerivation", s(&store.scheme)),
                ]),
            ),
        ]))
    }

    /// BTCPayWallet.ReserveAddressAsync: an unused address, reserved; track the scheme if
    /// NBXplorer does not know it. Err is the exception as the invoice logs show it.
    fn reserve_address(&self, scheme: &str) -> Result<Value, String> {
        let path =
            format!("v1/cryptos/BTC/derivations/{}/addresses/unused?feature=Deposit&skip=0&reserve=true", pct(scheme));
        let wrap = |e: String| format!("NBXplorer.Models.NBXplorerException: {e}");
        match self.explorer.send("GET", &path, "").map_err(wrap)? {
            Some(v) => Ok(v),
            None => {
                self.explorer.send("POST", &format!("v1/cryptos/BTC/derivations/{}", pct(scheme)), "").map_err(wrap)?;
                self.explorer.send("GET", &path, "").map_err(wrap)?.ok_or_else(|| {
                    "System.NullReferenceException: Object reference not set to an instance of an object.".to_string()
                })
            }
        }
    }

    fn store_row(&self, store_id: &str) -> Result<StoreRow, Response> {
        let rows = self
            .pg
            .query(&format!(
                "SELECT COALESCE(\"StoreBlob\"->>'defaultCurrency', 'USD'), COALESCE(\"DerivationStrategies\"->'{PM}'->>'accountDerivation', '') FROM \"Stores\" WHERE \"Id\" = {}",
                pg::lit(store_id)
            ))
            .map_err(|e| self.server_error(e))?;
        let Some(r) = rows.first().filter(|r| r.len() == 2) else {
            return Err(api_error(404, "store-not-found", "The store was not found"));
        };
        Ok(StoreRow { default_currency: r[0].clone(), scheme: r[1].clone() })
    }

    fn load_invoice(&self, store: Option<&str>, id: &str) -> Result<(Value, String), Response> {
        let mut sql = format!(
            "SELECT \"Blob2\"::text, \"Status\", \"StoreDataId\" FROM \"Invoices\" WHERE \"Id\" = {}",
            pg::lit(id)
        );
        if let Some(st) = store {
            sql.push_str(&format!(" AND \"StoreDataId\" = {}", pg::lit(st)));
        }
        let rows = self.pg.query(&sql).map_err(|e| self.server_error(e))?;
        let Some(r) = rows.first().filter(|r| r.len() == 3) else {
            return Err(api_error(404, "invoice-not-found", "The invoice was not found"));
        };
        let entity = json::parse(&r[0]).map_err(|_| Response::new(500, "text/plain", ""))?;
        Ok((entity, r[1].clone()))
    }

    fn get_invoice(
        &self,
        store: Option<&str>,
        id: &str,
        req: &Request,
        q: &std::collections::HashMap<String, String>,
        perms: &[String],
    ) -> Result<Response, Response> {
        let (entity, status) = self.load_invoice(store, id)?;
        if store.is_none() {
            let st = entity.get("storeId").and_then(Value::as_str).unwrap_or_default();
            self.authorize(perms, "btcpay.store.canviewinvoices", st)?;
        }
        let with_pm = q.get("includepaymentmethods").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(ok_json(&self.invoice_model(&entity, &status, &Self::host(req), with_pm)))
    }

    fn list_invoices(&self, store: &str, req: &Request) -> Result<Response, Response> {
        let rows = self
            .pg
            .query(&format!("SELECT \"Blob2\"::text, \"Status\" FROM \"Invoices\" WHERE \"StoreDataId\" = {} AND NOT \"Archived\" ORDER BY \"Created\" DESC", pg::lit(store)))
            .map_err(|e| self.server_error(e))?;
        let list: Vec<Value> = rows
            .iter()
            .filter(|r| r.len() == 2)
            .filter_map(|r| json::parse(&r[0]).ok().map(|e| self.invoice_model(&e, &r[1], &Self::host(req), false)))
            .collect();
        Ok(ok_json(&Value::Arr(list)))
    }

    fn payment_methods(
        &self,
        store: Option<&str>,
        id: &str,
        q: &std::collections::HashMap<String, String>,
        perms: &[String],
    ) -> Result<Response, Response> {
        let (entity, _) = self.load_invoice(store, id)?;
        let st = entity.get("storeId").and_then(Value::as_str).unwrap_or_default().to_string();
        if store.is_none() {
            self.authorize(perms, "btcpay.store.canviewinvoices", &st)?;
        }
        let sensitive = q.get("includesensitive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if sensitive {
            self.authorize(perms, "btcpay.store.canmodifystoresettings", &st)?;
        }
        Ok(ok_json(&Value::Arr(self.payment_method_models(&entity, sensitive))))
    }

    fn payment_method_models(&self, entity: &Value, sensitive: bool) -> Vec<Value> {
        let Some(Value::Obj(prompts)) = entity.get("prompts") else { return vec![] };
        prompts
            .iter()
            .map(|(pmid, p)| {
                let due = p.get("due").and_then(Value::as_str).unwrap_or("0").to_string();
                let dest = p.get("destination").and_then(Value::as_str).unwrap_or_default().to_string();
                let mut details = p.get("details").cloned().unwrap_or(Value::Null);
                if !sensitive {
                    if let Value::Obj(fields) = &mut details {
                        for (k, v) in fields.iter_mut() {
                            if k == "accountDerivation" {
                                *v = Value::Null;
                            }
                        }
                    }
                }
                let link = if due == "0" { format!("bitcoin:{dest}") } else { format!("bitcoin:{dest}?amount={due}") };
                obj(vec![
                    ("activated", p.get("activated").cloned().unwrap_or(Value::Bool(true))),
                    ("destination", s(&dest)),
                    ("paymentLink", s(&link)),
                    ("rate", p.get("rate").cloned().unwrap_or(s("1"))),
                    ("paymentMethodPaid", s("0")),
                    ("totalPaid", s("0")),
                    ("due", s(&due)),
                    ("amount", s(&due)),
                    ("paymentMethodFee", s("0")),
                    ("payments", Value::Arr(vec![])),
                    ("paymentMethodId", s(pmid)),
                    ("additionalData", details),
                    ("currency", p.get("currency").cloned().unwrap_or(s("BTC"))),
                ])
            })
            .collect()
    }

    /// GreenfieldInvoiceController.ToModel.
    fn invoice_model(&self, e: &Value, status: &str, host: &str, with_payment_methods: bool) -> Value {
        let g = |k: &str| e.get(k).cloned().unwrap_or(Value::Null);
        let t = |k: &str| e.get(k).and_then(Value::as_i64).unwrap_or(0);
        let id = e.get("id").and_then(Value::as_str).unwrap_or_default();
        let pms: Vec<Value> = match e.get("prompts") {
            Some(Value::Obj(p)) => p.iter().map(|(k, _)| s(k)).collect(),
            _ => vec![],
        };
        let checkout_link = if host.is_empty() { Value::Null } else { s(&format!("http://{host}/i/{id}")) };
        let mut fields = vec![
            ("id", g("id")),
            ("storeId", g("storeId")),
            ("amount", g("price")),
            ("paidAmount", s("0")),
            ("checkoutLink", checkout_link),
            ("status", s(status)),
            ("additionalStatus", s("None")),
            ("monitoringExpiration", num(t("monitoringExpiration"))),
            ("expirationTime", num(t("expirationTime"))),
            ("createdTime", num(t("invoiceTime"))),
            (
                "availableStatusesForManualMarking",
                Value::Arr(if status == "New" { vec![s("Settled"), s("Invalid")] } else { vec![] }),
            ),
            ("archived", Value::Bool(false)),
            ("type", g("type")),
            ("currency", g("currency")),
            ("metadata", g("metadata")),
            (
                "checkout",
                obj(vec![
                    ("speedPolicy", g("speedPolicy")),
                    ("paymentMethods", Value::Arr(pms.clone())),
                    ("defaultPaymentMethod", Value::Null),
                    ("expirationMinutes", num((t("expirationTime") - t("invoiceTime")) / 60)),
                    ("monitoringMinutes", num((t("monitoringExpiration") - t("expirationTime")) / 60)),
                    ("paymentTolerance", g("paymentTolerance")),
                    ("redirectURL", g("redirectURL")),
                    ("redirectAutomatically", Value::Bool(false)),
                    ("defaultLanguage", g("defaultLanguage")),
                    ("lazyPaymentMethods", Value::Null),
                ]),
            ),
            (
                "receipt",
                obj(vec![
                    ("enabled", Value::Bool(true)),
                    ("showQR", Value::Bool(true)),
                    ("showPayments", Value::Bool(true)),
                ]),
            ),
        ];
        if with_payment_methods {
            fields.push(("paymentMethods", Value::Arr(self.payment_method_models(e, false))));
        }
        obj(fields)
    }
}

struct StoreRow {
    default_currency: String,
    scheme: String,
}

fn validation(errors: Vec<(&str, &str)>) -> Response {
    let v = Value::Arr(errors.into_iter().map(|(p, m)| obj(vec![("path", s(p)), ("message", s(m))])).collect());
    Response::new(422, "application/json; charset=utf-8", v.compact())
}

fn pct(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn rand_bytes(n: usize) -> Vec<u8> {
    let h = crate::sys::random_hex(n);
    (0..n).filter_map(|i| u8::from_str_radix(&h[i * 2..i * 2 + 2], 16).ok()).collect()
}

fn uuid() -> String {
    let h = crate::sys::random_hex(16);
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(value.as_bytes())?;
    std::fs::rename(&tmp, path)
}

/// The stand-in's schema (see the module's doc), one EF migration.
const SCHEMA: &str = "CREATE TABLE \"AspNetUsers\" (\"Id\" text NOT NULL PRIMARY KEY, \"UserName\" character varying(256), \
  \"NormalizedUserName\" character varying(256), \"Email\" character varying(256), \"NormalizedEmail\" character varying(256), \
  \"EmailConfirmed\" boolean NOT NULL DEFAULT FALSE, \"PasswordHash\" text, \"SecurityStamp\" text, \"ConcurrencyStamp\" text, \
  \"Created\" timestamp with time zone, \"Approved\" boolean NOT NULL DEFAULT TRUE, \"RequiresApproval\" boolean NOT NULL DEFAULT FALSE, \
  \"Blob2\" JSONB);
CREATE TABLE \"Stores\" (\"Id\" text NOT NULL PRIMARY KEY, \"StoreName\" text, \"StoreWebsite\" text, \"DefaultCrypto\" text, \
  \"DerivationStrategies\" JSONB, \"SpeedPolicy\" integer NOT NULL DEFAULT 0, \"StoreBlob\" JSONB, \"Archived\" boolean NOT NULL DEFAULT FALSE);
CREATE TABLE \"UserStore\" (\"ApplicationUserId\" text NOT NULL REFERENCES \"AspNetUsers\" ON DELETE CASCADE, \
  \"StoreDataId\" text NOT NULL REFERENCES \"Stores\" ON DELETE CASCADE, \"StoreRoleId\" text, PRIMARY KEY (\"ApplicationUserId\", \"StoreDataId\"));
CREATE TABLE \"ApiKeys\" (\"Id\" character varying(50) NOT NULL PRIMARY KEY, \"StoreId\" character varying(50) REFERENCES \"Stores\" ON DELETE CASCADE, \
  \"Type\" integer NOT NULL DEFAULT 0, \"UserId\" character varying(50) REFERENCES \"AspNetUsers\" ON DELETE CASCADE, \"Label\" text, \"Blob2\" JSONB);
CREATE TABLE \"Invoices\" (\"Id\" text NOT NULL PRIMARY KEY, \"Created\" timestamp with time zone NOT NULL, \
  \"StoreDataId\" text REFERENCES \"Stores\" ON DELETE CASCADE, \"Status\" text, \"ExceptionStatus\" text, \
  \"Archived\" boolean NOT NULL DEFAULT FALSE, \"Currency\" text, \"Amount\" NUMERIC, \"Blob2\" JSONB);
CREATE INDEX \"IX_Invoices_Created\" ON \"Invoices\" (\"Created\");
CREATE INDEX \"IX_Invoices_StoreDataId\" ON \"Invoices\" (\"StoreDataId\");
CREATE TABLE \"AddressInvoices\" (\"Address\" text NOT NULL, \"PaymentMethodId\" text NOT NULL, \
  \"InvoiceDataId\" text REFERENCES \"Invoices\" ON DELETE CASCADE, PRIMARY KEY (\"Address\", \"PaymentMethodId\"));
CREATE TABLE \"WalletObjects\" (\"WalletId\" text NOT NULL, \"Type\" text NOT NULL, \"Id\" text NOT NULL, \"Data\" JSONB, \
  PRIMARY KEY (\"WalletId\", \"Type\", \"Id\"))";

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
        return nbx::dotnet_missing_app("BTCPayServer.dll");
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

enum Never {}

fn run(argv: &[String]) -> Result<Never, Exit> {
    crate::sys::exit_on_signals("info: Microsoft.Hosting.Lifetime: Application is shutting down...");
    let datadir_of = |c: &DotnetConf| -> Result<PathBuf, Exit> {
        Ok(nbx::home().join(".btcpayserver").join(nbx::network_of(c)?.folder))
    };
    let conf_file = |c: &DotnetConf| -> Result<PathBuf, Exit> {
        let net = nbx::network_of(c)?;
        let dir = match c.get("datadir") {
            Some(d) => PathBuf::from(d).join(net.folder),
            None => nbx::home().join(".btcpayserver").join(net.folder),
        };
        let _ = std::fs::create_dir_all(&dir);
        Ok(dir.join("settings.config"))
    };
    let pre_net = nbx::network_of(&DotnetConf::early("BTCPAY_", argv)).unwrap_or(nbx::MAIN);
    let conf = DotnetConf::load("BTCPAY_", argv, &datadir_of, &conf_file, &template(&pre_net))?;
    let net = nbx::network_of(&conf)?;
    let datadir = conf.get("datadir").map_or_else(|| nbx::home().join(".btcpayserver").join(net.folder), PathBuf::from);
    let chains: Vec<String> = conf
        .string("chains", "btc")
        .split(',')
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_uppercase())
        .collect();
    if !chains.iter().any(|c| c == "BTC" || c == "*") {
        crate::log!("the archy e2e stand-in models the BTC chain only (chains={})", chains.join(","));
        std::process::exit(1);
    }
    let binds = conf.binds("127.0.0.1", net.btcpay_port)?;
    // ExplorerClientProvider
    let url = conf.string("btc.explorer.url", &format!("http://127.0.0.1:{}/", net.nbx_port));
    let cookie_setting = conf.get("btc.explorer.cookiefile");
    let cookie_default = nbx::home().join(".nbxplorer").join(net.folder).join(".cookie").to_string_lossy().into_owned();
    let cookie_file = cookie_setting.clone().unwrap_or(cookie_default);
    dlog("info", CAT_CONF, &format!("BTC: Explorer url is {url}"));
    dlog("info", CAT_CONF, &format!("BTC: Cookie file is {cookie_file}"));
    let cookie = if cookie_file.trim() == "0" || cookie_file.trim().is_empty() {
        dlog("warn", CAT_CONF, "BTC: Not using cookie authentication");
        None
    } else {
        Some(PathBuf::from(&cookie_file))
    };
    let explorer = Explorer::new(&url, cookie.clone()).map_err(Exit::Crash)?;
    if cookie.as_ref().is_some_and(|c| !c.exists()) || cookie.is_none() {
        dlog("warn", CAT_CONF, &format!("BTC: Using cookie auth against NBXplorer, but {cookie_file} is not found"));
    }
    // DatabaseOptions: required, but only resolved once the startup tasks run
    let Some(postgres) = conf.get("postgres").filter(|p| !p.is_empty()) else {
        return Err(Exit::Crash("System.InvalidOperationException: No database option was configured.".into()));
    };
    let _ = std::fs::create_dir_all(&datadir);
    // the MigrationStartupTask: a connection string Npgsql refuses fails inside the retry loop
    let cs = loop {
        match pg::parse(&postgres) {
            Ok(cs) => break cs,
            Err(e) => {
                dlog("info", CAT_MIG, "Running the migration scripts...");
                dlog("warn", CAT_MIG, &format!("Error while running migration scripts, retrying...\n{e}"));
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    let ctx = Arc::new(Ctx {
        net,
        datadir: datadir.clone(),
        pg: pg::Pg::new(cs),
        explorer,
        dash: Mutex::new(Dashboard { state: WState::NotConnected, status: None, error: None }),
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
    fn amounts() {
        assert_eq!(parse_amount(&s("0.001")), Some(100_000));
        assert_eq!(parse_amount(&num("1.5")), Some(150_000_000));
        assert_eq!(parse_amount(&s("-1")), Some(-100_000_000));
        assert_eq!(parse_amount(&s("abc")), None);
        assert_eq!(fmt_amount(100_000, 8), "0.001");
        assert_eq!(fmt_amount(150_000_000, 8), "1.5");
        assert_eq!(fmt_amount(0, 8), "0");
    }

    #[test]
    fn permissions() {
        assert!(grants("btcpay.store.canmodifystoresettings", "btcpay.store.cancreateinvoice"));
        assert!(!grants("btcpay.store.canviewinvoices", "btcpay.store.cancreateinvoice"));
    }

    #[test]
    fn stamps() {
        let t = utc_stamp();
        assert!(t.contains('/') && (t.ends_with("AM") || t.ends_with("PM")), "{t}");
    }
}
