//! A leftover container of an app's name that podman can neither stop, remove nor replace, and
//! what `archy-hook leftover` (the last `ExecStartPre=`) does about it.
//!
//! Podman 5.4 (and its main branch at the time of writing) records a container as paused until it
//! reads the exit file conmon writes when the container's process ends. When a paused container's
//! processes die together with its conmon (SIGKILL of the unit's cgroup, `systemctl kill`, the
//! out-of-memory killer), nobody writes that file: the container stays "paused" in podman's
//! database for good. `podman rm --force` and `podman run --replace` then signal it through the
//! OCI runtime, which refuses a process that is gone ("sending signal to container ...: container
//! state improper"), and `podman unpause` refuses it too ("is not running"). Quadlet's start fails
//! with exit 125 at every restart until the next reboot empties podman's runtime dir.
//!
//! The way out is podman's own: the exit file conmon would have written (137: killed by SIGKILL).
//! Podman's next look at the container reads it, records it as stopped, and removes it normally.
//! Only written when podman says paused and neither the container's process nor its conmon is
//! alive: a live one would still tell podman itself.

use std::path::{Path, PathBuf};

/// What podman says about the container of an app's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The full container ID (64 hex digits).
    pub id: String,
    /// podman's state: `running`, `paused`, `exited`, ...
    pub state: String,
    /// The container's process and its conmon, as host PIDs (0: none).
    pub pid: i32,
    pub conmon_pid: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do: no such container, or one `podman run --replace` copes with.
    Nothing,
    /// Write the exit file conmon never wrote, then remove the container.
    MarkExited,
}

/// Whether a process is alive, as far as this decision is concerned.
pub trait Processes {
    /// The container's process: alive and still in the container's cgroup (not a reused PID).
    fn payload_alive(&self, pid: i32, container_id: &str) -> bool;
    /// Its conmon: alive and still conmon for that container.
    fn conmon_alive(&self, pid: i32, container_id: &str) -> bool;
}

/// The decision. Every state but "paused" is one podman still knows how to end.
pub fn decide(o: &Observed, procs: &impl Processes) -> Action {
    if o.state != "paused" || !is_container_id(&o.id) {
        return Action::Nothing;
    }
    let payload = o.pid > 0 && procs.payload_alive(o.pid, &o.id);
    let conmon = o.conmon_pid > 0 && procs.conmon_alive(o.conmon_pid, &o.id);
    if payload || conmon {
        Action::Nothing
    } else {
        Action::MarkExited
    }
}

/// A full container ID: 64 lowercase hex digits (it becomes a file name).
pub fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses `podman inspect --format '{{.Id}} {{.State.Status}} {{.State.Pid}} {{.State.ConmonPid}}'`.
pub fn parse_inspect(line: &str) -> Option<Observed> {
    let mut f = line.split_whitespace();
    let o = Observed {
        id: f.next()?.to_string(),
        state: f.next()?.to_string(),
        pid: f.next()?.parse().ok()?,
        conmon_pid: f.next()?.parse().ok()?,
    };
    f.next().is_none().then_some(o)
}

/// Where conmon writes a container's exit file: `exits/<id>` under podman's tmp dir, for a
/// rootless user `$XDG_RUNTIME_DIR/libpod/tmp` unless containers.conf moves it (`tmp_dir`).
pub fn exit_file(runtime_dir: &Path, container_id: &str) -> PathBuf {
    runtime_dir.join("libpod/tmp/exits").join(container_id)
}

/// Writes the exit file conmon never wrote: 137, a process ended by SIGKILL. An exit file
/// already there (conmon wrote it after all) is left as it is. Never follows a link.
pub fn write_exit_file(runtime_dir: &Path, container_id: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = exit_file(runtime_dir, container_id);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&path);
    match file {
        Ok(mut f) => f.write_all(b"137"),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        )),
    }
}

/// The processes of this host, read from /proc.
pub struct HostProcesses;

