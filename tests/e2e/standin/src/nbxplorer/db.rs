//! NBXplorer's database (`HostedServices/DatabaseSetupHostedService.cs`, `Extensions.cs`
//! ReliableOpenConnectionAsync, `Backend/Repository.cs` GenerateAddressesCore and GetUnused):
//! creating it, the stand-in's migrations, tracked wallets and their address pools.

use super::scheme::{self, Strategy};
use super::{dlog, Ctx, CAT_DB};
use crate::bitcoin_encoding::sha256;
use crate::dotnet::Exit;
use crate::json::{num, obj, s, Value};
use crate::postgres::{self as pg, Pg, PgError};
use std::time::Duration;

impl Ctx {
    pub(super) fn setup_database(&self) -> Result<(), Exit> {
        dlog("info", CAT_DB, "Postgres services activated");
        loop {
            match self.open_reliable(&self.pg) {
                Ok(()) => return self.run_scripts().map_err(|e| Exit::Crash(e.dotnet())),
                Err(e) if e.sqlstate() == Some("3D000") => {
                    let dbname = self.pg.cs.database.clone().unwrap_or_default();
                    dlog(
                        "info",
                        CAT_DB,
                        &format!("Database '{dbname}' doesn't exists, creating it..."),
                    );
                    let admin = self.pg.with_database(None);
                    self.open_reliable(&admin)
                        .map_err(|e| Exit::Crash(e.dotnet()))?;
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
    fn open_reliable(&self, pg: &Pg) -> Result<(), PgError> {
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

    fn run_scripts(&self) -> Result<(), PgError> {
        let executed: Vec<String> = match self.pg.query("SELECT script_name FROM nbxv1_migrations")
        {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|r| r.into_iter().next())
                .collect(),
            Err(e) if e.sqlstate() == Some("42P01") => Vec::new(),
            Err(e) => return Err(e),
        };
        for (name, sql) in SCRIPTS {
            if executed.iter().any(|e| e == name) {
                continue;
            }
            dlog("info", CAT_DB, &format!("Execute script {name}..."));
            self.pg.run(
                &format!(
                    "{sql};\nINSERT INTO nbxv1_migrations VALUES ({});",
                    pg::lit(name)
                ),
                true,
            )?;
        }
        Ok(())
    }

    // ---- the repository

    fn wallet_id(&self, scheme: &str) -> String {
        let h = sha256(format!("BTC|{scheme}").as_bytes());
        crate::util::base64(&h[..21])
    }

    fn descriptor_id(&self, scheme: &str, feature: &str) -> String {
        let h = sha256(format!("BTC|{scheme}|{feature}").as_bytes());
        crate::util::base64(&h[..21])
    }

    fn keypath(feature: &str, i: i64) -> String {
        match feature {
            "Change" => format!("1/{i}"),
            _ => format!("0/{i}"),
        }
    }

    /// Repository.GenerateAddressesCore for one feature: the wallet rows, then the pool.
    pub(super) fn generate(
        &self,
        st: &Strategy,
        feature: &str,
        min: Option<i64>,
    ) -> Result<i64, PgError> {
        let wid = self.wallet_id(&st.text);
        let did = self.descriptor_id(&st.text, feature);
        let template = if feature == "Change" { "1/*" } else { "0/*" };
        let wmeta = obj(vec![
            ("type", s("NBXv1-Derivation")),
            ("code", s("BTC")),
            ("derivation", s(&st.text)),
        ])
        .compact();
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
        let mut n = if gap >= self.min_gap {
            0
        } else {
            (self.max_gap - gap).max(0)
        };
        if let Some(m) = min {
            n = n.max(m);
        }
        if n == 0 {
            return Ok(0);
        }
        let mut sql = String::new();
        for i in next..next + n {
            let (script, addr, redeem) = scheme::derive(st, &Self::keypath(feature, i), &self.net);
            let meta = redeem.map_or("NULL".to_string(), |r| {
                format!(
                    "{}::JSONB",
                    pg::lit(&obj(vec![("redeem", s(&r))]).compact())
                )
            });
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

    pub(super) fn is_tracked(&self, scheme: &str) -> Result<bool, PgError> {
        let rows = self.pg.query(&format!(
            "SELECT COUNT(*) FROM wallets WHERE wallet_id={}",
            pg::lit(&self.wallet_id(scheme))
        ))?;
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .is_some_and(|c| c != "0"))
    }

    /// Repository.GetUnused, with its reservation.
    pub(super) fn get_unused(
        &self,
        st: &Strategy,
        feature: &str,
        skip: i64,
        reserve: bool,
    ) -> Result<Option<Value>, PgError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        // wallet ids are 21 bytes of SHA-256 in base64: 28 characters
        let h = sha256(b"BTC|xpub");
        assert_eq!(crate::util::base64(&h[..21]).len(), 28);
    }
}
