//! The logger (`logger.ts`): `Mon DD HH:MM:SS [pid] PRIO: <network> [tag] msg` on stdout or
//! stderr, filtered by `STDOUT_LOG_MIN_PRIORITY`, and by UDP to syslog.

use super::config::Config;
use std::io::Write;
use std::net::UdpSocket;
use std::sync::OnceLock;

struct Logger {
    min_stdout: Option<u8>,
    network: String,
    syslog: Option<(UdpSocket, String, u8, u8)>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn priority(name: &str) -> Option<u8> {
    Some(match name {
        "emerg" => 0,
        "alert" => 1,
        "crit" => 2,
        "err" => 3,
        "warn" => 4,
        "notice" => 5,
        "info" => 6,
        "debug" => 7,
        _ => return None,
    })
}

fn facility(name: &str) -> u8 {
    match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        _ => 23,
    }
}

pub(super) fn init_logger(cfg: &Config) {
    let network = if cfg.truthy("LIGHTNING", "ENABLED") {
        if cfg.network() == "mainnet" {
            "lightning".to_string()
        } else {
            format!("{}-lightning", cfg.network())
        }
    } else if !cfg.network().is_empty() && cfg.network() != "mainnet" {
        cfg.network()
    } else {
        String::new()
    };
    let syslog = if cfg.truthy("SYSLOG", "ENABLED") {
        UdpSocket::bind("0.0.0.0:0").ok().map(|sock| {
            (
                sock,
                format!(
                    "{}:{}",
                    cfg.str("SYSLOG", "HOST"),
                    cfg.num("SYSLOG", "PORT")
                ),
                priority(&cfg.str("SYSLOG", "MIN_PRIORITY")).unwrap_or(6),
                facility(&cfg.str("SYSLOG", "FACILITY")),
            )
        })
    } else {
        None
    };
    let _ = LOGGER.set(Logger {
        min_stdout: priority(&cfg.str("MEMPOOL", "STDOUT_LOG_MIN_PRIORITY")),
        network,
        syslog,
    });
}

fn ts() -> String {
    let (_, mo, da, h, mi, se) = crate::util::utc(crate::util::unix_secs() as i64);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {da:>2} {h:02}:{mi:02}:{se:02}",
        MONTHS[(mo - 1) as usize]
    )
}

pub(super) fn log(prio: &str, msg: &str, tag: Option<&str>) {
    let Some(l) = LOGGER.get() else { return };
    let msg = msg.trim_end_matches('\n');
    let network = if l.network.is_empty() {
        String::new()
    } else {
        format!(" <{}>", l.network)
    };
    let tag = tag.map(|t| format!("[{t}] ")).unwrap_or_default();
    let p = priority(prio).unwrap_or(6);
    let pid = std::process::id();
    let upper = prio.to_uppercase();
    if let Some((sock, addr, min, fac)) = &l.syslog {
        if p <= *min {
            let line = format!(
                "<{}> mempool[{pid}]: {upper}{network} {tag}{msg}",
                u32::from(*fac) * 8 + u32::from(p)
            );
            let _ = sock.send_to(line.as_bytes(), addr.as_str());
        }
    }
    if let Some(min) = l.min_stdout {
        if p > min {
            return;
        }
    }
    let line = format!("{} [{pid}] {upper}:{network} {tag}{msg}", ts());
    if p >= 6 {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    } else {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

pub(super) fn err(msg: impl AsRef<str>) {
    log("err", msg.as_ref(), None);
}
pub(super) fn warn(msg: impl AsRef<str>) {
    log("warn", msg.as_ref(), None);
}
pub(super) fn notice(msg: impl AsRef<str>) {
    log("notice", msg.as_ref(), None);
}
pub(super) fn info(msg: impl AsRef<str>) {
    log("info", msg.as_ref(), None);
}
pub(super) fn debug(msg: impl AsRef<str>) {
    log("debug", msg.as_ref(), None);
}
