//! App updates that roll themselves back. An update is a changed definition of a running app (a
//! new manifest: image, environment, a config template). When reconcile applies one it keeps the
//! previous definition (manifest and templates) in the app's state, and arms a check at the new
//! version's deadline. The check keeps the update once the app has been healthy for `[update]
//! grace`, and otherwise records the version as failed: from then on the generator renders the
//! previous definition in its place, until the manifest changes again. Here: the records, and the
//! decisions over them (pure); the hook does the effects.

pub mod apply;

use crate::manifest::Manifest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};

/// An update applied and not yet kept or rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The new version (`version_of`).
    pub version: String,
    /// The digest label of the new definition: what its container must carry.
    pub digest: String,
    /// The image references before and after, for people.
    pub from: String,
    pub to: String,
    /// Unix seconds when it was applied.
    pub applied_at: u64,
    /// Seconds it may take to turn healthy; None: no deadline (`infinity`).
    pub deadline: Option<u64>,
    /// Seconds it must stay healthy to be kept.
    pub grace: u64,
    /// Whether a data snapshot was taken before its first start.
    pub snapshot: bool,
}

/// A version that did not turn healthy (or was rolled back by hand): not tried again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub version: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    /// Unix seconds of the rollback.
    pub at: u64,
    /// The update was refused before it started (nothing was rolled back).
    #[serde(default)]
    pub refused: bool,
}

/// An app running its previous definition because its current one failed as an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub failed: Failed,
    /// Where the previous definition's config templates are.
    pub templates: PathBuf,
}

/// The template file `file` of app `id`: the previous definition's copy for a rolled-back app.
pub fn template_file(
    paths: &crate::paths::Paths,
    id: &str,
    rolled_back: Option<&RolledBack>,
    file: &str,
) -> PathBuf {
    match rolled_back {
        Some(r) => r.templates.join(file),
        None => paths.template(id, file),
    }
}

/// The version of the app's current definition: its manifest file and templates as installed.
/// None when a file cannot be read.
pub fn current_version(paths: &crate::paths::Paths, source: &Path, m: &Manifest) -> Option<String> {
    let manifest = std::fs::read(source).ok()?;
    let mut templates = Vec::new();
    for f in &m.config {
        let name = f.template.as_str();
        templates.push((
            name.to_string(),
            std::fs::read(paths.template(m.id(), name)).ok()?,
        ));
    }
    Some(version_of(&manifest, &templates))
}

/// For each app whose current version is one that failed (and was not changed since), the
/// previous definition in its place: a failed update is not tried again until the manifest or a
/// template changes.
pub fn apply_rollbacks(
    paths: &crate::paths::Paths,
    network: crate::node::BitcoinNetwork,
    loaded: &mut [crate::load::Loaded],
) {
    let Some(state) = paths.state() else { return };
    for l in loaded.iter_mut() {
        let Ok(m) = &l.manifest else { continue };
        let records = Records::of(state, &l.stem);
        let Some(failed) = records.failed() else {
            continue;
        };
        let previous = records.previous_manifest();
        if current_version(paths, &l.path, m).as_deref() != Some(failed.version.as_str())
            || !previous.is_file()
        {
            continue;
        }
        l.manifest = crate::load::read_manifest(&previous, &l.stem, network);
        l.rolled_back = Some(Box::new(RolledBack {
            failed,
            templates: records.previous_templates(),
        }));
    }
}

/// What the hook sees of the app when its check runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The unit is active (with a health check: the container turned healthy).
    pub active: bool,
    /// The digest label of the container running, if one runs.
    pub digest: Option<String>,
    /// podman's health of it: `healthy`, or empty without a health check.
    pub health: String,
    /// Unix seconds since the unit is active.
    pub active_since: Option<u64>,
    /// The unit's state, for the reason of a rollback (`activating/start`, `failed/failed`).
    pub state: String,
}

/// What the check decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy for the whole grace period: let the previous version go.
    Keep,
    /// Not decided yet: check again at this time (unix seconds).
    CheckAt(u64),
    /// Put the previous version back, for this reason.
    RollBack(String),
}

