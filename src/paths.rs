//! The path contract (DESIGN.md): where archy reads manifests, node settings and templates. Every
//! path read is re-rooted under `$ARCHY_ROOT` when it is set, so tests run on fixture trees.

use std::path::{Path, PathBuf};

pub const VENDOR_APPS: &str = "/usr/share/archipelago/apps";
pub const ADMIN_APPS: &str = "/etc/archipelago/apps";
pub const NODE_TOML: &str = "/etc/archipelago/node.toml";
pub const TEMPLATES: &str = "/usr/share/archipelago/templates";
pub const BUILD_CONTEXTS: &str = "/usr/share/archipelago/build";

/// Reads of archy's inputs, optionally below a root directory.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    root: Option<PathBuf>,
    /// Where last-known-good manifests are kept (not below the root: it is the user's state).
    last_good: Option<PathBuf>,
    /// The user's state dir, where updates keep previous definitions.
    state: Option<PathBuf>,
}

impl Paths {
    pub fn new(root: Option<PathBuf>) -> Self {
        Self {
            root: root.filter(|r| !r.as_os_str().is_empty()),
            last_good: None,
            state: None,
        }
    }

    /// Falls back to last-known-good manifests from `dir` for apps whose manifest turned invalid.
    pub fn with_last_good(mut self, dir: Option<PathBuf>) -> Self {
        self.last_good = dir;
        self
    }

    /// Uses the update records below `dir` (the resolved state dir).
    pub fn with_state(mut self, dir: Option<PathBuf>) -> Self {
        self.state = dir;
        self
    }

    pub fn state(&self) -> Option<&Path> {
        self.state.as_deref()
    }

    pub fn last_good(&self) -> Option<&Path> {
        self.last_good.as_deref()
    }

    /// Honours `$ARCHY_ROOT`, and uses the user's last-known-good manifests.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("ARCHY_ROOT").map(PathBuf::from))
            .with_last_good(last_good_dir())
            .with_state(state_dir())
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// `path` (absolute) below the root, or as is without one.
    pub fn reroot(&self, path: &str) -> PathBuf {
        match &self.root {
            Some(root) => root.join(path.trim_start_matches('/')),
            None => PathBuf::from(path),
        }
    }

    pub fn vendor_apps(&self) -> PathBuf {
        self.reroot(VENDOR_APPS)
    }

    pub fn admin_apps(&self) -> PathBuf {
        self.reroot(ADMIN_APPS)
    }

    pub fn node_toml(&self) -> PathBuf {
        self.reroot(NODE_TOML)
    }

    pub fn template(&self, app: &str, file: &str) -> PathBuf {
        self.reroot(TEMPLATES).join(app).join(file)
    }

    /// Grants shipped by packages (the catalog's own needs).
    pub fn vendor_grants(&self) -> PathBuf {
        self.reroot(crate::grants::VENDOR_DIR)
    }

    /// The admin's grants drop-ins (besides node.toml's `[grants]`).
    pub fn admin_grants(&self) -> PathBuf {
        self.reroot(crate::grants::ADMIN_DIR)
    }

    pub fn build_context(&self, sub: &str) -> PathBuf {
        self.reroot(BUILD_CONTEXTS).join(sub)
    }
}

/// `$XDG_STATE_HOME/archipelago`, else `~/.local/state/archipelago`: what systemd calls `%S` in a
/// user unit, followed by `archipelago`.
pub fn state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home().map(|h| h.join(".local/state")))?;
    Some(base.join("archipelago"))
}

/// `$HOME`, else the home directory in the password database (generators may run without HOME).
pub fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            let user = nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()?;
            Some(user.dir)
        })
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home().map(|h| h.join(".config")))
}

/// Where reconcile keeps each app's last manifest that was valid and applied:
/// `<state>/last-good/<id>.toml`. The generator falls back to it when the manifest turns invalid.
pub fn last_good_dir() -> Option<PathBuf> {
    state_dir().map(|s| s.join("last-good"))
}

/// The user manager's generator output dir, where the running definitions are.
pub fn generator_dir() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", nix::unistd::getuid())));
    Some(runtime.join("systemd/generator"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerooting() {
        let p = Paths::new(Some(PathBuf::from("/tmp/t")));
        assert_eq!(
            p.vendor_apps(),
            PathBuf::from("/tmp/t/usr/share/archipelago/apps")
        );
        assert_eq!(Paths::new(None).node_toml(), PathBuf::from(NODE_TOML));
        assert_eq!(
            Paths::new(Some(PathBuf::new())).node_toml(),
            PathBuf::from(NODE_TOML)
        );
    }
}
