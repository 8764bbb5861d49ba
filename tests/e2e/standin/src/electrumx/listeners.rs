//! The listeners (`SessionManager.serve`, `_start_servers`): the local RPC at once, the others
//! once caught up; `ssl`, `ws` and `wss` are refused as not mirrored.

use super::env::env_get;
use super::python::commas;
use super::server::Server;
use super::services::Host;
use super::session::session;
use super::{err, error, info, terminated_abnormally};
use crate::util::os_error_text;
use std::net::{IpAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(super) fn serve_external(srv: &Arc<Server>) {
    let env = &srv.env;
    info(
        "SessionManager",
        format!("max session count: {}", commas(env.max_sessions)),
    );
    info(
        "SessionManager",
        format!("session timeout: {} seconds", commas(env.session_timeout)),
    );
    info(
        "SessionManager",
        format!("session cost hard limit {}", commas(env.cost_hard_limit)),
    );
    info(
        "SessionManager",
        format!("session cost soft limit {}", commas(env.cost_soft_limit)),
    );
    info(
        "SessionManager",
        format!("bandwidth unit cost {}", commas(env.bw_unit_cost)),
    );
    info(
        "SessionManager",
        format!("request sleep {}ms", commas(env.request_sleep)),
    );
    info(
        "SessionManager",
        format!("request timeout {}s", commas(env.request_timeout)),
    );
    info(
        "SessionManager",
        format!("initial concurrent {}", commas(env.initial_concurrent)),
    );
    info(
        "SessionManager",
        format!("max response size {} bytes", commas(env.max_send)),
    );
    for svc in &env.report_services {
        info(
            "SessionManager",
            format!("advertising service {}", svc.text()),
        );
    }
    srv.refresh_hsub();
    start_servers(srv, false);
    srv.serving.store(true, Ordering::SeqCst);
    info(
        "PeerManager",
        format!("peer discovery: {}", env.peer_discovery),
    );
    if env.peer_discovery != "ON" {
        info("PeerManager", "peer discovery is disabled");
    } else {
        info(
            "PeerManager",
            format!(
                "announce ourself: {}",
                if env.peer_announce { "True" } else { "False" }
            ),
        );
        info("PeerManager", "beginning peer discovery...");
        info(
            "PeerManager",
            "(archy e2e stand-in: peer discovery is not mirrored; no peer is contacted)",
        );
    }
}

/// `_start_servers`: rpc ones, or the others.
pub(super) fn start_servers(srv: &Arc<Server>, rpc: bool) {
    for svc in srv
        .env
        .services
        .iter()
        .filter(|s| (s.protocol == "rpc") == rpc)
    {
        let kind = svc.protocol.to_uppercase();
        if matches!(svc.protocol.as_str(), "ssl" | "ws" | "wss") {
            if svc.protocol != "ws" {
                let cert = env_get("SSL_CERTFILE").unwrap_or_default();
                let key = env_get("SSL_KEYFILE").unwrap_or_default();
                for f in [&cert, &key] {
                    if std::fs::metadata(f).is_err() {
                        terminated_abnormally(&err(
                            "FileNotFoundError",
                            "[Errno 2] No such file or directory",
                        ));
                        std::process::exit(0);
                    }
                }
            }
            error("SessionManager", format!("{kind} server failed to listen on {}: not mirrored by the archy e2e stand-in (no TLS or WebSocket)", svc.address()));
            continue;
        }
        let binds: Vec<String> = match &svc.host {
            Host::Name(n) if n == "all_interfaces" => vec![
                format!("[::]:{}", svc.port),
                format!("0.0.0.0:{}", svc.port),
            ],
            Host::Name(n) => match (n.as_str(), svc.port).to_socket_addrs() {
                Ok(a) => a.map(|a| a.to_string()).collect(),
                Err(e) => {
                    error(
                        "SessionManager",
                        format!(
                            "{kind} server failed to listen on {}: [Errno -2] {e}",
                            svc.address()
                        ),
                    );
                    continue;
                }
            },
            Host::Ip(IpAddr::V6(ip)) => vec![format!("[{ip}]:{}", svc.port)],
            Host::Ip(ip) => vec![format!("{ip}:{}", svc.port)],
        };
        let mut listeners = Vec::new();
        let mut last_err = None;
        for b in &binds {
            match TcpListener::bind(b.as_str()) {
                Ok(l) => {
                    listeners.push(l);
                    // [::] is dual-stack on Linux: 0.0.0.0 then fails, and is not needed
                    if b.starts_with("[::]") {
                        break;
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        if listeners.is_empty() {
            let errno = last_err
                .as_ref()
                .and_then(std::io::Error::raw_os_error)
                .map_or(String::new(), |n| n.to_string());
            let text = last_err.as_ref().map(os_error_text).unwrap_or_default();
            error(
                "SessionManager",
                format!(
                    "{kind} server failed to listen on {}: [Errno {errno}] {text}",
                    svc.address()
                ),
            );
            continue;
        }
        info(
            "SessionManager",
            format!("{kind} server listening on {}", svc.address()),
        );
        for l in listeners {
            let srv = srv.clone();
            let kind: &'static str = if rpc { "RPC" } else { "TCP" };
            std::thread::spawn(move || {
                for conn in l.incoming() {
                    let Ok(stream) = conn else { continue };
                    let srv = srv.clone();
                    std::thread::spawn(move || session(&srv, stream, kind));
                }
            });
        }
    }
}
