//! Thin wrappers over `systemctl --user`, the one way archy talks to the service manager.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

fn systemctl() -> Command {
    let mut c = Command::new("systemctl");
    c.arg("--user")
        .arg("--no-ask-password")
        .stdin(Stdio::null());
    c
}

/// A systemctl command that failed: the command, its exit status and what it said.
#[derive(Debug)]
pub struct Failed {
    pub command: String,
    pub status: std::process::ExitStatus,
    pub stderr: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` failed ({})", self.command, self.status)?;
        if !self.stderr.is_empty() {
            write!(f, ": {}", self.stderr)?;
        }
        Ok(())
    }
}

impl std::error::Error for Failed {}

/// Runs `cmd`, its standard output returned; a failure is an error naming the command and
/// carrying its standard error.
fn output(mut cmd: Command) -> anyhow::Result<String> {
    let command = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| anyhow::anyhow!("running `{command}`: {e}"))?;
    if !out.status.success() {
        return Err(Failed {
            command,
            status: out.status,
            stderr: crate::text::one_line(String::from_utf8_lossy(&out.stderr).trim()),
        }
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Properties of `units`, one map per unit, in order.
pub fn show(units: &[String], props: &[&str]) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = systemctl();
    c.arg("show")
        .arg(format!("--property={}", props.join(",")))
        .arg("--")
        .args(units);
    Ok(parse_show(&output(c)?))
}

/// Properties of one unit, timestamps as `@<unix seconds>`.
pub fn show_unix(unit: &str, props: &[&str]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut c = systemctl();
    c.arg("show")
        .arg("--timestamp=unix")
        .arg(format!("--property={}", props.join(",")))
        .arg("--")
        .arg(unit);
    Ok(parse_show(&output(c)?)
        .into_iter()
        .next()
        .unwrap_or_default())
}

/// `show`'s output: blocks of `KEY=value` lines, one block per unit.
fn parse_show(text: &str) -> Vec<BTreeMap<String, String>> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Runs `systemctl --user <verb> <units...>`, waiting for the jobs.
pub fn run(verb: &str, units: &[String]) -> anyhow::Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    let mut c = systemctl();
    c.arg(verb).arg("--").args(units);
    output(c).map(drop)
}

/// `systemctl --user daemon-reload`.
pub fn daemon_reload() -> anyhow::Result<()> {
    let mut c = systemctl();
    c.arg("daemon-reload");
    output(c).map(drop)
}

/// The last line of priority error or worse a unit's processes logged (the app's own, its
/// hooks'), if any; the manager's own lines ("Failed to start ...") say nothing an operator
/// does not see in the state already.
pub fn last_error(unit: &str) -> Option<String> {
    let out = Command::new("journalctl")
        .args([
            "--user",
            "--no-pager",
            "-q",
            "-o",
            "json",
            "-p",
            "err",
            "-n",
            "50",
            "-u",
            unit,
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    last_app_error(&String::from_utf8_lossy(&out.stdout))
}

/// From `journalctl -o json` lines: the last message not from the service manager itself.
fn last_app_error(json_lines: &str) -> Option<String> {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["SYSLOG_IDENTIFIER"].as_str() != Some("systemd"))
        .filter_map(|e| e["MESSAGE"].as_str().map(|m| m.trim().to_string()))
        .rfind(|m| !m.is_empty())
}

/// Like `run`, with `--no-block`: the jobs are queued and this returns at once.
pub fn run_no_block(verb: &str, units: &[String]) -> anyhow::Result<()> {
    if units.is_empty() {
        return Ok(());
    }
    let mut c = systemctl();
    c.arg(verb).arg("--no-block").arg("--").args(units);
    output(c).map(drop)
}

/// Queued jobs by unit: `(type, state)`, e.g. `("start", "waiting")`.
pub fn jobs() -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let mut c = systemctl();
    c.args(["list-jobs", "--plain", "--no-legend"]);
    Ok(parse_jobs(&output(c)?))
}

/// Runs `command` once, `secs` from now, as the transient unit `unit` (a timer and its service,
/// `systemd-run --user --on-active`): a one-off check, not a poll.
pub fn run_later(unit: &str, secs: u64, command: &[String]) -> anyhow::Result<()> {
    let mut c = Command::new("systemd-run");
    c.arg("--user")
        .arg("--no-ask-password")
        .arg("--quiet")
        .arg("--collect")
        .arg(format!("--unit={unit}"))
        .arg(format!("--on-active={}", secs.max(1)))
        .arg("--timer-property=AccuracySec=1s")
        .stdin(Stdio::null());
    for k in ["ARCHY_ROOT", "ARCHY_PODMAN"] {
        if let Some(v) = std::env::var_os(k) {
            c.arg(format!("--setenv={k}={}", v.to_string_lossy()));
        }
    }
    c.arg("--").args(command);
    output(c).map(drop)
}

/// Whether `run_as` reached the user's manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    Ran,
    /// The user's manager is not running: nothing was asked.
    NotRunning,
}

/// Runs `systemctl --user ARGS` in `user`'s own manager, reached through its private socket (no
/// system bus): for root acting in the service user's name (package-manager hooks).
pub fn run_as(user: &nix::unistd::User, args: &[&str]) -> anyhow::Result<Reached> {
    if !crate::service_user::runtime_dir(user)
        .join("systemd/private")
        .exists()
    {
        return Ok(Reached::NotRunning);
    }
    let mut c = systemctl();
    c.args(args);
    crate::service_user::as_user(&mut c, user);
    output(c).map(|_| Reached::Ran)
}

/// `list-jobs --plain --no-legend` lines: `JOB UNIT TYPE STATE`.
fn parse_jobs(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (_, unit, kind, state) = (w.next()?, w.next()?, w.next()?, w.next()?);
            Some((unit.to_string(), (kind.to_string(), state.to_string())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn show_blocks_by_unit() {
        let v = super::parse_show(
            "Id=a.service\nActiveState=active\n\nId=b.service\nActiveState=failed\n",
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[1]["ActiveState"], "failed");
        assert!(super::parse_show("").is_empty());
    }

    #[test]
    fn a_failure_names_the_command_and_says_its_stderr() {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", "echo 'Unit x.service not loaded.' >&2; exit 5"]);
        let e = super::output(c).unwrap_err().to_string();
        assert!(e.starts_with("`sh -c "), "{e}");
        assert!(e.ends_with(": Unit x.service not loaded."), "{e}");
        assert!(e.contains("exit status: 5"), "{e}");
    }

    #[test]
    fn the_apps_last_error_not_the_managers() {
        let lines = [
            r#"{"SYSLOG_IDENTIFIER":"archy-mempool-backend","MESSAGE":"Access denied for user 'mempool'"}"#,
            r#"{"SYSLOG_IDENTIFIER":"systemd","MESSAGE":"Failed to start archy-mempool-backend.service"}"#,
            "not json",
        ]
        .join("\n");
        assert_eq!(
            super::last_app_error(&lines).as_deref(),
            Some("Access denied for user 'mempool'")
        );
        assert_eq!(
            super::last_app_error(&lines[lines.find('\n').unwrap()..]),
            None
        );
    }

    #[test]
    fn jobs_by_unit() {
        let j = super::parse_jobs(
            "12 archy-lnd.service start waiting\n9 archy-bitcoin-core.service start running\n",
        );
        assert_eq!(j["archy-lnd.service"], ("start".into(), "waiting".into()));
        assert_eq!(j.len(), 2);
        assert!(super::parse_jobs("No jobs running.\n").is_empty());
    }
}
