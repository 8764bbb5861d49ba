//! The few podman commands the hooks need, as thin wrappers. Rootless: they act as the calling user.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn podman() -> Command {
    let mut c = Command::new(std::env::var_os("ARCHY_PODMAN").unwrap_or_else(|| "podman".into()));
    // podman refuses to run in a working directory its user cannot enter ("cannot chdir"): an
    // admin's `sudo -u archy archy-hook status` from /root would see every app without health
    c.stdin(Stdio::null()).current_dir("/");
    c
}

fn run(mut cmd: Command) -> std::io::Result<Output> {
    cmd.output()
}

/// The command as a person would type it, for messages.
fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd`; a failure is an error naming the command, with what it said on stderr.
fn checked(cmd: Command) -> std::io::Result<Output> {
    let command = shown(&cmd);
    let out = run(cmd).map_err(|e| std::io::Error::other(format!("running `{command}`: {e}")))?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(std::io::Error::other(format!(
        "`{command}` failed ({}): {}",
        out.status,
        crate::text::one_line(stderr.trim())
    )))
}

/// Whether the image is in local storage.
pub fn image_exists(reference: &str) -> std::io::Result<bool> {
    let mut c = podman();
    c.args(["image", "exists", "--", reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(c.status()?.success())
}

/// The user an image's process runs as by default (its USER), as written there: empty for root.
pub fn image_user(reference: &str) -> std::io::Result<Option<String>> {
    let mut c = podman();
    c.args([
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}",
        "--",
        reference,
    ]);
    let out = run(c)?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

/// `podman build -t <reference> <context>`; output goes to the caller's stdout/stderr (the unit's
/// journal).
pub fn build(reference: &str, context: &Path) -> std::io::Result<bool> {
    let mut c = podman();
    // --pull=never: a FROM image comes from local storage, never from a registry node.toml
    // does not allow
    c.args(["build", "--pull=never", "--tag", reference, "--"])
        .arg(context);
    Ok(c.status()?.success())
}

/// `podman pull`; `tls_verify` false only for registries node.toml lists as insecure. A failure
/// names the command and says podman's message.
pub fn pull(reference: &str, tls_verify: bool) -> std::io::Result<()> {
    let mut c = podman();
    c.args(["pull", "--quiet"]);
    if !tls_verify {
        c.arg("--tls-verify=false");
    }
    c.args(["--", reference]);
    checked(c).map(drop)
}

/// A label of a container (`podman inspect`); None when there is no such container.
pub fn label(container: &str, key: &str) -> Option<String> {
    let mut c = podman();
    c.args(["inspect", "--type", "container", "--format"])
        .arg(format!("{{{{index .Config.Labels \"{key}\"}}}}"))
        .arg(container)
        .stderr(Stdio::null());
    let out = c.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `podman rm --force --ignore --volumes NAME`, its outcome ignored: cleanup of a container a
/// stopped unit may have left.
pub fn remove_container(name: &str) {
    let mut c = podman();
    c.args(["rm", "--force", "--ignore", "--volumes", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _ = c.status();
}

/// What podman says about a container: ID, state and host PIDs of its process and conmon
/// (`archy::leftover::parse_inspect` reads the line); None when there is no such container.
pub fn container_state(container: &str) -> Option<String> {
    let mut c = podman();
    c.args([
        "inspect",
        "--type",
        "container",
        "--format",
        "{{.Id}} {{.State.Status}} {{.State.Pid}} {{.State.ConmonPid}}",
        "--",
        container,
    ])
    .stderr(Stdio::null());
    let out = run(c).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `podman rm --force --volumes ID`: Err with podman's message when it fails.
pub fn remove_container_checked(id: &str) -> std::io::Result<()> {
    let mut c = podman();
    c.args(["rm", "--force", "--volumes", "--", id]);
    checked(c).map(drop)
}

/// Whether a container of that name exists (running or not).
pub fn container_exists(name: &str) -> bool {
    let mut c = podman();
    c.args(["container", "exists", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c.status().is_ok_and(|s| s.success())
}

/// `podman unshare rm -rf --one-file-system -- PATH`: deletes a tree whatever subordinate id of
/// the service user owns its files; fails with rm's message.
pub fn unshare_remove(path: &str) -> std::io::Result<()> {
    let mut c = podman();
    c.args(["unshare", "rm", "-rf", "--one-file-system", "--", path]);
    checked(c).map(drop)
}

/// `podman unshare ARGS...`: a command in podman's user namespace, where the service user owns
/// every file its apps' containers wrote; fails naming the command with its stderr.
pub fn unshare(args: &[&str]) -> std::io::Result<Output> {
    let mut c = podman();
    c.arg("unshare").args(args);
    checked(c)
}

/// `podman stop [--time SECS] NAME`: SIGTERM to the container's process, SIGKILL after `secs`
/// (default: the container's own stop timeout, which quadlet set from the manifest); fails
/// naming podman's reason (no such container, say).
pub fn stop(name: &str, secs: Option<u64>) -> std::io::Result<()> {
    let mut c = podman();
    c.arg("stop");
    if let Some(s) = secs {
        c.args(["--time", &s.to_string()]);
    }
    c.args(["--", name]);
    checked(c).map(drop)
}

/// `podman image rm REFERENCE`: fails (naming podman's reason) while a container uses it.
pub fn remove_image(reference: &str) -> std::io::Result<()> {
    let mut c = podman();
    c.args(["image", "rm", "--", reference]);
    checked(c).map(drop)
}

/// `podman ARGS...` for an init step: its standard error goes to the caller's (the unit's
/// journal); its standard output too, unless `keep` (then it is returned, never logged).
pub fn run_step(args: &[String], keep: bool) -> std::io::Result<Output> {
    let mut c = podman();
    // the step runs in the app unit's ExecStartPre=: the unit's notify socket is for the app's
    // container, not for this one's podman
    c.env_remove("NOTIFY_SOCKET");
    c.args(args).stderr(Stdio::inherit());
    if keep {
        c.stdout(Stdio::piped());
    } else {
        c.stdout(Stdio::inherit());
    }
    c.output()
}

/// The health status podman reports for a container (`healthy`, `unhealthy`, `starting`, or
/// empty without a health check); None when there is no such container.
pub fn health(container: &str) -> Option<String> {
    let mut c = podman();
    c.args([
        "inspect",
        "--format",
        "{{.State.Health.Status}}",
        "--",
        container,
    ]);
    let out = run(c).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The container's health and what its latest check printed; None when there is no such
/// container. A paused container is `paused`, whatever its last check said: podman runs no check
/// in a paused container, so its health would stay what it was before.
pub fn health_facts(container: &str) -> Option<crate::status::HealthFacts> {
    let mut c = podman();
    c.args([
        "inspect",
        "--format",
        r#"{"State":"{{.State.Status}}","Health":{{json .State.Health}}}"#,
        "--",
        container,
    ]);
    let out = run(c).ok()?;
    if !out.status.success() {
        return None;
    }
    Some(parse_health(&String::from_utf8_lossy(&out.stdout)))
}

/// The container's state and podman's `.State.Health` as JSON: `Status`, and `Log` with the
/// latest check last.
fn parse_health(json: &str) -> crate::status::HealthFacts {
    let all: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_default();
    if all["State"] == "paused" {
        return crate::status::HealthFacts {
            status: "paused".into(),
            output: Some("paused (podman pause): no checks run, nothing served".into()),
        };
    }
    let v = &all["Health"];
    let status = v["Status"].as_str().unwrap_or_default().to_string();
    let output = v["Log"]
        .as_array()
        .and_then(|log| log.last())
        .and_then(|e| e["Output"].as_str())
        .and_then(crate::status::last_line);
    crate::status::HealthFacts { status, output }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_runs_from_the_root_dir_whatever_the_callers_is() {
        assert_eq!(podman().get_current_dir(), Some(Path::new("/")));
    }

    #[test]
    fn a_failure_names_the_command_and_says_its_stderr() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo 'Error: no such image' >&2; exit 125"]);
        let e = checked(c).unwrap_err().to_string();
        assert!(e.starts_with("`sh -c echo"), "{e}");
        assert!(
            e.ends_with("exit status: 125): Error: no such image"),
            "{e}"
        );
    }

    #[test]
    fn health_output_is_the_latest_checks_last_line() {
        let h = parse_health(
            r#"{"State":"running","Health":{"Status":"starting","FailingStreak":0,"Log":[
                {"Start":"a","End":"b","ExitCode":1,"Output":"old"},
                {"Start":"c","End":"d","ExitCode":1,"Output":"warning: noise\nwaiting for bitcoind: 12%\n"}]}}"#,
        );
        assert_eq!(h.status, "starting");
        assert_eq!(h.output.as_deref(), Some("waiting for bitcoind: 12%"));
        let none = parse_health(r#"{"State":"running","Health":null}"#);
        assert_eq!(none.status, "");
        assert_eq!(none.output, None);
        // podman's health of a paused container is the one from before the pause
        let paused = parse_health(r#"{"State":"paused","Health":{"Status":"healthy","Log":[]}}"#);
        assert_eq!(paused.status, "paused");
    }
}
