//! The DB (electrumx/server/db.py, history.py): the stand-in's state file, the headers'
//! `LogicalFile`, opening (and creating) the databases.

use super::coin::Coin;
use super::python::{commas, formatted_time};
use super::server::Server;
use super::{err, info, PyErr, DEFAULT_RATE, STATE_FILE};
use crate::bitcoin_encoding::sha256d;
use crate::util::{hex, unhex};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

#[derive(Clone, Debug)]
pub(super) struct DbState {
    pub(super) height: i64,
    pub(super) tx_count: i64,
    pub(super) tip: String,
    pub(super) first_sync: bool,
    pub(super) flush_count: i64,
    pub(super) wall_time: f64,
}

impl DbState {
    pub(super) fn fresh() -> DbState {
        DbState {
            height: -1,
            tx_count: 0,
            tip: "0".repeat(64),
            first_sync: true,
            flush_count: 0,
            wall_time: 0.0,
        }
    }

    pub(super) fn text(&self, genesis: &str) -> String {
        format!(
            "{{'genesis': '{genesis}', 'height': {}, 'tx_count': {}, 'tip': '{}', 'utxo_flush_count': {}, 'wall_time': {}, 'first_sync': {}, 'db_version': 8}}\n",
            self.height,
            self.tx_count,
            self.tip,
            self.flush_count,
            self.wall_time as i64,
            if self.first_sync { "True" } else { "False" }
        )
    }

    fn parse(text: &str) -> Option<(DbState, String)> {
        let field = |k: &str| -> Option<String> {
            let start = text.find(&format!("'{k}': "))? + k.len() + 4;
            let rest = &text[start..];
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Some(rest[..end].trim().trim_matches('\'').to_string())
        };
        let st = DbState {
            height: field("height")?.parse().ok()?,
            tx_count: field("tx_count")?.parse().ok()?,
            tip: field("tip")?,
            first_sync: field("first_sync")? == "True",
            flush_count: field("utxo_flush_count")?.parse().ok()?,
            wall_time: field("wall_time")?.parse().ok()?,
        };
        Some((st, field("genesis")?))
    }
}

/// `util.LogicalFile`: a logical file split into files of `size` bytes named prefix + NN.
pub(super) struct LogicalFile {
    prefix: &'static str,
    digits: usize,
    size: u64,
}

impl LogicalFile {
    fn path(&self, idx: u64) -> String {
        format!("{}{:0width$}", self.prefix, idx, width = self.digits)
    }

