//! Converging the running apps on the manifests, after they changed: what `archy-hook reconcile`
//! (run by archy-reconcile.path) and the package-manager hooks do. systemd does the work; this
//! decides what to ask of it: stop apps whose manifest is gone (before the reload that drops their
//! unit, while their ExecStop still exists), reload, start what is new, restart exactly the apps
//! whose definition changed, and repeat until the inputs stayed still during a whole pass.

use crate::atomic;
use crate::generate;
use crate::journal::HookLog;
use crate::names;
use crate::paths::{self, Paths};
use crate::systemctl;
use anyhow::Context as _;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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
        &[names::all_services()],
        &["Id", "ActiveState", "FragmentPath", "LoadState"],
    )?;
    Ok(shown
        .into_iter()
        .filter_map(|m| {
            let id = names::app_of_service(m.get("Id")?)?.to_string();
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
    let source = names::app(id).quadlet_source();
    let text = fs::read_to_string(generator_dir.join(generate::SOURCE_DIR).join(source)).ok()?;
    crate::digest::in_container_file(&text)
}

/// The digest label of the container running for `id`, if there is one.
pub fn running_digest(id: &str) -> Option<String> {
    crate::digest::of_container(&names::app(id).container())
}

/// How long reconcile waits for a starting app's container to appear (see `settled_digest`).
const CREATE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The digest of the definition the app's container runs, once that is knowable. While the unit
/// is in its `start` state without a container, podman run is creating one from the command line
/// it was spawned with, which may predate this pass's reload: wait for the container rather than
/// take "no container" for "nothing to compare" (an edit landing then was never applied). In any
/// other state without a container, the next start uses the definition loaded now.
pub fn settled_digest(id: &str) -> Option<String> {
    let unit = names::app(id).service();
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
        let (node, catalog) = generate::load_catalog(paths);
        let ids: BTreeSet<&str> = catalog.ids();

        // stop removed apps while their units still carry podman's cleanup
        let gone: Vec<AppUnit> = loaded_apps(&generator_dir)?
            .into_iter()
            .filter(|u| !ids.contains(u.id.as_str()))
            .collect();
        let units: Vec<String> = gone.iter().map(|u| names::app(&u.id).service()).collect();
        if !units.is_empty() {
            // their backup watchers (PartOf= the app) too, by pattern: they go even when a
            // daemon-reload has already dropped that link
            let watchers = gone.iter().map(|u| names::app(&u.id).backup_watchers());
            let all: Vec<String> = units.iter().cloned().chain(watchers).collect();
            if let Err(e) = systemctl::run("stop", &all[units.len()..]) {
                log.warning(&format!("stopping removed apps' backup watchers: {e:#}"));
            }
            let ids: Vec<String> = gone.iter().map(|u| u.id.clone()).collect();
            if let Err(e) = stop_apps(&ids, None) {
                log.warning(&format!("stopping removed apps: {e:#}"));
            }
            for u in &gone {
                let app = names::app(&u.id);
                // the unit's ExecStopPost removes it; a container left by an older stop goes too
                crate::podman::remove_container(&app.container());
                if let Some(d) = &last_good {
                    forget_last_good(&app.last_good(d), log);
                    let _ = fs::remove_dir_all(app.last_good_templates(d));
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
            .map(|u| u.id)
            .collect();
        if !off_network.is_empty() {
            let units: Vec<String> = off_network
                .iter()
                .map(|id| names::app(id).service())
                .collect();
            if let Err(e) = stop_apps(&off_network, None) {
                log.warning(&format!("stopping apps off the network: {e:#}"));
            }
            log.notice(&format!(
                "stopped apps that do not run on the node's network: {}",
                units.join(" ")
            ));
            summary.stopped.extend(off_network);
        }

        systemctl::daemon_reload()?;
        // new apps, and wanted apps that are down; active ones are left alone
        if let Err(e) = systemctl::run_no_block("start", &[crate::render::TARGET.to_string()]) {
            log.warning(&format!("starting {}: {e:#}", crate::render::TARGET));
        }

        let mut changed = Vec::new();
        let mut snapshot_first = Vec::new();
        let mut refused = false;
        for (id, app) in &catalog.valid {
            let Some(want) = generated_digest(&generator_dir, id) else {
                continue;
            };
            if let Some(have) = settled_digest(id) {
                if have != want {
                    use crate::update::apply::Start;
                    match stage_update(paths, node.as_ref().ok(), app, &want, log) {
                        Start::Restart => changed.push(names::app(id).service()),
                        Start::SnapshotFirst => snapshot_first.push(app),
                        Start::Refused(why) => {
                            log.for_app(id)
                                .error(&format!("app `{id}`: update refused: {why}"));
                            refused = true;
                            continue;
                        }
                    }
                    summary.restarted.insert(id.clone());
                }
            }
            if let (Some(dir), None, None) = (&last_good, &app.stale, &app.rolled_back) {
                record_last_good(&names::app(id).last_good(dir), &app.source, log);
                record_last_good_templates(paths, dir, app, log);
            }
        }
        if refused {
            // the generator renders the running definition again for a refused update
            systemctl::daemon_reload()?;
        }
        if let Ok(node) = &node {
            for app in snapshot_first {
                snapshot_then_start(paths, node, app, log);
            }
        }
        if !changed.is_empty() {
            if let Err(e) = systemctl::run_no_block("try-restart", &changed) {
                log.warning(&format!("restarting changed apps: {e:#}"));
            }
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

/// Keeps a copy of a valid manifest at `file` for the generator to fall back on. A failure is
/// logged: without the copy, a later broken manifest would leave the app without a definition.
fn record_last_good(file: &Path, source: &Path, log: &HookLog) {
    let dir = file.parent().expect("a file in the last-good dir");
    let kept = fs::read(source)
        .with_context(|| format!("reading {}", source.display()))
        .and_then(|text| {
            crate::secrets::create_private_dir(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
            atomic::write_if_changed(file, &text, 0o600)
                .with_context(|| format!("writing {}", file.display()))
        });
    if let Err(e) = kept {
        log.warning(&format!("keeping the last good manifest: {e:#}"));
    }
}

/// Stops the apps' units, also those still starting: systemd runs no `ExecStop=` (podman's stop)
/// for a unit that never turned active, and would wait out its whole stop timeout on conmon
/// (60 s seen, with a health-gated start). The stop jobs go first, so that `Restart=` does not
/// start them again once podman has stopped their containers (SIGTERM, then SIGKILL after
/// `stop_timeout`, default each container's own).
pub fn stop_apps(ids: &[String], stop_timeout: Option<u64>) -> anyhow::Result<()> {
    let units: Vec<String> = ids.iter().map(|id| names::app(id).service()).collect();
    systemctl::run_no_block("stop", &units)?;
    for id in ids {
        // no container (between starts, or already gone): its stop job waits for nothing
        let _ = crate::podman::stop(&names::app(id).container(), stop_timeout);
    }
    systemctl::run("stop", &units)
}

/// Stages the update of a running app (see `crate::update`); without node settings or a state
/// dir it is restarted as it always was.
fn stage_update(
    paths: &Paths,
    node: Option<&crate::node::NodeSettings>,
    app: &crate::catalog::ValidApp,
    digest: &str,
    log: &HookLog,
) -> crate::update::apply::Start {
    use crate::update::apply::{stage, Start};
    let (Some(node), Some(state), Some(last_good)) = (node, paths.state(), paths.last_good())
    else {
        return Start::Restart;
    };
    stage(paths, node, state, last_good, app, digest, log).unwrap_or_else(|e| {
        log.error(&format!(
            "app `{}`: recording its update: {e:#}; restarting it without a way back",
            app.manifest.id()
        ));
        Start::Restart
    })
}

/// An update whose app's data may not survive a downgrade: stop it, copy the data, start it.
fn snapshot_then_start(
    paths: &Paths,
    node: &crate::node::NodeSettings,
    app: &crate::catalog::ValidApp,
    log: &HookLog,
) {
    let log = &log.for_app(app.manifest.id());
    let service = names::app(app.manifest.id()).service();
    let snapshot = systemctl::run("stop", std::slice::from_ref(&service))
        .and_then(|()| crate::update::apply::take_snapshot(node, &app.manifest));
    match snapshot {
        Ok(()) => {
            log.notice(&format!(
                "took the data snapshot of app `{}` before its update",
                app.manifest.id()
            ));
            if let Err(e) = systemctl::run_no_block("start", &[service]) {
                log.warning(&format!("starting {}: {e:#}", app.manifest.id()));
            }
        }
        Err(e) => {
            let why = format!("the data snapshot failed: {e:#}");
            if let Some(state) = paths.state() {
                if let Err(e) = crate::update::apply::roll_back(paths, node, state, app, &why, log)
                {
                    log.error(&format!("{why}; and rolling back failed: {e:#}"));
                }
            }
        }
    }
}

/// Keeps the config templates of a valid app's definition beside its last good manifest: an
/// update replaces them, and a rollback needs the previous ones.
fn record_last_good_templates(
    paths: &Paths,
    dir: &Path,
    app: &crate::catalog::ValidApp,
    log: &HookLog,
) {
    let id = app.manifest.id();
    let to = names::app(id).last_good_templates(dir);
    let kept = (|| -> std::io::Result<()> {
        if app.manifest.config.is_empty() {
            return match fs::remove_dir_all(&to) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        crate::secrets::create_private_dir(&to)?;
        for f in &app.manifest.config {
            let name = f.template.as_str();
            let text = fs::read(paths.template(id, name))?;
            atomic::write_if_changed(&to.join(name), &text, 0o600)?;
        }
        Ok(())
    })();
    if let Err(e) = kept {
        log.warning(&format!("keeping app `{id}`'s last good templates: {e}"));
    }
}

/// Drops a removed app's last good manifest (it must not come back as a fallback).
fn forget_last_good(file: &Path, log: &HookLog) {
    match fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            log.warning(&format!("removing {}: {e}", file.display()))
        }
        _ => {}
    }
}
