//! Every name and path archy derives from an app id, in one place: its units, container and
//! quadlet source, and where its state lives, both as units write it (`%S/archipelago/...`, which
//! systemd resolves) and as hooks open it (below the resolved state dir). A change of any of these
//! names is a change of this file only; `catalog::RESERVED_INFIXES` lists the infixes used here.

use crate::manifest::{Volume, VolumeSource};
use crate::node::NodeSettings;
use crate::text::Id;
use std::path::{Path, PathBuf};

/// What every unit and container archy names for an app starts with.
const PREFIX: &str = "archy-";
/// The state dir in a user unit's terms: `%S` is `$XDG_STATE_HOME` there.
pub const UNIT_STATE: &str = "%S/archipelago";
/// The state volume (`from = "state"`) of app `<id>` is `<state>/<id>/volume`: archy's own files
/// for the app (`config/`, `init/`, the `secrets` list) are its siblings, out of the app's reach.
pub const STATE_VOLUME: &str = "volume";
/// Infix of an init step's one-off container, `archy-<id>-init-<step>`.
pub const INIT_INFIX: &str = "-init-";
/// Infix of a backup's units, `archy-<id>-backup-<name>.path`.
pub const BACKUP_INFIX: &str = "-backup-";

/// The names of one app. Built from an id (`Id::names`, or `app` for a key that was one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppNames<'a> {
    id: &'a str,
}

impl Id {
    pub fn names(&self) -> AppNames<'_> {
        AppNames { id: self.as_str() }
    }
}

/// The names of app `id` (a catalog key or a manifest's id: already a valid id).
pub fn app(id: &str) -> AppNames<'_> {
    AppNames { id }
}

impl<'a> AppNames<'a> {
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// `archy-<id>.service`.
    pub fn service(&self) -> String {
        format!("{PREFIX}{}.service", self.id)
    }

    /// `archy-<id>`: the container the app's unit runs, also a name on the archy network.
    pub fn container(&self) -> String {
        format!("{PREFIX}{}", self.id)
    }

    /// `archy-<id>.container`: the quadlet source the generator writes.
    pub fn quadlet_source(&self) -> String {
        format!("{PREFIX}{}.container", self.id)
    }

    /// `archy-<id>-init-<step>`: an init step's one-off container.
    pub fn init_container(&self, step: &str) -> String {
        format!("{PREFIX}{}{INIT_INFIX}{step}", self.id)
    }

    /// `archy-<id>-backup-<name>.path`.
    pub fn backup_path_unit(&self, name: &str) -> String {
        format!("{PREFIX}{}{BACKUP_INFIX}{name}.path", self.id)
    }

    /// `archy-<id>-backup-<name>.service`.
    pub fn backup_service(&self, name: &str) -> String {
        format!("{PREFIX}{}{BACKUP_INFIX}{name}.service", self.id)
    }

    /// The pattern of every backup watcher of the app, for systemctl.
    pub fn backup_watchers(&self) -> String {
        self.backup_path_unit("*")
    }

    /// `<state>/<id>`: archy's files for the app (`state` is the resolved state dir).
    pub fn state_dir(&self, state: &Path) -> PathBuf {
        state.join(self.id)
    }

    /// `<state>/<id>/config`: the rendered config files.
    pub fn config_dir(&self, state: &Path) -> PathBuf {
        self.state_dir(state).join("config")
    }

    /// A rendered config file as the unit mounts it: `%S/archipelago/<id>/config/<template>`.
    pub fn unit_config_file(&self, template: &str) -> String {
        format!("{UNIT_STATE}/{}/config/{template}", self.id)
    }

    /// `<state>/<id>/init`: init steps' kept outputs, never mounted into a container.
    pub fn init_dir(&self, state: &Path) -> PathBuf {
        self.state_dir(state).join("init")
    }

