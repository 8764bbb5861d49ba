//! Bitcoin's P2P protocol, as far as the stand-ins need it: message framing (network magic,
//! command, length, double-SHA256 checksum), the version/verack handshake, ping/pong, and an
//! empty `headers` answer to `getheaders`. bitcoind's side listens (`listen`, `port`, `bind` from
//! its config) and records its peers for `getpeerinfo`, with the `noban` permission for
//! addresses `whitelist=[noban@]<net>` names (Core's net_permissions).

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const PROTOCOL_VERSION: i32 = 70016;

/// The network magic of a chain (`main`, `test`, `testnet4`, `signet`, `regtest`).
pub fn magic(chain: &str) -> [u8; 4] {
    match chain {
        "test" => [0x0b, 0x11, 0x09, 0x07],
        "testnet4" => [0x1c, 0x16, 0x3f, 0x28],
        "signet" => [0x0a, 0x03, 0xcf, 0x40],
        "regtest" => [0xfa, 0xbf, 0xb5, 0xda],
        _ => [0xf9, 0xbe, 0xb4, 0xd9],
    }
}

pub fn default_port(chain: &str) -> u16 {
    match chain {
        "test" => 18333,
        "testnet4" => 48333,
        "signet" => 38333,
        "regtest" => 18444,
        _ => 8333,
    }
}

fn checksum(payload: &[u8]) -> [u8; 4] {
    let h = Sha256::digest(Sha256::digest(payload));
    [h[0], h[1], h[2], h[3]]
}

pub fn write_msg(
    s: &mut TcpStream,
    magic: [u8; 4],
    command: &str,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut m = Vec::with_capacity(24 + payload.len());
    m.extend_from_slice(&magic);
    let mut cmd = [0u8; 12];
    cmd[..command.len().min(12)].copy_from_slice(&command.as_bytes()[..command.len().min(12)]);
    m.extend_from_slice(&cmd);
    m.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    m.extend_from_slice(&checksum(payload));
    m.extend_from_slice(payload);
    s.write_all(&m)
}

/// The next message: (command, payload). A wrong magic or checksum is an error, as for Core.
pub fn read_msg(s: &mut TcpStream, magic: [u8; 4]) -> std::io::Result<(String, Vec<u8>)> {
    let mut head = [0u8; 24];
    s.read_exact(&mut head)?;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    if head[..4] != magic {
        return Err(bad("wrong network magic"));
    }
    let cmd: String = head[4..16]
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let len = u32::from_le_bytes([head[16], head[17], head[18], head[19]]) as usize;
    if len > 4 << 20 {
        return Err(bad("oversized message"));
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    if checksum(&payload) != head[20..24] {
        return Err(bad("bad checksum"));
    }
    Ok((cmd, payload))
}

fn net_addr(a: Option<SocketAddr>) -> Vec<u8> {
    let mut v = Vec::with_capacity(26);
    v.extend_from_slice(&1u64.to_le_bytes());
    let (ip, port) = match a {
        Some(SocketAddr::V4(x)) => (x.ip().to_ipv6_mapped().octets(), x.port()),
        Some(SocketAddr::V6(x)) => (x.ip().octets(), x.port()),
        None => ([0u8; 16], 0),
    };
    v.extend_from_slice(&ip);
    v.extend_from_slice(&port.to_be_bytes());
    v
}

pub fn version_payload(peer: Option<SocketAddr>, user_agent: &str, start_height: i32) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let mut v = Vec::new();
    v.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    v.extend_from_slice(&0x409u64.to_le_bytes()); // NODE_NETWORK | NODE_WITNESS | NODE_NETWORK_LIMITED
    v.extend_from_slice(&now.to_le_bytes());
    v.extend(net_addr(peer));
    v.extend(net_addr(None));
    v.extend_from_slice(
        &u64::from_str_radix(&crate::sys::random_hex(8), 16)
            .unwrap_or(1)
            .to_le_bytes(),
    );
    v.push(user_agent.len() as u8);
    v.extend_from_slice(user_agent.as_bytes());
    v.extend_from_slice(&start_height.to_le_bytes());
    v.push(1);
    v
}

