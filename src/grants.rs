//! Privileges beyond archy's defaults, granted per app. Only the admin grants them (node.toml's
//! `[grants.<id>]`, files in `/etc/archipelago/grants.d/`), plus what the catalog package itself
//! needs, shipped in `/usr/share/archipelago/grants.d/` (a place only the package manager writes).
//! A manifest asking for more than its grant is refused, naming the grant it lacks. The checks
//! are pure: `missing` takes the manifest, the node settings and the grant.

use crate::error::InputError;
use crate::manifest::{Manifest, NetworkMode};
use crate::node::NodeSettings;
use crate::text::{Capability, Id, UserNs};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const VENDOR_DIR: &str = "/usr/share/archipelago/grants.d";
pub const ADMIN_DIR: &str = "/etc/archipelago/grants.d";

/// What one app may have beyond the defaults. Every list is exact: nothing is implied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Capabilities it may add (`[container] add_capabilities`), by name without `CAP_`.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Whether it may use the host's network (`[container] network = "host"`).
    #[serde(default)]
    pub host_network: bool,
    /// User namespace modes other than `keep-id` it may use (`host`, `auto`, ...).
    #[serde(default)]
    pub userns: Vec<UserNs>,
    /// Secrets another app owns that it may receive (`bitcoind-rpc`).
    #[serde(default)]
    pub secrets: Vec<Id>,
    /// Host ports it may publish below 1024 or outside node.toml's `port_range`.
    #[serde(default)]
    pub ports: Vec<u16>,
}

impl Grant {
    fn merge(&mut self, other: &Grant) {
        self.capabilities.extend(other.capabilities.iter().cloned());
        self.host_network |= other.host_network;
        self.userns.extend(other.userns.iter().cloned());
        self.secrets.extend(other.secrets.iter().cloned());
        self.ports.extend(other.ports.iter().copied());
    }

    pub fn allows_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|s| s.as_str() == name)
    }
}

/// Every grant on the node, and which apps the catalog package vouches for.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    by_app: BTreeMap<String, Grant>,
    /// Apps named in a vendor grants file: shipped by a package as part of the node, they count
    /// as installed from the first boot.
    vendor: BTreeSet<String>,
    /// Grant files that could not be read: named in the error of every app lacking a grant.
    pub broken: Vec<InputError>,
}

/// A grants file: a table per app id.
type GrantsFile = BTreeMap<Id, Grant>;

impl Grants {
    /// The grants in node.toml and in the vendor and admin grants dirs (files `*.toml`, read in
    /// name order, each entry adding to the ones before).
    pub fn load(node: &NodeSettings, vendor_dir: &Path, admin_dir: &Path) -> Self {
        let mut g = Grants::default();
        for (dir, vendor) in [(vendor_dir, true), (admin_dir, false)] {
            for path in toml_files(dir) {
                let parsed = crate::load::read_text(&path)
                    .and_then(|t| crate::load::parse_toml::<GrantsFile>(&path, &t));
                match parsed {
                    Ok(file) => {
                        for (id, grant) in file {
                            if vendor {
                                g.vendor.insert(id.to_string());
                            }
                            g.add(id.as_str(), &grant);
                        }
                    }
                    Err(e) => g.broken.push(e),
                }
            }
        }
        for (id, grant) in &node.grants {
            g.add(id.as_str(), grant);
        }
        g
    }

    fn add(&mut self, id: &str, grant: &Grant) {
        self.by_app.entry(id.to_string()).or_default().merge(grant);
    }

    /// The app's grant; the empty grant when it has none.
    pub fn of(&self, id: &str) -> &Grant {
        static NONE: std::sync::OnceLock<Grant> = std::sync::OnceLock::new();
        self.by_app
            .get(id)
            .unwrap_or_else(|| NONE.get_or_init(Grant::default))
    }

    /// The apps vendor grants files name.
    pub fn vendored(&self) -> impl Iterator<Item = &str> {
        self.vendor.iter().map(String::as_str)
    }

    #[cfg(test)]
    pub fn with(id: &str, grant: Grant) -> Self {
        let mut g = Grants::default();
        g.add(id, &grant);
        g
    }
}

/// `dir/*.toml`, sorted by name; hidden files skipped.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".toml") && !n.starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Whether a user namespace mode is archy's own default kind: `keep-id` (with or without
/// options) maps the service user to one uid, as `[container] user` does.
pub fn is_default_userns(mode: &str) -> bool {
    mode == "keep-id" || mode.starts_with("keep-id:")
}

/// One privilege the manifest asks for and was not granted: the manifest key and what to grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub key: &'static str,
    pub asks: String,
    /// The grant entry that would allow it, as written in node.toml's `[grants.<id>]`.
    pub grant: String,
}

