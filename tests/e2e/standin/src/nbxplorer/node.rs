//! The P2P connection to the node (NBitcoin `NBitcoin/Protocol/Node.cs`,
//! `NodeConnectionParameters.cs`): the handshake, then pings until the peer goes away.

use super::{dlog, Ctx, State, CAT_IDX};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

impl Ctx {
    pub(super) fn p2p_handshake(&self, user_agent: &str) -> Result<TcpStream, String> {
        let magic = crate::p2p::magic(self.net.core);
        let addr = self
            .node_endpoint
            .to_socket_addrs()
            .map_err(|_| {
                "System.Net.Sockets.SocketException (00000005, 0xFFFDFFFF): Name or service not known".to_string()
            })?
            .next()
            .ok_or("System.Net.Sockets.SocketException (00000005, 0xFFFDFFFF): Name or service not known")?;
        let mut st =
            TcpStream::connect_timeout(&addr, Duration::from_secs(30)).map_err(|e| {
                match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        "System.Net.Sockets.SocketException (111): Connection refused".to_string()
                    }
                    std::io::ErrorKind::TimedOut => {
                        "System.Net.Sockets.SocketException (110): Connection timed out".to_string()
                    }
                    _ => format!("System.Net.Sockets.SocketException: {e}"),
                }
            })?;
        dlog("info", CAT_IDX, "TCP Connection succeed, handshaking...");
        // NBitcoin puts no deadline on the handshake; a long one keeps a dead peer from pinning it
        let _ = st.set_read_timeout(Some(Duration::from_secs(20 * 60)));
        let closed = |e: std::io::Error| {
            format!(
                "System.IO.IOException: The peer closed the connection during the handshake ({e})"
            )
        };
        crate::p2p::write_msg(
            &mut st,
            magic,
            "version",
            &version_payload(&addr, user_agent, self.net.p2p_port),
        )
        .map_err(closed)?;
        let mut peer_version = None;
        while peer_version.is_none() {
            let (cmd, payload) = crate::p2p::read_msg(&mut st, magic).map_err(closed)?;
            if cmd == "version" {
                peer_version = Some(crate::p2p::parse_version(&payload).map_or(0, |v| v.0));
            }
        }
        if peer_version.unwrap_or(0) >= 70016 {
            crate::p2p::write_msg(&mut st, magic, "sendaddrv2", &[]).map_err(closed)?;
        }
        crate::p2p::write_msg(&mut st, magic, "verack", &[]).map_err(closed)?;
        loop {
            let (cmd, _) = crate::p2p::read_msg(&mut st, magic).map_err(closed)?;
            if cmd == "verack" {
                break;
            }
        }
        dlog("info", CAT_IDX, "Handshaked");
        crate::p2p::write_msg(&mut st, magic, "sendheaders", &[]).map_err(closed)?;
        Ok(st)
    }

    /// The connection's life after ConnectNode: ping/pong, until the peer goes away.
    pub(super) fn run_connection(&self, stream: TcpStream) {
        let magic = crate::p2p::magic(self.net.core);
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let g2 = gone.clone();
        let mut reader = stream;
        let _ = reader.set_read_timeout(None);
        let mut w2 = match writer.try_clone() {
            Ok(w) => w,
            Err(_) => return,
        };
        let t = std::thread::spawn(move || {
            let reason = loop {
                match crate::p2p::read_msg(&mut reader, magic) {
                    Ok((cmd, payload)) => {
                        if cmd == "ping"
                            && crate::p2p::write_msg(&mut w2, magic, "pong", &payload).is_err()
                        {
                            break "Socket error".to_string();
                        }
                        // headers, inv, blocks: not indexed by the stand-in
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        break "The peer has been disconnected".to_string()
                    }
                    Err(e) => break format!("{e}"),
                }
            };
            g2.store(true, std::sync::atomic::Ordering::SeqCst);
            reason
        });
        let mut since_ping = 0u64;
        while !gone.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(500));
            since_ping += 1;
            // NBitcoin's PingPongBehavior: a ping every 2 minutes
            if since_ping >= 240 {
                since_ping = 0;
                let nonce = crate::sys::random_u64().to_le_bytes();
                if crate::p2p::write_msg(&mut writer, magic, "ping", &nonce).is_err() {
                    let _ = writer.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        let reason = t.join().unwrap_or_else(|_| "unknown".into());
        dlog("info", CAT_IDX, &format!("Node disconnected ({reason})"));
        self.set_state(State::NotStarted);
    }
}

/// NodeConnectionParameters.CreateVersion: services none, relay, height 0.
fn version_payload(peer: &std::net::SocketAddr, user_agent: &str, default_port: u16) -> Vec<u8> {
    let addr = |a: Option<&std::net::SocketAddr>| -> Vec<u8> {
        let mut v = Vec::with_capacity(26);
        v.extend_from_slice(&0u64.to_le_bytes());
        let (ip, port) = match a {
            Some(std::net::SocketAddr::V4(x)) => (x.ip().to_ipv6_mapped().octets(), x.port()),
            Some(std::net::SocketAddr::V6(x)) => (x.ip().octets(), x.port()),
            None => (
                std::net::Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets(),
                default_port,
            ),
        };
        v.extend_from_slice(&ip);
        v.extend_from_slice(&port.to_be_bytes());
        v
    };
    let mut v = Vec::new();
    v.extend_from_slice(&crate::p2p::PROTOCOL_VERSION.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    v.extend_from_slice(&(crate::util::unix_secs() as i64).to_le_bytes());
    v.extend(addr(Some(peer)));
    v.extend(addr(None));
    v.extend_from_slice(&crate::sys::random_u64().to_le_bytes());
    v.push(user_agent.len() as u8);
    v.extend_from_slice(user_agent.as_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.push(1);
    v
}
