//! PostgreSQL as the .NET stand-ins reach it: by running Debian's `psql` (their images have
//! postgresql-client-17), with Npgsql's connection strings (`connstring`) and password lookup
//! (`passfile`), its failures reported as Npgsql's exceptions (`PostgresException.cs`
//! IsTransient).

mod connstring;
mod passfile;

pub use connstring::{parse, ConnString};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone)]
pub enum PgError {
    /// PostgresException: the server said so, with a SQLSTATE
    Server { sqlstate: String, message: String },
    /// NpgsqlException (a socket or protocol failure), with its inner exception
    Client {
        message: String,
        inner: Option<String>,
    },
    /// any other .NET exception, already as `Type: message`
    Other(String),
}

impl PgError {
    /// As the exception's ToString() starts.
    pub fn dotnet(&self) -> String {
        match self {
            PgError::Server { sqlstate, message } => {
                format!("Npgsql.PostgresException (0x80004005): {sqlstate}: {message}")
            }
            PgError::Client { message, inner } => match inner {
                Some(i) => format!("Npgsql.NpgsqlException (0x80004005): {message}\n ---> {i}"),
                None => format!("Npgsql.NpgsqlException (0x80004005): {message}"),
            },
            PgError::Other(s) => s.clone(),
        }
    }

    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Server { sqlstate, .. } => Some(sqlstate),
            _ => None,
        }
    }

    /// PostgresException.IsTransient (Npgsql 10.0.3).
    pub fn transient(&self) -> bool {
        matches!(
            self.sqlstate(),
            Some(
                "53000"
                    | "53100"
                    | "53200"
                    | "53300"
                    | "53400"
                    | "57P03"
                    | "58000"
                    | "58030"
                    | "40001"
                    | "40P01"
                    | "55P03"
                    | "55006"
                    | "55000"
                    | "08000"
                    | "08003"
                    | "08006"
                    | "08001"
                    | "08004"
                    | "08007"
                    | "57P01"
                    | "57P02"
                    | "57P05"
            )
        )
    }
}

/// Npgsql's default CommandTimeout.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn psql_path() -> PathBuf {
    for p in [
        "/usr/lib/postgresql/17/bin/psql",
        "/usr/lib/postgresql/18/bin/psql",
        "/usr/bin/psql",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("psql")
}

fn quote_conninfo(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// An SQL string literal.
pub fn lit(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// An SQL identifier, quoted.
pub fn ident(v: &str) -> String {
    format!("\"{}\"", v.replace('"', "\"\""))
}

#[derive(Clone, Debug)]
pub struct Pg {
    pub cs: ConnString,
}

impl Pg {
    pub fn new(cs: ConnString) -> Pg {
        Pg { cs }
    }

    /// The same connection with another database (None: none sent, the server's default).
    pub fn with_database(&self, db: Option<&str>) -> Pg {
        let mut cs = self.cs.clone();
        cs.database = db.map(str::to_string);
        Pg { cs }
    }

    pub fn username(&self) -> String {
        self.cs
            .username
            .clone()
            .or_else(|| std::env::var("PGUSER").ok())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into())
    }
    /// Run SQL (several statements are fine; only the last result's rows come back), in one
    /// transaction if `single_tx`.
    pub fn run(&self, sql: &str, single_tx: bool) -> Result<Vec<Vec<String>>, PgError> {
        let user = self.username();
        let pw = self.password(&user);
        let host = self.cs.host.clone().unwrap_or_else(|| "localhost".into());
        let mut ci = format!(
            "host={} port={} user={} connect_timeout={}",
            quote_conninfo(&host),
            self.cs.port,
            quote_conninfo(&user),
            self.cs.timeout.max(2)
        );
        if let Some(db) = &self.cs.database {
            ci.push_str(&format!(" dbname={}", quote_conninfo(db)));
        }
        if let Some(a) = &self.cs.application_name {
            ci.push_str(&format!(" application_name={}", quote_conninfo(a)));
        }
        if let Some(m) = &self.cs.ssl_mode {
            let m = match m.to_ascii_lowercase().as_str() {
                "verifyca" | "verify-ca" => "verify-ca".to_string(),
                "verifyfull" | "verify-full" => "verify-full".to_string(),
                other => other.to_string(),
            };
            ci.push_str(&format!(" sslmode={m}"));
        }
        let mut cmd = Command::new(psql_path());
        cmd.env_clear()
            .env("PGPASSFILE", "/dev/null")
            .env("PGCLIENTENCODING", "UTF8")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-v",
                "VERBOSITY=verbose",
            ])
            .args(["-F", "\u{1f}", "-R", "\u{1e}"]);
        if single_tx {
            cmd.arg("-1");
        }
        cmd.args(["-f", "-", "-d", &ci]);
        if let Ok(Some(p)) = &pw {
            cmd.env("PGPASSWORD", p);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            PgError::Other(format!("System.ComponentModel.Win32Exception: psql: {e}"))
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(sql.as_bytes());
        }
        // Npgsql gives up on a command after its CommandTimeout, 30 s by default (its connection
        // string docs, "Command Timeout"), and the .NET apps crash on it and are restarted:
        // a server that never answers must end the same way, not hang the app for good
        let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                buf
            })
        };
        let so = read(child.stdout.take().map(|p| Box::new(p) as _));
        let se = read(child.stderr.take().map(|p| Box::new(p) as _));
        let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(PgError::Other(format!(
                        "Npgsql.NpgsqlException: Exception while reading from stream ---> System.TimeoutException: Timeout during reading attempt ({} s)",
                        COMMAND_TIMEOUT.as_secs()
                    )));
                }
                Err(e) => return Err(PgError::Other(format!("System.IO.IOException: psql: {e}"))),
            }
        };
        let out = std::process::Output {
            status,
            stdout: so.join().unwrap_or_default(),
            stderr: se.join().unwrap_or_default(),
        };
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            let text = text.trim_end_matches('\n');
            return Ok(if text.is_empty() {
                Vec::new()
            } else {
                text.split('\u{1e}')
                    .map(|r| {
                        r.trim_start_matches('\n')
                            .split('\u{1f}')
                            .map(str::to_string)
                            .collect()
                    })
                    .collect()
            });
        }
        Err(classify(&stderr, self.cs.port, &pw))
    }

    pub fn query(&self, sql: &str) -> Result<Vec<Vec<String>>, PgError> {
        self.run(sql, false)
    }
}

