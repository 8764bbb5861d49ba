//! The stand-in bitcoind's chain: a tip at a fixed height whose blocks are named so that a hash
//! says its height, with times that make the tip fresh (a synced node) or hours old (initial
//! block download). Nothing is validated: clients see Core's shapes, not real proof of work.
//!
//! Test hook, a file in the datadir: `standin-ibd` makes the node report initial block download
//! (`initialblockdownload` true, `blocks` below `headers`, the tip's time hours old, as lnd's
//! and NBXplorer's sync checks read them). Its content, if a number, is the block height reached
//! (default 812000 of 900000); remove the file and the node is synced again.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub const HEIGHT: u64 = 900_000;
const IBD_HEIGHT: u64 = 812_000;

/// The real hashes of blocks 0 and 1 of each chain (Core's chainparams.cpp, and the blocks
/// themselves): clients tell the network by them (fedimint asks for block 1, lnd for block 0).
fn real_hash(chain: &str, height: u64) -> Option<&'static str> {
    Some(match (chain, height) {
        ("main", 0) => "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        ("main", 1) => "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
        ("test", 0) => "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
        ("test", 1) => "00000000b873e79784647a6c82962c70d228557d24a747ea4d1b8bbe878e1206",
        ("testnet4", 0) => "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
        ("signet", 0) => "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
        ("signet", 1) => "00000086d6b2636cb2a392d45edc4ec544a10024d30141c9adf4bfd9de533b53",
        ("regtest", 0) => "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        _ => return None,
    })
}

static NETWORK: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The chain (`main`, `test`, ...) whose real first blocks `block_hash` names; once, at start.
pub fn set_network(chain: &str) {
    let _ = NETWORK.set(chain.to_string());
}

fn network() -> &'static str {
    NETWORK.get().map_or("main", String::as_str)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chain {
    /// The best block's height.
    pub blocks: u64,
    /// The best header's height.
    pub headers: u64,
    pub ibd: bool,
}

impl Chain {
    pub fn of(datadir: &Path) -> Chain {
        match std::fs::read_to_string(datadir.join("standin-ibd")) {
            Ok(text) => {
                let blocks = text.trim().parse().unwrap_or(IBD_HEIGHT).min(HEIGHT);
                Chain {
                    blocks,
                    headers: HEIGHT,
                    ibd: true,
                }
            }
            Err(_) => Chain {
                blocks: HEIGHT,
                headers: HEIGHT,
                ibd: false,
            },
        }
    }

    pub fn progress(&self) -> f64 {
        if self.ibd {
            // Core's estimate grows with transactions, not blocks; this is close enough
            (self.blocks as f64 / self.headers as f64).powi(4)
        } else {
            1.0
        }
    }

    /// A block's time: the tip two minutes old when synced, and 10 minutes a block before it;
    /// during initial block download the tip lags the headers by those minutes.
    pub fn time_of(&self, height: u64) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        now.saturating_sub(120 + (self.headers - height.min(self.headers)) * 600)
    }
}

fn sha256d(data: &[u8]) -> [u8; 32] {
    let first = Sha256::digest(data);
    Sha256::digest(first).into()
}

/// The hash of the block at `height` (as Core prints them): eight zero digits, the height in 16
/// hex digits, then 40 digits of a digest of it, so that `height_of` can read it back.
pub fn block_hash(height: u64) -> String {
    if let Some(h) = real_hash(network(), height) {
        return h.to_string();
    }
    let tail = sha256d(format!("archy-standin-block-{height}").as_bytes());
    let tail: String = tail.iter().map(|b| format!("{b:02x}")).collect();
    format!("00000000{height:016x}{}", &tail[..40])
}

/// The height of a block this chain has, from its hash.
pub fn height_of(hash: &str, chain: &Chain) -> Option<u64> {
    let h = match (0..2).find(|h| real_hash(network(), *h) == Some(hash)) {
        Some(h) => h,
        None => u64::from_str_radix(hash.get(8..24)?, 16).ok()?,
    };
    (h <= chain.blocks && block_hash(h) == hash).then_some(h)
}

/// The 80-byte header, serialised as Core does (little-endian fields, hashes byte-reversed).
pub fn header_hex(height: u64, chain: &Chain) -> String {
    let mut b = Vec::with_capacity(80);
    b.extend_from_slice(&0x2000_0000u32.to_le_bytes());
    let prev = if height == 0 {
        "0".repeat(64)
    } else {
        block_hash(height - 1)
    };
    b.extend(hex_reversed(&prev));
    b.extend(sha256d(format!("archy-standin-merkle-{height}").as_bytes()));
    b.extend_from_slice(&(chain.time_of(height) as u32).to_le_bytes());
    b.extend_from_slice(&0x1703_0ecdu32.to_le_bytes());
    b.extend_from_slice(&(height as u32).to_le_bytes());
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_reversed(hex: &str) -> Vec<u8> {
    let mut v: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    v.reverse();
    v
}

/// The one transaction of each block (its coinbase), by id.
pub fn coinbase_txid(height: u64) -> String {
    let h = sha256d(format!("archy-standin-coinbase-{height}").as_bytes());
    h.iter().rev().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_name_their_height() {
        let c = Chain {
            blocks: HEIGHT,
            headers: HEIGHT,
            ibd: false,
        };
        assert_eq!(
            block_hash(1),
            "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"
        );
        for h in [0, 1, 2, 812_000, HEIGHT] {
            let hash = block_hash(h);
            assert_eq!(hash.len(), 64);
            assert_eq!(height_of(&hash, &c), Some(h));
        }
        assert_eq!(height_of(&block_hash(HEIGHT + 1), &c), None);
        assert_eq!(height_of("00000000ffffffffffffffff", &c), None);
        assert_eq!(header_hex(5, &c).len(), 160);
    }

    #[test]
    fn initial_block_download_has_an_old_tip() {
        let c = Chain {
            blocks: 812_000,
            headers: HEIGHT,
            ibd: true,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(now - c.time_of(c.blocks) > 2 * 3600);
        assert!(c.progress() < 1.0);
        let synced = Chain {
            blocks: HEIGHT,
            headers: HEIGHT,
            ibd: false,
        };
        assert!(now - synced.time_of(synced.blocks) < 600);
    }
}
