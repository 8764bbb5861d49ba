//! The few podman commands the hooks need, as thin wrappers. Rootless: they act as the calling user.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn podman() -> Command {
    let mut c = Command::new(std::env::var_os("ARCHY_PODMAN").unwrap_or_else(|| "podman".into()));
    c.stdin(Stdio::null());
    c
}

fn run(mut cmd: Command) -> std::io::Result<Output> {
    cmd.output()
}

/// Whether the image is in local storage.
pub fn image_exists(reference: &str) -> std::io::Result<bool> {
    let mut c = podman();
    c.args(["image", "exists", "--", reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(c.status()?.success())
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

/// `podman pull`; `tls_verify` false only for registries node.toml lists as insecure.
pub fn pull(reference: &str, tls_verify: bool) -> std::io::Result<Output> {
    let mut c = podman();
    c.args(["pull", "--quiet"]);
    if !tls_verify {
        c.arg("--tls-verify=false");
    }
    c.args(["--", reference]);
    run(c)
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

/// The registry part of an image reference, as podman resolves short names with docker.io.
pub fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries() {
        assert_eq!(registry_of("docker.io/library/nginx:1"), "docker.io");
        assert_eq!(registry_of("nginx"), "docker.io");
        assert_eq!(registry_of("lightninglabs/lnd:v1"), "docker.io");
        assert_eq!(registry_of("localhost/x:1"), "localhost");
        assert_eq!(registry_of("registry.local:5000/x"), "registry.local:5000");
    }
}
