//! File Browser (docker.io/filebrowser/filebrowser:v2.63.23), as archy and its peers see it.
//! Each behaviour is upstream's, read in filebrowser/filebrowser at tag v2.63.23 (e8a388f8):
//!
//! - Options (cmd/root.go `init`, `addServerFlags`): `-c/--config`, `-d/--database`
//!   (./filebrowser.db), `-a/--address` (127.0.0.1), `-p/--port` (8080), `-r/--root` (.),
//!   `-l/--log` (stdout), `-b/--baseURL`, `--username` (admin), `--password` ("hashed password
//!   for the first user when using quick setup"), `--noauth`, `--tokenExpirationTime` (2h), the
//!   other server flags accepted; the dashed names of `flagNamesMigrations` are renamed with
//!   upstream's deprecation notice. An unknown flag is cobra's "Error: unknown flag: --x", exit 1
//!   (main.go). Subcommands: `hash <password>` (cmd/hash.go, bcrypt cost 10), `version`
//!   (cmd/version.go), `users update <id|name> -p <password>` (cmd/users_update.go: validated
//!   against the minimum length, 12, then bcrypt-hashed).
//! - Values (cmd/utils.go `initViper`; spf13/viper v1.21.0 viper.go `find`): a flag given, else
//!   a non-empty `FB_<UPPER_SNAKE>` variable (FB_PORT, FB_BASE_URL, ...; never FB_CONFIG), else
//!   the config file's key (case-insensitive), else the database's saved value, else the flag's
//!   default. `--config FILE` names the file; without it `.filebrowser.json` is looked for in
//!   `.`, `$HOME` and `/etc/filebrowser/`. A missing file logs "No config file used", a broken
//!   one is "Error: While parsing config: ...". So `username`, `password` and `noauth` in
//!   settings.json do reach the quick setup (viper reads every key, not only flags' ones).
//! - The database (cmd/utils.go `dbExists`, `withViperAndStore`; asdine/storm v3.2.1 storm.go,
//!   options.go): missing or empty means a first start; a missing parent directory is created
//!   0700; the file is opened read-write, created 0640, and locked (flock) with storm's default 1 s
//!   timeout, so a second process (`users update` while the server runs) fails "Error: timeout".
//!   Open errors are Go's ("Error: open /database/filebrowser.db: permission denied"), exit 1.
//!   The file is BoltDB upstream; here it is the stand-in's own JSON.
//! - Quick setup (cmd/root.go `quickSetup`): a random signing key, signup off, auth method json
//!   (noauth with `noauth`), the server settings saved, and the first user: with no password a
//!   random one (users/password.go `RandomPwd(12)`: 12 bytes, base64url, 16 characters) logged
//!   once as "User 'admin' initialized with randomly generated password: ...", else the given
//!   value stored as is, unvalidated (it must be a bcrypt hash: a plain password never logs in).
//! - Logging (cmd/root.go `setupLog`): Go's log format `YYYY/MM/DD HH:MM:SS msg`; stderr until the
//!   server settings are read, then `log`: stdout, stderr, "" (discarded) or a file. The NOTICE
//!   lines about the project being archived, then "Listening on [::]:8080" (Go's listener
//!   address: "" listens on every address, IPv6 and IPv4). A failed listen is "Error: listen tcp
//!   :80: bind: permission denied", exit 1. SIGTERM, SIGINT, SIGHUP, SIGQUIT: "Got signal:
//!   terminated", "Stopped serving new connections.", "Graceful shutdown complete.", exit 0.
//! - HTTP (http/http.go `NewHandler`, http/data.go `handle`, http/utils.go `stripPrefix`):
//!   everything under baseURL; `GET /health` is `{"status":"OK"}` with no auth (http/public.go);
//!   `/api/login` takes JSON `{"username","password"}` and answers a JWT (HS256 over the
//!   database's key, claims `user`, `iss` "File Browser", `exp`, `iat`; text/plain), or 403 "403
//!   Forbidden" for bad JSON, an unknown user or a password bcrypt does not verify, checked
//!   against a dummy hash for unknown users (auth/json.go, http/auth.go `loginHandler`,
//!   `printToken`); `/api/renew` a fresh token; `GET /api/resources/PATH` needs the token in
//!   `X-Auth` (or, for GET, an `auth` cookie; http/auth.go `extractor`, `withUser`: else 401)
//!   and lists a directory (files/file.go, files/listing.go: items, numDirs, numFiles, sorting,
//!   path, name, size, extension, modified, mode, isDir, isSymlink, type) or describes a file;
//!   `POST /api/resources/PATH` writes a file (0640) or, ending in `/`, a directory (0750), 409
//!   if it exists without `override=true` (http/resource.go, settings/settings.go). Errors are
//!   Go's `http.Error` ("401 Unauthorized\n") and log `PATH: STATUS IP ERR`. Every other GET is
//!   the web app's index page (http/static.go). Headers: Cache-Control no-cache (http/headers.go),
//!   the Content-Security-Policy of `NewHandler`.
//!
//! Not modelled: TLS (`--cert/--key`), unix sockets, the users/shares/settings/search APIs,
//! thumbnails, the command runner, the common-password list, other config formats than JSON.

