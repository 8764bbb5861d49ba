//! MariaDB through the real client (database.ts uses mysql2): queries, mysql2's error texts and
//! escaping, and the PID lock (`getPidLock`).

use super::bitcoind::node_connect;
use super::config::{normalize, Config};
use super::log::{err, warn};
use super::{node_fs_error, PACKAGE_DIR};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub(super) struct Db {
    pub(super) host: String,
    pub(super) port: i64,
    pub(super) socket: String,
    pub(super) database: String,
    pub(super) user: String,
    pub(super) password: String,
}

type Rows = Vec<Vec<Option<String>>>;

impl Db {
    pub(super) fn from(cfg: &Config) -> Db {
        Db {
            host: cfg.str("DATABASE", "HOST"),
            port: cfg.num("DATABASE", "PORT"),
            socket: cfg.str("DATABASE", "SOCKET"),
            database: cfg.str("DATABASE", "DATABASE"),
            user: cfg.str("DATABASE", "USERNAME"),
            password: cfg.str("DATABASE", "PASSWORD"),
        }
    }

    /// Run SQL (statements separated by `;`); the rows of the last result set.
    pub(super) fn query(&self, sql: &str) -> Result<Rows, String> {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults");
        if self.socket.is_empty() {
            cmd.arg("--protocol=TCP")
                .arg(format!("--host={}", self.host))
                .arg(format!("--port={}", self.port));
        } else {
            cmd.arg("--protocol=SOCKET")
                .arg(format!("--socket={}", self.socket));
        }
        cmd.arg(format!("--user={}", self.user))
            .arg(format!("--database={}", self.database))
            .args([
                "--batch",
                "--skip-column-names",
                "--connect-timeout=10",
                "--default-character-set=utf8mb4",
            ])
            .arg(format!("--execute=SET time_zone='+00:00'; {sql}"));
        cmd.env_remove("MYSQL_PWD");
        if !self.password.is_empty() {
            cmd.env("MYSQL_PWD", &self.password);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("spawn mariadb ENOENT ({e})"))?;
        if !out.status.success() {
            return Err(self.error_message(&String::from_utf8_lossy(&out.stderr)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .map(|l| {
                l.split('\t')
                    .map(|f| {
                        if f == "NULL" {
                            None
                        } else {
                            Some(
                                f.replace("\\n", "\n")
                                    .replace("\\t", "\t")
                                    .replace("\\0", "\0")
                                    .replace("\\\\", "\\"),
                            )
                        }
                    })
                    .collect()
            })
            .collect())
    }

    /// The client's error as mysql2 would word it: the server's text, node's for the network.
    fn error_message(&self, stderr: &str) -> String {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("ERROR "))
            .unwrap_or(stderr.trim())
            .to_string();
        let code: i64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if matches!(code, 2002 | 2003 | 2005 | 2006 | 2013) && self.socket.is_empty() {
            return match node_connect(&self.host, self.port as u16, Duration::from_secs(10)) {
                Err((m, _)) => m,
                Ok(_) => "Connection lost: The server closed the connection.".into(),
            };
        }
        match line.find("): ") {
            Some(i) => line[i + 3..].to_string(),
            None => line,
        }
    }

    pub(super) fn exec(&self, sql: &str) -> Result<(), String> {
        self.query(sql).map(|_| ())
    }
}

/// A SQL string literal (mysql2's escape).
pub(super) fn q(v: &str) -> String {
    let mut out = String::from("'");
    for c in v.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// getPidLock: the file's path (removed at a signal's exit), or the process's exit (an unhandled
/// rejection).
pub(super) fn pid_lock(cfg: &Config) -> Result<PathBuf, i32> {
    let dir = cfg.str("DATABASE", "PID_DIR");
    let dir = if dir.is_empty() {
        PACKAGE_DIR.to_string()
    } else {
        dir
    };
    let path = normalize(
        &Path::new(&dir).join(format!("mempool-{}.pid", cfg.str("DATABASE", "DATABASE"))),
    );
    let shown = path.display().to_string();
    let me = std::process::id();
    if path.exists() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let digits: String = text
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let pid: Option<u32> = digits.parse().ok();
        let pid_s = pid.map_or("NaN".to_string(), |p| p.to_string());
        if pid == Some(me) {
            warn("PID file already exists for this process");
        } else {
            let ps = Command::new("ps")
                .args(["-p", &pid_s, "-o", "args="])
                .output();
            match ps {
                Ok(o) if o.status.success() => {
                    if String::from_utf8_lossy(&o.stdout).contains("node") {
                        let msg = format!(
                            "Another mempool nodejs process is already running on PID {pid_s}"
                        );
                        err(&msg);
                        eprintln!("unhandledRejection: Error: {msg}");
                        return Err(1);
                    }
                    warn(format!("Stale PID file at {shown}, but the PID {pid_s} does not belong to a running mempool instance"));
                }
                _ => warn(format!(
                    "Stale PID file at {shown}, but no process running on that PID {pid_s}"
                )),
            }
        }
    }
    if let Err(e) = std::fs::write(&path, me.to_string()) {
        eprintln!("unhandledRejection: Error: {}", node_fs_error(&e, &shown));
        return Err(1);
    }
    crate::sys::remove_on_exit(&path);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_quoting() {
        assert_eq!(q("a'b\\c"), "'a\\'b\\\\c'");
    }
}
