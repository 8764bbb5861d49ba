//! Sessions: aiorpcX 0.25.0's JSON-RPC over newline framing (`JSONRPCAutoDetect`,
//! `NewlineFramer`): 2.0, 1.0 or loose, batches, upstream's error codes and texts, signatures;
//! payloads encoded compactly (`json.dumps(payload, separators=(',', ':'))`). TCP sessions write
//! through ElectrumX 1.18.0's `PaddedRSTransport` (`src/electrumx/server/transport.py`): a
//! message under 1024 bytes waits until a second after the previous send (or the session's
//! start), and each is padded with spaces before its final `}`/`]` to the larger of 1024 bytes
//! and the next power of two (one message per send here: upstream may join several). Local RPC
//! sessions are not padded.

use super::local_rpc::local_rpc;
use super::methods::electrum;
use super::python::{commas, py_dumps_compact, py_fstr};
use super::server::Server;
use super::{info, BAD_REQUEST, PROTOCOL_MIN};
use crate::json::{self, num, obj, s, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(super) struct SessionInfo {
    pub(super) id: u64,
    pub(super) kind: &'static str,
    pub(super) peer: String,
    pub(super) client: Mutex<String>,
    pub(super) proto: Mutex<String>,
    pub(super) writer: Mutex<TcpStream>,
    pub(super) subscribe_headers: AtomicBool,
    pub(super) subs: Mutex<Vec<String>>,
    pub(super) recv_count: AtomicU64,
    pub(super) recv_size: AtomicU64,
    pub(super) send_count: AtomicU64,
    pub(super) send_size: AtomicU64,
    pub(super) txs_sent: AtomicU64,
    pub(super) started: Instant,
    pub(super) errors: AtomicU64,
    /// When the padded transport last sent (it starts at the session's creation).
    pub(super) last_send: Mutex<Instant>,
}

/// transport.py's MIN_PACKET_SIZE and WAIT_FOR_BUFFER_GROWTH_SECONDS.
const MIN_PACKET: usize = 1024;
const WAIT_FOR_GROWTH: Duration = Duration::from_secs(1);

/// The frame `line` padded as PaddedRSTransport pads it: spaces before its last character.
fn padded(line: &str) -> String {
    let len = line.len() + 1;
    let target = MIN_PACKET.max(1usize << (usize::BITS - len.leading_zeros()));
    let (body, last) = line.split_at(line.len().saturating_sub(1));
    format!("{body}{}{last}\n", " ".repeat(target - len))
}

impl SessionInfo {
    pub(super) fn send_line(&self, line: &str) -> bool {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let frame = if self.kind == "RPC" {
            format!("{line}\n")
        } else {
            let mut last = self.last_send.lock().unwrap_or_else(|e| e.into_inner());
            if line.len() + 1 < MIN_PACKET {
                let due = *last + WAIT_FOR_GROWTH;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            *last = Instant::now();
            padded(line)
        };
        let ok = w
            .write_all(frame.as_bytes())
            .and_then(|_| w.flush())
            .is_ok();
        self.send_count.fetch_add(1, Ordering::Relaxed);
        self.send_size
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        ok
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Unknown,
    V1,
    V2,
    Loose,
}

pub(super) struct RpcError(pub(super) i64, pub(super) String);

fn peer_string(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{}", v6.port()),
            None => format!("[{}]:{}", v6.ip(), v6.port()),
        },
        SocketAddr::V4(v4) => v4.to_string(),
    }
}

pub(super) fn session(srv: &Arc<Server>, stream: TcpStream, kind: &'static str) {
    let peer = stream
        .peer_addr()
        .map(|a| peer_string(&a))
        .unwrap_or_default();
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let id = srv.session_ids.fetch_add(1, Ordering::SeqCst);
    let class = if kind == "RPC" {
        "LocalRPC"
    } else {
        "ElectrumX"
    };
    let total = srv.sessions.lock().map_or(0, |v| v.len());
    info(
        class,
        format!("[{id}] {kind} {peer}, {} total", commas(total as i64)),
    );
    let info_ = Arc::new(SessionInfo {
        id,
        kind,
        peer: peer.clone(),
        client: Mutex::new(if kind == "RPC" {
            "RPC".into()
        } else {
            "unknown".into()
        }),
        proto: Mutex::new(if kind == "RPC" {
            "RPC".into()
        } else {
            "1.4".into()
        }),
        writer: Mutex::new(writer),
        subscribe_headers: AtomicBool::new(false),
        subs: Mutex::new(Vec::new()),
        recv_count: AtomicU64::new(0),
        recv_size: AtomicU64::new(0),
        send_count: AtomicU64::new(0),
        send_size: AtomicU64::new(0),
        txs_sent: AtomicU64::new(0),
        started: Instant::now(),
        last_send: Mutex::new(Instant::now()),
        errors: AtomicU64::new(0),
    });
    srv.sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(info_.clone());
    let _ = stream.set_read_timeout(Some(Duration::from_secs(
        srv.env.session_timeout.max(1) as u64
    )));
    let mut reader = BufReader::new(stream);
    let mut proto = Proto::Unknown;
    let mut sv_seen = false;
    let mut ptuple: Vec<i64> = PROTOCOL_MIN.to_vec();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(n) => {
                info_.recv_count.fetch_add(1, Ordering::Relaxed);
                info_.recv_size.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                info("SessionManager", format!("closing stale session ids {id}"));
                break;
            }
            Err(_) => break,
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let parsed = match json::parse(text) {
            Ok(v) => v,
            Err(_) => {
                info_.send_line(&error_msg(proto, -32700, "invalid JSON", &Value::Null));
                continue;
            }
        };
        if proto == Proto::Unknown {
            let first = match &parsed {
                Value::Arr(a) => a.first().cloned().unwrap_or(Value::Null),
                v => v.clone(),
            };
            proto = match first.get("jsonrpc").and_then(Value::as_str) {
                Some("2.0") => Proto::V2,
                Some("1.0") => Proto::V1,
                _ => Proto::Loose,
            };
        }
        let mut disconnect = false;
        let reply = match &parsed {
            Value::Arr(items) if items.is_empty() => {
                Some(error_msg(proto, -32600, "batch is empty", &Value::Null))
            }
            Value::Arr(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|it| {
                        one_request(
                            srv,
                            &info_,
                            kind,
                            proto,
                            it,
                            &mut sv_seen,
                            &mut ptuple,
                            &mut disconnect,
                        )
                    })
                    .collect();
                (!parts.is_empty()).then(|| format!("[{}]", parts.join(", ")))
            }
            Value::Obj(_) => one_request(
                srv,
                &info_,
                kind,
                proto,
                &parsed,
                &mut sv_seen,
                &mut ptuple,
                &mut disconnect,
            ),
            _ => Some(error_msg(
                proto,
                -32600,
                "request object must be a dictionary",
                &Value::Null,
            )),
        };
        if let Some(r) = reply {
            if !info_.send_line(&r) {
                break;
            }
        }
        if disconnect {
            break;
        }
    }
    let _ = info_.writer.lock().map(|w| w.shutdown(Shutdown::Both));
    srv.sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|x| x.id != id);
}