// before the modules, which log with it
macro_rules! fblog {
    ($($t:tt)*) => { $crate::filebrowser::logln(&format!($($t)*)) };
}

mod api;
mod db;
mod flags;
mod token;

use crate::http;
use crate::json::Value;
use crate::sys::{signal_pipe, wait_signal};
use crate::util::{unix_now, utc};
use api::App;
use db::{hash_password, quick_setup, Db};
use flags::{parse_flags, Cli, Values, PERSISTENT, ROOT, USERS_UPDATE};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use token::go_duration;

const VERSION: &str = "2.63.23";
const COMMIT: &str = "e8a388f8";
const MIN_PASSWORD_LENGTH: usize = 12;
/// auth/json.go: checked when the user does not exist, so both cases take as long
const DUMMY_HASH: &str = "$2a$10$O4mEMeOL/nit6zqe.WQXauLRbRlzb3IgLHsa26Pf0N/GiU9b.wK1m";
const DB_MARKER: &str = "archy e2e stand-in database (upstream: BoltDB)";

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGQUIT: i32 = 3;
const SIGTERM: i32 = 15;

/// Go's os.Signal String()
fn go_signal_name(sig: i32) -> &'static str {
    match sig {
        SIGHUP => "hangup",
        SIGINT => "interrupt",
        SIGQUIT => "quit",
        _ => "terminated",
    }
}

/// A Go-style error text from an OS error: "permission denied", not "Permission denied (os error 13)".
fn go_errno(e: &std::io::Error) -> String {
    crate::util::os_error_text(e).to_lowercase()
}

// ---- logging: Go's log package ----

enum Sink {
    Stderr,
    Stdout,
    Discard,
    File(File),
}

static SINK: Mutex<Sink> = Mutex::new(Sink::Stderr);

fn logln(msg: &str) {
    let (y, mo, d, h, mi, se) = utc(unix_now().as_secs() as i64);
    let mut line = format!("{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{se:02} {msg}");
    if !line.ends_with('\n') {
        line.push('\n');
    }
    let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let _ = match &mut *sink {
        Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
        Sink::Stdout => std::io::stdout().write_all(line.as_bytes()),
        Sink::Discard => Ok(()),
        Sink::File(f) => f.write_all(line.as_bytes()),
    };
}

/// cobra prints a returned error as "Error: ..." on stderr; main.go exits 1.
fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("Error: {msg}");
    1
}

/// log.Fatal: the message through the logger, exit 1.
fn fatal(msg: &str) -> i32 {
    logln(msg);
    1
}

// ---- commands ----