/// The user agent and start height in a `version` payload.
pub fn parse_version(p: &[u8]) -> Option<(i32, String, i32)> {
    let version = i32::from_le_bytes(p.get(0..4)?.try_into().ok()?);
    let ua_len = *p.get(80)? as usize;
    let ua = String::from_utf8_lossy(p.get(81..81 + ua_len)?).into_owned();
    let h = i32::from_le_bytes(p.get(81 + ua_len..85 + ua_len)?.try_into().ok()?);
    Some((version, ua, h))
}

/// A connected peer, as `getpeerinfo` shows it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub id: u64,
    pub addr: SocketAddr,
    pub subver: String,
    pub start_height: i32,
    pub noban: bool,
}

pub type Peers = Arc<Mutex<Vec<Peer>>>;

/// Serve inbound peers on `listener` forever: the handshake, then ping/pong and empty headers.
/// `noban` says whether a peer's address has the noban permission; `height` the current tip.
pub fn serve(
    listener: TcpListener,
    magic: [u8; 4],
    peers: Peers,
    noban: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
    height: Arc<dyn Fn() -> u64 + Send + Sync>,
) {
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        let Ok(mut s) = conn else { continue };
        let Ok(addr) = s.peer_addr() else { continue };
        next_id += 1;
        let (id, peers, noban, height) = (next_id, peers.clone(), noban.clone(), height.clone());
        std::thread::spawn(move || {
            let _ = s.set_read_timeout(Some(Duration::from_secs(20 * 60)));
            let mut registered = false;
            while let Ok((cmd, payload)) = read_msg(&mut s, magic) {
                let ok = match cmd.as_str() {
                    "version" => {
                        let (_, ua, h) = parse_version(&payload).unwrap_or((0, String::new(), 0));
                        let nb = noban(addr.ip());
                        crate::log!("[net] New inbound peer connected: peer={id}, version: {PROTOCOL_VERSION}, us={ua}, noban={nb}");
                        peers.lock().unwrap_or_else(|e| e.into_inner()).push(Peer {
                            id,
                            addr,
                            subver: ua,
                            start_height: h,
                            noban: nb,
                        });
                        registered = true;
                        let mine = version_payload(
                            Some(addr),
                            &format!("/Satoshi:{}/", crate::bitcoin::VERSION),
                            height() as i32,
                        );
                        write_msg(&mut s, magic, "version", &mine)
                            .and_then(|_| write_msg(&mut s, magic, "verack", &[]))
                    }
                    "ping" => write_msg(&mut s, magic, "pong", &payload),
                    // no new headers to announce: a count of zero
                    "getheaders" => write_msg(&mut s, magic, "headers", &[0]),
                    _ => Ok(()),
                };
                if ok.is_err() {
                    break;
                }
            }
            if registered {
                peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|p| p.id != id);
                crate::log!("[net] disconnecting peer={id}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_over_loopback() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let peers: Peers = Arc::new(Mutex::new(Vec::new()));
        let p = peers.clone();
        std::thread::spawn(move || {
            serve(
                l,
                magic("main"),
                p,
                Arc::new(|_| true),
                Arc::new(|| 900_000),
            )
        });
        let mut s = TcpStream::connect(addr).unwrap();
        write_msg(
            &mut s,
            magic("main"),
            "version",
            &version_payload(Some(addr), "/NBXplorer-7/", 0),
        )
        .unwrap();
        let (cmd, payload) = read_msg(&mut s, magic("main")).unwrap();
        assert_eq!(cmd, "version");
        let (_, ua, h) = parse_version(&payload).unwrap();
        assert!(ua.starts_with("/Satoshi:"), "{ua}");
        assert_eq!(h, 900_000);
        assert_eq!(read_msg(&mut s, magic("main")).unwrap().0, "verack");
        std::thread::sleep(Duration::from_millis(100));
        let got = peers.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].subver, "/NBXplorer-7/");
        // another network's magic is refused
        let mut s = TcpStream::connect(addr).unwrap();
        write_msg(
            &mut s,
            magic("regtest"),
            "version",
            &version_payload(Some(addr), "x", 0),
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert!(read_msg(&mut s, magic("regtest")).is_err());
    }
}
