//! Finding and reading manifest files and node settings. Reading is strict (regular files only, a
//! size limit, UTF-8) and never blocks: a FIFO or a device in the manifest dir is an error, not a
//! hang.

use crate::error::InputError;
use crate::manifest::Manifest;
use crate::node::{BitcoinNetwork, NodeSettings};
use crate::paths::Paths;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Manifests larger than this are refused: the largest real one is a few KiB.
pub const MAX_FILE_SIZE: u64 = 256 * 1024;

/// One manifest file as found, parsed or not.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file name without `.toml`: what the id must equal.
    pub stem: String,
    pub path: PathBuf,
    pub manifest: Result<Manifest, InputError>,
    /// Set when `manifest` is the last-known-good copy because the file itself is invalid now:
    /// the reason it is.
    pub stale: Option<InputError>,
    /// Set when `manifest` is the previous definition because the current one failed as an update.
    pub rolled_back: Option<Box<crate::update::RolledBack>>,
}

/// The files that make up the node's app set: admin files override vendor files of the same name,
/// and an admin symlink to /dev/null masks one. Sorted by stem.
pub fn discover(paths: &Paths) -> Vec<(String, PathBuf)> {
    let mut chosen: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    for dir in [paths.vendor_apps(), paths.admin_apps()] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name.strip_suffix(".toml") else {
                continue;
            };
            if stem.is_empty() || stem.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let masked = is_masked(&path);
            chosen.insert(stem.to_string(), (!masked).then_some(path));
        }
    }
    chosen
        .into_iter()
        .filter_map(|(stem, path)| Some((stem, path?)))
        .collect()
}

/// An admin masks a manifest with a symlink to /dev/null (as systemd units are masked): any link,
/// relative or chained, that ends at the null device.
fn is_masked(path: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    is_link
        && fs::metadata(path).is_ok_and(|m| {
            // /dev/null is character device 1:3 on Linux
            m.file_type().is_char_device() && m.rdev() == nix::sys::stat::makedev(1, 3)
        })
}

/// Discover and read every manifest. Parsing is spread over the available cores: at a reload of a
/// node with many apps it is most of the generator's own time.
pub fn load_all(paths: &Paths, network: BitcoinNetwork) -> Vec<Loaded> {
    let found = discover(paths);
    let load = |(stem, path): &(String, PathBuf)| Loaded {
        stem: stem.clone(),
        manifest: read_manifest(path, stem, network),
        path: path.clone(),
        stale: None,
        rolled_back: None,
    };
    crate::parallel::map(&found, load)
}

/// Reads the manifest at `path` for a node on `network` (see `crate::networks`), checking that its
/// id equals `stem`.
pub fn read_manifest(
    path: &Path,
    stem: &str,
    network: BitcoinNetwork,
) -> Result<Manifest, InputError> {
    let text = read_text(path)?;
    let manifest = crate::networks::parse_manifest(path, &text, network)?;
    if manifest.id() != stem {
        return Err(InputError::at_key(
            path,
            "[app] id",
            format!(
                "`{}` does not match the file name `{stem}.toml`",
                manifest.id()
            ),
        ));
    }
    Ok(manifest)
}

/// Node settings: defaults when the file is absent, an error when it is present but wrong.
pub fn read_node(paths: &Paths) -> Result<NodeSettings, InputError> {
    let path = paths.node_toml();
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NodeSettings::default()),
        _ => {
            let node: NodeSettings = parse_toml(&path, &read_text(&path)?)?;
            match &node.user {
                Some(u) if crate::node::is_root(u.as_str()) => Err(InputError::at_key(
                    &path,
                    "user",
                    format!(
                        "`{u}` is root: archy never runs apps as root (name the service user; \
                         the packages create `archy`)"
                    ),
                )),
                _ => Ok(node),
            }
        }
    }
}

/// The whole file as UTF-8 text, if it is a regular file of a sane size.
pub fn read_text(path: &Path) -> Result<String, InputError> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| InputError::new(path, format!("cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| InputError::new(path, format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(InputError::new(path, "not a regular file"));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(InputError::new(
            path,
            format!(
                "{} bytes is larger than the limit of {MAX_FILE_SIZE}",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InputError::new(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(InputError::new(
            path,
            "grew beyond the size limit while being read",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let (line, col) = crate::error::line_col(
            &String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]),
            usize::MAX,
        );
        InputError {
            position: Some((line, col)),
            ..InputError::new(path, "not valid UTF-8")
        }
    })
}

/// Parses TOML into `T`. Every string the model holds is a validated type (`crate::text`) that
/// refuses line breaks and control characters, so one typed parse both checks and positions the
/// error; a second, untyped walk would double the cost of a reload for nothing.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, InputError> {
    toml::from_str(text).map_err(|e| InputError::from_toml(path, text, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_are_refused_with_their_position() {
        let p = Path::new("x.toml");
        let text = "[app]\nid = \"x\"\nname = \"a\\nb\"\n[image]\nref = \"r\"\n";
        let err = parse_toml::<Manifest>(p, text).unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(3), "{err}");
        assert!(err.message.contains("line feed"), "{err}");
    }

    #[test]
    fn masks_follow_relative_and_chained_links_to_dev_null() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::new(Some(root.path().to_path_buf()));
        let (vendor, admin) = (paths.vendor_apps(), paths.admin_apps());
        fs::create_dir_all(&vendor).unwrap();
        fs::create_dir_all(&admin).unwrap();
        for id in ["a", "b", "c", "d"] {
            fs::write(vendor.join(format!("{id}.toml")), "").unwrap();
        }
        let up = "../".repeat(admin.components().count());
        std::os::unix::fs::symlink(format!("{up}dev/null"), admin.join("a.toml")).unwrap();
        std::os::unix::fs::symlink("/dev/null", admin.join("null")).unwrap();
        std::os::unix::fs::symlink("null", admin.join("b.toml")).unwrap();
        std::os::unix::fs::symlink(vendor.join("d.toml"), admin.join("c.toml")).unwrap();
        let found: Vec<String> = discover(&paths).into_iter().map(|(s, _)| s).collect();
        assert_eq!(found, ["c", "d"]);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse_toml::<toml::Table>(Path::new("x.toml"), "a = 1\nb = \n").unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(2));
        assert!(err.to_string().starts_with("x.toml:2:"), "{err}");
    }
}
