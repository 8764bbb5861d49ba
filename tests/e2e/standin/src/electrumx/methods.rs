//! The Electrum protocol 1.4–1.4.3 (the `ElectrumX` session class): its methods and their
//! arguments' checks.

use super::daemon::DaemonError;
use super::python::{commas, py_fstr, py_int, truthy};
use super::server::Server;
use super::services::Host;
use super::session::RpcError;
use super::session::SessionInfo;
use super::{
    error, info, BAD_REQUEST, DAEMON_ERROR, PROTOCOL_MAX, PROTOCOL_MIN, VERSION, VERSION_SHORT,
};
use crate::json::{num, obj, s, Value};
use crate::util::{self, unhex};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(super) fn non_negative_integer(v: &Option<Value>, default: i64) -> Result<i64, RpcError> {
    let Some(v) = v else { return Ok(default) };
    let n = match v {
        Value::Num(n) => n
            .parse::<i64>()
            .ok()
            .or_else(|| n.parse::<f64>().ok().map(|f| f.trunc() as i64)),
        Value::Str(x) => py_int(x),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    };
    match n {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(RpcError(
            BAD_REQUEST,
            format!("{} should be a non-negative integer", py_fstr(v)),
        )),
    }
}

fn scripthash_check(v: &Option<Value>) -> Result<String, RpcError> {
    let text = v.as_ref().and_then(Value::as_str).unwrap_or_default();
    if text.len() == 64 && unhex(text).is_some() {
        return Ok(text.to_string());
    }
    Err(RpcError(
        BAD_REQUEST,
        format!(
            "{} is not a valid script hash",
            v.as_ref().map_or("None".into(), py_fstr)
        ),
    ))
}

fn tx_hash_check(v: &Option<Value>) -> Result<String, RpcError> {
    let text = v.as_ref().and_then(Value::as_str).unwrap_or_default();
    if text.len() == 64 && unhex(text).is_some() {
        return Ok(text.to_string());
    }
    Err(RpcError(
        BAD_REQUEST,
        format!(
            "{} should be a transaction hash",
            v.as_ref().map_or("None".into(), py_fstr)
        ),
    ))
}

fn daemon_request<T>(r: Result<T, DaemonError>) -> Result<T, RpcError> {
    r.map_err(|e| RpcError(DAEMON_ERROR, format!("daemon error: {}", e.repr())))
}

/// `util.protocol_tuple`.
fn protocol_tuple(v: &Value) -> Vec<i64> {
    v.as_str()
        .and_then(|x| {
            x.split('.')
                .map(|p| p.trim().parse::<i64>().ok())
                .collect::<Option<Vec<i64>>>()
        })
        .unwrap_or_else(|| vec![0])
}

fn version_string(t: &[i64]) -> String {
    let mut t = t.to_vec();
    while t.len() < 2 {
        t.push(0);
    }
    t.iter().map(i64::to_string).collect::<Vec<_>>().join(".")
}

