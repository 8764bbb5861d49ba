//! The effects of an update's life: staging it when reconcile applies it, checking it when its
//! check fires, keeping it or rolling it back. The decisions are `super`'s.

use super::{Failed, Observed, Pending, Records, Verdict};
use crate::catalog::ValidApp;
use crate::journal::HookLog;
use crate::names;
use crate::node::NodeSettings;
use crate::paths::Paths;
use anyhow::Context as _;
use std::path::Path;

/// What reconcile does about an app whose definition changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Restart it on the new definition (as before updates were tracked).
    Restart,
    /// Stop it, copy its data (`snapshot`), then start it on the new definition.
    SnapshotFirst,
    /// Not applied (the reason is recorded as a failed version): the generator renders the
    /// previous definition at the next reload, and nothing is stopped.
    Refused(String),
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Records the update of a running app from its last good definition (in `last_good`) to the
/// one just generated (`digest`), and arms its check. Called before the app restarts.
pub fn stage(
    paths: &Paths,
    node: &NodeSettings,
    state: &Path,
    last_good: &Path,
    app: &ValidApp,
    digest: &str,
    log: &HookLog,
) -> anyhow::Result<Start> {
    let m = &app.manifest;
    let id = m.id();
    let log = &log.for_app(id);
    let names = names::app(id);
    let records = Records::of(state, id);
    let Some(version) = super::current_version(paths, &app.source, m) else {
        return Ok(Start::Restart);
    };
    // the previous definition is the last one kept: a second update before the first was kept
    // replaces the first, not what came before it
    if records.pending().is_none() {
        let good = names.last_good(last_good);
        if !good.is_file() {
            return Ok(Start::Restart); // never applied before: nothing to go back to
        }
        crate::secrets::create_private_dir(records.dir())?;
        let text = std::fs::read(&good).with_context(|| format!("reading {}", good.display()))?;
        crate::atomic::write(&records.previous_manifest(), &text, 0o600)?;
        copy_dir_files(
            &names.last_good_templates(last_good),
            &records.previous_templates(),
        )?;
    }
    let from = crate::load::read_manifest(&records.previous_manifest(), id, node.network)
        .map(|p| p.image.reference.to_string())
        .unwrap_or_else(|_| "(previous)".into());
    let to = m.image.reference.to_string();
    records.clear_failed()?;
    let mut snapshot = false;
    if !m.update.reversible {
        let need = snapshot_size(node, m)?;
        let data = names.data_dir(node);
        let free = crate::disk::available(&data)
            .with_context(|| format!("checking free space at {}", data.display()))?;
        let reserve = m.service.disk_reserve.unwrap_or(node.disk_reserve).0;
        if let Err(why) = super::snapshot_fits(need, free, reserve) {
            records.write_failed(&Failed {
                version,
                from,
                to,
                reason: why.clone(),
                at: now(),
                refused: true,
            })?;
            records.clear_pending()?;
            return Ok(Start::Refused(why));
        }
        snapshot = true;
    }
    let pending = Pending {
        version,
        digest: digest.to_string(),
        from,
        to,
        applied_at: now(),
        deadline: super::deadline(m),
        grace: m.update.grace.whole_secs(),
        snapshot,
    };
    records.write_pending(&pending)?;
    arm(id, first_check(&pending), log);
    log.notice(&format!(
        "updating app `{id}` from {} to {}: kept once healthy for {} s{}",
        pending.from,
        pending.to,
        pending.grace,
        pending.deadline.map_or(String::new(), |d| format!(
            ", rolled back if not healthy within {d} s"
        ))
    ));
    Ok(if snapshot {
        Start::SnapshotFirst
    } else {
        Start::Restart
    })
}

/// When the first check runs: once the grace period can have passed. A version healthy by then
/// is kept at once (its previous image goes soon after); one that is not is checked again at its
/// deadline, so an unrelated fault at that one moment cannot undo an update that had proven itself.
fn first_check(p: &Pending) -> u64 {
    p.grace + 1
}

/// Arms a check of the app's update in `secs`, replacing any armed before.
fn arm(id: &str, secs: u64, log: &HookLog) {
    let names = names::app(id);
    let _ = crate::systemctl::run("stop", &[names.update_checks()]);
    let command = vec![
        crate::hook_binary(),
        "update-check".to_string(),
        id.to_string(),
    ];
    if let Err(e) = crate::systemctl::run_later(&names.update_check(now()), secs, &command) {
        log.error(&format!("arming the check of app `{id}`'s update: {e:#}"));
    }
}

