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

/// Properties of `units`, one map per unit, in order.
pub fn show(units: &[String], props: &[&str]) -> std::io::Result<Vec<BTreeMap<String, String>>> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    let out = systemctl()
        .arg("show")
        .arg(format!("--property={}", props.join(",")))
        .arg("--")
        .args(units)
        .stderr(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut result = Vec::new();
    for block in text.split("\n\n") {
        if block.trim().is_empty() {
            continue;
        }
        let map = block
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        result.push(map);
    }
    Ok(result)
}

/// Runs `systemctl --user <verb> <units...>`; Ok(false) when systemctl reported a failure.
pub fn run(verb: &str, units: &[String]) -> std::io::Result<bool> {
    if units.is_empty() {
        return Ok(true);
    }
    Ok(systemctl()
        .arg(verb)
        .arg("--")
        .args(units)
        .status()?
        .success())
}

/// `systemctl --user daemon-reload`.
pub fn daemon_reload() -> std::io::Result<bool> {
    Ok(systemctl().arg("daemon-reload").status()?.success())
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
pub fn run_no_block(verb: &str, units: &[String]) -> std::io::Result<bool> {
    if units.is_empty() {
        return Ok(true);
    }
    Ok(systemctl()
        .arg(verb)
        .arg("--no-block")
        .arg("--")
        .args(units)
        .status()?
        .success())
}

/// Queued jobs by unit: `(type, state)`, e.g. `("start", "waiting")`.
pub fn jobs() -> std::io::Result<BTreeMap<String, (String, String)>> {
    let out = systemctl()
        .args(["list-jobs", "--plain", "--no-legend"])
        .stderr(Stdio::null())
        .output()?;
    Ok(parse_jobs(&String::from_utf8_lossy(&out.stdout)))
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
