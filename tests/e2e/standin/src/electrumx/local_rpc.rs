//! The local RPC (`LocalRPC`, `SessionManager.rpc_*`) that `electrumx_rpc` talks to: getinfo,
//! sessions, stop, reorg, daemon_url, query and the rest.

use super::daemon::logged_url;
use super::methods::non_negative_integer;
use super::python::{commas, py_fstr, py_repr_str};
use super::server::Server;
use super::session::RpcError;
use super::{info, BAD_REQUEST};
use crate::json::{num, s, Value};
use crate::util::unhex;
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn local_rpc(
    srv: &Arc<Server>,
    method: &str,
    args: &[Option<Value>],
) -> Result<Value, RpcError> {
    let arg = |i: usize| args.get(i).cloned().flatten();
    match method {
        "getinfo" => Ok(srv.info_value()),
        "stop" => {
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                info("Controller", "shutting down");
                info("BlockProcessor", "flushing to DB for a clean shutdown...");
                info("Controller", "shutdown complete");
                info("electrumx", "ElectrumX server terminated normally");
                std::process::exit(0);
            });
            Ok(s("stopping"))
        }
        "groups" | "peers" => Ok(Value::Arr(vec![])),
        "sessions" => {
            let list = srv.sessions.lock().unwrap_or_else(|e| e.into_inner());
            Ok(Value::Arr(
                list.iter()
                    .map(|x| {
                        Value::Arr(vec![
                            num(x.id),
                            s(&format!("{}10", &x.kind[..1])),
                            s(&x.peer),
                            s(&x.client.lock().map(|c| c.clone()).unwrap_or_default()),
                            s(&x.proto.lock().map(|c| c.clone()).unwrap_or_default()),
                            num(0),
                            num(0),
                            num(0),
                            num(x.txs_sent.load(Ordering::Relaxed)),
                            num(x.subs.lock().map_or(0, |v| v.len())),
                            num(x.recv_count.load(Ordering::Relaxed)),
                            num(x.recv_size.load(Ordering::Relaxed)),
                            num(x.send_count.load(Ordering::Relaxed)),
                            num(x.send_size.load(Ordering::Relaxed)),
                            num(x.started.elapsed().as_secs()),
                        ])
                    })
                    .collect(),
            ))
        }
        "reorg" => {
            let count = non_negative_integer(&arg(0), 3)?;
            if !srv.caught_up.load(Ordering::SeqCst) {
                return Err(RpcError(
                    BAD_REQUEST,
                    "still catching up with daemon".into(),
                ));
            }
            srv.reorg_count.store(count, Ordering::SeqCst);
            Ok(s(&format!("scheduled a reorg of {} blocks", commas(count))))
        }
        "daemon_url" => {
            let url = arg(0).map_or(String::new(), |v| py_fstr(&v));
            let url = if url.is_empty() {
                srv.env.daemon_url.clone()
            } else {
                url
            };
            srv.daemon.set_url(&srv.env.coin, &url).map_err(|e| {
                RpcError(
                    BAD_REQUEST,
                    format!(
                        "an error occured: {}({})",
                        e.class.rsplit('.').next().unwrap_or_default(),
                        py_repr_str(&e.msg)
                    ),
                )
            })?;
            Ok(s(&format!(
                "now using daemon at {}",
                logged_url(&srv.daemon.current_url())
            )))
        }
        "query" => {
            let mut lines = Vec::new();
            if let Some(Value::Arr(items)) = arg(0) {
                for item in items {
                    let t = py_fstr(&item);
                    if unhex(&t).is_some() {
                        lines.push(s(&format!("Script: {t}")));
                    } else {
                        lines.push(s(&format!("Address: {t}")));
                    }
                    lines.push(s("No history found"));
                    lines.push(s("No UTXOs found"));
                    lines.push(s(&format!("Balance: 0.000000 {}", srv.env.coin.shortname)));
                }
            }
            Ok(Value::Arr(lines))
        }
        "log" | "disconnect" => {
            let ids: Vec<String> = match arg(0) {
                Some(Value::Arr(a)) => a.iter().map(py_fstr).collect(),
                _ => vec![],
            };
            let mut out = Vec::new();
            let list = srv.sessions.lock().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                match list.iter().find(|x| x.id.to_string() == id) {
                    Some(x) => {
                        if method == "disconnect" {
                            let _ = x.writer.lock().map(|w| w.shutdown(Shutdown::Both));
                            out.push(s(&format!("disconnected {id}")));
                        } else {
                            out.push(s(&format!("logging {id}")));
                        }
                    }
                    None => out.push(s(&format!("unknown: {id}"))),
                }
            }
            Ok(Value::Arr(out))
        }
        "add_peer" => Ok(s(&format!(
            "peer '{}' added",
            arg(0).map_or(String::new(), |v| py_fstr(&v))
        ))),
        _ => Err(RpcError(-32601, format!("unknown method \"{method}\""))),
    }
}
