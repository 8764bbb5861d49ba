//! The NBXplorer waiter (`HostedServices/NBXplorerWaiter.cs`): polls NBXplorer's status and
//! keeps the dashboard's state (NotConnected, Synching, Ready).

use super::{Ctx, CAT_PAY};
use crate::dotnet::dlog;
use crate::json::Value;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum WState {
    NotConnected,
    Synching,
    Ready,
}

pub(super) struct Dashboard {
    pub(super) state: WState,
    pub(super) status: Option<Value>,
    pub(super) error: Option<String>,
}

impl Ctx {
    pub(super) fn waiter(self: Arc<Self>) {
        dlog("info", CAT_PAY, "Starting listening NBXplorer (BTC)");
        let mut poll = Duration::from_secs(60);
        loop {
            while let Some(p) = self.step() {
                poll = p;
            }
            std::thread::sleep(poll);
        }
    }

    /// NBXplorerWaiter.StepAsync: Some(the new poll interval) if the state changed.
    fn step(&self) -> Option<Duration> {
        let old = self.dash.lock().unwrap_or_else(|e| e.into_inner()).state;
        let mut error = None;
        let mut status = None;
        match self.explorer.send("GET", "v1/cryptos/BTC/status", "") {
            Ok(st) => status = st,
            Err(e) => error = Some(e),
        }
        let mut state = old;
        if let Some(st) = &status {
            let full = st.get("isFullySynched") == Some(&Value::Bool(true));
            state = if full {
                WState::Ready
            } else {
                WState::Synching
            };
        } else if error.is_none() {
            if old != WState::NotConnected {
                state = WState::NotConnected;
            }
            error = Some("BTC: NBXplorer does not support this cryptocurrency".into());
        }
        if let (Some(st), None) = (&status, &error) {
            let nt = st
                .get("networkType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if nt != self.net.chain_name {
                error = Some(format!(
                    "BTC: NBXplorer is on a different ChainType (actual: {nt}, expected: {})",
                    self.net.chain_name
                ));
            }
        }
        if let Some(e) = &error {
            state = WState::NotConnected;
            status = None;
            dlog("fail", CAT_PAY, &format!("BTC: NBXplorer error `{e}`"));
        }
        // the mempool information through NBXplorer's RPC proxy; failures do not matter
        let _ = self.explorer.send(
            "POST",
            "v1/cryptos/BTC/rpc",
            r#"{"jsonrpc":"1.0","id":1,"method":"getmempoolinfo","params":[]}"#,
        );
        {
            let mut d = self.dash.lock().unwrap_or_else(|e| e.into_inner());
            d.state = state;
            d.status = status;
            d.error = error;
        }
        (old != state).then(|| {
            if state == WState::Synching {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(60)
            }
        })
    }

    pub(super) fn fully_synched(&self) -> bool {
        let d = self.dash.lock().unwrap_or_else(|e| e.into_inner());
        d.status.as_ref().and_then(|s| s.get("isFullySynched")) == Some(&Value::Bool(true))
    }
}
