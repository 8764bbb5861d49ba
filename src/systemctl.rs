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

/// The last line of priority error or worse a unit logged, if any.
pub fn last_error(unit: &str) -> Option<String> {
    let out = Command::new("journalctl")
        .args([
            "--user",
            "--no-pager",
            "-q",
            "-o",
            "cat",
            "-p",
            "err",
            "-n",
            "1",
            "-u",
            unit,
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()?
        .trim()
        .to_string();
    (!line.is_empty()).then_some(line)
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
