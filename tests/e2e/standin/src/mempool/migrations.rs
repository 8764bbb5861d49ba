//! The migrations (`api/database-migration.ts`): the `state` table, then the tables and columns
//! the stand-in writes, up to schema version 106.

use super::config::Config;
use super::db::{q, Db};
use super::log::{debug, err, info, notice};
use std::time::Duration;

const CREATE_STATE: &str = "CREATE TABLE IF NOT EXISTS state (
      name varchar(25) NOT NULL,
      number int(11) NULL,
      string varchar(100) NULL,
      CONSTRAINT name_unique UNIQUE (name)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8;";

const CREATE_POOLS: &str = "CREATE TABLE IF NOT EXISTS pools (
      id int(11) NOT NULL AUTO_INCREMENT,
      name varchar(50) NOT NULL,
      link varchar(255) NOT NULL,
      addresses text NOT NULL,
      regexes text NOT NULL,
      PRIMARY KEY (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;";

const CREATE_BLOCKS: &str = "CREATE TABLE IF NOT EXISTS blocks (
      height int(11) unsigned NOT NULL,
      hash varchar(65) NOT NULL,
      blockTimestamp timestamp NOT NULL,
      size int(11) unsigned NOT NULL,
      weight int(11) unsigned NOT NULL,
      tx_count int(11) unsigned NOT NULL,
      coinbase_raw text,
      difficulty bigint(20) unsigned NOT NULL,
      pool_id int(11) DEFAULT -1,
      fees double unsigned NOT NULL,
      fee_span json NOT NULL,
      median_fee double unsigned NOT NULL,
      PRIMARY KEY (height),
      INDEX (pool_id),
      FOREIGN KEY (pool_id) REFERENCES pools (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8;";

/// The columns of later migrations this stand-in writes (versions 5, 16, 17, 26, 56, 95, ...).
const ALTER_BLOCKS: &str = "ALTER TABLE blocks
      ADD `reward` double unsigned NOT NULL DEFAULT \"0\",
      ADD `version` integer unsigned NOT NULL DEFAULT \"0\",
      ADD `bits` integer unsigned NOT NULL DEFAULT \"0\",
      ADD `nonce` bigint unsigned NOT NULL DEFAULT \"0\",
      ADD `merkle_root` varchar(65) NOT NULL DEFAULT \"\",
      ADD `previous_block_hash` varchar(65) NULL,
      ADD avg_fee int unsigned NULL,
      ADD avg_fee_rate int unsigned NULL,
      ADD median_timestamp timestamp NOT NULL DEFAULT 0,
      ADD header varchar(160) NOT NULL DEFAULT \"\",
      ADD coinbase_address varchar(100) NULL,
      ADD coinbase_signature varchar(500) NULL,
      ADD coinbase_signature_ascii varchar(500) NULL,
      ADD avg_tx_size double unsigned NOT NULL DEFAULT 0,
      ADD total_inputs int unsigned NOT NULL DEFAULT 0,
      ADD total_outputs int unsigned NOT NULL DEFAULT 0,
      ADD total_output_amt bigint unsigned NOT NULL DEFAULT 0,
      ADD definition_hash varchar(255) NULL,
      ADD index_version int unsigned NOT NULL DEFAULT 0,
      ADD stale boolean NOT NULL DEFAULT 0";

fn create_statistics() -> String {
    let sizes = [
        1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100, 125, 150, 175, 200,
        250, 300, 350, 400, 500, 600, 700, 800, 900, 1000, 1200, 1400, 1600, 1800, 2000,
    ];
    let cols: String = sizes
        .iter()
        .map(|n| format!("      vsize_{n} int(11) NOT NULL,\n"))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS statistics (
      id int(11) NOT NULL AUTO_INCREMENT,
      added datetime NOT NULL,
      unconfirmed_transactions int(11) UNSIGNED NOT NULL,
      tx_per_second float UNSIGNED NOT NULL,
      vbytes_per_second int(10) UNSIGNED NOT NULL,
      mempool_byte_weight int(10) UNSIGNED NOT NULL,
      fee_data longtext NOT NULL,
      total_fee double UNSIGNED NOT NULL,
{cols}      CONSTRAINT PRIMARY KEY (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8;"
    )
}

fn table_exists(db: &Db, table: &str) -> Result<bool, String> {
    let rows = db.query(&format!(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {} AND TABLE_NAME = {}",
        q(&db.database),
        q(table)
    ))?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .as_deref()
        == Some("1"))
}

const CURRENT_VERSION: i64 = 106;

/// `$initializeOrMigrateDatabase`; Err is an exit code.
pub(super) fn migrate(db: &Db, cfg: &Config) -> Result<(), i32> {
    debug("MIGRATIONS: Running migrations");
    match db.query("SELECT VERSION() as version;") {
        Ok(r) => debug(format!(
            "MIGRATIONS: Database engine version '{}'",
            r.first()
                .and_then(|x| x.first().cloned().flatten())
                .unwrap_or_default()
        )),
        Err(e) => debug(format!(
            "MIGRATIONS: Could not fetch database engine version. Error: {e}"
        )),
    }
    let abort = |what: &str, e: String| -> i32 {
        err(format!(
            "MIGRATIONS: {what}, aborting in 10 seconds. Error: {e}"
        ));
        std::thread::sleep(Duration::from_secs(10));
        255
    };
    match table_exists(db, "state") {
        Ok(true) => {}
        Ok(false) => {
            debug("MIGRATIONS: `state` table does not exist. Creating it.");
            if let Err(e) = db.exec(&format!(
                "{CREATE_STATE} INSERT INTO state VALUES('schema_version', 0, NULL); INSERT INTO state VALUES('last_elements_block', 0, NULL);"
            )) {
                return Err(abort("Unable to create `state` table", e));
            }
            debug("MIGRATIONS: `state` table initialized.");
        }
        Err(e) => return Err(abort("Unable to create `state` table", e)),
    }
    let version: i64 = match db.query("SELECT number FROM state WHERE name = 'schema_version';") {
        Ok(r) => r
            .first()
            .and_then(|x| x.first().cloned().flatten())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        Err(e) => return Err(abort("Unable to get current database migration version", e)),
    };
    if version == 0 {
        info("Initializing database (first run, clean install)");
    }
    if version <= 2 {
        notice("'blocks' table has been truncated.");
        notice("'hashrates' table has been truncated.");
    }
    debug(format!(
        "MIGRATIONS: Current state.schema_version {version}"
    ));
    debug(format!(
        "MIGRATIONS: Latest DatabaseMigration.version is {CURRENT_VERSION}"
    ));
    if version >= CURRENT_VERSION {
        debug("MIGRATIONS: Nothing to do.");
        return Ok(());
    }
    let bitcoin = cfg.is_bitcoin();
    let mut steps: Vec<String> = Vec::new();
    steps.push(create_statistics());
    if version < 2 {
        steps.push("CREATE INDEX added ON statistics (added);".into());
    }
    if version < 3 {
        steps.push(CREATE_POOLS.into());
    }
    if version < 4 {
        steps.push("DROP table IF EXISTS blocks;".into());
        steps.push(CREATE_BLOCKS.into());
        steps.push(format!("{ALTER_BLOCKS};"));
        steps.push(
            "ALTER TABLE pools ADD `slug` CHAR(50) NULL, ADD unique_id int NOT NULL DEFAULT -1;"
                .into(),
        );
        steps.push("ALTER TABLE statistics ADD min_fee FLOAT UNSIGNED DEFAULT NULL, ADD COLUMN vsize_0 int(11) NOT NULL DEFAULT 0;".into());
    }
    if version < 56 || (version < 75 && bitcoin) {
        steps.push("UPDATE state SET string = NULL WHERE name = 'pools_json_sha';".into());
    }
    if version < 7 && bitcoin {
        // added at 7 and 9, deleted at 58
    }
    steps.push(format!(
        "UPDATE state SET number = {CURRENT_VERSION} WHERE name = 'schema_version';"
    ));
    for step in &steps {
        debug(format!("MIGRATIONS: Execute query:\n{step}"));
        if let Err(e) = db.exec(step) {
            return Err(abort("Unable to create required tables", e));
        }
    }
    if version == 0 {
        notice(format!("MIGRATIONS: OK. Database schema has been properly initialized to version {CURRENT_VERSION} (latest version)"));
    } else {
        notice(format!("MIGRATIONS: OK. Database schema have been migrated from version {version} to {CURRENT_VERSION} (latest version)"));
    }
    Ok(())
}
