//! Integration tests of the generator's pure parts, through the library: fixture trees rendered
//! and snapshotted, one test per validation rule, injection attempts in every free-text field, and
//! (where the Debian test root exists) the built generator run with podman's quadlet and checked
//! with `systemd-analyze verify`.

mod common;
mod containment;
mod fixtures;
mod hostile;
mod injection;
mod networks;
mod quadlet_parse;
mod real_tools;
