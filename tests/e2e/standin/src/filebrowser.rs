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

use crate::http::{self, Request, Response};
use crate::json::{self, num, obj, s, Value};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const VERSION: &str = "2.63.23";
const COMMIT: &str = "e8a388f8";
const MIN_PASSWORD_LENGTH: usize = 12;
/// auth/json.go: checked when the user does not exist, so both cases take as long
const DUMMY_HASH: &str = "$2a$10$O4mEMeOL/nit6zqe.WQXauLRbRlzb3IgLHsa26Pf0N/GiU9b.wK1m";
const DB_MARKER: &str = "archy e2e stand-in database (upstream: BoltDB)";

// ---- time, shared with fedimint.rs ----

/// Civil UTC date and time (year, month, day, hour, minute, second) of a Unix time.
pub(crate) fn utc(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    // Howard Hinnant's civil_from_days
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

pub(crate) fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, da, h, mi, se) = utc(d.as_secs() as i64);
    let mut out = format!("{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{se:02}");
    if d.subsec_nanos() != 0 {
        // Go's RFC3339Nano drops trailing zeros
        out.push_str(format!(".{:09}", d.subsec_nanos()).trim_end_matches('0'));
    }
    out.push('Z');
    out
}

// ---- signals, shared with fedimint.rs ----

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
    fn write(fd: i32, buf: *const u8, n: usize) -> isize;
    fn flock(fd: i32, op: i32) -> i32;
}

static SIGNAL_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(sig: i32) {
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; the fd is a pipe kept open for the process's life
    unsafe {
        write(SIGNAL_FD.load(std::sync::atomic::Ordering::SeqCst), &b, 1);
    }
}

/// Route `signals` to a pipe; the returned reader yields one byte (the signal number) each.
pub(crate) fn signal_pipe(signals: &[i32]) -> std::io::PipeReader {
    let (r, w) = std::io::pipe().expect("pipe");
    SIGNAL_FD.store(w.as_raw_fd(), std::sync::atomic::Ordering::SeqCst);
    std::mem::forget(w);
    for &sig in signals {
        // SAFETY: the handler only calls write(2)
        unsafe {
            signal(sig, on_signal as *const () as usize);
        }
    }
    r
}

pub(crate) fn wait_signal(pipe: &mut std::io::PipeReader) -> i32 {
    let mut b = [0u8; 1];
    loop {
        if pipe.read_exact(&mut b).is_ok() {
            return i32::from(b[0]);
        }
    }
}

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
    let t = e.to_string();
    let t = t.split(" (os error").next().unwrap_or(&t);
    t.to_lowercase()
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