pub fn filebrowser(argv: &[String]) -> i32 {
    match argv.first().map(String::as_str) {
        Some("version") => {
            println!("File Browser v{VERSION}/{COMMIT}");
            return 0;
        }
        Some("hash") => {
            return match parse_flags(&argv[1..], &[PERSISTENT]) {
                Err(e) => fail(e),
                Ok(cli) if cli.args.len() != 1 => {
                    fail(format!("accepts 1 arg(s), received {}", cli.args.len()))
                }
                Ok(cli) => match hash_password(&cli.args[0]) {
                    Ok(h) => {
                        println!("{h}");
                        0
                    }
                    Err(e) => fail(e),
                },
            };
        }
        Some("users") if argv.get(1).map(String::as_str) == Some("update") => {
            return users_update(&argv[2..])
        }
        _ => {}
    }
    let cli = match parse_flags(argv, &[PERSISTENT, ROOT]) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if cli.help {
        println!("File Browser CLI (archy e2e stand-in of v{VERSION}): filebrowser [flags], filebrowser hash|version|users update");
        return 0;
    }
    if let Some(a) = cli.args.first() {
        return fail(format!(
            "unknown command \"{a}\" for \"filebrowser\"\nRun 'filebrowser --help' for usage."
        ));
    }
    match serve(cli) {
        Ok(()) => 0,
        Err(code) => code,
    }
}

fn serve(cli: Cli) -> Result<(), i32> {
    let v = Values::load(cli).map_err(fail)?;
    let path = std::path::absolute(v.string("database")).map_err(fail)?;
    let (mut db, existed) = Db::open(&path).map_err(fail)?;
    if !existed {
        quick_setup(&v, &mut db)?;
    }
    // getServerSettings: the saved settings, each overridden where viper has a value
    let saved = db
        .doc
        .get("server")
        .cloned()
        .ok_or_else(|| fail("not found"))?;
    let server = |k: &str| {
        v.get(k).unwrap_or_else(|| {
            saved
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
    };
    let addr_set = ["address", "port", "cert", "key"]
        .iter()
        .any(|k| v.get(k).is_some());
    if addr_set && v.get("socket").is_some() {
        return Err(fail(
            "--socket flag cannot be used with --address, --port, --key nor --cert",
        ));
    }
    if v.get("disableExec").is_some_and(|x| x == "false") {
        fblog!("WARNING: Command Runner feature enabled!");
    }
    {
        let mut sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
        *sink = match server("log").as_str() {
            "stdout" => Sink::Stdout,
            "stderr" => Sink::Stderr,
            "" => Sink::Discard,
            file => match OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(file)
            {
                Ok(f) => Sink::File(f),
                Err(_) => Sink::Stderr,
            },
        };
    }
    fblog!("NOTICE: File Browser is being wound down.");
    fblog!("NOTICE: The project is archived on 2026-09-01, after which there will be no");
    fblog!("NOTICE: further releases and no security fixes. Known unfixed issues are at");
    fblog!("NOTICE: https://github.com/filebrowser/filebrowser/security/advisories");
    let root = std::path::absolute(server("root")).map_err(fail)?;
    if !server("socket").is_empty() || (!server("cert").is_empty() && !server("key").is_empty()) {
        return Err(fail(
            "the stand-in serves plain TCP only (no --socket, no TLS)",
        ));
    }
    let (address, port) = (server("address"), server("port"));
    let listener = listen(&address, &port).map_err(fail)?;
    let shown = match listener.local_addr() {
        Ok(a) if address.is_empty() && a.is_ipv6() => format!("[::]:{}", a.port()),
        Ok(a) => a.to_string(),
        Err(_) => format!("{address}:{port}"),
    };
    let ttl = server("tokenExpirationTime");
    let ttl = if ttl.is_empty() {
        Duration::from_secs(7200)
    } else {
        go_duration(&ttl).unwrap_or_else(|| {
            fblog!("[WARN] Failed to parse tokenExpirationTime: time: invalid duration \"{ttl}\"");
            Duration::from_secs(7200)
        })
    };
    let mode = |k: &str, d: u32| {
        db.setting(k)
            .and_then(Value::as_i64)
            .map_or(d, |m| m as u32)
    };
    let app = Arc::new(App {
        key: key_bytes(
            db.setting("key")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
        auth_method: db
            .setting("authMethod")
            .and_then(Value::as_str)
            .unwrap_or("json")
            .to_string(),
        users: db.users(),
        root,
        base_url: server("baseURL").trim_end_matches('/').to_string(),
        ttl,
        file_mode: mode("fileMode", 0o640),
        dir_mode: mode("dirMode", 0o750),
    });
    let mut signals = signal_pipe(&[SIGHUP, SIGINT, SIGQUIT, SIGTERM]);
    fblog!("Listening on {shown}");
    std::thread::spawn(move || http::serve(listener, move |req| Some(app.handle(req))));
    let sig = wait_signal(&mut signals);
    fblog!("Got signal: {}", go_signal_name(sig));
    fblog!("Stopped serving new connections.");
    fblog!("Graceful shutdown complete.");
    drop(db);
    Ok(())
}

/// The signing key's bytes from its hex (a pair that is not hex is skipped).
fn key_bytes(t: &str) -> Vec<u8> {
    (0..t.len() / 2)
        .filter_map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// net.Listen("tcp", address+":"+port): "" is every address (IPv6 and IPv4 on one socket)
fn listen(address: &str, port: &str) -> Result<TcpListener, String> {
    let adr = format!("{address}:{port}");
    let err = |e: std::io::Error| format!("listen tcp {adr}: bind: {}", go_errno(&e));
    let p: u16 = port
        .parse()
        .map_err(|_| format!("listen tcp {adr}: address {port}: unknown port"))?;
    if address.is_empty() {
        return TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), p))
            .or_else(|_| TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p)))
            .map_err(err);
    }
    let ip: IpAddr = match address.parse() {
        Ok(ip) => ip,
        Err(_) => {
            let addrs: Vec<SocketAddr> = (address, p)
                .to_socket_addrs()
                .map_err(|_| format!("listen tcp {adr}: lookup {address}: no such host"))?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .map(SocketAddr::ip)
                .ok_or("no address")?
        }
    };
    TcpListener::bind(SocketAddr::new(ip, p)).map_err(err)
}