/// psql's complaint, as the Npgsql exception the real program would have seen.
fn classify(stderr: &str, port: u16, pw: &Result<Option<String>, String>) -> PgError {
    // an error while running SQL: "psql:<stdin>:1: ERROR:  42P01: relation ... does not exist"
    if let Some(pos) = stderr.find("ERROR:  ") {
        let rest = &stderr[pos + 8..];
        let line = rest.lines().next().unwrap_or_default();
        if let Some((code, msg)) = line.split_once(": ") {
            if code.len() == 5 {
                return PgError::Server {
                    sqlstate: code.to_string(),
                    message: msg.to_string(),
                };
            }
        }
        return PgError::Server {
            sqlstate: "XX000".into(),
            message: line.to_string(),
        };
    }
    let ip = stderr
        .split_once("\" (")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(ip, _)| ip.to_string())
        .unwrap_or_default();
    if let Some(pos) = stderr.find("FATAL:  ") {
        let msg = stderr[pos + 8..]
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let sqlstate = if msg.contains("password authentication failed") {
            "28P01"
        } else if msg.starts_with("database") && msg.contains("does not exist") {
            "3D000"
        } else if msg.starts_with("role") && msg.contains("does not exist")
            || msg.contains("no pg_hba.conf entry")
        {
            "28000"
        } else if msg.contains("starting up")
            || msg.contains("shutting down")
            || msg.contains("not yet accepting")
            || msg.contains("recovery mode")
        {
            "57P03"
        } else if msg.contains("too many clients") || msg.contains("connection slots") {
            "53300"
        } else if msg.contains("permission denied") {
            "42501"
        } else {
            "XX000"
        };
        return PgError::Server {
            sqlstate: sqlstate.into(),
            message: msg,
        };
    }
    if stderr.contains("no password supplied") {
        return match pw {
            Err(e) => PgError::Other(e.clone()),
            _ => PgError::Client {
                message: "No password has been provided but the backend requires one (in SASL/SCRAM-SHA-256)"
                    .into(),
                inner: None,
            },
        };
    }
    if stderr.contains("Connection refused") {
        return PgError::Client {
            message: format!("Failed to connect to {ip}:{port}"),
            inner: Some("System.Net.Sockets.SocketException (111): Connection refused".into()),
        };
    }
    if stderr.contains("No route to host") {
        return PgError::Client {
            message: format!("Failed to connect to {ip}:{port}"),
            inner: Some("System.Net.Sockets.SocketException (113): No route to host".into()),
        };
    }
    if stderr.contains("could not translate host name") {
        return PgError::Other(
            "System.Net.Sockets.SocketException (00000005, 0xFFFDFFFF): Name or service not known"
                .into(),
        );
    }
    if stderr.contains("timeout expired") {
        return PgError::Client {
            message: "Exception while connecting".into(),
            inner: Some("System.TimeoutException: Timeout during connection attempt".into()),
        };
    }
    let first = stderr
        .lines()
        .next()
        .unwrap_or("psql failed")
        .trim_start_matches("psql: error: ")
        .to_string();
    PgError::Client {
        message: first,
        inner: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors() {
        let e = classify("psql: error: connection to server at \"pg\" (10.89.0.2), port 5432 failed: FATAL:  password authentication failed for user \"nbxplorer\"\n", 5432, &Ok(None));
        assert_eq!(
            e.dotnet(),
            "Npgsql.PostgresException (0x80004005): 28P01: password authentication failed for user \"nbxplorer\""
        );
        let e = classify("psql: error: connection to server at \"pg\" (10.89.0.2), port 5432 failed: Connection refused\n\tIs the server running", 5432, &Ok(None));
        assert!(
            e.dotnet().contains("Failed to connect to 10.89.0.2:5432"),
            "{}",
            e.dotnet()
        );
        let e = classify(
            "psql:<stdin>:1: ERROR:  42P01: relation \"nbxv1_migrations\" does not exist\nLINE 1",
            5432,
            &Ok(None),
        );
        assert_eq!(e.sqlstate(), Some("42P01"));
    }
}
