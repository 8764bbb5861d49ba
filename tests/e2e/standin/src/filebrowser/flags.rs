//! The command line and the values behind it: pflag's flags (cmd/root.go, the deprecated
//! names' migrations), viper's flag, then environment (`FB_*`), then config file.

use crate::json::{self, Value};
use std::path::{Path, PathBuf};

/// name, shorthand, takes no value
type FlagDef = (&'static str, Option<char>, bool);

pub(super) const PERSISTENT: &[FlagDef] =
    &[("config", Some('c'), false), ("database", Some('d'), false)];
pub(super) const ROOT: &[FlagDef] = &[
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
pub(super) const USERS_UPDATE: &[FlagDef] = &[
    ("password", Some('p'), false),
    ("username", Some('u'), false),
];

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
    (
        "disable-type-detection-by-header",
        "disableTypeDetectionByHeader",
    ),
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
pub(super) struct Cli {
    pub(super) set: Vec<(String, String)>,
    pub(super) args: Vec<String>,
    pub(super) help: bool,
}

impl Cli {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.set
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(super) fn parse_flags(argv: &[String], defs: &[&[FlagDef]]) -> Result<Cli, String> {
    let find_long = |n: &str| {
        defs.iter()
            .flat_map(|d| d.iter())
            .find(|d| d.0 == n)
            .copied()
    };
    let find_short = |c: char| {
        defs.iter()
            .flat_map(|d| d.iter())
            .find(|d| d.1 == Some(c))
            .copied()
    };
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
            let (n, v) = long
                .split_once('=')
                .map_or((long, None), |(n, v)| (n, Some(v.to_string())));
            let n = match MIGRATIONS.iter().find(|(old, _)| *old == n) {
                Some((old, new)) => {
                    fblog!(
                        "DEPRECATION NOTICE: Flag --{old} has been deprecated, use --{new} instead"
                    );
                    *new
                }
                None => n,
            };
            (find_long(n).ok_or(format!("unknown flag: --{n}"))?, v)
        } else if let Some(short) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            let c = short.chars().next().unwrap_or('-');
            let rest = &short[c.len_utf8()..];
            let def = find_short(c).ok_or(format!("unknown shorthand flag: '{c}' in {a}"))?;
            let v = if rest.is_empty() {
                None
            } else {
                Some(rest.strip_prefix('=').unwrap_or(rest).to_string())
            };
            (def, v)
        } else {
            cli.args.push(a.clone());
            continue;
        };
        let value = match (def.2, inline) {
            (true, None) => "true".to_string(),
            (_, Some(v)) => v,
            (false, None) => {
                let v = argv
                    .get(i)
                    .cloned()
                    .ok_or(format!("flag needs an argument: --{}", def.0))?;
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
pub(super) struct Values {
    cli: Cli,
    conf: Vec<(String, String)>,
}

impl Values {
    pub(super) fn load(cli: Cli) -> Result<Values, String> {
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
                let v =
                    json::parse(text.trim()).map_err(|e| format!("While parsing config: {e}"))?;
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

    pub(super) fn get(&self, key: &str) -> Option<String> {
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
        self.conf
            .iter()
            .rev()
            .find(|(k, _)| *k == lower)
            .map(|(_, v)| v.clone())
    }

    pub(super) fn string(&self, key: &str) -> String {
        self.get(key)
            .unwrap_or_else(|| flag_default(key).to_string())
    }

    /// strconv.ParseBool, as cast.ToBool applies it
    pub(super) fn boolean(&self, key: &str) -> bool {
        matches!(
            self.string(key).as_str(),
            "1" | "t" | "T" | "true" | "TRUE" | "True"
        )
    }
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
    fn flags() {
        let a: Vec<String> = ["-p", "80", "--address=", "-d/db/x.db", "--baseurl", "/fb"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = parse_flags(&a, &[PERSISTENT, ROOT]).unwrap();
        assert_eq!(c.get("port"), Some("80"));
        assert_eq!(c.get("address"), Some(""));
        assert_eq!(c.get("database"), Some("/db/x.db"));
        assert_eq!(c.get("baseURL"), Some("/fb"));
        assert!(parse_flags(&["--nope".to_string()], &[ROOT]).is_err());
    }
}