    pub(super) fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut off = offset;
        let mut data = data;
        while !data.is_empty() {
            let idx = off / self.size;
            let within = off % self.size;
            let n = ((self.size - within) as usize).min(data.len());
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(self.path(idx))?;
            f.seek(SeekFrom::Start(within))?;
            f.write_all(&data[..n])?;
            data = &data[n..];
            off += n as u64;
        }
        Ok(())
    }

    pub(super) fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let idx = offset / self.size;
        let within = offset % self.size;
        let mut buf = vec![0u8; len];
        if let Ok(mut f) = std::fs::File::open(self.path(idx)) {
            if f.seek(SeekFrom::Start(within)).is_ok() {
                let mut got = 0;
                while got < len {
                    match f.read(&mut buf[got..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
            }
        }
        buf
    }
}

pub(super) const HEADERS: LogicalFile = LogicalFile {
    prefix: "meta/headers",
    digits: 2,
    size: 16_000_000,
};

/// A header for a height the daemon gave none of (stand-in bitcoind without getblock).
pub(super) fn synth_header(height: i64, prev_hex: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(80);
    b.extend_from_slice(&0x2000_0000u32.to_le_bytes());
    let mut prev = unhex(prev_hex).unwrap_or_else(|| vec![0; 32]);
    prev.reverse();
    b.extend(prev);
    b.extend(sha256d(
        format!("archy-standin-electrumx-{height}").as_bytes(),
    ));
    b.extend_from_slice(&((1_231_006_505 + 600 * height.max(0)) as u32).to_le_bytes());
    b.extend_from_slice(&0x1703_0ecdu32.to_le_bytes());
    b.extend_from_slice(&(height as u32).to_le_bytes());
    b
}

pub(super) fn estimated_tx_count(coin: &Coin, height: i64) -> i64 {
    if height < 0 {
        return 0;
    }
    if height <= coin.tx_count_height {
        (coin.tx_count as f64 * (height as f64 / coin.tx_count_height as f64).powi(2)) as i64
            + height
            + 1
    } else {
        coin.tx_count + (height - coin.tx_count_height) * coin.tx_per_block
    }
}

pub(super) fn open_dbs(srv: &Server, for_sync: bool) -> Result<(), PyErr> {
    let coin = &srv.env.coin;
    if !Path::new("utxo").is_dir() {
        info("DB", "created new database");
        info("DB", "creating metadata directory");
        let io = |e: std::io::Error| err("OSError", e.to_string());
        // LevelDB creates the utxo directory and its LOCK first (plyvel's error)
        std::fs::create_dir_all("utxo").map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::PermissionDenied {
                "Permission denied".to_string()
            } else {
                e.to_string()
            };
            err(
                "plyvel._plyvel.IOError",
                format!("b'IO error: utxo/LOCK: {what}'"),
            )
        })?;
        std::fs::create_dir("meta").map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                err("FileExistsError", "[Errno 17] File exists: 'meta'")
            }
            _ => err("OSError", e.to_string()),
        })?;
        std::fs::write(
            "COIN",
            format!(
                "ElectrumX databases and metadata for {} {}",
                coin.name, coin.net
            ),
        )
        .map_err(io)?;
        *srv.db.lock().unwrap_or_else(|e| e.into_inner()) = DbState::fresh();
        srv.save_state();
    } else {
        info(
            "DB",
            format!(
                "opened UTXO DB (for sync: {})",
                if for_sync { "True" } else { "False" }
            ),
        );
        let text = std::fs::read_to_string(STATE_FILE).unwrap_or_default();
        match DbState::parse(&text) {
            Some((st, genesis)) => {
                if genesis != coin.genesis {
                    return Err(err(
                        "electrumx.server.db.DB.DBError",
                        format!(
                            "DB genesis hash {genesis} does not match coin {}",
                            coin.genesis
                        ),
                    ));
                }
                *srv.db.lock().unwrap_or_else(|e| e.into_inner()) = st;
            }
            None => *srv.db.lock().unwrap_or_else(|e| e.into_inner()) = DbState::fresh(),
        }
    }
    let _ = std::fs::create_dir_all("hist");
    let st = srv.db.lock().unwrap_or_else(|e| e.into_inner()).clone();
    info("DB", "UTXO DB version: 8");
    info("DB", format!("coin: {}", coin.name));
    info("DB", format!("network: {}", coin.net));
    info("DB", format!("height: {}", commas(st.height)));
    info("DB", format!("tip: {}", st.tip));
    info("DB", format!("tx count: {}", commas(st.tx_count)));
    if for_sync {
        info(
            "DB",
            format!("flushing DB cache at {} MB", commas(srv.env.cache_mb)),
        );
    }
    if st.first_sync {
        info(
            "DB",
            format!(
                "sync time so far: {}",
                formatted_time(st.wall_time as i64, " ")
            ),
        );
    }
    info("History", "history DB version: 1");
    info(
        "History",
        format!("flush count: {}", commas(st.flush_count)),
    );
    Ok(())
}

pub(super) fn blocks_per_second(db_dir: &str) -> u64 {
    std::fs::read_to_string(Path::new(db_dir).join("standin-blocks-per-second"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(DEFAULT_RATE)
}

pub(super) fn synth_hash(height: i64) -> String {
    let mut h = sha256d(format!("archy-standin-electrumx-block-{height}").as_bytes());
    h.reverse();
    hex(&h)
}

/// Header prev-hash field as hex (byte-reversed).
pub(super) fn prev_of(header: &[u8]) -> String {
    let mut p = header.get(4..36).map(<[u8]>::to_vec).unwrap_or_default();
    p.reverse();
    hex(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip() {
        let st = DbState {
            height: 812000,
            tx_count: 5,
            tip: "ab".repeat(32),
            first_sync: false,
            flush_count: 3,
            wall_time: 7.0,
        };
        let (back, g) = DbState::parse(&st.text("gen")).unwrap();
        assert_eq!(back.height, 812000);
        assert_eq!(back.tip, st.tip);
        assert!(!back.first_sync);
        assert_eq!(g, "gen");
    }
}
