//! The prefetcher and block processor (electrumx/server/block_processor.py, mempool.py): follow
//! `getblockcount` at the stand-in's fake rate, store sampled headers, reorgs, catching up.

use super::daemon::DaemonError;
use super::db::{blocks_per_second, estimated_tx_count, open_dbs, prev_of, synth_hash, HEADERS};
use super::listeners::serve_external;
use super::python::{commas, formatted_time, py_fstr, py_repr};
use super::server::Server;
use super::{error, info, warning, COIN_ERROR, VERSION};
use crate::json::{num, Value};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The block hashes of heights `first..=last` (batched getblockhash), or None to synthesize.
fn block_hashes(srv: &Server, heights: &[i64]) -> Result<Option<Vec<String>>, DaemonError> {
    if srv.synthesize.load(Ordering::Relaxed) {
        return Ok(None);
    }
    match srv.daemon.vector(
        "getblockhash",
        heights.iter().map(|h| vec![num(*h)]).collect(),
    ) {
        Ok(v) => Ok(Some(
            v.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect(),
        )),
        Err(e) if e.0.compact().contains("-32601") => {
            srv.start_synthesizing(&e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The prefetcher and block processor, as one loop.
pub(super) fn sync_loop(srv: &Arc<Server>) {
    let coin = srv.env.coin.clone();
    let tick = Duration::from_millis(500);
    let sync_started = Instant::now();
    let mut last_flush_tx = srv.db.lock().unwrap_or_else(|e| e.into_inner()).tx_count;
    let mut last_flush = Instant::now();
    loop {
        let daemon_height = match srv.daemon.height() {
            Ok(h) => h,
            Err(e) => {
                info(
                    "Prefetcher",
                    format!("ignoring daemon error: {}", py_repr(&e.0)),
                );
                std::thread::sleep(Duration::from_secs(5));
                continue;
            }
        };
        let height = srv.db_height();
        if height == daemon_height && !srv.caught_up.load(Ordering::SeqCst) {
            first_caught_up(srv);
            continue;
        }
        let reorg = srv.reorg_count.swap(0, Ordering::SeqCst);
        if reorg > 0 {
            back_up(srv, reorg, "faking a reorg of");
            continue;
        }
        let caught_up = srv.caught_up.load(Ordering::SeqCst);
        let per_tick =
            ((blocks_per_second(&srv.env.db_dir) as f64) * tick.as_secs_f64()).max(1.0) as i64;
        let count = (daemon_height - height).min(per_tick);
        if count <= 0 {
            std::thread::sleep(if caught_up { srv.env.poll_blocks } else { tick });
            continue;
        }
        let t0 = Instant::now();
        let first = height + 1;
        let last = height + count;
        // which blocks to really fetch: the genesis block, the last of the batch, the last ten
        let mut fetch: Vec<i64> = Vec::new();
        if first == 0 {
            fetch.push(0);
        }
        for h in first.max(daemon_height - 9)..=last {
            if !fetch.contains(&h) {
                fetch.push(h);
            }
        }
        if !fetch.contains(&last) {
            fetch.push(last);
        }
        let hashes = match block_hashes(srv, &fetch) {
            Ok(h) => h,
            Err(e) => {
                info(
                    "Prefetcher",
                    format!("ignoring daemon error: {}", py_fstr(&e.0)),
                );
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let mut tip = srv.db.lock().unwrap_or_else(|e| e.into_inner()).tip.clone();
        let mut size = 0usize;
        let mut reorged = false;
        for (i, &h) in fetch.iter().enumerate() {
            let hash = hashes
                .as_ref()
                .map_or_else(|| synth_hash(h), |v| v[i].clone());
            if h == 0 {
                if hash != coin.genesis {
                    error("Prefetcher", "ignoring unexpected exception");
                    let _ = writeln!(
                        std::io::stdout(),
                        "Traceback (most recent call last):\n  (Python frames not mirrored by the archy e2e stand-in)\n{COIN_ERROR}: genesis block has hash {hash} expected {}",
                        coin.genesis
                    );
                    std::thread::sleep(Duration::from_secs(1));
                    reorged = true;
                    break;
                }
                info(
                    "Prefetcher",
                    format!("verified genesis block with hash {hash}"),
                );
            }
            let zero = "0".repeat(64);
            let header = srv.fetch_header(&hash, h, if h == 0 { &zero } else { &tip });
            size += 285;
            // blocks fetched in sequence must chain onto our tip (the daemon's hashes, not the
            // header's double SHA-256: the stand-in bitcoind's headers do not hash to their names)
            let contiguous = i > 0 && fetch[i - 1] == h - 1 || i == 0 && h == first;
            if contiguous
                && h > 0
                && hashes.is_some()
                && !srv.synthesize.load(Ordering::Relaxed)
                && prev_of(&header) != tip
            {
                if h == first && h > 0 {
                    info("BlockProcessor", "chain reorg detected");
                    back_up(srv, 0, "");
                } else {
                    warning(
                        "BlockProcessor",
                        "daemon blocks do not form a chain; resetting the prefetcher",
                    );
                }
                reorged = true;
                break;
            }
            let _ = HEADERS.write(h as u64 * 80, &header);
            tip = hash;
        }
        if reorged {
            continue;
        }
        if caught_up {
            info(
                "Prefetcher",
                format!("new block height {} hash {}", commas(last), tip),
            );
        }
        {
            let mut db = srv.db.lock().unwrap_or_else(|e| e.into_inner());
            db.height = last;
            db.tip = tip;
            db.tx_count = estimated_tx_count(&coin, last);
            db.flush_count += 1;
            db.wall_time += t0.elapsed().as_secs_f64().max(tick.as_secs_f64());
        }
        srv.save_state();
        let db = srv.db.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if caught_up {
            info(
                "BlockProcessor",
                format!(
                    "processed {} block{} size {:.2} MB in {:.1}s",
                    commas(count),
                    if count == 1 { "" } else { "s" },
                    size as f64 / 1e6,
                    t0.elapsed().as_secs_f64()
                ),
            );
            srv.notify_headers();
        } else {
            let elapsed = last_flush.elapsed().as_secs_f64().max(0.001);
            let delta = db.tx_count - last_flush_tx;
            info(
                "DB",
                format!(
                    "flush #{} took {:.1}s.  Height {} txs: {} (+{})",
                    commas(db.flush_count),
                    0.0,
                    commas(db.height),
                    commas(db.tx_count),
                    commas(delta)
                ),
            );
            let since_genesis = (db.tx_count as f64 / db.wall_time.max(0.001)) as i64;
            let since_last = 1 + (delta as f64 / elapsed) as i64;
            let remaining = (daemon_height - db.height) * coin.tx_per_block;
            info(
                "DB",
                format!(
                    "tx/sec since genesis: {}, since last flush: {}",
                    commas(since_genesis),
                    commas(since_last)
                ),
            );
            info(
                "DB",
                format!(
                    "sync time: {}  ETA: {}",
                    formatted_time(sync_started.elapsed().as_secs() as i64, " "),
                    formatted_time(remaining / since_last.max(1), " ")
                ),
            );
            last_flush_tx = db.tx_count;
            last_flush = Instant::now();
            let rest = tick.saturating_sub(t0.elapsed());
            std::thread::sleep(rest);
        }
    }
}

/// Back up `count` blocks (a faked reorg), or to where our stored headers and the daemon agree.
fn back_up(srv: &Server, count: i64, what: &str) {
    let height = srv.db_height();
    let start = if count > 0 {
        info("BlockProcessor", format!("{what} {} blocks", commas(count)));
        height - count + 1
    } else {
        // walk back while the stored header's successor disagrees with the daemon's hash
        let mut h = height;
        let mut n = 0;
        while h > 0 && n < srv.env.reorg_limit {
            let stored_next_prev = HEADERS.read((h as u64 + 1) * 80, 80);
            let daemon_hash = srv
                .daemon
                .vector("getblockhash", vec![vec![num(h)]])
                .ok()
                .and_then(|v| v.first()?.as_str().map(str::to_string));
            let ours = if stored_next_prev.iter().any(|&b| b != 0) {
                Some(prev_of(&stored_next_prev))
            } else {
                None
            };
            if ours.is_none() || ours == daemon_hash {
                break;
            }
            h -= 1;
            n += 1;
        }
        h.max(height - 1)
    };
    let start = start.max(1);
    let n = height - start + 1;
    info(
        "BlockProcessor",
        format!(
            "chain was reorganised replacing {} block{} at heights {}-{}",
            commas(n),
            if n == 1 { "" } else { "s" },
            commas(start),
            commas(height)
        ),
    );
    let new_tip = srv
        .daemon
        .vector("getblockhash", vec![vec![num(start - 1)]])
        .ok()
        .and_then(|v| v.first()?.as_str().map(str::to_string))
        .unwrap_or_else(|| synth_hash(start - 1));
    {
        let mut db = srv.db.lock().unwrap_or_else(|e| e.into_inner());
        db.height = start - 1;
        db.tip = new_tip;
        db.tx_count = estimated_tx_count(&srv.env.coin, start - 1);
    }
    srv.save_state();
    info(
        "BlockProcessor",
        format!("backed up to height {}", commas(start - 1)),
    );
    info(
        "SessionManager",
        "reorg signalled; clearing tx_hashes and merkle caches",
    );
}

fn first_caught_up(srv: &Arc<Server>) {
    let height = srv.db_height();
    info("BlockProcessor", format!("caught up to height {height}"));
    let first_sync = {
        let mut db = srv.db.lock().unwrap_or_else(|e| e.into_inner());
        let f = db.first_sync;
        db.first_sync = false;
        f
    };
    srv.save_state();
    if first_sync {
        info(
            "BlockProcessor",
            format!("{VERSION} synced to height {}", commas(height)),
        );
    }
    info("DB", "closing DBs to re-open for serving");
    if let Err(e) = open_dbs(srv, false) {
        error("BlockProcessor", format!("{}: {}", e.class, e.msg));
    }
    srv.caught_up.store(true, Ordering::SeqCst);
    // wait_for_catchup: the header merkle cache, then the mempool, then external services
    let srv = srv.clone();
    std::thread::spawn(move || {
        info("DB", "populating header merkle cache...");
        info("DB", "header merkle cache populated in 0.0s");
        info(
            "MemPool",
            "beginning processing of daemon mempool.  This can take some time...",
        );
        let t0 = Instant::now();
        refresh_mempool(&srv);
        info(
            "MemPool",
            format!("synced in {:.2}s", t0.elapsed().as_secs_f64()),
        );
        info(
            "MemPool",
            format!(
                "{} txs 0.00 MB touching 0 addresses",
                commas(srv.mempool_txs.load(Ordering::Relaxed) as i64)
            ),
        );
        info("MemPool", "compact fee histogram: []");
        serve_external(&srv);
        let mut last_status = Instant::now();
        loop {
            std::thread::sleep(srv.env.poll_mempool);
            refresh_mempool(&srv);
            if last_status.elapsed() >= Duration::from_secs(60) {
                info(
                    "MemPool",
                    format!(
                        "{} txs 0.00 MB touching 0 addresses",
                        commas(srv.mempool_txs.load(Ordering::Relaxed) as i64)
                    ),
                );
                last_status = Instant::now();
            }
        }
    });
}

/// `MemPool._refresh_hashes`, once: the daemon's mempool txids at a stable height.
fn refresh_mempool(srv: &Server) {
    loop {
        let height = srv.daemon.cached();
        let hashes = match srv.daemon.single("getrawmempool", vec![]) {
            Ok(Value::Arr(a)) => a.len(),
            Ok(_) => 0,
            Err(e) if e.code() == Some(-32601) => {
                // upstream would crash on this DaemonError; the stand-in bitcoind may lack it
                0
            }
            Err(_) => 0,
        };
        if srv.daemon.height().ok() != height {
            continue;
        }
        srv.mempool_txs.store(hashes as u64, Ordering::Relaxed);
        return;
    }
}
