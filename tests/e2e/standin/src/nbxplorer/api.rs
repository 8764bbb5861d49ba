//! NBXplorer's HTTP API (`Startup.cs`, `Authentication/BasicAuthenticationHandler.cs`,
//! `Controllers/MainController.cs`, `Controllers/DerivationSchemesController.cs`,
//! `Filters/NBXplorerExceptionFilter.cs`, `HealthChecks/NodesHealthCheck.cs`).

use super::rpc::{ChainInfo, RpcError};
use super::scheme::{self, Strategy};
use super::{Ctx, State, VERSION};
use crate::dotnet::{self, json_response};
use crate::http::{self, Request, Response};
use crate::json::{self, num, obj, s, Value};
use crate::postgres::PgError;
use std::collections::HashMap;
use std::time::Duration;

const RPC_WHITELIST: &[&str] = &[
    "sendrawtransaction",
    "getrawtransaction",
    "gettxout",
    "estimatesmartfee",
    "getmempoolinfo",
    "getmempoolentry",
    "gettxoutproof",
    "verifytxoutproof",
    "getblockchaininfo",
    "getblockhash",
    "getblockheader",
];

impl Ctx {
    fn authorized(&self, req: &Request) -> bool {
        let cookie = self
            .cookie
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Some((user, pass)) = &cookie else {
            return true;
        };
        let Some(h) = req.header("Authorization") else {
            return false;
        };
        if h.len() < 6 || !h[..5].eq_ignore_ascii_case("basic") {
            return false;
        }
        let Some(raw) = crate::util::unbase64(h[5..].trim()) else {
            return false;
        };
        // iso-8859-1, as BasicAuthenticationHandler decodes it
        let text: String = raw.iter().map(|&b| b as char).collect();
        let Some((u, p)) = text.split_once(':') else {
            return false;
        };
        u.eq_ignore_ascii_case(user) && p.eq_ignore_ascii_case(pass)
    }

    pub(super) fn handle(&self, req: Request) -> Response {
        let (segs, q) = http::split_target(&req.path);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        if req.method == "GET" && segs == ["health"] {
            return self.health();
        }
        if segs.first() != Some(&"v1") {
            return Response::new(404, "text/plain", "");
        }
        if !self.authorized(&req) {
            return Response::new(401, "text/plain", "");
        }
        let r = match (req.method.as_str(), &segs[1..]) {
            ("GET", ["cryptos", c, "status"]) => self.crypto(c).map(|_| self.status()),
            ("POST", ["cryptos", c, "derivations", scheme]) => {
                self.crypto(c).and_then(|_| self.track(scheme))
            }
            ("GET", ["cryptos", c, "derivations", scheme]) => {
                self.crypto(c).and_then(|_| self.tracked(scheme))
            }
            ("GET", ["cryptos", c, "derivations", scheme, "addresses", "unused"]) => {
                self.crypto(c).and_then(|_| self.unused(scheme, &q))
            }
            ("GET", ["cryptos", c, "fees", blocks]) => {
                self.crypto(c).and_then(|_| self.fees(blocks))
            }
            ("POST", ["cryptos", c, "rpc"]) => {
                self.crypto(c).and_then(|_| self.rpc_proxy(&req.body))
            }
            _ => Err(Response::new(404, "text/plain", "")),
        };
        r.unwrap_or_else(|e| e)
    }

    fn crypto(&self, code: &str) -> Result<(), Response> {
        if code.eq_ignore_ascii_case("BTC") {
            Ok(())
        } else {
            Err(nbx_error(
                404,
                "cryptoCode-not-supported",
                &format!("{} is not supported", code.to_uppercase()),
            ))
        }
    }

    fn health(&self) -> Response {
        let st = self.state();
        let ok = self.connected();
        let status = if ok { "Healthy" } else { "Degraded" };
        let desc = if ok {
            "null".to_string()
        } else {
            "\"Some nodes are not running\"".to_string()
        };
        let body = format!(
            "{{\n  \"status\": \"{status}\",\n  \"results\": {{\n    \"NodesHealthCheck\": {{\n      \"status\": \"{status}\",\n      \"description\": {desc},\n      \"data\": {{\n        \"BTC\": \"{st:?}\"\n      }}\n    }}\n  }}\n}}"
        );
        Response::new(200, "application/json", body)
    }

