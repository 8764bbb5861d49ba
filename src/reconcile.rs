//! Converging the running apps on the manifests, after they changed: what `archy-hook reconcile`
//! (run by archy-reconcile.path) and the package-manager hooks do. systemd does the work; this
//! decides what to ask of it: stop apps whose manifest is gone (before the reload that drops their
//! unit, while their ExecStop still exists), reload, start what is new, restart exactly the apps
//! whose definition changed, and repeat until the inputs stayed still during a whole pass.

use crate::atomic;
use crate::generate;
use crate::journal::HookLog;
use crate::paths::{self, Paths};
use crate::systemctl;
use anyhow::Context as _;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Passes at full speed while the inputs keep changing; after that, a pause before each pass lets
/// a writer (a package manager unpacking many apps) finish instead of reloading at every file.
const FAST_PASSES: usize = 20;
const SLOW_PASS_DELAY: std::time::Duration = std::time::Duration::from_secs(1);
/// How long reconcile follows inputs that never stay still before it fails (visibly: the unit
/// fails). It cannot stop earlier and leave the change to "the next event": archy-reconcile.path
/// does not watch while this runs, so a change made during the last pass would never be applied.
const KEEP_UP: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub passes: usize,
    pub stopped: BTreeSet<String>,
    pub restarted: BTreeSet<String>,
    pub migrated: Vec<PathBuf>,
}

/// What identifies the state of every input the generator reads: name, size, mtime and inode of
/// each file in the manifest and grants dirs, and node.toml. A rename or an in-place edit changes it.
pub fn fingerprint(paths: &Paths) -> Vec<(PathBuf, u64, i64, i64, u64)> {
    let mut out = Vec::new();
    let mut add = |p: PathBuf| {
        if let Ok(m) = fs::metadata(&p) {
            out.push((p, m.len(), m.mtime(), m.mtime_nsec(), m.ino()));
        } else if fs::symlink_metadata(&p).is_ok() {
            out.push((p, 0, 0, 0, 0));
        }
    };
    let dirs = [
        paths.vendor_apps(),
        paths.admin_apps(),
        paths.vendor_grants(),
        paths.admin_grants(),
    ];
    for dir in dirs {
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                add(e.path());
            }
        }
    }
    add(paths.node_toml());
    out.sort();
    out
}

/// An `archy-<id>.service` the manager has loaded from archy's generator output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUnit {
    pub id: String,
    pub active: bool,
}

/// The app units the manager knows now: loaded from the generator dir, not archy's own units
/// (`archy-network`, `archy-reconcile`, `archy-secret@…`).
pub fn loaded_apps(generator_dir: &Path) -> anyhow::Result<Vec<AppUnit>> {
    let shown = systemctl::show(
        &["archy-*.service".to_string()],
        &["Id", "ActiveState", "FragmentPath", "LoadState"],
    )
    .context("systemctl --user show")?;
    Ok(shown
        .into_iter()
        .filter_map(|m| {
            let id = m
                .get("Id")?
                .strip_prefix("archy-")?
                .strip_suffix(".service")?
                .to_string();
            let from_generator = m
                .get("FragmentPath")
                .is_some_and(|f| Path::new(f).starts_with(generator_dir));
            let known = crate::text::is_id(&id) && id != "network" && !id.contains('@');
            let active = m
                .get("ActiveState")
                .is_some_and(|s| s != "inactive" && s != "failed");
            (known && (from_generator || m.get("LoadState").is_some_and(|s| s == "not-found")))
                .then_some(AppUnit { id, active })
        })
        .collect())
}

/// The digest label of the definition the generator produced for `id`.
pub fn generated_digest(generator_dir: &Path, id: &str) -> Option<String> {
    let text = fs::read_to_string(
        generator_dir
            .join(generate::SOURCE_DIR)
            .join(format!("archy-{id}.container")),
    )
    .ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix("Label=\"archy.digest=")?
            .strip_suffix('"')
            .map(str::to_string)
    })
}