impl HostProcesses {
    fn read(pid: i32, file: &str) -> Option<Vec<u8>> {
        std::fs::read(format!("/proc/{pid}/{file}")).ok()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

impl Processes for HostProcesses {
    fn payload_alive(&self, pid: i32, container_id: &str) -> bool {
        Self::read(pid, "cgroup").is_some_and(|cg| contains(&cg, container_id))
    }
    fn conmon_alive(&self, pid: i32, container_id: &str) -> bool {
        Self::read(pid, "cmdline").is_some_and(|cmd| contains(&cmd, container_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "c239d84f96d8b8350a809f9d88262f6e8b7639554b5fac3c030550a1c357d85a";

    /// Processes alive by PID, whatever container they are asked about.
    struct Alive(&'static [i32]);
    impl Processes for Alive {
        fn payload_alive(&self, pid: i32, _: &str) -> bool {
            self.0.contains(&pid)
        }
        fn conmon_alive(&self, pid: i32, _: &str) -> bool {
            self.0.contains(&pid)
        }
    }

    fn seen(state: &str, pid: i32, conmon_pid: i32) -> Observed {
        Observed {
            id: ID.into(),
            state: state.into(),
            pid,
            conmon_pid,
        }
    }

    #[test]
    fn only_a_paused_container_whose_processes_are_all_gone_is_marked_exited() {
        let table = [
            // state, pid, conmon, alive, action
            ("paused", 585, 580, &[][..], Action::MarkExited),
            ("paused", 585, 580, &[585][..], Action::Nothing),
            ("paused", 585, 580, &[580][..], Action::Nothing),
            ("paused", 585, 580, &[585, 580][..], Action::Nothing),
            ("paused", 0, 0, &[][..], Action::MarkExited),
            ("running", 585, 580, &[][..], Action::Nothing),
            ("exited", 0, 0, &[][..], Action::Nothing),
            ("created", 0, 0, &[][..], Action::Nothing),
            ("stopping", 585, 580, &[][..], Action::Nothing),
        ];
        for (state, pid, conmon, alive, want) in table {
            assert_eq!(
                decide(&seen(state, pid, conmon), &Alive(alive)),
                want,
                "{state} pid {pid} conmon {conmon} alive {alive:?}"
            );
        }
    }

    #[test]
    fn an_id_that_is_not_a_container_id_is_never_a_file_name() {
        let mut o = seen("paused", 585, 580);
        for bad in ["../../x", "", "C239D84F", &ID[..63], &format!("{ID}0")] {
            o.id = bad.to_string();
            assert_eq!(decide(&o, &Alive(&[])), Action::Nothing, "{bad}");
        }
    }

    #[test]
    fn inspect_output() {
        assert_eq!(
            parse_inspect(&format!("{ID} paused 585 580\n")),
            Some(seen("paused", 585, 580))
        );
        assert_eq!(parse_inspect(&format!("{ID} paused 585")), None);
        assert_eq!(parse_inspect(&format!("{ID} paused x 580")), None);
        assert_eq!(parse_inspect(&format!("{ID} paused 1 2 3")), None);
        assert_eq!(
            exit_file(Path::new("/run/user/1000"), ID),
            PathBuf::from(format!("/run/user/1000/libpod/tmp/exits/{ID}"))
        );
    }

    #[test]
    fn the_exit_file_is_written_once_and_never_through_a_link() {
        let d = tempfile::tempdir().unwrap();
        let exits = d.path().join("libpod/tmp/exits");
        std::fs::create_dir_all(&exits).unwrap();
        write_exit_file(d.path(), ID).unwrap();
        assert_eq!(std::fs::read(exits.join(ID)).unwrap(), b"137");
        // one conmon wrote meanwhile is kept
        std::fs::write(exits.join(ID), b"0").unwrap();
        write_exit_file(d.path(), ID).unwrap();
        assert_eq!(std::fs::read(exits.join(ID)).unwrap(), b"0");
        // a link in its place is not followed
        let other = "a".repeat(64);
        std::os::unix::fs::symlink(d.path().join("target"), exits.join(&other)).unwrap();
        write_exit_file(d.path(), &other).unwrap();
        assert!(!d.path().join("target").exists());
        // no exits dir: an error naming the path
        let e = write_exit_file(&d.path().join("nowhere"), ID).unwrap_err();
        assert!(e.to_string().contains("nowhere/libpod/tmp/exits"), "{e}");
    }

    #[test]
    fn a_reused_pid_is_not_the_containers_process() {
        // this test's own process is alive, but in no container's cgroup, and not conmon
        let me = std::process::id() as i32;
        assert!(!HostProcesses.payload_alive(me, ID));
        assert!(!HostProcesses.conmon_alive(me, ID));
        assert!(!HostProcesses.payload_alive(i32::MAX, ID));
        let own_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let tail = own_cgroup.trim().rsplit('/').next().unwrap_or_default();
        if !tail.is_empty() {
            assert!(HostProcesses.payload_alive(me, tail));
        }
    }
}
