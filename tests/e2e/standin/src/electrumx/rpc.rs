//! `electrumx_rpc` (`src/electrumx/cli/electrumx_rpc.py` @1.18.0): argparse's command line, one JSON-RPC request to
//! the local RPC port, the answer printed as upstream prints it.

use super::python::{
    commas, formatted_time, py_dumps_compact, py_dumps_pretty, py_fstr, py_int, py_repr_str,
};
use crate::json::{self, num, obj, s, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const RPC_USAGE: &str = "usage: electrumx_rpc [-h] [-p port_num]\n                     {getinfo,groups,peers,sessions,stop,disconnect,log,add_peer,daemon_url,query,reorg}\n                     ...";
const COMMANDS: &[&str] = &[
    "getinfo",
    "groups",
    "peers",
    "sessions",
    "stop",
    "disconnect",
    "log",
    "add_peer",
    "daemon_url",
    "query",
    "reorg",
];

fn usage_error(msg: &str) -> i32 {
    eprintln!("{RPC_USAGE}\nelectrumx_rpc: error: {msg}");
    2
}

pub fn rpc(argv: &[String]) -> i32 {
    let mut port: Option<String> = None;
    let mut command: Option<String> = None;
    let mut rest: Vec<String> = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if command.is_some() {
            rest.push(a.clone());
        } else if a == "-h" || a == "--help" {
            println!("{RPC_USAGE}\n\nSend electrumx an RPC command\n\npositional arguments:\n  {{getinfo,groups,peers,sessions,stop,disconnect,log,add_peer,daemon_url,query,reorg}}\n                        sub-command help\n\noptional arguments:\n  -h, --help            show this help message and exit\n  -p port_num, --port port_num\n                        RPC port number");
            return 0;
        } else if a == "-p" || a == "--port" {
            i += 1;
            match argv.get(i) {
                Some(p) => port = Some(p.clone()),
                None => return usage_error("argument -p/--port: expected one argument"),
            }
        } else if let Some(p) = a.strip_prefix("--port=") {
            port = Some(p.to_string());
        } else if let Some(p) = a.strip_prefix("-p").filter(|p| !p.is_empty()) {
            port = Some(p.to_string());
        } else if a.starts_with('-') && a.len() > 1 {
            rest.push(a.clone());
        } else {
            command = Some(a.clone());
        }
        i += 1;
    }
    let port: i64 = match port {
        Some(p) => match py_int(&p) {
            Some(n) => n,
            None => return usage_error(&format!("argument -p/--port: invalid int value: '{p}'")),
        },
        None => match std::env::var("RPC_PORT") {
            Ok(p) => match py_int(&p) {
                Some(n) => n,
                None => {
                    eprintln!("Traceback (most recent call last):\n  (Python frames not mirrored by the archy e2e stand-in)\nValueError: invalid literal for int() with base 10: '{p}'");
                    return 1;
                }
            },
            Err(_) => 8000,
        },
    };
    let Some(method) = command else {
        if let Some(r) = rest.first() {
            return usage_error(&format!("unrecognized arguments: {r}"));
        }
        println!("error making request: (-32601, 'method must be a string')");
        return 1;
    };
    if !COMMANDS.contains(&method.as_str()) {
        let choices = COMMANDS
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return usage_error(&format!(
            "argument command: invalid choice: '{method}' (choose from {choices})"
        ));
    }
    // the sub-command's arguments, as argparse gives them to send_request
    let args: Value = match method.as_str() {
        "disconnect" | "log" => {
            if rest.is_empty() {
                return usage_error("the following arguments are required: session_ids");
            }
            obj(vec![(
                "session_ids",
                Value::Arr(rest.iter().map(|x| s(x)).collect()),
            )])
        }
        "add_peer" => match rest.as_slice() {
            [one] => obj(vec![("real_name", s(one))]),
            [] => return usage_error("the following arguments are required: real_name"),
            [_, extra, ..] => return usage_error(&format!("unrecognized arguments: {extra}")),
        },
        "daemon_url" => obj(vec![(
            "daemon_url",
            s(rest.first().map_or("", String::as_str)),
        )]),
        "reorg" => {
            let count = match rest.first() {
                None => 3,
                Some(c) => match py_int(c) {
                    Some(n) => n,
                    None => {
                        return usage_error(&format!("argument count: invalid int value: '{c}'"))
                    }
                },
            };
            obj(vec![("count", num(count))])
        }
        "query" => {
            let mut limit = 1000;
            let mut items = Vec::new();
            let mut it = rest.iter();
            while let Some(x) = it.next() {
                if x == "-l" || x == "--limit" {
                    match it.next().and_then(|v| py_int(v)) {
                        Some(n) => limit = n,
                        None => return usage_error("argument -l/--limit: expected one argument"),
                    }
                } else {
                    items.push(s(x));
                }
            }
            if items.is_empty() {
                return usage_error("the following arguments are required: items");
            }
            obj(vec![("limit", num(limit)), ("items", Value::Arr(items))])
        }
        _ => {
            if let Some(r) = rest.first() {
                return usage_error(&format!("unrecognized arguments: {r}"));
            }
            obj(vec![])
        }
    };
    let cannot = || {
        println!("cannot connect - is ElectrumX catching up, not running, or is {port} the wrong RPC port?");
        1
    };
    let Ok(port16) = u16::try_from(port) else {
        return cannot();
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = None;
    for a in ("localhost", port16)
        .to_socket_addrs()
        .map(|a| a.collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if let Ok(st) = TcpStream::connect_timeout(&a, Duration::from_secs(30)) {
            stream = Some(st);
            break;
        }
    }
    let Some(mut stream) = stream else {
        return cannot();
    };
    let req = py_dumps_compact(&obj(vec![
        ("jsonrpc", s("2.0")),
        ("method", s(&method)),
        ("id", num(0)),
        ("params", args),
    ]));
    if stream.write_all(format!("{req}\n").as_bytes()).is_err() {
        return cannot();
    }
    let _ = stream.set_read_timeout(Some(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    ));
    let mut line = String::new();
    match BufReader::new(&stream).read_line(&mut line) {
        Ok(n) if n > 0 => {}
        Ok(_) => {
            println!("error making request: ");
            return 1;
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            println!("error making request: ");
            return 1;
        }
        Err(_) => return cannot(),
    }
    let Ok(reply) = json::parse(line.trim()) else {
        println!("error making request: (-32700, 'invalid JSON')");
        return 1;
    };
    if let Some(e) = reply.get("error").filter(|e| **e != Value::Null) {
        let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
        let msg = e.get("message").and_then(Value::as_str).unwrap_or_default();
        println!("error making request: ({code}, {})", py_repr_str(msg));
        return 1;
    }
    let result = reply.get("result").cloned().unwrap_or(Value::Null);
    match method.as_str() {
        "query" => {
            if let Value::Arr(lines) = &result {
                for l in lines {
                    println!("{}", py_fstr(l));
                }
            }
        }
        "sessions" => {
            for l in sessions_lines(&result) {
                println!("{l}");
            }
        }
        "groups" => println!(
            "{:<14} {:>9} {:>8} {:>8} {:>6} {:>6} {:>8}{:>7} {:>9} {:>7} {:>9}",
            "Name",
            "Sessions",
            "Cost",
            "Retained",
            "Reqs",
            "Txs",
            "Subs",
            "Recv",
            "Recv KB",
            "Sent",
            "Sent KB"
        ),
        "peers" => println!(
            "{:<62} {:<6} {:>5} {:>5} {:<17} {:>4} {:>4} {:>8} {:>11} {:>11} {:>5} {:>20} {:<15}",
            "Host",
            "Status",
            "TCP",
            "SSL",
            "Server",
            "Min",
            "Max",
            "Pruning",
            "Last Good",
            "Last Try",
            "Tries",
            "Source",
            "IP Address"
        ),
        _ => println!("{}", py_dumps_pretty(&result)),
    }
    0
}

/// `electrumx.lib.text.sessions_lines`.
fn sessions_lines(data: &Value) -> Vec<String> {
    let mut out = vec![format!(
        "{:<6} {:<5} {:>17} {:>5} {:>7} {:>7} {:>5} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>21}",
        "ID", "Flags", "Client", "Proto", "Cost", "XCost", "Reqs", "Txs", "Subs", "Recv", "Recv KB", "Sent", "Sent KB", "Time", "Peer"
    )];
    if let Value::Arr(rows) = data {
        for r in rows {
            let Value::Arr(f) = r else { continue };
            let n = |i: usize| f.get(i).and_then(Value::as_i64).unwrap_or(0);
            let t = |i: usize| f.get(i).map(py_fstr).unwrap_or_default();
            out.push(format!(
                "{:<6} {:<5} {:>17} {:>5} {:>7} {:>7} {:>5} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9} {:>21}",
                t(0),
                t(1),
                t(3),
                t(4),
                commas(n(5)),
                commas(n(6)),
                commas(n(7)),
                commas(n(8)),
                commas(n(9)),
                commas(n(10)),
                commas(n(11) / 1024),
                commas(n(12)),
                commas(n(13) / 1024),
                formatted_time(n(14), ""),
                t(2)
            ));
        }
    }
    out
}
