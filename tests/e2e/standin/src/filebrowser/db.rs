//! The database (cmd/utils.go `dbExists`, asdine/storm v3.2.1; BoltDB upstream, the stand-in's
//! own JSON here) and the quick setup (cmd/root.go `quickSetup`, users/password.go).

use super::flags::Values;
use super::{fail, fatal, go_errno, DB_MARKER, MIN_PASSWORD_LENGTH};
use crate::json::{self, num, obj, s, Value};
use crate::sys::random_bytes;
use crate::util::hex;
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
pub(super) struct User {
    pub(super) id: u64,
    pub(super) username: String,
    pub(super) password: String,
    pub(super) scope: String,
    pub(super) locale: String,
    pub(super) lock_password: bool,
    /// admin, execute, create, rename, modify, delete, share, download
    pub(super) perm: [bool; 8],
}

pub(super) const PERMS: [&str; 8] = [
    "admin", "execute", "create", "rename", "modify", "delete", "share", "download",
];

impl User {
    fn to_json(&self, with_password: bool) -> Value {
        let mut m = vec![("id", num(self.id)), ("username", s(&self.username))];
        if with_password {
            m.push(("password", s(&self.password)));
        }
        m.push(("scope", s(&self.scope)));
        m.push(("locale", s(&self.locale)));
        m.push(("lockPassword", Value::Bool(self.lock_password)));
        m.push((
            "perm",
            obj(PERMS
                .iter()
                .zip(self.perm)
                .map(|(k, v)| (*k, Value::Bool(v)))
                .collect()),
        ));
        obj(m)
    }

    fn from_json(v: &Value) -> User {
        let st = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
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
const SERVER_KEYS: &[&str] = &[
    "baseURL",
    "port",
    "log",
    "key",
    "cert",
    "address",
    "root",
    "tokenExpirationTime",
    "socket",
];

pub(super) struct Db {
    pub(super) file: File,
    pub(super) doc: Value,
}

impl Db {
    /// dbExists, storm.Open(path, BoltOptions(0640, nil)): Ok((db, existed)).
    pub(super) fn open(path: &Path) -> Result<(Db, bool), String> {
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
        while let Err(e) = crate::sys::lock_exclusive(&file) {
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

    pub(super) fn save(&mut self) -> std::io::Result<()> {
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

    pub(super) fn users(&self) -> Vec<User> {
        match self.doc.get("users") {
            Some(Value::Arr(a)) => a.iter().map(User::from_json).collect(),
            _ => Vec::new(),
        }
    }

    pub(super) fn set_users(&mut self, users: &[User]) {
        self.set(
            "users",
            Value::Arr(users.iter().map(|u| u.to_json(true)).collect()),
        );
    }

    pub(super) fn setting(&self, key: &str) -> Option<&Value> {
        self.doc.get("settings").and_then(|v| v.get(key))
    }
}

/// users.HashPwd: bcrypt.DefaultCost (10), Go's "$2a$" prefix
pub(super) fn hash_password(pwd: &str) -> Result<String, String> {
    bcrypt::hash_with_result(pwd, 10)
        .map(|h| h.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| e.to_string())
}

pub(super) fn quick_setup(v: &Values, db: &mut Db) -> Result<(), i32> {
    fblog!("Performing quick setup");
    let auth = if v.boolean("noauth") {
        "noauth"
    } else {
        "json"
    };
    db.set(
        "settings",
        obj(vec![
            ("key", s(&hex(&random_bytes(64)))),
            ("signup", Value::Bool(false)),
            ("authMethod", s(auth)),
            ("minimumPasswordLength", num(MIN_PASSWORD_LENGTH)),
            ("fileMode", num(0o640)),
            ("dirMode", num(0o750)),
        ]),
    );
    let server: Vec<(&str, Value)> = SERVER_KEYS
        .iter()
        .filter(|k| **k != "socket")
        .map(|k| (*k, s(&v.string(k))))
        .collect();
    db.set("server", obj(server));
    let username = v.string("username");
    let mut password = v.string("password");
    if password.is_empty() {
        let pwd = URL_SAFE.encode(random_bytes(MIN_PASSWORD_LENGTH));
        fblog!("User '{username}' initialized with randomly generated password: {pwd}");
        password = hash_password(&pwd).map_err(fail)?;
    } else {
        fblog!("User '{username}' initialize wth user-provided password");
    }
    if username.is_empty() {
        return Err(fatal(
            "username and password cannot be empty during quick setup",
        ));
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