pub(super) fn electrum(
    srv: &Arc<Server>,
    sess: &Arc<SessionInfo>,
    method: &str,
    args: &[Option<Value>],
    sv_seen: &mut bool,
    ptuple: &mut Vec<i64>,
    disconnect: &mut bool,
) -> Result<Value, RpcError> {
    let arg = |i: usize| args.get(i).cloned().flatten();
    match method {
        "server.version" => {
            if *sv_seen {
                return Err(RpcError(BAD_REQUEST, "server.version already sent".into()));
            }
            *sv_seen = true;
            if let Some(name) = arg(0).filter(truthy) {
                let name = py_fstr(&name);
                *sess.client.lock().unwrap_or_else(|e| e.into_inner()) =
                    name.chars().take(17).collect();
            }
            let (cmin, cmax) = match arg(1) {
                None | Some(Value::Null) => (PROTOCOL_MIN.to_vec(), PROTOCOL_MIN.to_vec()),
                Some(Value::Arr(a)) if a.len() == 2 => {
                    (protocol_tuple(&a[0]), protocol_tuple(&a[1]))
                }
                Some(v) => (protocol_tuple(&v), protocol_tuple(&v)),
            };
            let result = if cmax.as_slice() < PROTOCOL_MAX {
                cmax.clone()
            } else {
                PROTOCOL_MAX.to_vec()
            };
            let floor = if cmin.as_slice() > PROTOCOL_MIN {
                cmin.clone()
            } else {
                PROTOCOL_MIN.to_vec()
            };
            if result < floor || result == vec![0] {
                if cmin.as_slice() > PROTOCOL_MIN {
                    info("ElectrumX", format!("[{}] client requested future protocol version {} - is your software out of date?", sess.id, version_string(&cmin)));
                }
                *disconnect = true;
                let pv = arg(1).map_or("None".to_string(), |v| py_fstr(&v));
                return Err(RpcError(
                    BAD_REQUEST,
                    format!("unsupported protocol version: {pv}"),
                ));
            }
            *ptuple = result.clone();
            *sess.proto.lock().unwrap_or_else(|e| e.into_inner()) = version_string(&result);
            Ok(Value::Arr(vec![s(VERSION), s(&version_string(&result))]))
        }
        "server.ping" => Ok(Value::Null),
        "server.banner" => {
            let mut banner = format!("You are connected to an {VERSION} server.");
            if let Some(f) = &srv.env.banner_file {
                match std::fs::read_to_string(f) {
                    Ok(text) => {
                        let ni = daemon_request(srv.daemon.getnetworkinfo())?;
                        let v = ni.get("version").and_then(Value::as_i64).unwrap_or(0);
                        let (major, minor) = (v / 1_000_000, v % 1_000_000);
                        let (minor, revision) = (minor / 10000, minor % 10000 / 100);
                        banner = text
                            .replace("$SERVER_VERSION", VERSION_SHORT)
                            .replace("$SERVER_SUBVERSION", VERSION)
                            .replace("$DAEMON_VERSION", &format!("{major}.{minor}.{revision}"))
                            .replace(
                                "$DAEMON_SUBVERSION",
                                ni.get("subversion")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default(),
                            )
                            .replace("$DONATION_ADDRESS", &srv.env.donation_address);
                    }
                    Err(e) => error(
                        "ElectrumX",
                        format!("[{}] reading banner file {f}: {e}", sess.id),
                    ),
                }
            }
            Ok(s(&banner))
        }
        "server.donation_address" => Ok(s(&srv.env.donation_address)),
        "server.features" => {
            let mut hosts: Vec<(String, Value)> = Vec::new();
            for svc in &srv.env.report_services {
                let h = match &svc.host {
                    Host::Ip(ip) => ip.to_string(),
                    Host::Name(n) => n.clone(),
                };
                let key = format!("{}_port", svc.protocol);
                match hosts.iter_mut().find(|(k, _)| *k == h) {
                    Some((_, Value::Obj(m))) => {
                        if !m.iter().any(|(k, _)| *k == key) {
                            m.push((key, num(svc.port)));
                        }
                    }
                    _ => hosts.push((h, Value::Obj(vec![(key, num(svc.port))]))),
                }
            }
            Ok(obj(vec![
                ("hosts", Value::Obj(hosts)),
                ("pruning", Value::Null),
                ("server_version", s(VERSION)),
                ("protocol_min", s("1.4")),
                ("protocol_max", s("1.4.3")),
                ("genesis_hash", s(srv.env.coin.genesis)),
                ("hash_function", s("sha256")),
                (
                    "services",
                    Value::Arr(
                        srv.env
                            .report_services
                            .iter()
                            .map(|x| s(&x.text()))
                            .collect(),
                    ),
                ),
            ]))
        }
        "server.peers.subscribe" => Ok(Value::Arr(vec![])),
        "server.add_peer" => Ok(Value::Bool(false)),
        "blockchain.headers.subscribe" => {
            sess.subscribe_headers.store(true, Ordering::Relaxed);
            if srv.hsub.lock().map_or(true, |h| h.is_none()) {
                srv.refresh_hsub();
            }
            Ok(srv
                .hsub
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or(Value::Null))
        }
        "blockchain.block.header" => {
            let height = non_negative_integer(&arg(0), 0)?;
            let cp = non_negative_integer(&arg(1), 0)?;
            let raw = srv.raw_header(height).ok_or_else(|| {
                RpcError(
                    BAD_REQUEST,
                    format!("height {} out of range", commas(height)),
                )
            })?;
            if cp != 0 {
                return Err(RpcError(
                    BAD_REQUEST,
                    "merkle proofs (cp_height) are not mirrored by the archy e2e stand-in".into(),
                ));
            }
            Ok(s(&util::hex(&raw)))
        }
        "blockchain.block.headers" => {
            let start = non_negative_integer(&arg(0), 0)?;
            let count = non_negative_integer(&arg(1), 0)?.min(2016);
            let _cp = non_negative_integer(&arg(2), 0)?;
            let db_height = srv.db_height();
            let count = count.min((db_height + 1 - start).max(0));
            let mut hex = String::new();
            for h in start..start + count {
                if let Some(raw) = srv.raw_header(h) {
                    hex.push_str(&util::hex(&raw));
                }
            }
            Ok(obj(vec![
                ("hex", s(&hex)),
                ("count", num(count)),
                ("max", num(2016)),
            ]))
        }
        "blockchain.estimatefee" => {
            let number = non_negative_integer(&arg(0), 0)?;
            let mode = arg(1);
            let mode_s = match &mode {
                None | Some(Value::Null) => None,
                Some(Value::Str(m)) if m == "CONSERVATIVE" || m == "ECONOMICAL" => Some(m.clone()),
                Some(v) => {
                    return Err(RpcError(
                        BAD_REQUEST,
                        format!("unknown estimatefee mode: {}", py_fstr(v)),
                    ))
                }
            };
            let number = match number {
                n if n <= 1 => 1,
                n if n <= 12 => n,
                25 => 25,
                n if n <= 48 => n / 2 * 2,
                n if n <= 1008 => n / 24 * 24,
                _ => 1008,
            };
            daemon_request(srv.daemon.estimatefee(number, mode_s.as_deref()))
        }
        "blockchain.relayfee" => {
            let ni = daemon_request(srv.daemon.getnetworkinfo())?;
            Ok(ni.get("relayfee").cloned().unwrap_or(Value::Null))
        }
        "blockchain.scripthash.get_balance" => {
            scripthash_check(&arg(0))?;
            Ok(obj(vec![("confirmed", num(0)), ("unconfirmed", num(0))]))
        }
        "blockchain.scripthash.get_history"
        | "blockchain.scripthash.get_mempool"
        | "blockchain.scripthash.listunspent" => {
            scripthash_check(&arg(0))?;
            Ok(Value::Arr(vec![]))
        }
        "blockchain.scripthash.subscribe" => {
            let sh = scripthash_check(&arg(0))?;
            sess.subs.lock().unwrap_or_else(|e| e.into_inner()).push(sh);
            Ok(Value::Null)
        }
        "blockchain.scripthash.unsubscribe" => {
            let sh = scripthash_check(&arg(0))?;
            let mut subs = sess.subs.lock().unwrap_or_else(|e| e.into_inner());
            let had = subs.contains(&sh);
            subs.retain(|x| *x != sh);
            Ok(Value::Bool(had))
        }
        "blockchain.transaction.get" => {
            let txid = tx_hash_check(&arg(0))?;
            let verbose = match arg(1) {
                None => false,
                Some(Value::Bool(b)) => b,
                Some(_) => {
                    return Err(RpcError(
                        BAD_REQUEST,
                        "\"verbose\" must be a boolean".into(),
                    ))
                }
            };
            daemon_request(
                srv.daemon
                    .single("getrawtransaction", vec![s(&txid), num(i64::from(verbose))]),
            )
        }
        "blockchain.transaction.broadcast" => {
            let raw = arg(0).map_or(String::new(), |v| py_fstr(&v));
            match srv.daemon.single("sendrawtransaction", vec![s(&raw)]) {
                Ok(h) => {
                    srv.txs_sent.fetch_add(1, Ordering::Relaxed);
                    sess.txs_sent.fetch_add(1, Ordering::Relaxed);
                    info(
                        "ElectrumX",
                        format!("[{}] sent tx: {}", sess.id, py_fstr(&h)),
                    );
                    Ok(h)
                }
                Err(e) => {
                    let message =
                        e.0.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                    info(
                        "ElectrumX",
                        format!("[{}] error sending transaction: {message}", sess.id),
                    );
                    Err(RpcError(
                        BAD_REQUEST,
                        format!(
                            "the transaction was rejected by network rules.\n\n{message}\n[{raw}]"
                        ),
                    ))
                }
            }
        }
        "blockchain.transaction.get_merkle" | "blockchain.transaction.id_from_pos" => {
            Err(RpcError(
                BAD_REQUEST,
                "not mirrored by the archy e2e stand-in (no transaction index)".into(),
            ))
        }
        "mempool.get_fee_histogram" => Ok(Value::Arr(vec![])),
        _ => Err(RpcError(-32601, format!("unknown method \"{method}\""))),
    }
}
