//! The host directories an app's volumes mount, made by `archy-hook volumes` before its container
//! starts. A container writes below them (the app's own, or the app sharing its data with this
//! one), so a link or FIFO it planted may be there: each directory is made one step at a time
//! below its root, no step following a link, and anything but a directory there is refused.
//! podman mounts by path afterwards: a sharing app's container, running meanwhile, could still
//! swap a directory for a link in between; this closes the window a start always left open, not
//! that one.

use crate::manifest::Manifest;
use crate::node::NodeSettings;
use crate::nofollow;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// One volume's host directory: `below` its `root`, a directory no container can replace (the
/// mount point itself, in a directory archy or the admin owns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDir {
    /// The volume's target in the container, for messages.
    pub target: String,
    pub root: PathBuf,
    pub below: Vec<String>,
    /// The app whose container can write there.
    pub writer: String,
}

impl HostDir {
    pub fn path(&self) -> PathBuf {
        self.below.iter().fold(self.root.clone(), |p, s| p.join(s))
    }
}

/// The host directory of each volume but the secrets ones (archy's, made by `archy-hook
/// secrets`). `state` is the resolved `$XDG_STATE_HOME/archipelago`.
pub fn host_dirs(node: &NodeSettings, state: &Path, m: &Manifest) -> Vec<HostDir> {
    let id = m.id();
    m.container
        .volumes
        .iter()
        .filter_map(|v| {
            let root = crate::names::app(id).volume_root(node, state, v)?;
            let below = crate::names::volume_below(v)
                .into_iter()
                .map(str::to_string)
                .collect();
            Some(HostDir {
                target: v.target.to_string(),
                root,
                below,
                writer: v.owner(id).to_string(),
            })
        })
        .collect()
}

/// Makes `d`'s directory (as `mkdir -p` would, modes from the umask), returning the directories
/// it created. The root is made as given; below it, every step is opened without following a
/// link and made with mkdirat in the directory opened before it. A link, FIFO, file or device at
/// any step is refused: the error names its path.
pub fn ensure(d: &HostDir) -> io::Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    if !d.root.exists() {
        std::fs::DirBuilder::new().recursive(true).create(&d.root)?;
        created.push(d.root.clone());
    }
    // the root may be a link an admin made (a data dir on another disk): no container can
    // write where it is, so it is followed; nothing below it is
    let mut dir = File::open(&d.root).map_err(|e| at_path(&d.root, e))?;
    if !dir.metadata()?.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            d.root.display()
        )));
    }
    let mut shown = d.root.clone();
    for part in &d.below {
        shown.push(part);
        let name = Path::new(part);
        dir = match nofollow::open_dir(&nofollow::at(&dir, name), &shown) {
            Ok(next) => next,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mode = nix::sys::stat::Mode::from_bits_truncate(0o777);
                match nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, mode) {
                    // made meanwhile by someone else: opened and checked like any other
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(at_path(&shown, e.into())),
                }
                let next = nofollow::open_dir(&nofollow::at(&dir, name), &shown)?;
                created.push(shown.clone());
                next
            }
            Err(e) => return Err(e),
        };
    }
    Ok(created)
}

fn at_path(p: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(root: &Path, below: &str) -> HostDir {
        HostDir {
            target: "/data".into(),
            root: root.to_path_buf(),
            below: below.split('/').map(str::to_string).collect(),
            writer: "a".into(),
        }
    }

    #[test]
    fn volumes_are_found_below_their_roots() {
        let m: Manifest = toml::from_str(
            "[app]\nid = \"b\"\n[image]\nref = \"x\"\n[dependencies]\nrequires = [\"a\"]\n\
             [secrets]\ns = \"password\"\n\
             [[container.volumes]]\ntarget = \"/own\"\n\
             [[container.volumes]]\nfrom = \"state\"\nsubpath = \"./run//x/\"\ntarget = \"/st\"\n\
             [[container.volumes]]\nfrom = \"secrets\"\nsubpath = \"s\"\ntarget = \"/s\"\n\
             [[container.volumes]]\napp = \"a\"\nsubpath = \"pub\"\ntarget = \"/a\"\n",
        )
        .unwrap();
        let node = NodeSettings::default();
        let dirs = host_dirs(&node, Path::new("/st"), &m);
        let got: Vec<(PathBuf, &str)> =
            dirs.iter().map(|d| (d.path(), d.writer.as_str())).collect();
        assert_eq!(
            got,
            [
                (PathBuf::from("/var/lib/archipelago/b"), "b"),
                (PathBuf::from("/st/b/volume/run/x"), "b"),
                (PathBuf::from("/var/lib/archipelago/a/pub"), "a"),
            ]
        );
    }

    #[test]
    fn makes_each_step_and_is_idempotent() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("data/a");
        let d = dir(&root, "x/y");
        assert_eq!(
            ensure(&d).unwrap(),
            [root.clone(), root.join("x"), root.join("x/y")]
        );
        assert!(root.join("x/y").is_dir());
        assert!(ensure(&d).unwrap().is_empty());
    }

    #[test]
    fn a_planted_link_is_refused_and_nothing_is_made_where_it_points() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("a");
        let secrets = t.path().join("secrets");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&secrets).unwrap();
        std::os::unix::fs::symlink(&secrets, root.join("pub")).unwrap();
        for below in ["pub", "pub/x"] {
            let e = ensure(&dir(&root, below)).unwrap_err().to_string();
            let want = format!("{} is a symbolic link", root.join("pub").display());
            assert!(e.contains(&want), "{e}");
        }
        assert_eq!(std::fs::read_dir(&secrets).unwrap().count(), 0);
    }

    #[test]
    fn a_planted_fifo_or_file_is_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        nix::unistd::mkfifo(&root.join("f"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::write(root.join("file"), b"").unwrap();
        let e = ensure(&dir(&root, "f")).unwrap_err().to_string();
        assert!(e.contains("f is a FIFO, not a directory"), "{e}");
        let e = ensure(&dir(&root, "file/x")).unwrap_err().to_string();
        assert!(e.contains("file is a regular file, not a directory"), "{e}");
    }
}
