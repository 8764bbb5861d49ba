//! The indexer (`Backend/Indexer.cs` ConnectNode, IndexerLoop, UpdateState;
//! `RPCClientExtensions.cs`): connect to the node, check its RPC, follow its sync state.

use super::rpc::{ChainInfo, RpcError};
use super::{dlog, Caps, Ctx, State, CAT_IDX};
use crate::bitcoin_encoding::{segwit_address, sha256};
use crate::json::{num, s, Value};
use crate::postgres as pg;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

impl Ctx {
    pub(super) fn indexer_loop(self: Arc<Self>) {
        let mut retry = 0u64;
        loop {
            match self.connect_node() {
                Ok(stream) => self.run_connection(stream),
                Err(e) => {
                    dlog(
                        "fail",
                        CAT_IDX,
                        &format!(
                            "Unhandled exception in the indexer, retrying in {retry} seconds\n{e}"
                        ),
                    );
                    std::thread::sleep(Duration::from_secs(retry));
                    retry = (retry + 5).min(60);
                }
            }
        }
    }

    /// Indexer.ConnectNode.
    fn connect_node(&self) -> Result<TcpStream, String> {
        self.set_state(State::NotStarted);
        let user_agent = format!("NBXplorer-{}", crate::sys::random_u64() as i64);
        let mut stream = self.p2p_handshake(&user_agent)?;
        let rpc = &self.rpc;
        // RPCArgs.TestRPCAsync
        dlog(
            "info",
            CAT_IDX,
            &format!("Testing RPC connection to {}", rpc.uri),
        );
        let mut time = 0u64;
        loop {
            match rpc.call("getblockchaininfo", vec![]) {
                Ok(_) => break,
                Err(RpcError::Rpc(code, m))
                    if code == -28
                        || [
                            "Loading wallet...",
                            "Loading block index...",
                            "Loading P2P addresses...",
                            "Rewinding blocks...",
                            "Verifying blocks...",
                            "Loading addresses...",
                        ]
                        .iter()
                        .any(|t| m.contains(t)) =>
                {
                    dlog(
                        "info",
                        CAT_IDX,
                        &format!("Transient error '{m}', retrying soon..."),
                    );
                    time += 1;
                    std::thread::sleep(Duration::from_millis((1000 * time).min(10_000)));
                }
                Err(RpcError::Rpc(_, m)) => {
                    dlog(
                        "fail",
                        CAT_IDX,
                        &format!("Invalid response from RPC server {m}"),
                    );
                    return Err("NBXplorer.Configuration.ConfigException".into());
                }
                Err(RpcError::Http(m)) => {
                    dlog(
                        "fail",
                        CAT_IDX,
                        &format!("Error connecting to RPC server {m}"),
                    );
                    return Err("NBXplorer.Configuration.ConfigException".into());
                }
            }
        }
        dlog("info", CAT_IDX, "RPC connection successful");
        // RPCClient.ScanRPCCapabilitiesAsync
        let version = rpc
            .call("getnetworkinfo", vec![])
            .map_err(|e| e.dotnet())?
            .get("version")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let random = || vec![s("random")];
        let probe_addr = |v: u8| {
            segwit_address(
                self.net.hrp,
                v,
                &sha256(b"archy-standin-probe")[..if v == 0 { 20 } else { 32 }],
            )
        };
        let probes = rpc
            .batch(&[
                ("scantxoutset", random()),
                ("signrawtransactionwithkey", random()),
                ("testmempoolaccept", random()),
                ("getblockfrompeer", random()),
                ("estimatesmartfee", random()),
                ("generatetoaddress", random()),
                ("validateaddress", vec![s(&probe_addr(0))]),
                ("validateaddress", vec![s(&probe_addr(1))]),
            ])
            .map_err(|e| e.dotnet())?;
        let supported = |i: usize| match probes.get(i) {
            Some(Err((code, _))) => *code != -32601 && *code != -32,
            Some(Ok(_)) => true,
            None => false,
        };
        let valid = |i: usize| match probes.get(i) {
            Some(Ok(v)) => v.get("isvalid") == Some(&Value::Bool(true)),
            Some(Err((code, _))) => *code == -3,
            None => false,
        };
        let caps = Caps {
            scan_utxo_set: supported(0),
            test_mempool_accept: supported(2),
            segwit: valid(6),
            taproot: valid(7),
        };
        if version < 150000 {
            dlog(
                "fail",
                CAT_IDX,
                &format!("The minimum node version required is 150000 (detected: {version})"),
            );
            return Err("NBXplorer.Configuration.ConfigException".into());
        }
        dlog(
            "info",
            CAT_IDX,
            &format!("Full node version detected: {version}"),
        );
        self.idx.lock().unwrap_or_else(|e| e.into_inner()).caps = Some(caps);
        // SupportTxIndex: errors mean "unknown"
        if let Ok(v) = rpc.call("getindexinfo", vec![s("txindex")]) {
            if v.get("txindex").is_some() {
                dlog("info", CAT_IDX, "Has txindex support");
            }
        }
        let peers = rpc.call("getpeerinfo", vec![]).map_err(|e| e.dotnet())?;
        let peer = match &peers {
            Value::Arr(a) => a
                .iter()
                .find(|p| p.get("subver").and_then(Value::as_str) == Some(user_agent.as_str()))
                .cloned(),
            _ => None,
        };
        let whitelisted = peer.as_ref().is_some_and(|p| {
            p.get("whitelisted") == Some(&Value::Bool(true))
                || matches!(p.get("permissions"), Some(Value::Arr(perms)) if perms.iter().any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case("noban"))))
        });
        match &peer {
            _ if whitelisted => dlog("info", CAT_IDX, "NBXplorer is correctly whitelisted by the node"),
            None => dlog("warn", CAT_IDX, "BTC: The RPC server you are connecting to, doesn't seem to be the same server as the one providing the P2P connection. This is an untested setup and may have non-obvious side effects."),
            Some(p) => {
                let addr = p.get("addr").and_then(Value::as_str).unwrap_or_default();
                let ip = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(|c| c == '[' || c == ']');
                dlog("warn", CAT_IDX, &format!("BTC: Your NBXplorer server is not whitelisted by your node, you should add \"whitelist={ip}\" to the configuration file of your node. (Or use whitebind)"));
            }
        }
        let ni = rpc.call("getnetworkinfo", vec![]).map_err(|e| e.dotnet())?;
        self.idx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .network_info = Some(ni);
        let mut wait = 10u64;
        let info = loop {
            let info = ChainInfo::from(
                &rpc.call("getblockchaininfo", vec![])
                    .map_err(|e| e.dotnet())?,
            );
            if !info.synching(&self.net) {
                break info;
            }
            self.set_state(State::CoreSynching);
            std::thread::sleep(Duration::from_millis(wait * 2));
            wait = (wait * 2).min(5_000);
        };
        self.ensure_wallet();
        let _tip = rpc.call("getblockheader", vec![s(&info.best)]);
        self.set_state(State::NBXplorerSynching);
        if let Ok(ni) = rpc.call("getnetworkinfo", vec![]) {
            self.idx
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .network_info = Some(ni);
        }
        // AskNextHeaders: from the saved locator, else the tip's parent (startheight -1)
        let locator = self.locator(&info)?;
        let mut payload = Vec::new();
        payload.extend_from_slice(&crate::p2p::PROTOCOL_VERSION.to_le_bytes());
        payload.push(locator.len() as u8);
        for h in &locator {
            let mut b: Vec<u8> = (0..32)
                .filter_map(|i| u8::from_str_radix(h.get(i * 2..i * 2 + 2)?, 16).ok())
                .collect();
            b.reverse();
            payload.extend_from_slice(&b);
        }
        payload.extend_from_slice(&[0u8; 32]);
        crate::p2p::write_msg(
            &mut stream,
            crate::p2p::magic(self.net.core),
            "getheaders",
            &payload,
        )
        .map_err(|e| format!("System.IO.IOException: {e}"))?;
        // the last indexed block: the first locator block NBXplorer has, else the locator's tip
        let known = self.last_indexed_in_db(&locator);
        let last = match known {
            Some(h) => Some(h),
            None => match rpc.call("getblockheader", vec![s(&locator[0])]) {
                Ok(v) if v.get("confirmations").and_then(Value::as_i64) != Some(-1) => {
                    v.get("height").and_then(Value::as_i64)
                }
                _ => None,
            },
        };
        self.idx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_indexed = last;
        self.update_state();
        Ok(stream)
    }

    /// RPCClientExtensions.EnsureWalletCreated, errors tolerated as upstream.
    fn ensure_wallet(&self) {
        let opts = vec![
            s(""),
            Value::Bool(false),
            Value::Bool(self.net.core != "regtest"),
            s(""),
            Value::Bool(false),
            Value::Bool(true),
            Value::Bool(true),
        ];
        let mut created = false;
        match self.rpc.call("createwallet", opts) {
            Ok(_) => {
                dlog("info", CAT_IDX, "BTC: Created RPC wallet \"\"");
                created = true;
            }
            Err(RpcError::Rpc(-32601, _)) => return,
            Err(RpcError::Rpc(-8, _)) => {
                dlog("info", CAT_IDX, "BTC: RPC wallet features are disabled because neither `btc.rpc.defaultwallet` nor `NBXPLORER_BTC_RPC_DEFAULTWALLET` is configured.");
                return;
            }
            Err(RpcError::Rpc(-4 | -35, _)) => {}
            Err(RpcError::Http(m)) if m.contains(" 401 ") || m.contains(" 403 ") => {
                dlog(
                    "info",
                    CAT_IDX,
                    "BTC: RPC wallet features are disabled due to the node's policy",
                );
                return;
            }
            Err(e) => dlog(
                "warn",
                CAT_IDX,
                &format!(
                    "BTC: Failed to create a RPC wallet with unknown error, skipping...\n{}",
                    e.dotnet()
                ),
            ),
        }
        if self
            .rpc
            .call("loadwallet", vec![s(""), Value::Bool(true)])
            .is_ok()
        {
            dlog("info", CAT_IDX, "BTC: RPC Wallet loaded");
        }
        let _ = created;
    }

    /// Repository.GetIndexProgress, else GetDefaultCurrentLocation: block hashes, newest first.
    fn locator(&self, info: &ChainInfo) -> Result<Vec<String>, String> {
        let saved = self
            .pg
            .query("SELECT encode(data_bytes, 'hex') FROM nbxv1_settings WHERE code='BTC' AND key='BlockLocator-'")
            .map_err(|e| e.dotnet())?;
        if let Some(hexs) = saved
            .first()
            .and_then(|r| r.first())
            .filter(|h| !h.is_empty())
        {
            // the stand-in stores the hashes as hex text, 64 digits each, newest first
            let l: Vec<String> = hexs
                .as_bytes()
                .chunks(64)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            if !l.is_empty() {
                return Ok(l);
            }
        }
        if self.start_height > info.headers {
            return Err(format!(
                "System.InvalidOperationException: BTC: StartHeight ({}) should not be above the current tip ({})",
                self.start_height, info.headers
            ));
        }
        let hash = if self.start_height == -1 {
            self.rpc
                .call("getbestblockhash", vec![])
                .map_err(|e| e.dotnet())?
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            self.rpc
                .call("getblockhash", vec![num(self.start_height)])
                .map_err(|e| e.dotnet())?
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let h = self
            .rpc
            .call("getblockheader", vec![s(&hash)])
            .map_err(|e| e.dotnet())?;
        let prev = h
            .get("previousblockhash")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or(hash);
        if self.start_height == -1 {
            dlog(
                "info",
                CAT_IDX,
                &format!(
                    "Current Index Progress not found, start syncing from the header's chain tip (At height: {})",
                    info.headers
                ),
            );
        } else {
            dlog(
                "info",
                CAT_IDX,
                &format!(
                    "Current Index Progress not found, start syncing at height {}",
                    self.start_height
                ),
            );
        }
        Ok(vec![prev])
    }

    fn last_indexed_in_db(&self, locator: &[String]) -> Option<i64> {
        let list: Vec<String> = locator.iter().map(|h| pg::lit(h)).collect();
        let rows = self
            .pg
            .query(&format!(
                "SELECT height FROM blks WHERE code='BTC' AND blk_id IN ({}) AND confirmed IS TRUE ORDER BY height DESC LIMIT 1",
                list.join(",")
            ))
            .ok()?;
        rows.first()?.first()?.parse().ok()
    }

    /// Indexer.UpdateState.
    fn update_state(&self) {
        let Ok(v) = self.rpc.call("getblockchaininfo", vec![]) else {
            return;
        };
        let info = ChainInfo::from(&v);
        let last = self
            .idx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_indexed;
        if info.synching(&self.net) {
            self.set_state(State::CoreSynching);
        } else if let Some(l) = last {
            let min = if self.net.core == "regtest" { 200 } else { 6 };
            self.set_state(if info.headers - l < min {
                State::Ready
            } else {
                State::NBXplorerSynching
            });
        }
    }
}
