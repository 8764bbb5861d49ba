//! The startup tasks: EF Core's migrations (`Hosting/MigrationStartupTask.cs`) with the stand-in's
//! schema, and the test hook's user, store, wallet and API key (see the module's doc).

use super::{Ctx, CAT_EF, CAT_MIG, KEY_LABEL, MIGRATION_ID, PM, STANDIN_XPUB};
use crate::bitcoin_encoding::{b58check_decode, b58check_encode, b58encode};
use crate::dotnet::dlog;
use crate::json::{num, obj, s, Value};
use crate::postgres::{self as pg, PgError};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

impl Ctx {
    /// EF Core's MigrateAsync, as far as the stand-in's schema goes.
    fn migrate_once(&self) -> Result<(), PgError> {
        match self.pg.query("SELECT 1") {
            Ok(_) => {}
            Err(e) if e.sqlstate() == Some("3D000") => {
                let name = self
                    .pg
                    .cs
                    .database
                    .clone()
                    .unwrap_or_else(|| self.pg.username());
                self.pg
                    .with_database(Some("postgres"))
                    .query(&format!("CREATE DATABASE {}", pg::ident(&name)))?;
            }
            Err(e) => return Err(e),
        }
        self.pg.query(
            "CREATE TABLE IF NOT EXISTS \"__EFMigrationsHistory\" (\"MigrationId\" character varying(150) NOT NULL, \
             \"ProductVersion\" character varying(32) NOT NULL, CONSTRAINT \"PK___EFMigrationsHistory\" PRIMARY KEY (\"MigrationId\"))",
        )?;
        let applied = self.pg.query(
            "SELECT \"MigrationId\" FROM \"__EFMigrationsHistory\" ORDER BY \"MigrationId\"",
        )?;
        if applied
            .iter()
            .any(|r| r.first().map(String::as_str) == Some(MIGRATION_ID))
        {
            return Ok(());
        }
        dlog(
            "info",
            CAT_EF,
            &format!("Applying migration '{MIGRATION_ID}'."),
        );
        self.pg.run(
            &format!(
                "{SCHEMA};\nINSERT INTO \"__EFMigrationsHistory\" VALUES ({}, '10.0.3');",
                pg::lit(MIGRATION_ID)
            ),
            true,
        )?;
        Ok(())
    }

    pub(super) fn migrate(&self) {
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
                        &format!(
                            "Error while running migration scripts, retrying...\n{}",
                            e.dotnet()
                        ),
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
        let mut raw = b58check_decode(STANDIN_XPUB).unwrap_or_default();
        if raw.len() == 78 {
            raw[..4].copy_from_slice(&self.net.xpub);
        }
        b58check_encode(&raw)
    }

    /// The test hook: a user, a store with a wallet, an API key, written to the data directory.
    pub(super) fn setup_store(&self) -> Result<(), String> {
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
                let store = b58encode(&crate::sys::random_bytes(32));
                let key = crate::sys::random_hex(20);
                let derivation = obj(vec![(
                    PM,
                    obj(vec![
                        ("accountDerivation", s(&scheme)),
                        ("accountOriginal", s(&scheme)),
                        ("label", s("archy e2e stand-in wallet")),
                        (
                            "signingKey",
                            s(scheme.split('-').next().unwrap_or_default()),
                        ),
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
                    Value::Arr(vec![s(&format!(
                        "btcpay.store.canmodifystoresettings:{store}"
                    ))]),
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
                    &format!(
                        "created store {store} with an on-chain wallet ({scheme}) and an API key"
                    ),
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
    pub(super) fn track_store_wallet(self: Arc<Self>) {
        let Some((_, scheme)) = self.store.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return;
        };
        if let Err(e) = self.explorer.send(
            "POST",
            &format!(
                "v1/cryptos/BTC/derivations/{}",
                crate::util::percent_encode(&scheme)
            ),
            "",
        ) {
            dlog(
                "warn",
                "archy-e2e-standin",
                &format!("BTC: could not track the store's wallet with NBXplorer yet: {e}"),
            );
        }
    }
}

fn uuid() -> String {
    let h = crate::sys::random_hex(16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
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
