//! What the .NET stand-ins (NBXplorer, BTCPay Server) share: the console logger's lines, how
//! a .NET program ends early, NBitcoin's networks, HttpClient's error texts, ASP.NET Core's
//! JSON answers and Kestrel's listeners; `config` holds StandardConfiguration.

mod config;

pub use config::{load_conf, DotnetConf};

use crate::http::{self, Request, Response};
use crate::json::Value;
use std::net::TcpListener;
use std::path::PathBuf;

const CAT_CONF: &str = "Configuration";

/// A line as the upstream console logger writes it: `info: Category:  message`.
pub fn dlog(level: &str, category: &str, msg: &str) {
    let mut head = format!("{category}: ");
    while head.len() < 18 {
        head.push(' ');
    }
    crate::log!("{level}: {head}{}", msg.replace('\n', "\n      "));
}

/// How a .NET program ends early: a ConfigException caught in Main (logged, exit 0) or an
/// unhandled exception (the runtime prints it and aborts: exit 134).
pub enum Exit {
    Config(String),
    Crash(String),
}

pub fn finish(e: Exit, category: &str) -> i32 {
    match e {
        Exit::Config(m) => {
            if !m.is_empty() {
                dlog("fail", category, &m);
            }
            0
        }
        Exit::Crash(m) => {
            crate::log!("Unhandled exception. {m}");
            134
        }
    }
}

/// What `run` returns when it returns at all: only an `Exit`.
pub enum Never {}

/// A Bitcoin network as NBitcoin and the two apps name it.
#[derive(Clone, Copy, Debug)]
pub struct Net {
    /// NBitcoin's ChainName, as status JSON and logs print it
    pub chain_name: &'static str,
    /// NBXplorerDefaultSettings.GetFolderName
    pub folder: &'static str,
    /// bitcoind's name for the chain (p2p::magic)
    pub core: &'static str,
    pub nbx_port: u16,
    pub btcpay_port: u16,
    pub rpc_port: u16,
    pub p2p_port: u16,
    pub hrp: &'static str,
    pub p2pkh: u8,
    pub p2sh: u8,
    pub xpub: [u8; 4],
}

pub const MAIN: Net = Net {
    chain_name: "Mainnet",
    folder: "Main",
    core: "main",
    nbx_port: 24444,
    btcpay_port: 23000,
    rpc_port: 8332,
    p2p_port: 8333,
    hrp: "bc",
    p2pkh: 0x00,
    p2sh: 0x05,
    xpub: [0x04, 0x88, 0xb2, 0x1e],
};

fn net_named(name: &str) -> Option<Net> {
    let test = |chain_name, folder, core, nbx_port, btcpay_port, rpc_port, p2p_port, hrp| Net {
        chain_name,
        folder,
        core,
        nbx_port,
        btcpay_port,
        rpc_port,
        p2p_port,
        hrp,
        p2pkh: 0x6f,
        p2sh: 0xc4,
        xpub: [0x04, 0x35, 0x87, 0xcf],
    };
    // NBitcoin's names and aliases (NBitcoin/Bitcoin.*.cs)
    Some(match name.to_ascii_lowercase().as_str() {
        "main" | "mainnet" | "btc-mainnet" => MAIN,
        "testnet" | "test" | "testnet3" | "btc-testnet" => test(
            "Testnet", "TestNet", "test", 24445, 23001, 18332, 18333, "tb",
        ),
        "regtest" | "reg" | "regnet" | "btc-regtest" => test(
            "Regtest", "RegTest", "regtest", 24446, 23002, 18443, 18444, "bcrt",
        ),
        "signet" | "bitcoin-signet" | "btc-signet" => test(
            "Signet", "Signet", "signet", 24447, 23001, 38332, 38333, "tb",
        ),
        "testnet4" | "test4" | "btc-testnet4" => test(
            "Testnet4", "Testnet4", "testnet4", 24447, 23001, 48332, 48333, "tb",
        ),
        _ => return None,
    })
}

/// DefaultConfiguration.GetNetworkType (both apps): `network`, else the legacy flags.
pub fn network_of(conf: &DotnetConf) -> Result<Net, Exit> {
    if let Some(n) = conf.get("network") {
        return net_named(&n)
            .ok_or_else(|| Exit::Config(format!("Invalid network parameter '{n}'")));
    }
    Ok(if conf.bool("regtest", false)? {
        net_named("regtest").unwrap_or(MAIN)
    } else if conf.bool("testnet", false)? {
        net_named("testnet").unwrap_or(MAIN)
    } else if conf.bool("signet", false)? {
        net_named("signet").unwrap_or(MAIN)
    } else {
        MAIN
    })
}

pub fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
}

/// HttpResponseMessage's ReasonPhrase, as the error texts of a failed status quote it.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        422 => "Unprocessable Entity",
        502 => "Bad Gateway",
        s => http::reason_phrase(s).unwrap_or("Error"),
    }
}

/// How .NET's HttpClient words a failure of `http::request` to `host:port`.
pub fn http_error(e: &str, hostport: &str, timeout_s: u64) -> String {
    if e.contains("Connection refused") {
        format!("Connection refused ({hostport})")
    } else if e.starts_with("resolving") {
        format!("Name or service not known ({hostport})")
    } else if e.contains("timeout") || e.contains("timed out") {
        format!("The request was canceled due to the configured HttpClient.Timeout of {timeout_s} seconds elapsing.")
    } else if e.contains("No route to host") {
        format!("No route to host ({hostport})")
    } else {
        "An error occurred while sending the request.".to_string()
    }
}

/// The .NET muxer (a runtime without an SDK) asked to run an app that is not in the working
/// directory, e.g. under another WORKDIR (wording and status 0x80008091 inferred, not verified).
pub fn missing_app(app: &str) -> i32 {
    crate::log!(
        "The command could not be loaded, possibly because:\n  * You intended to execute a .NET application:\n      The application '{app}' does not exist.\n  * You intended to execute a .NET SDK command:\n      No .NET SDKs were found."
    );
    145
}

/// An ASP.NET Core JSON answer.
pub fn json_response(status: u16, v: &Value) -> Response {
    Response::new(status, "application/json; charset=utf-8", v.compact())
}

/// Kestrel's answer to a request whose handler threw `exception` (`Type: message`): logged, a
/// 500 with an empty body.
pub fn request_failed(exception: &str) -> Response {
    dlog(
        "fail",
        "Microsoft.AspNetCore.Server.Kestrel",
        &format!("Unhandled exception while processing the request\n{exception}"),
    );
    Response::new(500, "text/plain", "")
}

/// Kestrel: every address bound (or the start fails, a crash), then "Now listening on" and a
/// thread serving each, for good.
pub fn serve<F>(binds: &[String], handler: F) -> Result<Never, Exit>
where
    F: Fn(Request) -> Response + Clone + Send + Sync + 'static,
{
    let mut listeners = Vec::new();
    for b in binds {
        match TcpListener::bind(b.as_str()) {
            Ok(l) => listeners.push((b.clone(), l)),
            Err(e) => {
                return Err(Exit::Crash(format!(
                    "System.IO.IOException: Failed to bind to address http://{b}: {}.",
                    if e.kind() == std::io::ErrorKind::AddrInUse {
                        "address already in use".to_string()
                    } else {
                        e.to_string()
                    }
                )))
            }
        }
    }
    for (b, l) in listeners {
        dlog("info", CAT_CONF, &format!("Now listening on: http://{b}"));
        let h = handler.clone();
        std::thread::spawn(move || http::serve(l, move |req| Some(h(req))));
    }
    loop {
        std::thread::park();
    }
}