macro_rules! fblog {
    ($($t:tt)*) => { logln(&format!($($t)*)) };
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

// ---- flags (pflag) and values (viper) ----

/// name, shorthand, takes no value
type FlagDef = (&'static str, Option<char>, bool);

const PERSISTENT: &[FlagDef] = &[("config", Some('c'), false), ("database", Some('d'), false)];
const ROOT: &[FlagDef] = &[
    ("noauth", None, true),
    ("username", None, false),
    ("password", None, false),
    ("socketPerm", None, false),
    ("cacheDir", None, false),
    ("redisCacheUrl", None, false),
    ("imageProcessors", None, false),
    ("address", Some('a'), false),
    ("log", Some('l'), false),
    ("port", Some('p'), false),
    ("cert", Some('t'), false),
    ("key", Some('k'), false),
    ("root", Some('r'), false),
    ("socket", None, false),
    ("baseURL", Some('b'), false),
    ("tokenExpirationTime", None, false),
    ("disableThumbnails", None, true),
    ("disablePreviewResize", None, true),
    ("disableExec", None, true),
    ("disableTypeDetectionByHeader", None, true),
    ("disableImageResolutionCalc", None, true),
    ("followExternalSymlinks", None, true),
];
const USERS_UPDATE: &[FlagDef] = &[("password", Some('p'), false), ("username", Some('u'), false)];

/// cmd/root.go flagNamesMigrations (the old dashed names still work, with a notice)
const MIGRATIONS: &[(&str, &str)] = &[
    ("file-mode", "fileMode"),
    ("dir-mode", "dirMode"),
    ("hide-login-button", "hideLoginButton"),
    ("create-user-dir", "createUserDir"),
    ("minimum-password-length", "minimumPasswordLength"),
    ("socket-perm", "socketPerm"),
    ("disable-thumbnails", "disableThumbnails"),
    ("disable-preview-resize", "disablePreviewResize"),
    ("disable-exec", "disableExec"),
    ("disable-type-detection-by-header", "disableTypeDetectionByHeader"),
    ("img-processors", "imageProcessors"),
    ("cache-dir", "cacheDir"),
    ("redis-cache-url", "redisCacheUrl"),
    ("token-expiration-time", "tokenExpirationTime"),
    ("baseurl", "baseURL"),
];

fn flag_default(name: &str) -> &'static str {
    match name {
        "database" => "./filebrowser.db",
        "username" => "admin",
        "address" => "127.0.0.1",
        "log" => "stdout",
        "port" => "8080",
        "root" => ".",
        "tokenExpirationTime" => "2h",
        "disableExec" => "true",
        "imageProcessors" => "4",
        _ => "",
    }
}

#[derive(Default)]
struct Cli {
    set: Vec<(String, String)>,
    args: Vec<String>,
    help: bool,
}

impl Cli {
    fn get(&self, name: &str) -> Option<&str> {
        self.set.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn parse_flags(argv: &[String], defs: &[&[FlagDef]]) -> Result<Cli, String> {
    let find_long = |n: &str| defs.iter().flat_map(|d| d.iter()).find(|d| d.0 == n).copied();
    let find_short = |c: char| defs.iter().flat_map(|d| d.iter()).find(|d| d.1 == Some(c)).copied();
    let mut cli = Cli::default();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if a == "--" {
            cli.args.extend(argv[i..].iter().cloned());
            break;
        }
        if a == "-h" || a == "--help" {
            cli.help = true;
            continue;
        }
        let (def, inline) = if let Some(long) = a.strip_prefix("--") {
            let (n, v) = long.split_once('=').map_or((long, None), |(n, v)| (n, Some(v.to_string())));
            let n = match MIGRATIONS.iter().find(|(old, _)| *old == n) {
                Some((old, new)) => {
                    fblog!("DEPRECATION NOTICE: Flag --{old} has been deprecated, use --{new} instead");
                    *new
                }
                None => n,
            };
            (find_long(n).ok_or(format!("unknown flag: --{n}"))?, v)
        } else if let Some(short) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            let c = short.chars().next().unwrap_or('-');
            let rest = &short[c.len_utf8()..];
            let def = find_short(c).ok_or(format!("unknown shorthand flag: '{c}' in {a}"))?;
            let v = if rest.is_empty() { None } else { Some(rest.strip_prefix('=').unwrap_or(rest).to_string()) };
            (def, v)
        } else {
            cli.args.push(a.clone());
            continue;
        };
        let value = match (def.2, inline) {
            (true, None) => "true".to_string(),
            (_, Some(v)) => v,
            (false, None) => {
                let v = argv.get(i).cloned().ok_or(format!("flag needs an argument: --{}", def.0))?;
                i += 1;
                v
            }
        };
        cli.set.push((def.0.to_string(), value));
    }
    Ok(cli)
}

/// lo.SnakeCase, upper-cased: baseURL -> BASE_URL, tokenExpirationTime -> TOKEN_EXPIRATION_TIME
fn env_name(key: &str) -> String {
    let c: Vec<char> = key.chars().collect();
    let mut out = String::from("FB_");
    for (i, &ch) in c.iter().enumerate() {
        let prev_lower = i > 0 && (c[i - 1].is_ascii_lowercase() || c[i - 1].is_ascii_digit());
        let next_lower = c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        let prev_upper = i > 0 && c[i - 1].is_ascii_uppercase();
        if ch.is_ascii_uppercase() && (prev_lower || (prev_upper && next_lower)) {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// What viper resolves: flag, then environment, then config file; defaults are the caller's.
struct Values {
    cli: Cli,
    conf: Vec<(String, String)>,
}

impl Values {
    fn load(cli: Cli) -> Result<Values, String> {
        let file = match cli.get("config") {
            Some(c) => Some(PathBuf::from(c)),
            None => {
                let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
                [".".to_string(), home, "/etc/filebrowser".to_string()]
                    .iter()
                    .map(|d| Path::new(d).join(".filebrowser.json"))
                    .find(|p| p.is_file())
            }
        };
        let mut conf = Vec::new();
        match file.as_ref().map(|f| (f, std::fs::read_to_string(f))) {
            Some((f, Ok(text))) => {
                let v = json::parse(text.trim()).map_err(|e| format!("While parsing config: {e}"))?;
                let Value::Obj(members) = v else {
                    return Err("While parsing config: json: cannot unmarshal into Go value of type map[string]interface {}".into());
                };
                for (k, v) in members {
                    let text = match v {
                        Value::Str(t) => t,
                        Value::Bool(b) => b.to_string(),
                        Value::Null => continue,
                        other => other.compact(),
                    };
                    conf.push((k.to_lowercase(), text));
                }
                fblog!("Using config file: {}", f.display());
            }
            _ => fblog!("No config file used"),
        }
        Ok(Values { cli, conf })
    }

    fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = self.cli.get(key) {
            return Some(v.to_string());
        }
        if key != "config" {
            if let Ok(v) = std::env::var(env_name(key)) {
                if !v.is_empty() {
                    return Some(v);
                }
            }
        }
        let lower = key.to_lowercase();
        self.conf.iter().rev().find(|(k, _)| *k == lower).map(|(_, v)| v.clone())
    }

    fn string(&self, key: &str) -> String {
        self.get(key).unwrap_or_else(|| flag_default(key).to_string())
    }

    /// strconv.ParseBool, as cast.ToBool applies it
    fn boolean(&self, key: &str) -> bool {
        matches!(self.string(key).as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True")
    }
}

// ---- the database ----

#[derive(Clone, Default)]
struct User {
    id: u64,
    username: String,
    password: String,
    scope: String,
    locale: String,
    lock_password: bool,
    /// admin, execute, create, rename, modify, delete, share, download
    perm: [bool; 8],
}

const PERMS: [&str; 8] = ["admin", "execute", "create", "rename", "modify", "delete", "share", "download"];

impl User {
    fn to_json(&self, with_password: bool) -> Value {
        let mut m = vec![("id", num(self.id)), ("username", s(&self.username))];
        if with_password {
            m.push(("password", s(&self.password)));
        }
        m.push(("scope", s(&self.scope)));
        m.push(("locale", s(&self.locale)));
        m.push(("lockPassword", Value::Bool(self.lock_password)));
        m.push(("perm", obj(PERMS.iter().zip(self.perm).map(|(k, v)| (*k, Value::Bool(v))).collect())));
        obj(m)
    }

    fn from_json(v: &Value) -> User {
        let st = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let mut perm = [false; 8];
        for (i, k) in PERMS.iter().enumerate() {
            perm[i] = v.get("perm").and_then(|p| p.get(k)) == Some(&Value::Bool(true));
        }
        User {
            id: v.get("id").and_then(Value::as_i64).unwrap_or(0) as u64,
            username: st("username"),
            password: st("password"),
            scope: st("scope"),
            locale: st("locale"),
            lock_password: v.get("lockPassword") == Some(&Value::Bool(true)),
            perm,
        }
    }
}

/// The server settings quick setup saves (settings.Server); the strings viper handed it.
const SERVER_KEYS: &[&str] = &["baseURL", "port", "log", "key", "cert", "address", "root", "tokenExpirationTime", "socket"];

struct Db {
    file: File,
    doc: Value,
}

impl Db {
    /// dbExists, storm.Open(path, BoltOptions(0640, nil)): Ok((db, existed)).
    fn open(path: &Path) -> Result<(Db, bool), String> {
        let existed = match std::fs::metadata(path) {
            Ok(m) => m.len() != 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path.parent().unwrap_or(Path::new("/"));
                if let Err(e) = std::fs::metadata(dir) {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        std::fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o700)
                            .create(dir)
                            .map_err(|e| format!("mkdir {}: {}", dir.display(), go_errno(&e)))?;
                    }
                }
                false
            }
            Err(e) => return Err(format!("stat {}: {}", path.display(), go_errno(&e))),
        };
        if !existed {
            let shown = path.display().to_string();
            let dir = shown.strip_suffix("filebrowser.db").unwrap_or(&shown);
            fblog!("WARNING: filebrowser.db can't be found. Initialing in {dir}");
        }
        fblog!("Using database: {}", path.display());
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(path)
            .map_err(|e| format!("open {}: {}", path.display(), go_errno(&e)))?;
        // bbolt: flock(LOCK_EX|LOCK_NB) every 50 ms until storm's 1 s timeout
        let deadline = Instant::now() + Duration::from_secs(1);
        // SAFETY: flock on an fd this function owns
        while unsafe { flock(file.as_raw_fd(), 2 | 4) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(11) {
                return Err(go_errno(&e));
            }
            if Instant::now() >= deadline {
                return Err("timeout".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let doc = if text.trim().is_empty() {
            // bolt writes its meta pages at once: a setup that dies later leaves a non-empty file
            obj(vec![("standin", s(DB_MARKER))])
        } else {
            match json::parse(text.trim()) {
                Ok(v) if v.get("standin").is_some() => v,
                _ => return Err("invalid database".into()),
            }
        };
        let mut db = Db { file, doc };
        if text.trim().is_empty() {
            db.save().map_err(|e| go_errno(&e))?;
        }
        Ok((db, existed))
    }

    fn save(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(self.doc.pretty(2).as_bytes())?;
        self.file.write_all(b"\n")?;
        self.file.sync_all()
    }

    fn set(&mut self, key: &str, v: Value) {
        if let Value::Obj(m) = &mut self.doc {
            m.retain(|(k, _)| k != key);
            m.push((key.to_string(), v));
        }
    }

    fn users(&self) -> Vec<User> {
        match self.doc.get("users") {
            Some(Value::Arr(a)) => a.iter().map(User::from_json).collect(),
            _ => Vec::new(),
        }
    }

    fn set_users(&mut self, users: &[User]) {
        self.set("users", Value::Arr(users.iter().map(|u| u.to_json(true)).collect()));
    }

    fn setting(&self, key: &str) -> Option<&Value> {
        self.doc.get("settings").and_then(|v| v.get(key))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(t: &str) -> Vec<u8> {
    (0..t.len() / 2).filter_map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok()).collect()
}

fn random(n: usize) -> Vec<u8> {
    unhex(&crate::sys::random_hex(n))
}

/// users.HashPwd: bcrypt.DefaultCost (10), Go's "$2a$" prefix
fn hash_password(pwd: &str) -> Result<String, String> {
    bcrypt::hash_with_result(pwd, 10)
        .map(|h| h.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| e.to_string())
}

fn quick_setup(v: &Values, db: &mut Db) -> Result<(), i32> {
    fblog!("Performing quick setup");
    let auth = if v.boolean("noauth") { "noauth" } else { "json" };
    db.set(
        "settings",
        obj(vec![
            ("key", s(&hex(&random(64)))),
            ("signup", Value::Bool(false)),
            ("authMethod", s(auth)),
            ("minimumPasswordLength", num(MIN_PASSWORD_LENGTH)),
            ("fileMode", num(0o640)),
            ("dirMode", num(0o750)),
        ]),
    );
    let server: Vec<(&str, Value)> =
        SERVER_KEYS.iter().filter(|k| **k != "socket").map(|k| (*k, s(&v.string(k)))).collect();
    db.set("server", obj(server));
    let username = v.string("username");
    let mut password = v.string("password");
    if password.is_empty() {
        let pwd = URL_SAFE.encode(random(MIN_PASSWORD_LENGTH));
        fblog!("User '{username}' initialized with randomly generated password: {pwd}");
        password = hash_password(&pwd).map_err(fail)?;
    } else {
        fblog!("User '{username}' initialize wth user-provided password");
    }
    if username.is_empty() {
        return Err(fatal("username and password cannot be empty during quick setup"));
    }
    // settings.UserDefaults of quickSetup, plus admin
    let user = User {
        id: 1,
        username,
        password,
        scope: ".".into(),
        locale: "en".into(),
        lock_password: false,
        perm: [true; 8],
    };
    db.set_users(&[user]);
    db.save().map_err(|e| fail(go_errno(&e)))
}

// ---- tokens: golang-jwt HS256, as printToken signs them ----

type HmacSha256 = Hmac<Sha256>;

fn sign(key: &[u8], msg: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac takes any key length");
    mac.update(msg.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn make_token(key: &[u8], user: &User, ttl: Duration) -> String {
    let now = unix_now().as_secs();
    let perm = obj(PERMS.iter().zip(user.perm).map(|(k, v)| (*k, Value::Bool(v))).collect());
    let claims = obj(vec![
        (
            "user",
            obj(vec![
                ("id", num(user.id)),
                ("locale", s(&user.locale)),
                ("viewMode", s("list")),
                ("singleClick", Value::Bool(false)),
                ("redirectAfterCopyMove", Value::Bool(true)),
                ("perm", perm),
                ("commands", Value::Arr(vec![])),
                ("lockPassword", Value::Bool(user.lock_password)),
                ("hideDotfiles", Value::Bool(false)),
                ("dateFormat", Value::Bool(false)),
                ("username", s(&user.username)),
                ("aceEditorTheme", s("")),
            ]),
        ),
        ("iss", s("File Browser")),
        ("exp", num(now + ttl.as_secs())),
        ("iat", num(now)),
    ]);
    let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.compact());
    let signed = format!("{head}.{body}");
    let sig = sign(key, &signed);
    format!("{signed}.{sig}")
}

/// The user id of a valid, unexpired HS256 token (jwt.WithValidMethods, WithExpirationRequired).
fn check_token(key: &[u8], token: &str) -> Option<u64> {
    let mut parts = token.split('.');
    let (h, b, sig) = (parts.next()?, parts.next()?, parts.next()?);
    let head = json::parse(&String::from_utf8(URL_SAFE_NO_PAD.decode(h).ok()?).ok()?).ok()?;
    if head.get("alg").and_then(Value::as_str) != Some("HS256") || sign(key, &format!("{h}.{b}")) != sig {
        return None;
    }
    let claims = json::parse(&String::from_utf8(URL_SAFE_NO_PAD.decode(b).ok()?).ok()?).ok()?;
    let exp = claims.get("exp")?.as_i64()?;
    if exp <= unix_now().as_secs() as i64 {
        return None;
    }
    claims.get("user")?.get("id")?.as_i64().map(|id| id as u64)
}

/// time.ParseDuration for the forms tokenExpirationTime takes (2h, 90m, 1h30m, 45s)
fn go_duration(t: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut numtext = String::new();
    let mut chars = t.chars().peekable();
    if t.is_empty() {
        return None;
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            numtext.push(c);
            continue;
        }
        let n: f64 = numtext.parse().ok()?;
        numtext.clear();
        let unit = match (c, chars.peek()) {
            ('h', _) => 3600.0,
            ('m', Some('s')) => {
                chars.next();
                0.001
            }
            ('m', _) => 60.0,
            ('s', _) => 1.0,
            _ => return None,
        };
        total += n * unit;
    }
    numtext.is_empty().then(|| Duration::from_secs_f64(total))
}

// ---- HTTP ----

struct App {
    key: Vec<u8>,
    auth_method: String,
    users: Vec<User>,
    root: PathBuf,
    base_url: String,
    ttl: Duration,
    file_mode: u32,
    dir_mode: u32,
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Internal Server Error",
    }
}

/// net/http's http.Error
fn go_error(status: u16) -> Response {
    let mut r = Response::new(status, "text/plain; charset=utf-8", format!("{status} {}\n", status_text(status)));
    r.headers.push(("X-Content-Type-Options".into(), "nosniff".into()));
    r
}

fn percent_decode(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&p[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// path.Clean of an absolute request path: "." and ".." resolved, never above "/"
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn client_ip(req: &Request) -> String {
    if let Some(ip) = req.header("X-Real-Ip").filter(|v| !v.is_empty()) {
        return ip.to_string();
    }
    if let Some(f) = req.header("X-Forwarded-For").and_then(|v| v.split(',').next()) {
        if !f.trim().is_empty() {
            return f.trim().to_string();
        }
    }
    // Go reports an IPv4 peer of a dual-stack socket as IPv4
    req.peer.ip().to_canonical().to_string()
}

/// http/data.go `handle`: a status >= 400 is logged and answered with http.Error
fn finish(req: &Request, path: &str, result: Result<Response, (u16, String)>) -> Response {
    match result {
        Ok(r) => r,
        Err((status, err)) => {
            fblog!("{path}: {status} {} {err}", client_ip(req));
            go_error(status)
        }
    }
}

impl App {
    fn handle(&self, req: Request) -> Response {
        let raw = req.path.clone();
        let (raw_path, query) = raw.split_once('?').unwrap_or((&raw, ""));
        let mut path = percent_decode(raw_path);
        if !self.base_url.is_empty() {
            if path == self.base_url {
                let mut r = Response::new(301, "text/html; charset=utf-8", "");
                r.headers.push(("Location".into(), format!("{}/", self.base_url)));
                return r;
            }
            if let Some(rest) = path.strip_prefix(&self.base_url) {
                path = rest.to_string();
            }
        }
        let mut resp = self.route(&req, &path, query);
        resp.headers.push(("Content-Security-Policy".into(), "default-src 'self'; style-src 'unsafe-inline';".into()));
        if req.method == "HEAD" {
            resp.body.clear();
        }
        resp
    }

    fn route(&self, req: &Request, path: &str, query: &str) -> Response {
        if path == "/health" {
            return Response::new(200, "text/plain; charset=utf-8", r#"{"status":"OK"}"#);
        }
        let mut r = if path == "/api/login" {
            finish(req, path, self.login(req))
        } else if path == "/api/renew" {
            let r = self.user(req).map(|u| {
                let mut r = Response::new(200, "text/plain", make_token(&self.key, &u, self.ttl));
                r.headers.push(("X-Renew-Token".into(), "false".into()));
                r
            });
            finish(req, path, r)
        } else if let Some(sub) = path.strip_prefix("/api/resources") {
            if sub.is_empty() {
                let mut r = Response::new(301, "text/html; charset=utf-8", "");
                r.headers.push(("Location".into(), "/api/resources/".into()));
                return r;
            }
            finish(req, sub, self.resources(req, sub, query))
        } else if req.method == "GET" || req.method == "HEAD" {
            let mut r = Response::new(200, "text/html; charset=utf-8", INDEX_HTML);
            r.headers.push(("X-Content-Type-Options".into(), "nosniff".into()));
            r
        } else {
            go_error(404)
        };
        r.headers.push(("Cache-Control".into(), "no-cache, no-store, must-revalidate".into()));
        r
    }

    fn login(&self, req: &Request) -> Result<Response, (u16, String)> {
        let user = if self.auth_method == "noauth" {
            self.users.iter().find(|u| u.id == 1).cloned()
        } else {
            let cred = std::str::from_utf8(&req.body).ok().and_then(|t| json::parse(t.trim()).ok());
            let Some(cred @ Value::Obj(_)) = cred else {
                return Err((403, "<nil>".into()));
            };
            let field = |k: &str| cred.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let (name, pwd) = (field("username"), field("password"));
            let found = self.users.iter().find(|u| u.username == name).cloned();
            let hash = found.as_ref().map_or(DUMMY_HASH.to_string(), |u| u.password.clone());
            if !bcrypt::verify(&pwd, &hash).unwrap_or(false) {
                return Err((403, "<nil>".into()));
            }
            found
        };
        let user = user.ok_or((403, "<nil>".to_string()))?;
        Ok(Response::new(200, "text/plain", make_token(&self.key, &user, self.ttl)))
    }

    /// withUser: the X-Auth header, or for GET the `auth` cookie; a JWT has two dots
    fn user(&self, req: &Request) -> Result<User, (u16, String)> {
        let two_dots = |t: &&str| t.matches('.').count() == 2;
        let header = req.header("X-Auth").filter(two_dots);
        let cookie = (req.method == "GET")
            .then(|| req.header("Cookie"))
            .flatten()
            .and_then(|c| c.split(';').map(str::trim).find_map(|kv| kv.strip_prefix("auth=")))
            .filter(two_dots);
        let id = header.or(cookie).and_then(|t| check_token(&self.key, t)).ok_or((401, "<nil>".to_string()))?;
        self.users.iter().find(|u| u.id == id).cloned().ok_or((500, "the resource does not exist".into()))
    }

    fn resources(&self, req: &Request, sub: &str, query: &str) -> Result<Response, (u16, String)> {
        let user = self.user(req)?;
        let vpath = clean(sub);
        let scope = self.root.join(user.scope.trim_start_matches('/'));
        let real = scope.join(vpath.trim_start_matches('/'));
        let io_err = |op: &str, e: std::io::Error| {
            let status = match e.kind() {
                std::io::ErrorKind::NotFound => 404,
                std::io::ErrorKind::PermissionDenied => 403,
                std::io::ErrorKind::AlreadyExists => 409,
                _ => 500,
            };
            (status, format!("{op} {vpath}: {}", go_errno(&e)))
        };
        match req.method.as_str() {
            "GET" => {
                let meta = std::fs::symlink_metadata(&real).map_err(|e| io_err("lstat", e))?;
                let mut info = file_info(&real, &vpath, &meta, true);
                if meta.is_dir() {
                    let mut names: Vec<String> = std::fs::read_dir(&real)
                        .map_err(|e| io_err("open", e))?
                        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                        .collect();
                    names.sort();
                    let (mut dirs, mut files) = (0, 0);
                    let mut items = Vec::new();
                    for n in names {
                        let p = real.join(&n);
                        let Ok(m) = std::fs::metadata(&p).or_else(|_| std::fs::symlink_metadata(&p)) else { continue };
                        if m.is_dir() {
                            dirs += 1;
                        } else {
                            files += 1;
                        }
                        items.push(file_info(&p, &format!("{}/{n}", vpath.trim_end_matches('/')), &m, false));
                    }
                    // the embedded Listing's fields come first
                    let mut fields = vec![
                        ("items".to_string(), Value::Arr(items)),
                        ("numDirs".to_string(), num(dirs)),
                        ("numFiles".to_string(), num(files)),
                        ("sorting".to_string(), obj(vec![("by", s("")), ("asc", Value::Bool(false))])),
                    ];
                    if let Value::Obj(rest) = info {
                        fields.extend(rest);
                    }
                    info = Value::Obj(fields);
                }
                Ok(Response::new(200, "application/json; charset=utf-8", info.compact()))
            }
            "POST" => {
                if !user.perm[2] {
                    return Err((403, "<nil>".into()));
                }
                let mut dirb = std::fs::DirBuilder::new();
                dirb.recursive(true).mode(self.dir_mode);
                if sub.ends_with('/') {
                    dirb.create(&real).map_err(|e| io_err("mkdir", e))?;
                    return Ok(go_error(200));
                }
                if real.exists() {
                    if !query.split('&').any(|kv| kv == "override=true") {
                        return Err((409, "<nil>".into()));
                    }
                    if !user.perm[4] {
                        return Err((403, "<nil>".into()));
                    }
                }
                if let Some(dir) = real.parent() {
                    dirb.create(dir).map_err(|e| io_err("mkdir", e))?;
                }
                let mut f = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(self.file_mode)
                    .open(&real)
                    .map_err(|e| io_err("open", e))?;
                f.write_all(&req.body).and_then(|_| f.sync_all()).map_err(|e| io_err("write", e))?;
                let m = f.metadata().map_err(|e| io_err("stat", e))?;
                let mut r = go_error(200);
                let mtime = m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
                r.headers.push(("ETag".into(), format!("\"{:x}{:x}\"", mtime.as_nanos(), m.len())));
                Ok(r)
            }
            _ => Err((405, "<nil>".into())),
        }
    }
}

/// files.FileInfo as JSON; `content` for a text file asked for by itself
fn file_info(real: &Path, vpath: &str, m: &std::fs::Metadata, with_content: bool) -> Value {
    let name = if vpath == "/" { String::new() } else { vpath.rsplit('/').next().unwrap_or_default().to_string() };
    let ext = match name.rfind('.') {
        Some(i) => name[i..].to_string(),
        None => String::new(),
    };
    // os.FileMode: permission bits plus ModeDir (1<<31) / ModeSymlink (1<<27)
    let mut mode = u64::from(m.mode() & 0o777);
    if m.is_dir() {
        mode |= 1 << 31;
    }
    if m.file_type().is_symlink() {
        mode |= 1 << 27;
    }
    let mut fields = vec![
        ("path", s(vpath)),
        ("name", s(&name)),
        ("size", num(m.len())),
        ("extension", s(&ext)),
        ("modified", s(&m.modified().map(rfc3339_nano).unwrap_or_default())),
        ("mode", num(mode)),
        ("isDir", Value::Bool(m.is_dir())),
        ("isSymlink", Value::Bool(m.file_type().is_symlink())),
    ];
    if m.is_dir() {
        fields.push(("type", s("")));
        return obj(fields);
    }
    let ty = match ext.to_lowercase().as_str() {
        ".png" | ".jpg" | ".jpeg" | ".gif" | ".webp" | ".svg" | ".bmp" => "image",
        ".mp4" | ".mkv" | ".webm" | ".avi" | ".mov" => "video",
        ".mp3" | ".flac" | ".ogg" | ".wav" | ".m4a" => "audio",
        ".pdf" => "pdf",
        _ => {
            let mut head = vec![0u8; 512];
            let n = File::open(real).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
            let binary = head[..n].contains(&0) || std::str::from_utf8(&head[..n]).is_err();
            if !binary && m.len() <= 10 << 20 {
                "text"
            } else {
                "blob"
            }
        }
    };
    fields.push(("type", s(ty)));
    if with_content && ty == "text" {
        if let Ok(c) = std::fs::read_to_string(real) {
            fields.push(("content", s(&c)));
        }
    }
    obj(fields)
}

const INDEX_HTML: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>File Browser</title></head>\
<body><div id=\"app\">File Browser (archy e2e stand-in)</div></body></html>\n";

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
                Ok(cli) if cli.args.len() != 1 => fail(format!("accepts 1 arg(s), received {}", cli.args.len())),
                Ok(cli) => match hash_password(&cli.args[0]) {
                    Ok(h) => {
                        println!("{h}");
                        0
                    }
                    Err(e) => fail(e),
                },
            };
        }
        Some("users") if argv.get(1).map(String::as_str) == Some("update") => return users_update(&argv[2..]),
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
        return fail(format!("unknown command \"{a}\" for \"filebrowser\"\nRun 'filebrowser --help' for usage."));
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
    let saved = db.doc.get("server").cloned().ok_or_else(|| fail("not found"))?;
    let server = |k: &str| v.get(k).unwrap_or_else(|| saved.get(k).and_then(Value::as_str).unwrap_or_default().to_string());
    let addr_set = ["address", "port", "cert", "key"].iter().any(|k| v.get(k).is_some());
    if addr_set && v.get("socket").is_some() {
        return Err(fail("--socket flag cannot be used with --address, --port, --key nor --cert"));
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
            file => match OpenOptions::new().create(true).append(true).mode(0o644).open(file) {
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
        return Err(fail("the stand-in serves plain TCP only (no --socket, no TLS)"));
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
    let mode = |k: &str, d: u32| db.setting(k).and_then(Value::as_i64).map_or(d, |m| m as u32);
    let app = Arc::new(App {
        key: unhex(db.setting("key").and_then(Value::as_str).unwrap_or_default()),
        auth_method: db.setting("authMethod").and_then(Value::as_str).unwrap_or("json").to_string(),
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

/// net.Listen("tcp", address+":"+port): "" is every address (IPv6 and IPv4 on one socket)
fn listen(address: &str, port: &str) -> Result<TcpListener, String> {
    let adr = format!("{address}:{port}");
    let err = |e: std::io::Error| format!("listen tcp {adr}: bind: {}", go_errno(&e));
    let p: u16 = port.parse().map_err(|_| format!("listen tcp {adr}: address {port}: unknown port"))?;
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
            addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).map(SocketAddr::ip).ok_or("no address")?
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
    let (password, rename) = (cli.get("password").map(str::to_string), cli.get("username").map(str::to_string));
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
            let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
        }
        return fatal(&format!("{} does not exist. Please run 'filebrowser config init' first.", path.display()));
    }
    let (mut db, _) = match Db::open(&path) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let mut users = db.users();
    let Some(u) = users.iter_mut().find(|u| who.parse::<u64>().map_or(u.username == who, |id| u.id == id)) else {
        return fail("the resource does not exist");
    };
    if let Some(n) = rename.filter(|n| !n.is_empty()) {
        u.username = n;
    }
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        let min = db.setting("minimumPasswordLength").and_then(Value::as_i64).unwrap_or(12) as usize;
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
    println!("{}\t{}\t{}\t{}\t{}", shown.id, shown.username, shown.scope, shown.locale, shown.perm[0]);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert_eq!(env_name("baseURL"), "FB_BASE_URL");
        assert_eq!(env_name("tokenExpirationTime"), "FB_TOKEN_EXPIRATION_TIME");
        assert_eq!(env_name("port"), "FB_PORT");
        assert_eq!(env_name("redisCacheUrl"), "FB_REDIS_CACHE_URL");
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc(1_709_210_096), (2024, 2, 29, 12, 34, 56));
        assert_eq!(rfc3339_nano(UNIX_EPOCH + Duration::from_millis(1500)), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn flags() {
        let a: Vec<String> = ["-p", "80", "--address=", "-d/db/x.db", "--baseurl", "/fb"].iter().map(|s| s.to_string()).collect();
        let c = parse_flags(&a, &[PERSISTENT, ROOT]).unwrap();
        assert_eq!(c.get("port"), Some("80"));
        assert_eq!(c.get("address"), Some(""));
        assert_eq!(c.get("database"), Some("/db/x.db"));
        assert_eq!(c.get("baseURL"), Some("/fb"));
        assert!(parse_flags(&["--nope".to_string()], &[ROOT]).is_err());
    }

    #[test]
    fn tokens_and_paths() {
        let u = User { id: 1, username: "admin".into(), ..User::default() };
        let t = make_token(b"k", &u, Duration::from_secs(60));
        assert_eq!(check_token(b"k", &t), Some(1));
        assert_eq!(check_token(b"other", &t), None);
        assert_eq!(clean("/a/../../etc/./passwd"), "/etc/passwd");
        assert_eq!(go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert!(bcrypt::verify("x", &hash_password("x").unwrap()).unwrap());
        assert!(hash_password("x").unwrap().starts_with("$2a$10$"));
    }
}