/// The digest label of the container running for `id`, if there is one.
pub fn running_digest(id: &str) -> Option<String> {
    crate::podman::label(&crate::catalog::container_name(id), "archy.digest")
}

/// How long reconcile waits for a starting app's container to appear (see `settled_digest`).
const CREATE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The digest of the definition the app's container runs, once that is knowable. While the unit
/// is in its `start` state without a container, podman run is creating one from the command line
/// it was spawned with, which may predate this pass's reload: wait for the container rather than
/// take "no container" for "nothing to compare" (an edit landing then was never applied). In any
/// other state without a container, the next start uses the definition loaded now.
pub fn settled_digest(id: &str) -> Option<String> {
    let unit = format!("archy-{id}.service");
    let deadline = std::time::Instant::now() + CREATE_WAIT;
    loop {
        if let Some(d) = running_digest(id) {
            return Some(d);
        }
        let sub = systemctl::show(std::slice::from_ref(&unit), &["SubState"])
            .ok()
            .and_then(|v| v.into_iter().next())
            .and_then(|m| m.get("SubState").cloned());
        if sub.as_deref() != Some("start") || std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Moves Quadlet files the old orchestrator left (`archy-*.container` in the user's Quadlet dir)
/// aside, once: they would produce services with archy's names.
pub fn migrate_legacy(log: &HookLog) -> Vec<PathBuf> {
    let Some(dir) = paths::config_home().map(|c| c.join("containers/systemd")) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut moved = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let legacy = name.starts_with("archy")
            && [".container", ".network", ".volume", ".pod"]
                .iter()
                .any(|s| name.ends_with(s));
        if !legacy {
            continue;
        }
        // quadlet ignores files of other suffixes: renaming is enough, and keeps them for reference
        let to = dir.join(format!("{name}.migrated-by-archy"));
        match fs::rename(e.path(), &to) {
            Ok(()) => {
                log.notice(&format!(
                    "moved the old orchestrator's {} aside to {}: archy generates {} itself now",
                    e.path().display(),
                    to.display(),
                    name.rsplit_once('.').map_or(name.as_str(), |(b, _)| b)
                ));
                moved.push(to);
            }
            Err(err) => log.error(&format!(
                "could not move {} aside: {err}",
                e.path().display()
            )),
        }
    }
    moved
}

/// One reconcile, repeated until the inputs did not change during a pass.
pub fn reconcile(paths: &Paths, log: &HookLog) -> anyhow::Result<Summary> {
    let generator_dir = paths::generator_dir().context("no runtime dir")?;
    let last_good = paths.last_good().map(Path::to_path_buf);
    let mut summary = Summary::default();
    let started = std::time::Instant::now();
    loop {
        summary.passes += 1;
        if summary.passes > FAST_PASSES {
            std::thread::sleep(SLOW_PASS_DELAY);
        }
        let before = fingerprint(paths);
        summary.migrated.extend(migrate_legacy(log));
        let (_, catalog) = generate::load_catalog(paths);
        let ids: BTreeSet<&str> = catalog.ids();

        // stop removed apps while their units still carry podman's cleanup
        let gone: Vec<AppUnit> = loaded_apps(&generator_dir)?
            .into_iter()
            .filter(|u| !ids.contains(u.id.as_str()))
            .collect();
        let units: Vec<String> = gone
            .iter()
            .map(|u| format!("archy-{}.service", u.id))
            .collect();
        if !units.is_empty() {
            // their backup watchers (PartOf= the app) too, by pattern: they go even when a
            // daemon-reload has already dropped that link
            let watchers = gone.iter().map(|u| format!("archy-{}-backup-*.path", u.id));
            let all: Vec<String> = units.iter().cloned().chain(watchers).collect();
            systemctl::run("stop", &all).context("stopping removed apps")?;
            for u in &gone {
                // the unit's ExecStopPost removes it; a container left by an older stop goes too
                crate::podman::remove_container(&format!("archy-{}", u.id));
                if let Some(d) = &last_good {
                    let _ = fs::remove_file(d.join(format!("{}.toml", u.id)));
                }
                summary.stopped.insert(u.id.clone());
            }
            log.notice(&format!("stopped removed apps: {}", units.join(" ")));
        }

        // an app that cannot run on the node's network now (node.toml's `network` changed) is
        // stopped while its unit still is the container's: its failing unit only says why
        let off_network: Vec<String> = loaded_apps(&generator_dir)?
            .into_iter()
            .filter(|u| u.active)
            .filter(|u| {
                catalog
                    .invalid
                    .get(&u.id)
                    .is_some_and(|a| a.errors.iter().any(crate::networks::is_unsupported))
            })
            .map(|u| format!("archy-{}.service", u.id))
            .collect();
        if !off_network.is_empty() {
            systemctl::run("stop", &off_network).context("stopping apps off the network")?;
            log.notice(&format!(
                "stopped apps that do not run on the node's network: {}",
                off_network.join(" ")
            ));
            summary.stopped.extend(off_network.iter().map(|u| {
                u.trim_start_matches("archy-")
                    .trim_end_matches(".service")
                    .to_string()
            }));
        }

        if !systemctl::daemon_reload().context("daemon-reload")? {
            anyhow::bail!("systemctl --user daemon-reload failed");
        }
        // new apps, and wanted apps that are down; active ones are left alone
        systemctl::run_no_block("start", &[crate::render::TARGET.to_string()])
            .context("starting archy.target")?;

        let mut changed = Vec::new();
        for (id, app) in &catalog.valid {
            let Some(want) = generated_digest(&generator_dir, id) else {
                continue;
            };
            if let Some(have) = settled_digest(id) {
                if have != want {
                    changed.push(format!("archy-{id}.service"));
                    summary.restarted.insert(id.clone());
                }
            }
            if let (Some(dir), None) = (&last_good, &app.stale) {
                record_last_good(dir, id, &app.source);
            }
        }
        if !changed.is_empty() {
            systemctl::run_no_block("try-restart", &changed).context("restarting changed apps")?;
            log.notice(&format!("restarting changed apps: {}", changed.join(" ")));
        }
        for (id, app) in &catalog.valid {
            if let Some(e) = &app.stale {
                log.error(&format!(
                    "{e} (app `{id}` keeps running its last good definition)"
                ));
            }
        }
        for app in catalog.invalid.values() {
            for e in &app.errors {
                log.error(&e.to_string());
            }
        }
        if fingerprint(paths) == before {
            return Ok(summary);
        }
        if started.elapsed() >= KEEP_UP {
            anyhow::bail!(
                "the app manifests or node.toml kept changing for {} s ({} passes); once they \
                 are still, run `systemctl --user start archy-reconcile.service`",
                KEEP_UP.as_secs(),
                summary.passes
            );
        }
    }
}

/// Keeps a copy of a valid manifest for the generator to fall back on.
fn record_last_good(dir: &Path, id: &str, source: &Path) {
    let Ok(text) = fs::read(source) else { return };
    if crate::secrets::create_private_dir(dir).is_ok() {
        let _ = atomic::write_if_changed(&dir.join(format!("{id}.toml")), &text, 0o600);
    }
}

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
fn runtime_dir(user: &nix::unistd::User) -> PathBuf {
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

/// Runs `systemctl --user ARGS` in the user's own manager, reached through its private socket
/// (no system bus). Ok(None) when that manager is not running.
pub fn user_systemctl(user: &nix::unistd::User, args: &[&str]) -> anyhow::Result<Option<bool>> {
    if !runtime_dir(user).join("systemd/private").exists() {
        return Ok(None);
    }
    let mut cmd = Command::new("systemctl");
    cmd.arg("--user").args(args).stdin(Stdio::null());
    as_user(&mut cmd, user);
    let status = cmd
        .status()
        .context("running systemctl --user as the node user")?;
    Ok(Some(status.success()))
}