    /// MainController.GetStatus.
    fn status(&self) -> Response {
        let (state, last, ni, caps) = {
            let g = self.idx.lock().unwrap_or_else(|e| e.into_inner());
            (
                g.state,
                g.last_indexed,
                g.network_info.clone(),
                g.caps.unwrap_or_default(),
            )
        };
        let info = if self.connected() {
            self.rpc
                .call_t("getblockchaininfo", vec![], Duration::from_secs(10))
                .ok()
                .map(|v| ChainInfo::from(&v))
        } else {
            None
        };
        let fee = |k: &str| -> Value {
            match ni.as_ref().and_then(|n| n.get(k)).and_then(Value::as_f64) {
                Some(btc_per_kvb) => num(format!("{:.1}", btc_per_kvb * 1e8 / 1000.0)
                    .trim_end_matches(".0")
                    .to_string()),
                None => Value::Null,
            }
        };
        let mut full = true;
        let mut chain_height = 0;
        let bitcoin_status = match (&info, &ni) {
            (Some(i), Some(n)) => {
                let synched = !i.synching(&self.net);
                full &= synched;
                chain_height = i.headers;
                let ext: Vec<Value> = match n.get("localaddresses") {
                    Some(Value::Arr(a)) => a
                        .iter()
                        .map(|l| {
                            s(&format!(
                                "{}:{}",
                                l.get("address").and_then(Value::as_str).unwrap_or_default(),
                                l.get("port").and_then(Value::as_i64).unwrap_or(0)
                            ))
                        })
                        .collect(),
                    _ => vec![],
                };
                obj(vec![
                    ("blocks", num(i.blocks)),
                    ("headers", num(i.headers)),
                    ("verificationProgress", num(format!("{:?}", i.progress))),
                    ("isSynched", Value::Bool(synched)),
                    ("incrementalRelayFee", fee("incrementalfee")),
                    ("minRelayTxFee", fee("relayfee")),
                    ("externalAddresses", Value::Arr(ext)),
                    (
                        "capabilities",
                        obj(vec![
                            ("canScanTxoutSet", Value::Bool(caps.scan_utxo_set)),
                            ("canSupportSegwit", Value::Bool(caps.segwit)),
                            ("canSupportTaproot", Value::Bool(caps.taproot)),
                            (
                                "canSupportTransactionCheck",
                                Value::Bool(caps.test_mempool_accept),
                            ),
                        ]),
                    ),
                ])
            }
            _ => Value::Null,
        };
        full &= info.is_some()
            && state == State::Ready
            && last.is_some()
            && info.as_ref().map_or(0, |i| i.headers) - last.unwrap_or(0) < 3;
        let body = obj(vec![
            ("bitcoinStatus", bitcoin_status),
            ("isFullySynched", Value::Bool(full)),
            ("chainHeight", num(chain_height)),
            ("syncHeight", last.map_or(Value::Null, num)),
            ("instanceName", s(&self.instance_name)),
            ("networkType", s(self.net.chain_name)),
            ("cryptoCode", s("BTC")),
            ("supportedCryptoCodes", Value::Arr(vec![s("BTC")])),
            ("version", s(&format!("{VERSION}.0"))),
        ]);
        json_response(200, &body)
    }

    fn strategy(&self, scheme: &str) -> Result<Strategy, Response> {
        scheme::parse_strategy(scheme, self.net.xpub)
            .map_err(|m| nbx_error(400, "invalid-format", &m))
    }

    fn db_failed(e: PgError) -> Response {
        dotnet::request_failed(&e.dotnet())
    }

    fn track(&self, scheme: &str) -> Result<Response, Response> {
        let st = self.strategy(scheme)?;
        for f in ["Deposit", "Change"] {
            self.generate(&st, f, Some(3)).map_err(Self::db_failed)?;
        }
        Ok(Response::new(200, "text/plain", ""))
    }

    fn tracked(&self, scheme: &str) -> Result<Response, Response> {
        let st = self.strategy(scheme)?;
        if self.is_tracked(&st.text).map_err(Self::db_failed)? {
            Ok(Response::new(200, "text/plain", ""))
        } else {
            Ok(Response::new(404, "text/plain", ""))
        }
    }

