//! Logging for the generator: to /dev/kmsg when it is writable (as systemd generators do, since
//! the journal may not run yet), else to stderr, which the user manager sends to its journal.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error = 3,
    Warning = 4,
    Info = 6,
}

pub struct Logger {
    kmsg: Option<Mutex<std::fs::File>>,
    ident: &'static str,
}

impl Logger {
    /// `use_kmsg` false forces stderr (dry runs, tests).
    pub fn new(ident: &'static str, use_kmsg: bool) -> Self {
        let kmsg = use_kmsg
            .then(|| OpenOptions::new().write(true).open("/dev/kmsg").ok())
            .flatten()
            .map(Mutex::new);
        Self { kmsg, ident }
    }

    pub fn log(&self, level: Level, msg: &str) {
        // one record per line: a message can never forge a second record
        for line in msg.lines() {
            if let Some(k) = &self.kmsg {
                if let Ok(mut f) = k.lock() {
                    let rec = format!(
                        "<{}>{}[{}]: {line}\n",
                        level as u8,
                        self.ident,
                        std::process::id()
                    );
                    if f.write_all(rec.as_bytes()).is_ok() {
                        continue;
                    }
                }
            }
            let tag = match level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Info => "info",
            };
            eprintln!("{}: {tag}: {line}", self.ident);
        }
    }

    pub fn error(&self, msg: &str) {
        self.log(Level::Error, msg);
    }
    pub fn warn(&self, msg: &str) {
        self.log(Level::Warning, msg);
    }
    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg);
    }
}
