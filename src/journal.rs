//! Hook logging: to the journal with fields a person can filter on (`journalctl --user
//! ARCHY_APP=lnd`, `ARCHY_HOOK=render`), and to stderr when that is not already the journal (a
//! person at a terminal). Never given a secret's value.

use libsystemd::logging::{connected_to_journal, journal_send, Priority};
use std::path::Path;

pub struct HookLog {
    hook: &'static str,
    app: Option<String>,
    to_stderr: bool,
    to_journal: bool,
    /// The user unit running this hook, named in each entry (see `user_unit_of_cgroup`).
    unit: Option<String>,
}

impl HookLog {
    /// The same hook's log, about one app (its lines carry ARCHY_APP=).
    pub fn for_app(&self, app: &str) -> Self {
        Self::new(self.hook, Some(app))
    }

    pub fn new(hook: &'static str, app: Option<&str>) -> Self {
        let to_journal = Path::new("/run/systemd/journal/socket").exists()
            && std::env::var("ARCHY_LOG").as_deref() != Ok("stderr");
        let unit = to_journal
            .then(|| std::fs::read_to_string("/proc/self/cgroup").ok())
            .flatten()
            .and_then(|c| user_unit_of_cgroup(&c));
        Self {
            hook,
            app: app.map(str::to_string),
            to_stderr: !(to_journal && connected_to_journal()),
            to_journal,
            unit,
        }
    }

    fn log(&self, priority: Priority, msg: &str) {
        if self.to_journal {
            let mut fields = vec![
                ("ARCHY_HOOK", self.hook.to_string()),
                ("SYSLOG_IDENTIFIER", crate::names::HOOK.to_string()),
            ];
            if let Some(app) = &self.app {
                fields.push(("ARCHY_APP", app.clone()));
            }
            if let Some(unit) = &self.unit {
                fields.push(("USER_UNIT", unit.clone()));
                if let Ok(id) = std::env::var("INVOCATION_ID") {
                    fields.push(("USER_INVOCATION_ID", id));
                }
            }
            if journal_send(priority, msg, fields.into_iter()).is_err() && !self.to_stderr {
                eprintln!("{msg}");
            }
        }
        if self.to_stderr {
            match &self.app {
                Some(app) => eprintln!("{} {} {app}: {msg}", crate::names::HOOK, self.hook),
                None => eprintln!("{} {}: {msg}", crate::names::HOOK, self.hook),
            }
        }
    }

    pub fn info(&self, msg: &str) {
        self.log(Priority::Info, msg);
    }

    pub fn notice(&self, msg: &str) {
        self.log(Priority::Notice, msg);
    }

    pub fn warning(&self, msg: &str) {
        self.log(Priority::Warning, msg);
    }

    pub fn error(&self, msg: &str) {
        self.log(Priority::Error, msg);
    }
}

/// The user unit whose cgroup `cgroup` (the text of /proc/self/cgroup) is in: the innermost
/// `*.service` below a user manager (`user@<uid>.service`). journald attributes an entry to the
/// sender's unit by looking the sender up when the entry arrives; a hook has often exited by then
/// (seen on the test bed: reconcile's lines missing from `journalctl --user -u
/// archy-reconcile`). `journalctl --user -u` and `systemctl --user status` also take entries that
/// name the unit as `USER_UNIT=` with the user's own uid, as the manager's own do.
pub fn user_unit_of_cgroup(cgroup: &str) -> Option<String> {
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let (_, below) = path.split_once("/user@")?;
    let (_, below) = below.split_once(".service/")?;
    below
        .rsplit('/')
        .find(|c| c.ends_with(".service"))
        .map(str::to_string)
}

/// For a hook a unit runs (ExecStartPre=, ExecCondition=): gives the manager a one-line status,
/// which `systemctl status` shows as `Status: "..."` until the unit's next start. Its log lines
/// do not help there: once the unit waits to restart, `status` shows only what was logged since.
/// Waits until the manager has read the status (sd_notify_barrier(3)): a message from a process
/// that has already exited may not be attributed to its unit. Does nothing outside a unit that
/// accepts notifications from all its processes (Quadlet's NotifyAccess=all). Never given a
/// secret's value.
pub fn notify_status(msg: &str) {
    use libsystemd::daemon::{notify, notify_with_fds, NotifyState};
    use std::io::Read as _;
    use std::os::fd::AsRawFd as _;
    let line = msg.replace(['\n', '\r'], " ");
    if !matches!(notify(false, &[NotifyState::Status(line)]), Ok(true)) {
        return;
    }
    let Ok((read, write)) = nix::unistd::pipe() else {
        return;
    };
    let sent = notify_with_fds(
        false,
        &[NotifyState::Other("BARRIER=1".to_string())],
        &[write.as_raw_fd()],
    );
    drop(write);
    if !matches!(sent, Ok(true)) {
        return;
    }
    // the manager closes its copy of the write end once it has handled what was sent before
    let (done, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::fs::File::from(read).read(&mut [0u8; 1]);
        let _ = done.send(());
    });
    let _ = closed.recv_timeout(std::time::Duration::from_secs(5));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_unit_from_the_cgroup() {
        let at = |p: &str| user_unit_of_cgroup(&format!("0::{p}\n"));
        let base = "/user.slice/user-1000.slice/user@1000.service/app.slice";
        assert_eq!(
            at(&format!("{base}/archy-lnd.service")).as_deref(),
            Some("archy-lnd.service")
        );
        // a delegated unit's sub-cgroup
        assert_eq!(
            at(&format!("{base}/archy-lnd.service/control")).as_deref(),
            Some("archy-lnd.service")
        );
        assert_eq!(
            at(&format!("{base}/archy-secret@bitcoind-rpc.service")).as_deref(),
            Some("archy-secret@bitcoind-rpc.service")
        );
        // not below a user manager: a login session, a system service, cgroup v1 only
        assert_eq!(at("/user.slice/user-1000.slice/session-1.scope"), None);
        assert_eq!(at("/system.slice/dpkg.service"), None);
        assert_eq!(
            at("/user.slice/user-1000.slice/user@1000.service/init.scope"),
            None
        );
        assert_eq!(user_unit_of_cgroup("1:name=systemd:/x.service\n"), None);
    }
}
