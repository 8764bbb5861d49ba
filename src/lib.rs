//! archy: a Bitcoin node's app manifests, rendered into Quadlet units that systemd supervises.
//!
//! The library holds everything that is pure (the manifest model, validation, rendering, unit-value
//! escaping) and thin wrappers for the few effects (atomic writes, running quadlet). The binaries in
//! `generator/` and `hooks/` only parse arguments and call into it.

pub mod atomic;
pub mod backup;
pub mod catalog;
pub mod config;
pub mod digest;
pub mod disk;
pub mod duration;
pub mod error;
pub mod escape;
pub mod generate;
pub mod grants;
pub mod graph;
pub mod image;
pub mod init;
pub mod journal;
pub mod leftover;
pub mod load;
pub mod log;
pub mod manifest;
pub mod names;
pub mod networks;
pub mod node;
pub mod nofollow;
pub mod parallel;
pub mod paths;
pub mod podman;
pub mod purge;
pub mod reconcile;
pub mod render;
pub mod secrets;
pub mod service_user;
pub mod status;
pub mod systemctl;
pub mod text;
pub mod unit;
pub mod update;
pub mod volumes;

/// Where the hook binary is installed; units run it as `ExecStartPre=`/`ExecStart=`.
/// Set at build time by `make` from its PREFIX.
pub const LIBEXEC_DIR: &str = match option_env!("ARCHY_LIBEXECDIR") {
    Some(dir) => dir,
    None => "/usr/libexec/archipelago",
};

/// Path of `archy-hook` as units call it.
pub fn hook_binary() -> String {
    format!("{LIBEXEC_DIR}/archy-hook")
}