/// `filebrowser users update <id|username> [-p PASSWORD] [-u NEWNAME]` (storeOptions{}: the
/// database must exist)
fn users_update(argv: &[String]) -> i32 {
    let cli = match parse_flags(argv, &[PERSISTENT, USERS_UPDATE]) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if cli.args.len() != 1 {
        return fail(format!("accepts 1 arg(s), received {}", cli.args.len()));
    }
    let who = cli.args[0].clone();
    let (password, rename) = (
        cli.get("password").map(str::to_string),
        cli.get("username").map(str::to_string),
    );
    let v = match Values::load(cli) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let path = match std::path::absolute(v.string("database")) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if std::fs::metadata(&path).map_or(true, |m| m.len() == 0) {
        if let Some(dir) = path.parent().filter(|d| !d.exists()) {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir);
        }
        return fatal(&format!(
            "{} does not exist. Please run 'filebrowser config init' first.",
            path.display()
        ));
    }
    let (mut db, _) = match Db::open(&path) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let mut users = db.users();
    let Some(u) = users.iter_mut().find(|u| {
        who.parse::<u64>()
            .map_or(u.username == who, |id| u.id == id)
    }) else {
        return fail("the resource does not exist");
    };
    if let Some(n) = rename.filter(|n| !n.is_empty()) {
        u.username = n;
    }
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        let min = db
            .setting("minimumPasswordLength")
            .and_then(Value::as_i64)
            .unwrap_or(12) as usize;
        if p.len() < min {
            return fail(format!("password is too short, minimum length is {min}"));
        }
        match hash_password(&p) {
            Ok(h) => u.password = h,
            Err(e) => return fail(e),
        }
    }
    let shown = u.clone();
    db.set_users(&users);
    if let Err(e) = db.save() {
        return fail(go_errno(&e));
    }
    println!("ID\tUsername\tScope\tLocale\tAdmin");
    println!(
        "{}\t{}\t{}\t{}\t{}",
        shown.id, shown.username, shown.scope, shown.locale, shown.perm[0]
    );
    0
}
