//! Opening files and directories a container may have written (or replaced) without following a
//! symbolic link at the last step and without blocking on a FIFO, checking what was opened. A
//! step below an open directory goes through its `/proc/self/fd` entry, so no path is looked up
//! again from the top (and no unsafe code turns a raw descriptor into a file).

use nix::fcntl::OFlag;
use nix::sys::stat::{fstatat, SFlag};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const FLAGS: i32 = OFlag::O_NOFOLLOW.bits()
    | OFlag::O_NONBLOCK.bits()
    | OFlag::O_NOCTTY.bits()
    | OFlag::O_CLOEXEC.bits();

/// The path of `name` inside the open directory `dir`.
pub fn at(dir: &File, name: &Path) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

fn open(path: &Path, extra: i32) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(FLAGS | extra)
        .open(path)
}

/// What is at `path` (not following a link there), for a refusal: "a symbolic link", "a FIFO"...
pub fn kind_of(path: &Path) -> &'static str {
    match fstatat(None, path, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFLNK => "a symbolic link",
            SFlag::S_IFIFO => "a FIFO",
            SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
            SFlag::S_IFSOCK => "a socket",
            SFlag::S_IFDIR => "a directory",
            SFlag::S_IFREG => "a regular file",
            _ => "of an unknown type",
        },
        Err(_) => "not there",
    }
}

/// The error for `shown` (the path in messages) when `path` is not what was expected.
fn refusal(shown: &Path, path: &Path, want: &str, e: Option<io::Error>) -> io::Error {
    let kind = kind_of(path);
    match e {
        Some(e) if kind == "not there" || kind == want => {
            io::Error::new(e.kind(), format!("{}: {e}", shown.display()))
        }
        _ => {
            let why = if kind == "a symbolic link" {
                "not following it"
            } else {
                "refused"
            };
            io::Error::other(format!("{} is {kind}, not {want}: {why}", shown.display()))
        }
    }
}

/// Opens the directory `path`, refusing a link or anything else there. `shown` is the path
/// named in errors (the real one, when `path` goes through `/proc/self/fd`). A missing
/// directory is an error of kind NotFound.
pub fn open_dir(path: &Path, shown: &Path) -> io::Result<File> {
    match open(path, OFlag::O_DIRECTORY.bits()) {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e),
        Err(e) => Err(refusal(shown, path, "a directory", Some(e))),
    }
}

/// Opens the regular file `path` for reading, refusing a link, a FIFO, a device or a directory
/// there. None when it does not exist.
pub fn open_file(path: &Path, shown: &Path) -> io::Result<Option<File>> {
    let f = match open(path, 0) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refusal(shown, path, "a regular file", Some(e))),
    };
    // a FIFO opens at once with O_NONBLOCK: what was opened is checked, not what the path held
    if !f.metadata()?.is_file() {
        return Err(refusal(shown, path, "a regular file", None));
    }
    Ok(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_wrong_types_are_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        std::fs::create_dir(p("dir")).unwrap();
        std::fs::write(p("file"), b"x").unwrap();
        std::os::unix::fs::symlink(p("dir"), p("link-to-dir")).unwrap();
        std::os::unix::fs::symlink(p("file"), p("link-to-file")).unwrap();
        nix::unistd::mkfifo(&p("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();

        assert!(open_dir(&p("dir"), &p("dir")).is_ok());
        let e = open_dir(&p("link-to-dir"), &p("link-to-dir")).unwrap_err();
        assert!(
            e.to_string().contains("link-to-dir is a symbolic link"),
            "{e}"
        );
        let e = open_dir(&p("fifo"), &p("fifo")).unwrap_err();
        assert!(
            e.to_string().contains("fifo is a FIFO, not a directory"),
            "{e}"
        );
        let e = open_dir(&p("file"), &p("file")).unwrap_err();
        assert!(
            e.to_string().contains("is a regular file, not a directory"),
            "{e}"
        );
        assert_eq!(
            open_dir(&p("none"), &p("none")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );

        assert!(open_file(&p("file"), &p("file")).unwrap().is_some());
        assert!(open_file(&p("none"), &p("none")).unwrap().is_none());
        // no writer: a blocking open would wait here for ever
        let e = open_file(&p("fifo"), &p("fifo")).unwrap_err();
        assert!(
            e.to_string().contains("fifo is a FIFO, not a regular file"),
            "{e}"
        );
        let e = open_file(&p("link-to-file"), &p("link-to-file")).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        let e = open_file(&p("dir"), &p("dir")).unwrap_err();
        assert!(
            e.to_string().contains("is a directory, not a regular file"),
            "{e}"
        );

        // below an open directory
        let dir = open_dir(d.path(), d.path()).unwrap();
        let e = open_dir(&at(&dir, Path::new("link-to-dir")), &p("link-to-dir")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&p("link-to-dir").display().to_string()),
            "{e}"
        );
    }
}