    /// `<state>/<id>/secrets`: the names of the secrets the app declared, for a later purge.
    pub fn secret_names_file(&self, state: &Path) -> PathBuf {
        self.state_dir(state).join("secrets")
    }

    /// `<state>/<id>/volume`: the state volume.
    pub fn state_volume(&self, state: &Path) -> PathBuf {
        self.state_dir(state).join(STATE_VOLUME)
    }

    /// `<state>/<id>/update`: the previous definition and the records of an update.
    pub fn update_dir(&self, state: &Path) -> PathBuf {
        self.state_dir(state).join("update")
    }

    /// `<data_dir>/<id>.snapshot`: the data copied before an update that may not be reversible,
    /// beside the app's data dir (same filesystem, out of its containers' reach; ids hold no `.`).
    pub fn snapshot_dir(&self, node: &NodeSettings) -> PathBuf {
        Path::new(node.data_dir.as_str()).join(format!("{}.snapshot", self.id))
    }

    /// `archy-update@<id>.<n>`: a transient check of the app's update, armed at `n` (unix
    /// seconds); ids hold neither `@` nor `.`, so no app's checks match another's pattern.
    pub fn update_check(&self, n: u64) -> String {
        format!("{PREFIX}update@{}.{n}", self.id)
    }

    /// The pattern of every armed update check's timer of the app.
    pub fn update_checks(&self) -> String {
        format!("{PREFIX}update@{}.*.timer", self.id)
    }

    /// `<last-good>/<id>.templates`: the config templates of the last good definition.
    pub fn last_good_templates(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.templates", self.id))
    }

    /// `<data_dir>/<id>`: the app's data.
    pub fn data_dir(&self, node: &NodeSettings) -> PathBuf {
        Path::new(node.data_dir.as_str()).join(self.id)
    }

    /// `<backup_dir>/<id>`: the app's backups.
    pub fn backup_dir(&self, node: &NodeSettings) -> PathBuf {
        Path::new(&node.backup_dir()).join(self.id)
    }

    /// `<dir>/<id>.toml`: the app's last-known-good manifest (`dir` from `paths::last_good_dir`).
    pub fn last_good(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.toml", self.id))
    }