fn error_msg(proto: Proto, code: i64, message: &str, id: &Value) -> String {
    let e = obj(vec![("code", num(code)), ("message", s(message))]);
    if proto == Proto::V1 {
        py_dumps_compact(&obj(vec![
            ("result", Value::Null),
            ("error", e),
            ("id", id.clone()),
        ]))
    } else {
        py_dumps_compact(&obj(vec![
            ("jsonrpc", s("2.0")),
            ("error", e),
            ("id", id.clone()),
        ]))
    }
}

fn result_msg(proto: Proto, result: Value, id: &Value) -> String {
    if proto == Proto::V1 {
        py_dumps_compact(&obj(vec![
            ("result", result),
            ("error", Value::Null),
            ("id", id.clone()),
        ]))
    } else {
        py_dumps_compact(&obj(vec![
            ("jsonrpc", s("2.0")),
            ("result", result),
            ("id", id.clone()),
        ]))
    }
}

/// A handler's signature: parameter names and how many are required.
fn signature(kind: &str, method: &str, ptuple: &[i64]) -> Option<(&'static [&'static str], usize)> {
    if kind == "RPC" {
        return Some(match method {
            "getinfo" | "groups" | "peers" | "sessions" | "stop" => (&[], 0),
            "disconnect" | "log" => (&["session_ids"], 1),
            "add_peer" => (&["real_name"], 1),
            "daemon_url" => (&["daemon_url"], 0),
            "query" => (&["items", "limit"], 2),
            "reorg" => (&["count"], 1),
            _ => return None,
        });
    }
    Some(match method {
        "blockchain.block.header" => (&["height", "cp_height"], 1),
        "blockchain.block.headers" => (&["start_height", "count", "cp_height"], 2),
        "blockchain.estimatefee" => (&["number", "mode"], 1),
        "blockchain.headers.subscribe" | "blockchain.relayfee" | "mempool.get_fee_histogram" => {
            (&[], 0)
        }
        "blockchain.scripthash.get_balance"
        | "blockchain.scripthash.get_history"
        | "blockchain.scripthash.get_mempool"
        | "blockchain.scripthash.listunspent"
        | "blockchain.scripthash.subscribe" => (&["scripthash"], 1),
        "blockchain.scripthash.unsubscribe" if ptuple >= &[1, 4, 2][..] => (&["scripthash"], 1),
        "blockchain.transaction.broadcast" => (&["raw_tx"], 1),
        "blockchain.transaction.get" => (&["tx_hash", "verbose"], 1),
        "blockchain.transaction.get_merkle" => (&["tx_hash", "height"], 2),
        "blockchain.transaction.id_from_pos" => (&["height", "tx_pos", "merkle"], 2),
        "server.add_peer" => (&["features"], 1),
        "server.banner"
        | "server.donation_address"
        | "server.features"
        | "server.peers.subscribe"
        | "server.ping" => (&[], 0),
        "server.version" => (&["client_name", "protocol_version"], 0),
        _ => return None,
    })
}

