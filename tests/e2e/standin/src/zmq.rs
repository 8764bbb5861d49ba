//! ZeroMQ's wire protocol (ZMTP 3.0, NULL mechanism), as far as bitcoind's `zmqpub*` and lnd's
//! subscriber use it: the 64-byte greeting, the READY command with the socket type, the
//! subscription a SUB socket sends as a message (`\x01` + topic), and PUB's three-part messages
//! (topic, body, 4-byte sequence). lnd's subscriber (lightninglabs/gozmq) speaks exactly this.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

fn greeting() -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3; // version 3.0
    g[12..16].copy_from_slice(b"NULL");
    g
}

fn write_frame(s: &mut TcpStream, flags: u8, body: &[u8]) -> std::io::Result<()> {
    let mut f = Vec::with_capacity(9 + body.len());
    if body.len() > 255 {
        f.push(flags | 0x02);
        f.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        f.push(flags);
        f.push(body.len() as u8);
    }
    f.extend_from_slice(body);
    s.write_all(&f)
}

/// The next frame: (flags, body).
fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut flags = [0u8; 1];
    s.read_exact(&mut flags)?;
    let len = if flags[0] & 0x02 != 0 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b)?;
        u64::from_be_bytes(b) as usize
    } else {
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        b[0] as usize
    };
    if len > 16 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "oversized frame",
        ));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok((flags[0], body))
}

fn ready(socket_type: &str) -> Vec<u8> {
    let mut b = vec![5];
    b.extend_from_slice(b"READY");
    b.push(11);
    b.extend_from_slice(b"Socket-Type");
    b.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    b.extend_from_slice(socket_type.as_bytes());
    b
}

/// The socket type in the peer's READY command.
fn peer_type(s: &mut TcpStream) -> std::io::Result<String> {
    let mut g = [0u8; 64];
    s.read_exact(&mut g)?;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    if g[0] != 0xff || g[9] != 0x7f || g[10] < 3 {
        return Err(bad("not a ZMTP 3 greeting"));
    }
    let (flags, body) = read_frame(s)?;
    if flags & 0x04 == 0 || body.get(1..6) != Some(b"READY") {
        return Err(bad("expected READY"));
    }
    let text = String::from_utf8_lossy(&body);
    Ok(["PUB", "SUB", "XPUB", "XSUB"]
        .into_iter()
        .find(|t| text.ends_with(t))
        .unwrap_or("?")
        .to_string())
}

/// A PUB socket on `listener`: every SUB peer is greeted and kept; nothing is published, as on
/// a node where no block arrives during a test.
pub fn publish(listener: TcpListener, what: String) {
    for conn in listener.incoming() {
        let Ok(mut s) = conn else { continue };
        let what = what.clone();
        std::thread::spawn(move || {
            let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            let ok = s
                .write_all(&greeting())
                .and_then(|_| peer_type(&mut s))
                .and_then(|t| {
                    write_frame(&mut s, 0x04, &ready("PUB"))?;
                    Ok(t)
                });
            match ok {
                Ok(t) => crate::log!("[zmq] {what}: {t} subscriber {peer} connected"),
                Err(e) => {
                    crate::log!("[zmq] {what}: handshake with {peer} failed: {e}");
                    return;
                }
            }
            // subscriptions, until the subscriber goes away
            while let Ok((_, body)) = read_frame(&mut s) {
                if body.first() == Some(&1) {
                    crate::log!(
                        "[zmq] {what}: {peer} subscribed to {:?}",
                        String::from_utf8_lossy(&body[1..])
                    );
                }
            }
        });
    }
}

/// A SUB socket connected to `addr` (`tcp://host:port`) and subscribed to `topic`.
pub fn subscribe(addr: &str, topic: &str, timeout: Duration) -> Result<TcpStream, String> {
    let hostport = addr
        .strip_prefix("tcp://")
        .ok_or_else(|| format!("{addr}: only tcp:// is supported"))?;
    let target = hostport
        .to_socket_addrs()
        .map_err(|e| format!("dial tcp {hostport}: lookup: {e}"))?
        .next()
        .ok_or_else(|| format!("dial tcp {hostport}: no address"))?;
    let mut s = TcpStream::connect_timeout(&target, timeout)
        .map_err(|e| format!("dial tcp {target}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(&greeting()).map_err(|e| e.to_string())?;
    write_frame(&mut s, 0x04, &ready("SUB")).map_err(|e| e.to_string())?;
    let t = peer_type(&mut s).map_err(|e| format!("{target}: {e}"))?;
    if t != "PUB" && t != "XPUB" {
        return Err(format!("{target}: peer is a {t} socket, not PUB"));
    }
    let mut sub = vec![1];
    sub.extend_from_slice(topic.as_bytes());
    write_frame(&mut s, 0, &sub).map_err(|e| e.to_string())?;
    s.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_meets_pub() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("tcp://{}", l.local_addr().unwrap());
        std::thread::spawn(move || publish(l, "rawblock".into()));
        assert!(subscribe(&addr, "rawblock", Duration::from_secs(5)).is_ok());
        assert!(subscribe("tcp://127.0.0.1:1", "rawtx", Duration::from_secs(1)).is_err());
    }
}
