//! Atomic file writes: a temporary file in the same directory, synced, then renamed over the
//! target, so a reader (or a crash) sees the old content or the new, never half of either.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `contents` to `path` atomically with `mode`. Returns whether the file changed: when it
/// already holds exactly `contents` with that mode, nothing is written. The old file is read
/// without following a link and without blocking: anything but a regular file there is refused.
pub fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    if let Some(mut old) = crate::nofollow::open_file(path, path)? {
        let meta = old.metadata()?;
        if meta.len() == contents.len() as u64 && meta.permissions().mode() & 0o7777 == mode {
            let mut bytes = Vec::with_capacity(contents.len());
            old.read_to_end(&mut bytes)?;
            if bytes == contents {
                return Ok(false);
            }
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

    #[test]
    fn a_link_or_fifo_in_place_of_the_old_file_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"theirs").unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let e = write_if_changed(&link, b"ours", 0o600).unwrap_err();
        assert!(e.to_string().contains("link is a symbolic link"), "{e}");
        assert_eq!(fs::read(&elsewhere).unwrap(), b"theirs");
        let mode = fs::metadata(&elsewhere).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        // a FIFO with no writer: a blocking read would never return
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = write_if_changed(&fifo, b"ours", 0o600).unwrap_err();
        assert!(e.to_string().contains("fifo is a FIFO"), "{e}");
    }
}
