//! Services as aiorpcX 0.18.7 (util.py `Service`, `NetAddress`) and electrumx env.py parse them:
//! `SERVICES` and `REPORT_SERVICES`.

use super::{err, PyErr, SERVICE_ERROR};
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Host {
    Ip(IpAddr),
    Name(String),
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Service {
    pub(super) protocol: String,
    pub(super) host: Host,
    pub(super) port: u16,
}

impl Service {
    pub(super) fn address(&self) -> String {
        match &self.host {
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]:{}", self.port),
            Host::Ip(ip) => format!("{ip}:{}", self.port),
            Host::Name(n) => format!("{n}:{}", self.port),
        }
    }

    pub(super) fn text(&self) -> String {
        format!("{}://{}", self.protocol, self.address())
    }
}

fn is_valid_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.is_empty() || h.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = h.split('.').collect();
    if labels
        .last()
        .is_some_and(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    labels.iter().all(|l| {
        let b = l.as_bytes();
        let edge = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let mid = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        !b.is_empty()
            && b.len() <= 63
            && edge(b[0])
            && edge(b[b.len() - 1])
            && b.iter().all(|&c| mid(c))
    })
}

fn classify_host(h: &str) -> Result<Host, String> {
    if is_valid_hostname(h) {
        return Ok(Host::Name(h.to_string()));
    }
    h.parse::<IpAddr>()
        .map(Host::Ip)
        .map_err(|_| format!("'{h}' does not appear to be an IPv4 or IPv6 address"))
}

fn validate_port(p: &str) -> Result<u16, String> {
    if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(n) = p.parse::<u32>() {
            if n > 0 && n <= 65535 {
                return Ok(n as u16);
            }
            return Err(format!("invalid port: {n}"));
        }
    }
    Err(format!("invalid port: {p}"))
}

fn split_address(a: &str) -> (String, String) {
    if let Some(r) = a.strip_prefix('[') {
        if let Some(end) = r.find(']') {
            if r.len() == end + 1 {
                return (r[..end].to_string(), String::new());
            }
            if r.as_bytes()[end + 1] == b':' {
                return (r[..end].to_string(), r[end + 2..].to_string());
            }
        }
    }
    match a.find(':') {
        None => (a.to_string(), String::new()),
        Some(c) => (a[..c].to_string(), a[c + 1..].to_string()),
    }
}

const KNOWN_PROTOCOLS: &[&str] = &["ssl", "tcp", "ws", "wss", "rpc"];

/// Service.from_string with env.py's default_part (or none, for REPORT_SERVICES).
fn parse_service(text: &str, with_defaults: bool) -> Result<Service, String> {
    let defaults = |protocol: &str| -> (Option<&'static str>, Option<&'static str>) {
        match protocol {
            "rpc" => (Some("localhost"), Some("8000")),
            p if KNOWN_PROTOCOLS.contains(&p) => (Some("all_interfaces"), None),
            _ => (None, None),
        }
    };
    let (protocol, address) = match text.split_once("://") {
        Some((p, a)) => (p.to_string(), a.to_string()),
        None => {
            let (h, p) = defaults(text);
            if with_defaults && h.is_some() && p.is_some() {
                (text.to_string(), String::new())
            } else {
                return Err(format!("invalid service string: {text}"));
            }
        }
    };
    let (mut host, mut port) = split_address(&address);
    if with_defaults {
        let (dh, dp) = defaults(&protocol.to_lowercase());
        if host.is_empty() {
            host = dh.unwrap_or_default().to_string();
        }
        if port.is_empty() {
            port = dp.unwrap_or_default().to_string();
        }
        if host.is_empty() || port.is_empty() {
            return Err(format!("invalid address string: {address}"));
        }
    }
    let host = classify_host(&host)?;
    let port = validate_port(&port)?;
    let valid_protocol = {
        let b = protocol.as_bytes();
        b.len() >= 2
            && b[0].is_ascii_alphabetic()
            && b[1..]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || (b'+'..=b'.').contains(&c))
    };
    if !valid_protocol {
        return Err(format!("invalid protocol: {protocol}"));
    }
    Ok(Service {
        protocol: protocol.to_lowercase(),
        host,
        port,
    })
}

pub(super) fn parse_services(text: &str, with_defaults: bool) -> Result<Vec<Service>, PyErr> {
    let mut out: Vec<Service> = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            continue;
        }
        let svc = parse_service(item, with_defaults)
            .map_err(|e| err(SERVICE_ERROR, format!("\"{item}\" invalid: {e}")))?;
        if !KNOWN_PROTOCOLS.contains(&svc.protocol.as_str()) {
            return Err(err(
                SERVICE_ERROR,
                format!("\"{item}\" invalid: unknown protocol"),
            ));
        }
        out.push(svc);
    }
    for (i, a) in out.iter().enumerate() {
        if out
            .iter()
            .skip(i + 1)
            .any(|b| b.host == a.host && b.port == a.port)
        {
            return Err(err(
                SERVICE_ERROR,
                format!("address {} has multiple services", a.address()),
            ));
        }
    }
    Ok(out)
}

pub(super) fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || seg[0] == 0x2001 && seg[1] == 0xdb8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_as_upstream() {
        // "rpc" alone is localhost:8000, another address than 127.0.0.1:8000
        assert_eq!(
            parse_services("tcp://:50001,rpc://127.0.0.1:8000,rpc", true).unwrap()[2].address(),
            "localhost:8000"
        );
        let v = parse_services("tcp://:50001,rpc://127.0.0.1:8000", true).unwrap();
        assert_eq!(v[0].address(), "all_interfaces:50001");
        assert_eq!(v[1].address(), "127.0.0.1:8000");
        assert_eq!(
            parse_services("rpc://", true).unwrap()[0].address(),
            "localhost:8000"
        );
        assert_eq!(
            parse_services("tcp://", true).unwrap_err().msg,
            "\"tcp://\" invalid: invalid address string: "
        );
        assert_eq!(
            parse_services("foo://:1", true).unwrap_err().msg,
            "\"foo://:1\" invalid: invalid address string: :1"
        );
        assert_eq!(
            parse_services("tcp://:50001,tcp://:50001", true)
                .unwrap_err()
                .msg,
            "address all_interfaces:50001 has multiple services"
        );
        assert_eq!(
            parse_services("tcp://:0", true).unwrap_err().msg,
            "\"tcp://:0\" invalid: invalid port: 0"
        );
    }
}