    /// The host directory a volume mounts, as the unit writes it (`%S` for the state dir).
    pub fn unit_volume_source(&self, node: &NodeSettings, v: &Volume) -> String {
        let base = match v.from {
            VolumeSource::Data => format!("{}/{}", node.data_dir, v.owner(self.id)),
            VolumeSource::State => format!("{UNIT_STATE}/{}/{STATE_VOLUME}", self.id),
            VolumeSource::Secrets => format!("{UNIT_STATE}/secrets"),
        };
        std::iter::once(base)
            .chain(volume_below(v).into_iter().map(str::to_string))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The directory a volume's subpath is below, as hooks open it: the app's (or the sharing
    /// app's) data dir, or its state volume; None for secrets (archy's own dir).
    pub fn volume_root(&self, node: &NodeSettings, state: &Path, v: &Volume) -> Option<PathBuf> {
        match v.from {
            VolumeSource::Data => Some(app(v.owner(self.id)).data_dir(node)),
            VolumeSource::State => Some(self.state_volume(state)),
            VolumeSource::Secrets => None,
        }
    }
}

/// A volume's subpath as the directories below its root (empty and `.` steps dropped).
pub fn volume_below(v: &Volume) -> Vec<&str> {
    v.subpath.as_ref().map_or(Vec::new(), |s| {
        s.as_str()
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect()
    })
}

/// A unit-form path (`%S/archipelago/...`) with the state dir resolved; other paths as they are.
pub fn resolve_state(unit_path: &str, state: &Path) -> String {
    match unit_path.strip_prefix(UNIT_STATE) {
        Some(rest) => format!("{}{rest}", state.display()),
        None => unit_path.to_string(),
    }
}

/// The app id of `archy-<id>.service`, if the name is one (archy's own units match too: the
/// caller tells them apart).
pub fn app_of_service(unit: &str) -> Option<&str> {
    unit.strip_prefix(PREFIX)?.strip_suffix(".service")
}

/// The app id of the quadlet source `archy-<id>.container`.
pub fn app_of_quadlet_source(file: &str) -> Option<&str> {
    file.strip_prefix(PREFIX)?.strip_suffix(".container")
}

/// The pattern of every service archy names, for systemctl.
pub fn all_services() -> String {
    format!("{PREFIX}*.service")
}

/// `archy-secret@<name>.path`: the watcher that applies a rotated secret.
pub fn secret_watcher(name: &str) -> String {
    format!("{PREFIX}secret@{name}.path")
}

/// `<state>/secrets`: every secret, each a directory of its fields.
pub fn secrets_dir(state: &Path) -> PathBuf {
    state.join("secrets")
}

/// `<state>/secrets/<name>`.
pub fn secret_dir(state: &Path, name: &str) -> PathBuf {
    secrets_dir(state).join(name)
}

/// The name archy's hook binary is known by, in messages and as the journal's identifier.
pub const HOOK: &str = "archy-hook";
/// archy's own units that apply changed manifests (units/).
pub const RECONCILE_SERVICE: &str = "archy-reconcile.service";
pub const RECONCILE_PATH: &str = "archy-reconcile.path";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_an_app() {
        let a = app("lnd");
        assert_eq!(a.service(), "archy-lnd.service");
        assert_eq!(a.container(), "archy-lnd");
        assert_eq!(a.quadlet_source(), "archy-lnd.container");
        assert_eq!(a.init_container("wallet"), "archy-lnd-init-wallet");
        assert_eq!(a.backup_path_unit("ch"), "archy-lnd-backup-ch.path");
        assert_eq!(a.backup_service("ch"), "archy-lnd-backup-ch.service");
        assert_eq!(a.backup_watchers(), "archy-lnd-backup-*.path");
        assert_eq!(app_of_service(&a.service()), Some("lnd"));
        assert_eq!(app_of_quadlet_source(&a.quadlet_source()), Some("lnd"));
        assert_eq!(app_of_service("lnd.service"), None);
        assert_eq!(secret_watcher("rpc"), "archy-secret@rpc.path");
    }

    #[test]
    fn both_vocabularies_name_one_place() {
        let state = Path::new("/home/n/.local/state/archipelago");
        let a = app("lnd");
        assert_eq!(
            resolve_state(&a.unit_config_file("lnd.conf"), state),
            a.config_dir(state).join("lnd.conf").display().to_string()
        );
        assert_eq!(resolve_state("/data/lnd", state), "/data/lnd");
    }

    #[test]
    fn volume_sources_in_both_forms() {
        let node = NodeSettings::default();
        let state = Path::new("/s");
        let vol = |from: &str, sub: &str| -> Volume {
            toml::from_str(&format!(
                "from = \"{from}\"\nsubpath = \"{sub}\"\ntarget = \"/t\""
            ))
            .unwrap()
        };
        let a = app("x");
        let v = vol("state", "a/./b/");
        assert_eq!(
            a.unit_volume_source(&node, &v),
            "%S/archipelago/x/volume/a/b"
        );
        let root = a.volume_root(&node, state, &v).unwrap();
        let resolved: PathBuf = volume_below(&v).iter().fold(root, |p, s| p.join(s));
        assert_eq!(
            resolve_state(&a.unit_volume_source(&node, &v), state),
            resolved.display().to_string()
        );
        let s = vol("secrets", "rpc");
        assert_eq!(
            a.unit_volume_source(&node, &s),
            "%S/archipelago/secrets/rpc"
        );
        assert_eq!(a.volume_root(&node, state, &s), None);
        let d = vol("data", "blocks");
        assert_eq!(
            a.unit_volume_source(&node, &d),
            format!("{}/x/blocks", node.data_dir)
        );
    }
}