/// `handler_invocation`: the arguments by position (None where a default applies).
fn bind_args(
    method: &str,
    params: &Value,
    names: &[&str],
    min: usize,
) -> Result<Vec<Option<Value>>, RpcError> {
    let inv = |m: String| RpcError(-32602, m);
    match params {
        Value::Arr(a) => {
            let n = a.len();
            let sfx = if n == 1 { "" } else { "s" };
            if n < min {
                return Err(inv(format!(
                    "{n} argument{sfx} passed to method \"{method}\" but it requires {min}"
                )));
            }
            if n > names.len() {
                return Err(inv(format!(
                    "{n} argument{sfx} passed to method {method} taking at most {}",
                    names.len()
                )));
            }
            Ok((0..names.len()).map(|i| a.get(i).cloned()).collect())
        }
        Value::Obj(m) => {
            let mut missing: Vec<String> = names[..min]
                .iter()
                .filter(|k| !m.iter().any(|(x, _)| x == *k))
                .map(|k| format!("\"{k}\""))
                .collect();
            if !missing.is_empty() {
                missing.sort();
                let sfx = if missing.len() == 1 { "" } else { "s" };
                return Err(inv(format!(
                    "method \"{method}\" requires parameter{sfx} {}",
                    missing.join(", ")
                )));
            }
            let mut excess: Vec<String> = m
                .iter()
                .filter(|(k, _)| !names.contains(&k.as_str()))
                .map(|(k, _)| format!("\"{k}\""))
                .collect();
            if !excess.is_empty() {
                excess.sort();
                let sfx = if excess.len() == 1 { "" } else { "s" };
                return Err(inv(format!(
                    "method \"{method}\" does not take parameter{sfx} {}",
                    excess.join(", ")
                )));
            }
            Ok(names
                .iter()
                .map(|k| m.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()))
                .collect())
        }
        other => Err(inv(format!(
            "invalid request arguments: {}",
            py_fstr(other)
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
fn one_request(
    srv: &Arc<Server>,
    sess: &Arc<SessionInfo>,
    kind: &str,
    proto: Proto,
    req: &Value,
    sv_seen: &mut bool,
    ptuple: &mut Vec<i64>,
    disconnect: &mut bool,
) -> Option<String> {
    if !matches!(req, Value::Obj(_)) {
        return Some(error_msg(
            proto,
            -32600,
            "request object must be a dictionary",
            &Value::Null,
        ));
    }
    let id = req.get("id").cloned();
    let Some(method_v) = req.get("method") else {
        // a response to us: we send no requests
        return None;
    };
    let rid = id.clone().unwrap_or(Value::Null);
    if proto == Proto::V2 && req.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some(error_msg(proto, -32600, "\"jsonrpc\" is not \"2.0\"", &rid));
    }
    if proto == Proto::V1 && id.is_none() {
        return Some(error_msg(proto, -32600, "request has no \"id\"", &rid));
    }
    let Some(method) = method_v.as_str() else {
        return Some(error_msg(proto, -32601, "method must be a string", &rid));
    };
    let params = req.get("params").cloned().unwrap_or(Value::Arr(vec![]));
    let handler = signature(kind, method, ptuple);
    let counted = if handler.is_some() {
        method
    } else {
        "invalid method"
    };
    *srv.method_counts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(counted.to_string())
        .or_insert(0) += 1;
    if kind != "RPC"
        && srv.env.drop_client_unknown
        && method != "server.version"
        && sess.client.lock().is_ok_and(|c| *c == "unknown")
    {
        info(
            "ElectrumX",
            format!("[{}] disconnecting because client is unknown", sess.id),
        );
        *disconnect = true;
        return Some(error_msg(
            proto,
            BAD_REQUEST,
            "use server.version to identify client",
            &rid,
        ));
    }
    let result = match handler {
        None => Err(RpcError(-32601, format!("unknown method \"{method}\""))),
        Some((names, min)) => match bind_args(method, &params, names, min) {
            Err(e) => Err(e),
            Ok(args) => {
                if kind == "RPC" {
                    local_rpc(srv, method, &args)
                } else {
                    electrum(srv, sess, method, &args, sv_seen, ptuple, disconnect)
                }
            }
        },
    };
    // a notification gets no answer
    id.as_ref()?;
    Some(match result {
        Ok(v) => result_msg(proto, v, &rid),
        Err(RpcError(code, msg)) => {
            sess.errors.fetch_add(1, Ordering::Relaxed);
            error_msg(proto, code, &msg, &rid)
        }
    })
}

#[cfg(test)]
mod padding_tests {
    use super::padded;

    #[test]
    fn frames_are_padded_as_the_padded_transport_pads_them() {
        let p = padded("{\"id\":1}");
        assert_eq!(p.len(), 1024);
        assert!(p.starts_with("{\"id\":1") && p.ends_with(" }\n"), "{p:?}");
        let long = format!("[{}]", "1,".repeat(600));
        assert_eq!(padded(&long).len(), 2048);
    }
}