pub fn check(p: &Pending, o: &Observed, now: u64) -> Verdict {
    let runs_new = o.digest.as_deref() == Some(p.digest.as_str());
    let healthy = o.active && runs_new && matches!(o.health.as_str(), "healthy" | "");
    if healthy {
        let since = o.active_since.unwrap_or(now).max(p.applied_at);
        return if now >= since + p.grace {
            Verdict::Keep
        } else {
            Verdict::CheckAt(since + p.grace)
        };
    }
    match p.deadline {
        Some(d) if now >= p.applied_at + d => {
            let what = if runs_new {
                format!(
                    "{}, health {}",
                    o.state,
                    if o.health.is_empty() {
                        "none"
                    } else {
                        &o.health
                    }
                )
            } else {
                format!("{}, its container not running", o.state)
            };
            Verdict::RollBack(format!("not healthy within {}: {what}", secs(d)))
        }
        Some(d) => Verdict::CheckAt(p.applied_at + d),
        // no deadline: only a person rolls it back
        None => Verdict::CheckAt(now + p.grace.max(60)),
    }
}

fn secs(s: u64) -> String {
    crate::duration::Duration::from_secs(s).systemd()
}

/// A version of an app's definition: its manifest's bytes and its config templates' (by name).
/// Two files that differ anywhere are two versions.
pub fn version_of(manifest: &[u8], templates: &[(String, Vec<u8>)]) -> String {
    let mut h = Sha256::new();
    h.update((manifest.len() as u64).to_le_bytes());
    h.update(manifest);
    for (name, bytes) in templates {
        for part in [name.as_bytes(), bytes.as_slice()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    crate::text::hex(&h.finalize())
}

/// The seconds the new version of `m` may take to turn healthy: `[update] deadline`, else the
/// unit's own start timeout; None for `infinity`.
pub fn deadline(m: &Manifest) -> Option<u64> {
    let start = m.health.as_ref().map_or(m.service.start_timeout, |h| {
        m.service.start_timeout.at_least(h.start_period)
    });
    m.update
        .deadline
        .unwrap_or(start)
        .duration()
        .map(|d| d.whole_secs())
}

/// Whether a snapshot of `need` bytes fits in `free` bytes, keeping the node's disk reserve.
pub fn snapshot_fits(need: u64, free: u64, reserve: u64) -> Result<(), String> {
    let want = need.saturating_add(reserve);
    if free >= want {
        return Ok(());
    }
    Err(format!(
        "not enough disk for the data snapshot the update needs: {} to copy plus the {} reserve, \
         {} free",
        crate::node::ByteSize(need),
        crate::node::ByteSize(reserve),
        crate::node::ByteSize(free)
    ))
}

/// The files of the app's update records, below `<state>/<id>/update/`.
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn of(state: &Path, id: &str) -> Self {
        Self {
            dir: crate::names::app(id).update_dir(state),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest the app ran before the update.
    pub fn previous_manifest(&self) -> PathBuf {
        self.dir.join("previous.toml")
    }

    /// Its config templates, by file name.
    pub fn previous_templates(&self) -> PathBuf {
        self.dir.join("previous-templates")
    }

    fn pending_file(&self) -> PathBuf {
        self.dir.join("pending.toml")
    }

    fn failed_file(&self) -> PathBuf {
        self.dir.join("failed.toml")
    }

    pub fn pending(&self) -> Option<Pending> {
        read(&self.pending_file())
    }

    pub fn failed(&self) -> Option<Failed> {
        read(&self.failed_file())
    }

    pub fn write_pending(&self, p: &Pending) -> std::io::Result<()> {
        self.write(&self.pending_file(), p)
    }

    pub fn write_failed(&self, f: &Failed) -> std::io::Result<()> {
        self.write(&self.failed_file(), f)
    }

    pub fn clear_pending(&self) -> std::io::Result<()> {
        remove(&self.pending_file())
    }

    pub fn clear_failed(&self) -> std::io::Result<()> {
        remove(&self.failed_file())
    }

    fn write<T: Serialize>(&self, file: &Path, value: &T) -> std::io::Result<()> {
        crate::secrets::create_private_dir(&self.dir)?;
        let text = toml::to_string(value).map_err(std::io::Error::other)?;
        crate::atomic::write(file, text.as_bytes(), 0o600)
    }
}

fn read<T: for<'de> Deserialize<'de>>(file: &Path) -> Option<T> {
    let text = std::fs::read_to_string(file).ok()?;
    toml::from_str(&text).ok()
}

fn remove(file: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> Pending {
        Pending {
            version: "v2".into(),
            digest: "new".into(),
            from: "web:1".into(),
            to: "web:2".into(),
            applied_at: 1000,
            deadline: Some(60),
            grace: 30,
            snapshot: false,
        }
    }

    fn seen(active: bool, digest: &str, health: &str, since: Option<u64>) -> Observed {
        Observed {
            active,
            digest: Some(digest.into()).filter(|d: &String| !d.is_empty()),
            health: health.into(),
            active_since: since,
            state: if active {
                "active/running"
            } else {
                "activating/start"
            }
            .into(),
        }
    }

    #[test]
    fn the_checks_table() {
        let p = pending();
        let healthy = seen(true, "new", "healthy", Some(1010));
        // (observed, now) -> verdict
        let table = [
            // healthy, grace not over: check again when it is
            (healthy.clone(), 1020, Verdict::CheckAt(1040)),
            // healthy for the whole grace: kept
            (healthy.clone(), 1040, Verdict::Keep),
            (healthy.clone(), 5000, Verdict::Keep),
            // no health check: active is enough
            (seen(true, "new", "", Some(1001)), 1031, Verdict::Keep),
            // starting, deadline not reached: check at the deadline
            (
                seen(false, "new", "starting", None),
                1030,
                Verdict::CheckAt(1060),
            ),
            // still the old container (the restart has not happened): not healthy as the new one
            (
                seen(true, "old", "healthy", Some(900)),
                1030,
                Verdict::CheckAt(1060),
            ),
        ];
        for (i, (o, now, want)) in table.into_iter().enumerate() {
            assert_eq!(check(&p, &o, now), want, "case {i}");
        }
        // at the deadline, not healthy: rolled back, saying why
        let Verdict::RollBack(why) = check(&p, &seen(false, "new", "unhealthy", None), 1060) else {
            panic!("not rolled back")
        };
        assert_eq!(
            why,
            "not healthy within 60s: activating/start, health unhealthy"
        );
        let Verdict::RollBack(why) = check(&p, &seen(false, "", "", None), 2000) else {
            panic!("not rolled back")
        };
        assert!(why.ends_with("its container not running"), "{why}");
        // healthy since before the update applied counts from the update
        assert_eq!(
            check(&p, &seen(true, "new", "healthy", Some(10)), 1010),
            Verdict::CheckAt(1030)
        );
        // no deadline: never rolled back on its own
        let forever = Pending {
            deadline: None,
            ..pending()
        };
        assert!(matches!(
            check(&forever, &seen(false, "new", "unhealthy", None), 99_999),
            Verdict::CheckAt(_)
        ));
    }

    #[test]
    fn versions_differ_by_any_byte_of_manifest_or_template() {
        let t = |n: &str, b: &str| vec![(n.to_string(), b.as_bytes().to_vec())];
        let base = version_of(b"m", &t("a.conf", "x"));
        assert_eq!(base, version_of(b"m", &t("a.conf", "x")));
        assert_ne!(base, version_of(b"m2", &t("a.conf", "x")));
        assert_ne!(base, version_of(b"m", &t("a.conf", "y")));
        assert_ne!(base, version_of(b"m", &t("b.conf", "x")));
        // no boundary games: moving bytes between parts is another version
        assert_ne!(
            version_of(b"ma", &t("", "x")),
            version_of(b"m", &t("a", "x"))
        );
    }

    #[test]
    fn snapshot_space() {
        assert!(snapshot_fits(10, 100, 50).is_ok());
        let e = snapshot_fits(60, 100, 50).unwrap_err();
        assert!(
            e.starts_with("not enough disk for the data snapshot"),
            "{e}"
        );
    }

    #[test]
    fn records_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let r = Records::of(d.path(), "web");
        assert_eq!(r.pending(), None);
        r.write_pending(&pending()).unwrap();
        assert_eq!(r.pending(), Some(pending()));
        r.clear_pending().unwrap();
        r.clear_pending().unwrap();
        assert_eq!(r.pending(), None);
    }
}
