//! What `archy-hook purge <id>` would delete of a removed app: removing an app keeps its data,
//! its state (rendered configs, kept init outputs such as lnd's seed), its backups and its
//! secrets; purging them is a separate, explicit step. Pure: the hook lists, asks and deletes.

use crate::node::NodeSettings;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `<state>/<id>/secrets`: the names of the secrets the app declared, written by
/// `archy-hook secrets` (a removed app's manifest is gone; this is how purge knows them).
pub fn secret_names_file(state: &Path, id: &str) -> PathBuf {
    crate::names::app(id).secret_names_file(state)
}

/// One thing purge deletes, and what it is to the operator.
#[derive(Debug, PartialEq, Eq)]
pub struct Item {
    pub path: PathBuf,
    pub what: String,
}

/// Why purge refuses.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The app still has a manifest: remove it first.
    Installed,
    /// Nothing of the app is left.
    Nothing,
}

/// The app's leftovers, of those that exist. `declared`: the secrets the app recorded;
/// `in_use`: the secrets installed apps declare (never purged).
pub fn plan(
    node: &NodeSettings,
    state: &Path,
    id: &str,
    installed: bool,
    declared: &[String],
    in_use: &BTreeSet<String>,
    exists: impl Fn(&Path) -> bool,
) -> Result<Vec<Item>, Refusal> {
    if installed {
        return Err(Refusal::Installed);
    }
    let mut items = Vec::new();
    let mut add = |path: PathBuf, what: String| {
        if exists(&path) {
            items.push(Item { path, what });
        }
    };
    add(
        crate::names::app(id).data_dir(node),
        "its data directory (everything the app stored: for lnd, its wallet and channels)".into(),
    );
    add(
        crate::names::app(id).state_dir(state),
        "its state: rendered configs, kept init outputs (for lnd, the only copy archy keeps of the wallet seed), its state volume and its previous definition"
            .into(),
    );
    add(
        crate::names::app(id).backup_dir(node),
        "its backups (for lnd, the channel.backup copies)".into(),
    );
    add(
        crate::names::app(id).snapshot_dir(node),
        "the copy of its data taken before an update that had not been kept yet".into(),
    );
    for name in declared.iter().filter(|n| !in_use.contains(*n)) {
        add(
            crate::names::secret_dir(state, name),
            format!("secret `{name}` (its password: a database or wallet created with it no longer opens)"),
        );
    }
    if items.is_empty() {
        return Err(Refusal::Nothing);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_removed_apps_own_leftovers_and_never_a_secret_in_use() {
        let node = NodeSettings::default();
        let state = Path::new("/s");
        let declared = vec!["lnd-wallet".to_string(), "bitcoind-rpc".to_string()];
        let in_use: BTreeSet<String> = ["bitcoind-rpc".to_string()].into();
        assert_eq!(
            plan(&node, state, "lnd", true, &declared, &in_use, |_| true),
            Err(Refusal::Installed)
        );
        let items = plan(&node, state, "lnd", false, &declared, &in_use, |_| true).unwrap();
        let paths: Vec<&Path> = items.iter().map(|i| i.path.as_path()).collect();
        assert_eq!(
            paths,
            [
                Path::new("/var/lib/archipelago/lnd"),
                Path::new("/s/lnd"),
                Path::new("/var/lib/archipelago/backups/lnd"),
                Path::new("/var/lib/archipelago/lnd.snapshot"),
                Path::new("/s/secrets/lnd-wallet"),
            ]
        );
        assert!(items[1].what.contains("seed"));
        // only what exists is listed; nothing at all is a refusal
        let only_data = plan(&node, state, "lnd", false, &declared, &in_use, |p| {
            p == Path::new("/var/lib/archipelago/lnd")
        })
        .unwrap();
        assert_eq!(only_data.len(), 1);
        assert_eq!(
            plan(&node, state, "lnd", false, &declared, &in_use, |_| false),
            Err(Refusal::Nothing)
        );
    }
}
