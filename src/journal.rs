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
}

impl HookLog {
    pub fn new(hook: &'static str, app: Option<&str>) -> Self {
        let to_journal = Path::new("/run/systemd/journal/socket").exists()
            && std::env::var("ARCHY_LOG").as_deref() != Ok("stderr");
        Self {
            hook,
            app: app.map(str::to_string),
            to_stderr: !(to_journal && connected_to_journal()),
            to_journal,
        }
    }

    fn log(&self, priority: Priority, msg: &str) {
        if self.to_journal {
            let mut fields = vec![
                ("ARCHY_HOOK", self.hook.to_string()),
                ("SYSLOG_IDENTIFIER", "archy-hook".to_string()),
            ];
            if let Some(app) = &self.app {
                fields.push(("ARCHY_APP", app.clone()));
            }
            if journal_send(priority, msg, fields.into_iter()).is_err() && !self.to_stderr {
                eprintln!("{msg}");
            }
        }
        if self.to_stderr {
            match &self.app {
                Some(app) => eprintln!("archy-hook {} {app}: {msg}", self.hook),
                None => eprintln!("archy-hook {}: {msg}", self.hook),
            }
        }
    }

    pub fn info(&self, msg: &str) {
        self.log(Priority::Info, msg);
    }

    pub fn notice(&self, msg: &str) {
        self.log(Priority::Notice, msg);
    }

    pub fn error(&self, msg: &str) {
        self.log(Priority::Error, msg);
    }
}
