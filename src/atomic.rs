//! Atomic file writes: a temporary file in the same directory, synced, then renamed over the
//! target, so a reader (or a crash) sees the old content or the new, never half of either.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `contents` to `path` atomically with `mode`. Returns whether the file changed: when it
/// already holds exactly `contents` with that mode, nothing is written.
pub fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    if let Ok(old) = fs::read(path) {
        let same_mode = fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
        if old == contents && same_mode {
            return Ok(false);
        }
    }
    write(path, contents, mode)?;
    Ok(true)
}

/// Writes `contents` to `path` atomically with `mode`.
pub fn write(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".archy-")
        .tempfile_in(dir)?;
    // the mode is set before any content is written: a secret is never readable by others
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reports_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert!(write_if_changed(&p, b"one", 0o600).unwrap());
        assert!(!write_if_changed(&p, b"one", 0o600).unwrap());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_if_changed(&p, b"one", 0o644).unwrap());
        assert!(write_if_changed(&p, b"two", 0o644).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // no temporary file is left behind
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
