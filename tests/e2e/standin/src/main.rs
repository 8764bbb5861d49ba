//! Stand-ins for the programs archy's catalog images run, small enough to build in seconds and
//! faithful where archy depends on them: config files, credentials, exit codes, signals, the
//! RPC answers health checks look at. One binary; argv[0] picks the program.

mod bitcoin;
mod bitcoin_encoding;
mod btcpay;
mod chain;
mod conf;
mod dotnet;
mod electrumx;
mod fedimint;
mod filebrowser;
mod gosu;
mod http;
mod json;
mod lnd;
mod mempool;
mod nbxplorer;
mod p2p;
mod postgres;
mod sys;
mod tls;
mod util;
mod zmq;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let mut name = args
        .first()
        .map(|a| {
            Path::new(a)
                .file_name()
                .map_or(a.clone(), |f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    // `standin PROGRAM ARGS...` works too, for testing outside an image
    if name == "standin" && args.len() > 1 {
        args.remove(0);
        name = args[0].clone();
    }
    let rest = args.get(1..).unwrap_or_default().to_vec();
    let code = match name.as_str() {
        "bitcoind" => bitcoin::bitcoind(&rest),
        "bitcoin-cli" => bitcoin::cli(&rest),
        "lnd" => lnd::lnd(&rest),
        "lncli" => lnd::lncli(&rest),
        "gosu" => gosu::gosu(&rest),
        "filebrowser" => filebrowser::filebrowser(&rest),
        "fedimintd" => fedimint::fedimintd(&rest),
        "electrumx_server" => electrumx::server(&rest),
        "electrumx_rpc" => electrumx::rpc(&rest),
        // the .NET images run `dotnet <App>.dll`, the mempool backend `node <script>`
        "dotnet" => {
            match rest.first().map(String::as_str) {
                Some("NBXplorer.dll") => nbxplorer::nbxplorer(&rest[1..]),
                Some("BTCPayServer.dll") => btcpay::btcpay(&rest[1..]),
                other => {
                    eprintln!("dotnet: the stand-in runs NBXplorer.dll and BTCPayServer.dll, not {other:?}");
                    1
                }
            }
        }
        "node" => mempool::node(&rest),
        _ => {
            eprintln!("standin: unknown program {name:?} (bitcoind, bitcoin-cli, lnd, lncli, gosu, filebrowser, fedimintd, electrumx_server, electrumx_rpc, dotnet, node)");
            2
        }
    };
    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))
}
