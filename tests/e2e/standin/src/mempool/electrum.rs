//! The ElectrumX client (@mempool/electrum-client 1.1.9 `index.js`, `lib/client.js`,
//! `api/bitcoin/electrum-api.ts`): connect, `server.version`, keep-alive pings, reconnect for ever.

use super::bitcoind::node_connect;
use super::config::Config;
use super::log::{debug, err, info};
use crate::json::{self, num, obj, s, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(super) struct Electrum {
    host: String,
    port: u16,
    tls: bool,
    status: AtomicU8,
    writer: Mutex<Option<TcpStream>>,
    pending: Mutex<HashMap<u64, Sender<Result<Value, String>>>>,
    next_id: AtomicU64,
    last_call: Mutex<Instant>,
}

impl Electrum {
    pub(super) fn new(cfg: &Config) -> Electrum {
        Electrum {
            host: cfg.str("ELECTRUM", "HOST"),
            port: cfg.num("ELECTRUM", "PORT") as u16,
            tls: cfg.truthy("ELECTRUM", "TLS_ENABLED"),
            status: AtomicU8::new(0),
            writer: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            last_call: Mutex::new(Instant::now()),
        }
    }

    fn where_(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub(super) fn request(&self, method: &str, params: Vec<Value>) -> Result<Value, String> {
        if self.status.load(Ordering::SeqCst) == 0 {
            return Err("Connection to server lost, please retry".into());
        }
        *self.last_call.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let (tx, rx) = channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let line = obj(vec![
            ("jsonrpc", s("2.0")),
            ("method", s(method)),
            ("params", Value::Arr(params)),
            ("id", num(id)),
        ])
        .compact();
        let written = match self
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(w) => w.write_all(format!("{line}\n").as_bytes()).is_ok(),
            None => false,
        };
        if !written {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err("close connect".into());
        }
        rx.recv().unwrap_or_else(|_| Err("close connect".into()))
    }

    fn on_close(&self) {
        self.status.store(0, Ordering::SeqCst);
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = None;
        for (_, tx) in self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
        {
            let _ = tx.send(Err("close connect".into()));
        }
        info(format!(
            "Disconnected from Electrum Server at {}",
            self.where_()
        ));
    }

    /// initElectrum, then reconnects for ever (retryPeriod 1000 ms).
    pub(super) fn run(self: Arc<Self>) {
        let mut first = true;
        loop {
            self.status.store(1, Ordering::SeqCst);
            let attempt = if self.tls {
                Err((
                    "TLS is not mirrored by the archy e2e stand-in".to_string(),
                    "{\"code\":\"ERR_STANDIN_NO_TLS\",\"message\":\"TLS is not mirrored by the archy e2e stand-in\"}".to_string(),
                ))
            } else {
                node_connect(&self.host, self.port, Duration::from_secs(60))
            };
            match attempt {
                Err((_, json_err)) => {
                    err(format!("Electrum error: {json_err}"));
                    if first {
                        err(format!(
                            "Error connecting to Electrum Server at {}",
                            self.where_()
                        ));
                    } else {
                        err(format!("Electrum error: {json_err}"));
                    }
                    self.on_close();
                }
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let reader = stream.try_clone().ok();
                    *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
                    let closed = Arc::new(AtomicBool::new(false));
                    if let Some(r) = reader {
                        let me = self.clone();
                        let closed = closed.clone();
                        std::thread::spawn(move || {
                            let mut lines = BufReader::new(r);
                            loop {
                                let mut line = String::new();
                                match lines.read_line(&mut line) {
                                    Ok(0) | Err(_) => break,
                                    Ok(_) => me.on_message(line.trim()),
                                }
                            }
                            closed.store(true, Ordering::SeqCst);
                        });
                    }
                    match self.request("server.version", vec![s("mempool-v2"), s("1.4")]) {
                        Ok(v) => info(format!(
                            "Connected to Electrum Server at {} ({})",
                            self.where_(),
                            v.compact()
                        )),
                        Err(e) if first => {
                            let _ = e;
                            err(format!(
                                "Error connecting to Electrum Server at {}",
                                self.where_()
                            ));
                        }
                        Err(e) => err(format!("Electrum error: {}", s(&e).compact())),
                    }
                    // keepAlive: a ping after 120 s without a request
                    while !closed.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(200));
                        let idle = self
                            .last_call
                            .lock()
                            .map(|t| t.elapsed())
                            .unwrap_or_default();
                        if idle >= Duration::from_secs(120) && !closed.load(Ordering::SeqCst) {
                            let me = self.clone();
                            std::thread::spawn(move || {
                                if let Err(e) = me.request("server.ping", vec![]) {
                                    debug(format!("Keep-Alive ping failed: {e}"));
                                }
                            });
                            *self.last_call.lock().unwrap_or_else(|e| e.into_inner()) =
                                Instant::now();
                        }
                    }
                    self.on_close();
                }
            }
            first = false;
            std::thread::sleep(Duration::from_millis(1000));
            debug("Electrum attempting reconnect...");
        }
    }

    fn on_message(&self, line: &str) {
        let Ok(msg) = json::parse(line) else { return };
        let answer = |m: &Value| {
            let Some(id) = m.get("id").and_then(Value::as_i64) else {
                return;
            };
            if let Some(tx) = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(id as u64))
            {
                let r = match m.get("error") {
                    Some(e) if *e != Value::Null => Err(e
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| e.compact(), str::to_string)),
                    _ => Ok(m.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = tx.send(r);
            }
        };
        match &msg {
            Value::Arr(items) => items.iter().for_each(answer),
            m if m.get("id").is_some() => answer(m),
            _ => {} // a notification: the subscriptions mempool makes none of
        }
    }
}
