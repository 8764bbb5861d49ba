//! lncli as the stand-in has it: `state`, `getinfo`, against --rpcserver (default
//! localhost:10009) over TLS with the lnd dir's tls.cert (--tlscertpath), the macaroon from
//! `<lnddir>/data/chain/bitcoin/<network>/admin.macaroon` (--network, default mainnet;
//! --macaroonpath) for anything but `state` (cmd/commands/main.go, cmd_state.go).

use super::listen_addr;
use crate::conf::Args;
use std::time::Duration;

pub fn lncli(argv: &[String]) -> i32 {
    let args = Args::parse_anywhere(
        argv,
        &[
            "rpcserver",
            "network",
            "n",
            "lnddir",
            "macaroonpath",
            "tlscertpath",
            "chain",
            "c",
        ],
    );
    let server = listen_addr(args.get("rpcserver").unwrap_or("localhost:10009"), 10009);
    let network = args
        .get("network")
        .or(args.get("n"))
        .unwrap_or("mainnet")
        .to_string();
    if ![
        "mainnet", "testnet", "testnet4", "regtest", "simnet", "signet",
    ]
    .contains(&network.as_str())
    {
        eprintln!("[lncli] unknown network: {network}");
        return 1;
    }
    let path = match args.positional.first().map(String::as_str) {
        Some("state") => "/v1/state",
        Some("getinfo") => "/v1/getinfo",
        Some(other) => {
            eprintln!("[lncli] the stand-in knows only `state` and `getinfo`, not {other:?}");
            return 1;
        }
        None => {
            eprintln!("[lncli] usage: lncli [--rpcserver=HOST:PORT] state|getinfo");
            return 1;
        }
    };
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let lnddir = args
        .get("lnddir")
        .map_or(format!("{home}/.lnd"), str::to_string);
    let cert_path = args
        .get("tlscertpath")
        .map_or(format!("{lnddir}/tls.cert"), str::to_string);
    let cert = match std::fs::read_to_string(&cert_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("[lncli] could not load TLS cert file: open {cert_path}: {e}");
            return 1;
        }
    };
    let mut headers = Vec::new();
    if path != "/v1/state" {
        let mac_path = args.get("macaroonpath").map_or(
            format!("{lnddir}/data/chain/bitcoin/{network}/admin.macaroon"),
            str::to_string,
        );
        match std::fs::read(&mac_path) {
            Ok(m) => headers.push((
                "Grpc-Metadata-macaroon",
                m.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            )),
            Err(e) => {
                eprintln!("[lncli] unable to read macaroon path (check the network setting!): open {mac_path}: {e}");
                return 1;
            }
        }
    }
    match crate::tls::request_with(
        &server,
        &cert,
        "GET",
        path,
        &headers,
        "",
        Duration::from_secs(10),
    ) {
        Ok(r) if r.status == 200 => match crate::json::parse(r.body.trim()) {
            Ok(v) => {
                println!("{}", v.pretty(4));
                0
            }
            Err(e) => {
                eprintln!("[lncli] rpc error: malformed reply: {e}");
                1
            }
        },
        Ok(r) => {
            let v = crate::json::parse(r.body.trim()).ok();
            let msg = v
                .as_ref()
                .and_then(|v| v.get("message"))
                .and_then(|m| m.as_str().map(str::to_string));
            eprintln!(
                "[lncli] rpc error: code = Unknown desc = {}",
                msg.unwrap_or_else(|| format!("HTTP {}", r.status))
            );
            1
        }
        Err(e) => {
            eprintln!(
                "[lncli] rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp {server}: {e}\""
            );
            1
        }
    }
}