/// The bytes `[update] snapshot` names, as podman's user namespace sees them.
fn snapshot_size(node: &NodeSettings, m: &crate::manifest::Manifest) -> anyhow::Result<u64> {
    let data = names::app(m.id()).data_dir(node);
    let mut total = 0;
    for sub in &m.update.snapshot {
        let p = data.join(sub.as_str());
        if std::fs::symlink_metadata(&p).is_err() {
            continue;
        }
        let p = p.to_string_lossy().into_owned();
        let out = crate::podman::unshare(&["du", "-s", "-B1", "--", &p])?;
        let text = String::from_utf8_lossy(&out.stdout);
        total += text
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .with_context(|| format!("du of {p} said {text:?}"))?;
    }
    Ok(total)
}

/// Copies what `[update] snapshot` names to the app's snapshot dir (reflinks where the
/// filesystem has them). `cp -a` copies links as links: nothing a container planted is followed.
pub fn take_snapshot(node: &NodeSettings, m: &crate::manifest::Manifest) -> anyhow::Result<()> {
    let names = names::app(m.id());
    let data = names.data_dir(node);
    let snap = names.snapshot_dir(node);
    let snap_s = snap.to_string_lossy().into_owned();
    crate::podman::unshare(&["rm", "-rf", "--one-file-system", "--", &snap_s])?;
    crate::podman::unshare(&["mkdir", "-m", "700", "--", &snap_s])?;
    for sub in &m.update.snapshot {
        let from = data.join(sub.as_str());
        if std::fs::symlink_metadata(&from).is_err() {
            continue;
        }
        let to = snap.join(sub.as_str());
        let parent = to
            .parent()
            .expect("below the snapshot dir")
            .to_string_lossy()
            .into_owned();
        crate::podman::unshare(&["mkdir", "-p", "--", &parent])?;
        crate::podman::unshare(&[
            "cp",
            "-a",
            "--reflink=auto",
            "--",
            &from.to_string_lossy(),
            &to.to_string_lossy(),
        ])?;
    }
    Ok(())
}

/// Puts the snapshot back over what the new version wrote; a path the snapshot lacks (it did
/// not exist before the update) is removed.
fn restore_snapshot(node: &NodeSettings, m: &crate::manifest::Manifest) -> anyhow::Result<()> {
    let names = names::app(m.id());
    let data = names.data_dir(node);
    let snap = names.snapshot_dir(node);
    for sub in &m.update.snapshot {
        let target = data.join(sub.as_str()).to_string_lossy().into_owned();
        crate::podman::unshare(&["rm", "-rf", "--one-file-system", "--", &target])?;
        let from = snap.join(sub.as_str());
        if std::fs::symlink_metadata(&from).is_ok() {
            crate::podman::unshare(&[
                "cp",
                "-a",
                "--reflink=auto",
                "--",
                &from.to_string_lossy(),
                &target,
            ])?;
        }
    }
    Ok(())
}

/// What an update check saw, from systemd and podman.
pub fn observe(id: &str) -> Observed {
    let names = names::app(id);
    let unit = names.service();
    let shown =
        crate::systemctl::show_unix(&unit, &["ActiveState", "SubState", "ActiveEnterTimestamp"])
            .unwrap_or_default();
    let get = |k: &str| shown.get(k).cloned().unwrap_or_default();
    let active = get("ActiveState") == "active";
    Observed {
        active,
        digest: crate::digest::of_container(&names.container()),
        health: crate::podman::health(&names.container()).unwrap_or_default(),
        active_since: get("ActiveEnterTimestamp")
            .strip_prefix('@')
            .and_then(|s| s.parse().ok())
            .filter(|_| active),
        state: format!("{}/{}", get("ActiveState"), get("SubState")),
    }
}

/// `archy-hook update-check <id>`: keep the update, check again later, or roll it back.
pub fn check_now(
    paths: &Paths,
    node: &NodeSettings,
    state: &Path,
    app: &ValidApp,
    log: &HookLog,
) -> anyhow::Result<()> {
    let id = app.manifest.id();
    let records = Records::of(state, id);
    let Some(p) = records.pending() else {
        return Ok(()); // kept or rolled back meanwhile
    };
    let now = now();
    match super::check(&p, &observe(id), now) {
        Verdict::CheckAt(t) => arm(id, t.saturating_sub(now).max(1), log),
        Verdict::Keep => keep(paths, node, &records, &p, log)?,
        Verdict::RollBack(why) => roll_back(paths, node, state, app, &why, log)?,
    }
    Ok(())
}

