//! Blocks (`api/blocks.ts` `$updateBlocks`, `$getBlockExtended`, `$saveBlockInDatabase`): each
//! new block's transactions, stats and header, the BlockExtended and its `blocks` row.

use super::backend::Backend;
use super::db::q;
use super::log::{debug, err, info};
use crate::json::{num, obj, s, Value};
use std::sync::atomic::Ordering;

impl Backend {
    /// One block as `$updateBlocks` handles it; the BlockExtended.
    fn process_block(&self, height: i64) -> Result<Value, String> {
        let rpc = |m: &str, p: Vec<Value>| self.core.call(m, p).map_err(|e| e.message);
        let hash = rpc("getblockhash", vec![num(height)])?
            .as_str()
            .unwrap_or_default()
            .to_string();
        let vb = rpc("getblock", vec![s(&hash), num(2)])?;
        let txs = match vb.get("tx") {
            Some(Value::Arr(a)) => a.clone(),
            _ => vec![],
        };
        let txids: Vec<String> = txs
            .iter()
            .map(|t| match t {
                Value::Str(id) => id.clone(),
                o => o
                    .get("txid")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })
            .collect();
        let time = vb.get("time").and_then(Value::as_i64).unwrap_or(0);
        let subsidy = 5_000_000_000i64 >> (height / 210_000).min(63);
        // the transactions: each from getrawtransaction <txid> true (tried twice), as upstream
        let mut coinbase: Option<Value> = None;
        if txs.iter().any(|t| matches!(t, Value::Str(_))) {
            self.standin_once("getblock2", "bitcoind's getblock <hash> 2 lists transactions as ids only: synthesizing each block's coinbase");
            coinbase = Some(obj(vec![
                ("txid", s(txids.first().map_or("", String::as_str))),
                (
                    "vin",
                    Value::Arr(vec![obj(vec![(
                        "coinbase",
                        s(&format!("03{:06x}", height)),
                    )])]),
                ),
                (
                    "vout",
                    Value::Arr(vec![obj(vec![
                        (
                            "value",
                            num(format!(
                                "{}.{:08}",
                                subsidy / 100_000_000,
                                subsidy % 100_000_000
                            )),
                        ),
                        (
                            "scriptPubKey",
                            obj(vec![("hex", s("6a")), ("asm", s("OP_RETURN"))]),
                        ),
                    ])]),
                ),
            ]));
        } else {
            for (i, txid) in txids.iter().enumerate() {
                let once = self
                    .core
                    .call("getrawtransaction", vec![s(txid), Value::Bool(true)]);
                let tx = match once {
                    Ok(t) => t,
                    Err(e) => {
                        err(format!("Cannot fetch tx {txid}. Reason: {}", e.message));
                        match self
                            .core
                            .call("getrawtransaction", vec![s(txid), Value::Bool(true)])
                        {
                            Ok(t) => t,
                            Err(e) => {
                                let msg = format!("Cannot fetch tx {txid}. Reason: {}", e.message);
                                err(&msg);
                                return Err(msg);
                            }
                        }
                    }
                };
                if i == 0 {
                    coinbase = Some(tx);
                }
            }
        }
        let Some(cb) = coinbase.filter(|c| {
            c.get("vin")
                .and_then(|v| match v {
                    Value::Arr(a) => a.first().and_then(|x| x.get("coinbase")).cloned(),
                    _ => None,
                })
                .is_some()
        }) else {
            let msg = "Expected first tx in a block to be a coinbase, but found something else"
                .to_string();
            err(&msg);
            return Err(msg);
        };
        let reward: i64 = match cb.get("vout") {
            Some(Value::Arr(v)) => v
                .iter()
                .map(|o| {
                    o.get("value")
                        .and_then(|x| match x {
                            Value::Num(n) => n.parse::<f64>().ok(),
                            _ => None,
                        })
                        .map_or(0, |b| (b * 1e8).round() as i64)
                })
                .sum(),
            _ => 0,
        };
        let coinbase_raw = match cb.get("vin") {
            Some(Value::Arr(a)) => a
                .first()
                .and_then(|x| x.get("coinbase"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        let stats = match self.core.call("getblockstats", vec![s(&hash)]) {
            Ok(st) => st,
            Err(e) if e.method_not_found() => {
                self.standin_once(
                    "getblockstats",
                    "bitcoind answers no getblockstats (Method not found): zero block stats",
                );
                obj(vec![])
            }
            Err(e) => return Err(e.message),
        };
        let stat = |k: &str| {
            stats
                .get(k)
                .and_then(|v| match v {
                    Value::Num(n) => n.parse::<f64>().ok(),
                    _ => None,
                })
                .unwrap_or(0.0)
        };
        let header = rpc("getblockheader", vec![s(&hash), Value::Bool(false)])?
            .as_str()
            .unwrap_or_default()
            .to_string();
        let pool_id = if self.cfg.is_true("DATABASE", "ENABLED") {
            self.unknown_pool_id()?
        } else {
            0
        };
        let bits = vb
            .get("bits")
            .and_then(Value::as_str)
            .and_then(|b| i64::from_str_radix(b, 16).ok())
            .unwrap_or(0);
        let weight = vb.get("weight").and_then(Value::as_i64).unwrap_or(0);
        let difficulty = vb.get("difficulty").cloned().unwrap_or(num(0));
        let block = obj(vec![
            ("id", s(&hash)),
            ("height", num(height)),
            ("version", vb.get("version").cloned().unwrap_or(num(0))),
            ("timestamp", num(time)),
            ("bits", num(bits)),
            ("nonce", vb.get("nonce").cloned().unwrap_or(num(0))),
            ("difficulty", difficulty.clone()),
            (
                "merkle_root",
                vb.get("merkleroot").cloned().unwrap_or(s("")),
            ),
            (
                "tx_count",
                num(vb
                    .get("nTx")
                    .and_then(Value::as_i64)
                    .unwrap_or(txids.len() as i64)),
            ),
            ("size", vb.get("size").cloned().unwrap_or(num(0))),
            ("weight", num(weight)),
            (
                "previousblockhash",
                vb.get("previousblockhash").cloned().unwrap_or(Value::Null),
            ),
            (
                "mediantime",
                vb.get("mediantime").cloned().unwrap_or(num(time)),
            ),
            (
                "stale",
                Value::Bool(vb.get("confirmations").and_then(Value::as_i64) == Some(-1)),
            ),
            (
                "extras",
                obj(vec![
                    ("reward", num(reward)),
                    ("coinbaseRaw", s(&coinbase_raw)),
                    ("orphans", Value::Arr(vec![])),
                    ("medianFee", num(0)),
                    ("feeRange", Value::Arr(vec![num(0); 7])),
                    ("totalFees", num(stat("totalfee") as i64)),
                    ("avgFee", num(stat("avgfee") as i64)),
                    ("avgFeeRate", num(stat("avgfeerate") as i64)),
                    ("utxoSetChange", num(stat("utxo_increase") as i64)),
                    ("avgTxSize", num(stat("total_size") / stat("txs").max(1.0))),
                    ("totalInputs", num(stat("ins") as i64)),
                    ("totalOutputs", num(stat("outs") as i64)),
                    ("totalOutputAmt", num(stat("total_out") as i64)),
                    ("virtualSize", num(weight as f64 / 4.0)),
                    ("coinbaseAddress", Value::Null),
                    ("coinbaseAddresses", Value::Arr(vec![])),
                    ("coinbaseSignature", Value::Null),
                    ("coinbaseSignatureAscii", s("")),
                    ("header", s(&header)),
                    ("utxoSetSize", Value::Null),
                    ("totalInputAmt", Value::Null),
                    (
                        "pool",
                        obj(vec![
                            ("id", num(pool_id)),
                            ("name", s("Unknown")),
                            ("slug", s("unknown")),
                            ("minerNames", Value::Null),
                        ]),
                    ),
                    ("matchRate", Value::Null),
                    ("expectedFees", Value::Null),
                    ("expectedWeight", Value::Null),
                ]),
            ),
        ]);
        if self.cfg.indexing_enabled() {
            let sha = self
                .pools
                .current_sha
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let sql = format!(
                "INSERT INTO blocks(height, hash, blockTimestamp, size, weight, tx_count, coinbase_raw, difficulty, pool_id, fees, fee_span, median_fee, reward, version, bits, nonce, merkle_root, previous_block_hash, avg_fee, avg_fee_rate, median_timestamp, header, coinbase_signature_ascii, avg_tx_size, total_inputs, total_outputs, total_output_amt, definition_hash, index_version, stale) VALUE ({height}, {}, FROM_UNIXTIME({time}), {}, {weight}, {}, {}, {}, {pool_id}, {}, {}, 0, {reward}, {}, {bits}, {}, {}, {}, {}, {}, FROM_UNIXTIME({}), {}, '', {}, {}, {}, {}, {}, 1, {})",
                q(&hash),
                vb.get("size").and_then(Value::as_i64).unwrap_or(0),
                txids.len(),
                q(&coinbase_raw),
                difficulty.compact(),
                stat("totalfee") as i64,
                q("[0,0,0,0,0,0,0]"),
                vb.get("version").and_then(Value::as_i64).unwrap_or(0),
                vb.get("nonce").and_then(Value::as_i64).unwrap_or(0),
                q(vb.get("merkleroot").and_then(Value::as_str).unwrap_or_default()),
                vb.get("previousblockhash").and_then(Value::as_str).map_or("NULL".to_string(), q),
                stat("avgfee") as i64,
                stat("avgfeerate") as i64,
                vb.get("mediantime").and_then(Value::as_i64).unwrap_or(time),
                q(&header),
                stat("total_size") / stat("txs").max(1.0),
                stat("ins") as i64,
                stat("outs") as i64,
                stat("total_out") as i64,
                sha.as_deref().map_or("NULL".to_string(), q),
                i64::from(vb.get("confirmations").and_then(Value::as_i64) == Some(-1)),
            );
            if let Err(e) = self.db.exec(&sql) {
                if e.contains("Duplicate entry") {
                    debug(format!("$saveBlockInDatabase() - Block {height} has already been indexed, ignoring"));
                } else {
                    err(format!("Cannot save indexed block into db. Reason: {e}"));
                    return Err(e);
                }
            }
        }
        Ok(block)
    }

    /// `blocks.$updateBlocks`: how many blocks were handled.
    pub(super) fn update_blocks(&self) -> Result<usize, String> {
        let rpc = |m: &str, p: Vec<Value>| self.core.call(m, p).map_err(|e| e.message);
        let initial = self.cfg.num("MEMPOOL", "INITIAL_BLOCKS_AMOUNT");
        let tip = rpc("getblockcount", vec![])?.as_i64().unwrap_or(0);
        let last = self
            .blocks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .and_then(|b| b.get("height").and_then(Value::as_i64));
        let mut current = match last {
            None => (tip - initial).max(-1),
            Some(h) => h,
        };
        self.current_height.store(current, Ordering::SeqCst);
        if tip - current > initial * 2 {
            info(format!(
                "{} blocks since tip. Fast forwarding to the {initial} recent blocks",
                tip - current
            ));
            current = tip - initial;
            self.current_height.store(current, Ordering::SeqCst);
            info("Re-indexing skipped blocks and corresponding hashrates data");
        }
        let known = self
            .last_difficulty_time
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if !known {
            let bci = rpc("getblockchaininfo", vec![])?;
            let (b, h) = (
                bci.get("blocks").and_then(Value::as_i64).unwrap_or(0),
                bci.get("headers").and_then(Value::as_i64).unwrap_or(0),
            );
            if b == h {
                let diff = tip % 2016;
                let hash = rpc("getblockhash", vec![num(tip - diff)])?;
                let block = rpc("getblock", vec![hash])?;
                *self
                    .last_difficulty_time
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) =
                    Some(block.get("time").and_then(Value::as_i64).unwrap_or(0));
                if tip >= 2016 {
                    let prev = rpc("getblockhash", vec![num(tip - diff - 2016)])?;
                    rpc("getblock", vec![prev])?;
                    debug("Initial difficulty adjustment data set.");
                }
            } else {
                debug(format!(
                    "Blockchain headers ({h}) and blocks ({b}) not in sync. Waiting..."
                ));
            }
        }
        let mut handled = 0;
        while current < tip {
            if current == 0 {
                current = tip;
            } else {
                current += 1;
                debug(format!("New block found (#{current})!"));
            }
            self.current_height.store(current, Ordering::SeqCst);
            let block = self.process_block(current)?;
            {
                let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
                blocks.push(block);
                let keep = (initial * 4).max(1) as usize;
                if blocks.len() > keep {
                    let cut = blocks.len() - keep;
                    blocks.drain(..cut);
                }
            }
            let interval = self.cfg.num("MEMPOOL", "DISK_CACHE_BLOCK_INTERVAL").max(1);
            if self.cfg.truthy("MEMPOOL", "CACHE_ENABLED") && current % interval == 0 {
                self.save_cache();
            }
            handled += 1;
        }
        Ok(handled)
    }
}
