//! Free space where an app keeps its data, for the preflight hook.

use std::io;
use std::path::Path;

/// Bytes available to an unprivileged writer on the filesystem holding `path`, or its nearest
/// existing ancestor (the app's data dir may not exist before its first start).
pub fn available(path: &Path) -> io::Result<u64> {
    let mut p = path;
    loop {
        match nix::sys::statvfs::statvfs(p) {
            // fsblkcnt_t and c_ulong are narrower than u64 on 32-bit targets
            #[allow(clippy::unnecessary_cast)]
            Ok(s) => return Ok(s.blocks_available() as u64 * s.fragment_size() as u64),
            Err(nix::errno::Errno::ENOENT) => match p.parent() {
                Some(parent) => p = parent,
                None => return Err(io::Error::from(io::ErrorKind::NotFound)),
            },
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_up_to_an_existing_dir() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("not/yet/there");
        assert_eq!(
            available(&deep).unwrap() / (1 << 20),
            available(d.path()).unwrap() / (1 << 20)
        );
    }
}