/// The update stayed healthy: its data snapshot and the previous image go (the previous
/// manifest stays, for `archy-hook rollback` by hand).
fn keep(
    paths: &Paths,
    node: &NodeSettings,
    records: &Records,
    p: &Pending,
    log: &HookLog,
) -> anyhow::Result<()> {
    let id = records_id(records);
    records.clear_pending()?;
    if p.snapshot {
        let snap = names::app(&id)
            .snapshot_dir(node)
            .to_string_lossy()
            .into_owned();
        crate::podman::unshare(&["rm", "-rf", "--one-file-system", "--", &snap])?;
    }
    let (_, catalog) = crate::generate::load_catalog(paths);
    let in_use = catalog
        .valid
        .values()
        .any(|a| a.manifest.image.reference.as_str() == p.from);
    let image = if p.from == p.to || in_use {
        format!("kept image {} (in use)", p.from)
    } else {
        match crate::podman::remove_image(&p.from) {
            Ok(()) => format!("removed image {}", p.from),
            Err(e) => format!("kept image {}: {e}", p.from),
        }
    };
    log.notice(&format!(
        "kept the update of app `{id}` from {} to {}: healthy for {} s; {image}",
        p.from, p.to, p.grace
    ));
    Ok(())
}

fn records_id(r: &Records) -> String {
    r.dir()
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Puts the app back on its previous definition: records the current version as failed (the
/// generator then renders the previous one until the manifest changes), stops the app, puts its
/// data snapshot back, reloads and starts it.
pub fn roll_back(
    paths: &Paths,
    node: &NodeSettings,
    state: &Path,
    app: &ValidApp,
    reason: &str,
    log: &HookLog,
) -> anyhow::Result<()> {
    let m = &app.manifest;
    let id = m.id();
    let names = names::app(id);
    let records = Records::of(state, id);
    let previous = records.previous_manifest();
    if app.rolled_back.is_some() {
        anyhow::bail!("app `{id}` already runs its previous definition");
    }
    if !previous.is_file() {
        anyhow::bail!("app `{id}` has no previous definition to go back to");
    }
    let old = crate::load::read_manifest(&previous, id, node.network)
        .map_err(|e| anyhow::anyhow!("the previous definition is not usable: {e}"))?;
    let from = old.image.reference.to_string();
    if !crate::podman::image_exists(&from).unwrap_or(false) && old.image.build.is_none() {
        anyhow::bail!("the previous image {from} is no longer present");
    }
    let version = super::current_version(paths, &app.source, m)
        .context("reading the current manifest and templates")?;
    let pending = records.pending();
    records.write_failed(&Failed {
        version,
        from: from.clone(),
        to: m.image.reference.to_string(),
        reason: reason.to_string(),
        at: now(),
        refused: false,
    })?;
    stop_app(id, m.service.stop_timeout.whole_secs())?;
    if pending.as_ref().is_some_and(|p| p.snapshot) {
        restore_snapshot(node, m).context("putting the data snapshot back")?;
        let snap = names.snapshot_dir(node).to_string_lossy().into_owned();
        crate::podman::unshare(&["rm", "-rf", "--one-file-system", "--", &snap])?;
    }
    records.clear_pending()?;
    let _ = crate::systemctl::run("stop", &[names.update_checks()]);
    // the last good definition is the one that runs again
    if let Some(dir) = paths.last_good() {
        let text = std::fs::read(&previous)?;
        crate::atomic::write(&names.last_good(dir), &text, 0o600)?;
        copy_dir_files(
            &records.previous_templates(),
            &names.last_good_templates(dir),
        )?;
    }
    crate::systemctl::daemon_reload()?;
    crate::systemctl::run_no_block("start", &[names.service()])?;
    log.error(&format!(
        "rolled back app `{id}` from {} to {from}: {reason}",
        m.image.reference
    ));
    Ok(())
}

fn stop_app(id: &str, stop_timeout: u64) -> anyhow::Result<()> {
    crate::reconcile::stop_apps(&[id.to_string()], Some(stop_timeout))
}

/// Copies the regular files of `from` (none if it is missing) into `to`, replacing what `to` had.
pub fn copy_dir_files(from: &Path, to: &Path) -> std::io::Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    crate::secrets::create_private_dir(to)?;
    for e in entries.flatten() {
        if e.file_type()?.is_file() {
            let text = std::fs::read(e.path())?;
            crate::atomic::write(&to.join(e.file_name()), &text, 0o600)?;
        }
    }
    Ok(())
}