/// What `m` asks for beyond archy's defaults that `grant` does not allow. Secrets are checked
/// with the other apps (who owns one is a property of the set, see `catalog`).
pub fn missing(m: &Manifest, node: &NodeSettings, grant: &Grant) -> Vec<Missing> {
    let c = &m.container;
    let mut out = Vec::new();
    for cap in &c.add_capabilities {
        let name = cap.bare();
        if !grant.capabilities.iter().any(|g| g.bare() == name) {
            out.push(Missing {
                key: "[container] add_capabilities",
                asks: format!("capability `{name}`"),
                grant: format!("capabilities = [\"{name}\"]"),
            });
        }
    }
    if c.network == NetworkMode::Host && !grant.host_network {
        out.push(Missing {
            key: "[container] network",
            asks: "the host's network".into(),
            grant: "host_network = true".into(),
        });
    }
    if let Some(ns) = &c.userns {
        let mode = ns.as_str();
        if !is_default_userns(mode) && !grant.userns.iter().any(|g| g.as_str() == mode) {
            out.push(Missing {
                key: "[container] userns",
                asks: format!("user namespace `{mode}`"),
                grant: format!("userns = [\"{mode}\"]"),
            });
        }
    }
    for p in &c.ports {
        if !node.port_range.contains(p.host) && !grant.ports.contains(&p.host) {
            out.push(Missing {
                key: "[container] ports",
                asks: format!(
                    "host port {} (below 1024 or outside port_range {})",
                    p.host, node.port_range
                ),
                grant: format!("ports = [{}]", p.host),
            });
        }
    }
    out
}

/// The error for one missing grant, telling the admin where to grant it.
pub fn missing_error(path: &Path, id: &str, what: &Missing, broken: &[InputError]) -> InputError {
    let mut msg = format!(
        "{} is not granted to `{id}`: the admin grants it with `{}` in node.toml's \
         [grants.{id}] or in {ADMIN_DIR}/",
        what.asks, what.grant
    );
    for b in broken {
        msg.push_str(&format!(" (a grants file is unreadable: {b})"));
    }
    InputError::at_key(path, what.key, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(extra: &str) -> Manifest {
        toml::from_str(&format!("[app]\nid = \"x\"\n[image]\nref = \"r\"\n{extra}")).unwrap()
    }

    fn grant(text: &str) -> Grant {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_need_no_grant() {
        let m = manifest(
            "[container]\nuserns = \"keep-id:uid=101,gid=101\"\nports = [{ host = 8080, container = 80 }]\n",
        );
        assert!(missing(&m, &NodeSettings::default(), &Grant::default()).is_empty());
    }

    #[test]
    fn each_privilege_needs_its_own_grant() {
        let node = NodeSettings::default();
        let m = manifest(
            "[container]\nnetwork = \"host\"\nuserns = \"host\"\nadd_capabilities = [\"CAP_NET_ADMIN\", \"SYS_TIME\"]\n",
        );
        let keys: Vec<&str> = missing(&m, &node, &Grant::default())
            .iter()
            .map(|x| x.key)
            .collect();
        assert_eq!(
            keys,
            [
                "[container] add_capabilities",
                "[container] add_capabilities",
                "[container] network",
                "[container] userns"
            ]
        );
        let partial = grant("capabilities = [\"NET_ADMIN\"]\nhost_network = true\n");
        let left = missing(&m, &node, &partial);
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(left[0].grant, "capabilities = [\"SYS_TIME\"]");
        assert_eq!(left[1].grant, "userns = [\"host\"]");
        let all = grant(
            "capabilities = [\"NET_ADMIN\", \"CAP_SYS_TIME\"]\nhost_network = true\nuserns = [\"host\"]\n",
        );
        assert!(missing(&m, &node, &all).is_empty());
    }

    #[test]
    fn ports_below_1024_or_outside_the_range() {
        let mut node = NodeSettings::default();
        let m = manifest("[container]\nports = [{ host = 80, container = 80 }, { host = 9000, container = 9000 }]\n");
        let hosts = |g: &Grant, node: &NodeSettings| -> Vec<String> {
            missing(&m, node, g).into_iter().map(|x| x.grant).collect()
        };
        assert_eq!(hosts(&Grant::default(), &node), ["ports = [80]"]);
        node.port_range = "10000-20000".to_string().try_into().unwrap();
        assert_eq!(
            hosts(&Grant::default(), &node),
            ["ports = [80]", "ports = [9000]"]
        );
        assert!(hosts(&grant("ports = [80, 9000]"), &node).is_empty());
    }

    #[test]
    fn grants_add_up_across_files_and_node_toml() {
        let root = tempfile::tempdir().unwrap();
        let (v, a) = (root.path().join("v"), root.path().join("a"));
        std::fs::create_dir_all(&v).unwrap();
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(
            v.join("catalog.toml"),
            "[lnd]\nsecrets = [\"bitcoind-rpc\"]\n",
        )
        .unwrap();
        std::fs::write(a.join("10-lnd.toml"), "[lnd]\nports = [80]\n").unwrap();
        std::fs::write(a.join("20-bad.toml"), "[lnd]\nport = [80]\n").unwrap();
        std::fs::write(a.join("notes.txt"), "[lnd]\nhost_network = true\n").unwrap();
        let node: NodeSettings =
            toml::from_str("[grants.lnd]\ncapabilities = [\"NET_RAW\"]\n").unwrap();
        let g = Grants::load(&node, &v, &a);
        let lnd = g.of("lnd");
        assert!(lnd.allows_secret("bitcoind-rpc"));
        assert_eq!(lnd.ports, [80]);
        assert_eq!(lnd.capabilities.len(), 1);
        assert!(!lnd.host_network);
        assert_eq!(g.vendored().collect::<Vec<_>>(), ["lnd"]);
        assert_eq!(g.of("other"), &Grant::default());
        assert_eq!(g.broken.len(), 1);
        assert!(
            g.broken[0].to_string().contains("20-bad.toml"),
            "{:?}",
            g.broken
        );
    }
}
