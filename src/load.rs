//! Finding and reading manifest files and node settings. Reading is strict (regular files only, a
//! size limit, UTF-8) and never blocks: a FIFO or a device in the manifest dir is an error, not a
//! hang.

use crate::error::InputError;
use crate::manifest::Manifest;
use crate::node::NodeSettings;
use crate::paths::Paths;
use crate::text::{describe_char, forbidden_char, is_id};
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
            let masked = fs::read_link(&path).is_ok_and(|t| t == Path::new("/dev/null"));
            chosen.insert(stem.to_string(), (!masked).then_some(path));
        }
    }
    chosen
        .into_iter()
        .filter_map(|(stem, path)| Some((stem, path?)))
        .collect()
}

/// Discover and read every manifest.
pub fn load_all(paths: &Paths) -> Vec<Loaded> {
    discover(paths)
        .into_iter()
        .map(|(stem, path)| {
            let manifest = read_manifest(&path, &stem);
            Loaded {
                stem,
                path,
                manifest,
            }
        })
        .collect()
}

/// Reads the manifest at `path`, checking that its id equals `stem`.
pub fn read_manifest(path: &Path, stem: &str) -> Result<Manifest, InputError> {
    let text = read_text(path)?;
    let manifest: Manifest = parse_toml(path, &text)?;
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
        _ => parse_toml(&path, &read_text(&path)?),
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

/// Parses TOML into `T`, first refusing any key or string value with a line break or control
/// character, wherever it is: no value can then add a line to a unit, whatever field it feeds.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, InputError> {
    let value: toml::Table =
        toml::from_str(text).map_err(|e| InputError::from_toml(path, text, &e))?;
    check_strings(path, "", &toml::Value::Table(value))?;
    toml::from_str(text).map_err(|e| InputError::from_toml(path, text, &e))
}

fn check_strings(path: &Path, key: &str, value: &toml::Value) -> Result<(), InputError> {
    let bad = |what: &str, c: char| {
        let key = if key.is_empty() {
            "(top level)".to_string()
        } else {
            key.to_string()
        };
        Err(InputError::at_key(
            path,
            key,
            format!("{what} contains {}", describe_char(c)),
        ))
    };
    match value {
        toml::Value::String(s) => match forbidden_char(s) {
            Some(c) => bad("value", c),
            None => Ok(()),
        },
        toml::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_strings(path, &format!("{key}[{i}]"), v)),
        toml::Value::Table(table) => table.iter().try_for_each(|(k, v)| {
            let shown = if is_id(k) || k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                k.clone()
            } else {
                format!("{k:?}")
            };
            let sub = if key.is_empty() {
                shown
            } else {
                format!("{key}.{shown}")
            };
            if let Some(c) = forbidden_char(k) {
                return Err(InputError::at_key(
                    path,
                    sub,
                    format!("key contains {}", describe_char(c)),
                ));
            }
            check_strings(path, &sub, v)
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_anywhere_are_refused_with_their_key() {
        let p = Path::new("x.toml");
        let err =
            parse_toml::<toml::Table>(p, "[a]\nb = { c = [\"ok\", \"x\\ny\"] }\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("a.b.c[1]"));
        assert!(err.message.contains("line feed"), "{err}");
        let err = parse_toml::<toml::Table>(p, "[a]\n\"k\\r\" = 1\n").unwrap_err();
        assert!(err.message.contains("carriage return"), "{err}");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse_toml::<toml::Table>(Path::new("x.toml"), "a = 1\nb = \n").unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(2));
        assert!(err.to_string().starts_with("x.toml:2:"), "{err}");
    }
}