    fn unused(&self, scheme: &str, q: &HashMap<String, String>) -> Result<Response, Response> {
        let st = self.strategy(scheme)?;
        let feature = match q.get("feature").map(|f| f.to_ascii_lowercase()) {
            None => "Deposit",
            Some(f) if f == "deposit" => "Deposit",
            Some(f) if f == "change" => "Change",
            Some(f) if f == "direct" || f == "custom" => {
                let name = if f == "direct" { "Direct" } else { "Custom" };
                return Err(nbx_error(
                    400,
                    "derivation-feature-not-supported",
                    &format!(
                        "The derivation feature {name} is not supported by this derivation scheme"
                    ),
                ));
            }
            Some(f) => {
                return Err(nbx_error(
                    400,
                    "invalid-format",
                    &format!("The value '{f}' is not valid for feature."),
                ))
            }
        };
        let skip: i64 = q.get("skip").and_then(|v| v.parse().ok()).unwrap_or(0);
        let reserve = q
            .get("reserve")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if skip >= self.min_gap {
            return Err(nbx_error(
                404,
                "strategy-not-found",
                "This strategy is not tracked, or you tried to skip too much unused addresses",
            ));
        }
        let r = self
            .get_unused(&st, feature, skip, reserve)
            .map_err(Self::db_failed)?;
        Ok(json_response(200, &r.unwrap_or(Value::Null)))
    }

    fn rpc_available(&self) -> Result<(), Response> {
        let caps = self.idx.lock().unwrap_or_else(|e| e.into_inner()).caps;
        if !self.connected() || caps.is_none() {
            return Err(nbx_error(
                400,
                "rpc-unavailable",
                "The RPC interface is currently not available.",
            ));
        }
        Ok(())
    }

    fn fees(&self, blocks: &str) -> Result<Response, Response> {
        self.rpc_available()?;
        let n: i64 = blocks
            .parse()
            .map_err(|_| Response::new(404, "text/plain", ""))?;
        let unavailable = || {
            nbx_error(
                400,
                "fee-estimation-unavailable",
                "It is currently impossible to estimate fees, please try again later.",
            )
        };
        let v = self
            .rpc
            .call("estimatesmartfee", vec![num(n)])
            .map_err(|_| unavailable())?;
        let Some(rate) = v.get("feerate").and_then(Value::as_f64) else {
            return Err(unavailable());
        };
        let got = v.get("blocks").and_then(Value::as_i64).unwrap_or(n);
        let sat_vb = rate * 1e8 / 1000.0;
        let body = obj(vec![
            ("feeRate", num(format!("{sat_vb}"))),
            ("blockCount", num(got)),
        ]);
        Ok(json_response(200, &body))
    }

    /// MainController.RPCProxy: the whitelisted methods (all of them with exposerpc).
    fn rpc_proxy(&self, body: &[u8]) -> Result<Response, Response> {
        self.rpc_available()?;
        let text = String::from_utf8_lossy(body);
        let one = |r: &Value| -> Result<Value, Response> {
            let method = r
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if !self.expose_rpc && !RPC_WHITELIST.contains(&method.as_str()) {
                return Err(nbx_error(
                    401,
                    "json-rpc-not-exposed",
                    &format!(
                        "JSON-RPC is not configured to be exposed. Only the following methods are available: {}",
                        RPC_WHITELIST.join(", ")
                    ),
                ));
            }
            let params = match r.get("params") {
                Some(Value::Arr(a)) => a.clone(),
                _ => vec![],
            };
            Ok(match self.rpc.call(&method, params) {
                Ok(v) => obj(vec![("result", v)]),
                Err(RpcError::Rpc(code, m)) => obj(vec![(
                    "error",
                    obj(vec![("code", num(code)), ("message", s(&m))]),
                )]),
                Err(RpcError::Http(m)) => {
                    return Err(dotnet::request_failed(&format!(
                        "System.Net.Http.HttpRequestException: {m}"
                    )));
                }
            })
        };
        let out = match json::parse(text.trim()) {
            Ok(Value::Arr(reqs)) => {
                if !self.expose_rpc
                    && !reqs.iter().all(|r| {
                        RPC_WHITELIST
                            .contains(&r.get("method").and_then(Value::as_str).unwrap_or_default())
                    })
                {
                    return Err(one(&obj(vec![("method", s("(batch)"))]))
                        .err()
                        .unwrap_or_else(|| Response::new(401, "text/plain", "")));
                }
                Value::Arr(reqs.iter().map(one).collect::<Result<Vec<_>, _>>()?)
            }
            Ok(r @ Value::Obj(_)) if r.get("method").is_some() => one(&r)?,
            _ => {
                return Err(nbx_error(
                    422,
                    "no-json-rpc-request",
                    "A JSON-RPC request was not provided in the body.",
                ))
            }
        };
        Ok(json_response(200, &out))
    }
}

fn nbx_error(status: u16, code: &str, message: &str) -> Response {
    let v = obj(vec![
        ("httpCode", num(status)),
        ("code", s(code)),
        ("message", s(message)),
        ("reason", Value::Null),
    ]);
    json_response(status, &v)
}
