//! The node's service user, for root acting in its name (package-manager hooks, an admin's
//! `archy-hook status`): who it is, by node.toml, and the environment its manager's processes have.

use crate::paths::Paths;
use anyhow::Context as _;
use std::path::PathBuf;
use std::process::Command;

/// For package-manager hooks run as root: the node user's uid and gid from node.toml.
pub fn node_user(paths: &Paths) -> anyhow::Result<nix::unistd::User> {
    let node = crate::load::read_node(paths)?;
    let name = node
        .user
        .map(|u| u.as_str().to_string())
        .context("node.toml names no service user (`user = ...`)")?;
    let user = match name.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(uid.into())?,
        Err(_) => nix::unistd::User::from_name(&name)?,
    };
    user.with_context(|| format!("no such user `{name}`"))
}

/// The user's runtime dir, where its manager's sockets are: `/run/user/<uid>`.
pub fn runtime_dir(user: &nix::unistd::User) -> PathBuf {
    PathBuf::from(format!("/run/user/{}", user.uid))
}

/// Makes `cmd` run as the node user, in the environment a process of its user manager has
/// (HOME, USER, XDG_RUNTIME_DIR, its session bus; nothing else of the caller's but `ARCHY_*`),
/// from `/`. For root (a package's maintainer script, an admin) acting in that user's name.
pub fn as_user(cmd: &mut Command, user: &nix::unistd::User) {
    use std::os::unix::process::CommandExt;
    let runtime = runtime_dir(user);
    cmd.env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("ARCHY_")))
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", &user.dir)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}/bus", runtime.display()),
        )
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .current_dir("/");
}
