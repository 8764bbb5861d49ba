//! lnd's REST API (and the stand-in's gRPC port, which serves the same over TLS for lncli), as
//! lnd v0.21.2-beta answers it: JSON with proto field names and every field emitted, bytes as
//! base64 (lnrpc/rpc_utils.go RESTJsonMarshalOpts), errors as `{"code","message","details"}`
//! with grpc-gateway's HTTP status for the gRPC code. What each state allows
//! (rpcperms/interceptor.go checkRPCState): the State service always; the WalletUnlocker
//! (genseed, initwallet, unlockwallet) only without a wallet or while it is locked, and no
//! macaroon for either (macaroonWhitelist); everything else from RPC_ACTIVE on, with a macaroon.

use super::wallet;
use super::{Node, WalletState};
use crate::http::{Request, Response};
use crate::json::{num, obj, s, Value};
use base64::Engine as _;

fn b64(bytes: &[u8]) -> Value {
    s(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A gRPC error through grpc-gateway: Unknown (2) is HTTP 500, Unauthenticated (16) 401.
fn error(code: u16, message: &str) -> Response {
    let status = match code {
        16 => 401,
        5 => 404,
        3 => 400,
        _ => 500,
    };
    let body = obj(vec![
        ("code", num(code)),
        ("message", s(message)),
        ("details", Value::Arr(vec![])),
    ]);
    Response::json(status, &body.compact())
}

fn ok(v: Value) -> Response {
    Response::json(200, &v.compact())
}

pub fn handle(node: &Node, req: Request) -> Option<Response> {
    let path = req.path.split('?').next().unwrap_or_default().to_string();
    let state = node.state();
    let unlocker = matches!(
        path.as_str(),
        "/v1/genseed" | "/v1/initwallet" | "/v1/unlockwallet" | "/v1/changepassword"
    );
    if path == "/v1/state" {
        return Some(ok(obj(vec![("state", s(state.name()))])));
    }
    if unlocker {
        return Some(match state {
            WalletState::NonExisting | WalletState::Locked => walletunlocker(node, &path, &req),
            _ => error(
                2,
                "wallet already unlocked, WalletUnlocker service is no longer available",
            ),
        });
    }
    match state {
        WalletState::NonExisting => {
            return Some(error(
                2,
                "wallet not created, create one to enable full RPC access",
            ))
        }
        WalletState::Locked => {
            return Some(error(
                2,
                "wallet locked, unlock it to enable full RPC access",
            ))
        }
        WalletState::Unlocked => return Some(error(
            2,
            "the RPC server is in the process of starting up, but not yet ready to accept calls",
        )),
        _ => {}
    }
    let Some(mac) = req.header("Grpc-Metadata-macaroon") else {
        return Some(error(2, "expected 1 macaroon, got 0"));
    };
    if let Err(e) = node.wallet.check_macaroon(mac.trim()) {
        return Some(error(2, &e));
    }
    Some(match path.as_str() {
        "/v1/getinfo" => ok(node.getinfo()),
        _ => error(5, "Not Found"),
    })
}

fn walletunlocker(node: &Node, path: &str, req: &Request) -> Response {
    let body =
        crate::json::parse(String::from_utf8_lossy(&req.body).trim()).unwrap_or(Value::Obj(vec![]));
    let password = || -> Result<Vec<u8>, String> {
        let text = body
            .get("wallet_password")
            .and_then(Value::as_str)
            .unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| {
                format!("proto: (line 1:20): invalid value for bytes field wallet_password: {e}")
            })
    };
    match path {
        "/v1/genseed" => {
            if node.wallet.exists() {
                return error(2, "wallet already exists");
            }
            let (words, enciphered) = wallet::new_seed();
            node.offered(&words);
            ok(obj(vec![
                (
                    "cipher_seed_mnemonic",
                    Value::Arr(words.iter().map(|w| s(w)).collect()),
                ),
                ("enciphered_seed", b64(&enciphered)),
            ]))
        }
        "/v1/initwallet" => {
            if node.wallet.exists() {
                return error(2, "wallet already exists");
            }
            let pw = match password() {
                Ok(p) => p,
                Err(e) => return error(3, &e),
            };
            if let Err(e) = wallet::check_password(&pw) {
                return error(2, &e);
            }
            let words: Vec<String> = match body.get("cipher_seed_mnemonic") {
                Some(Value::Arr(a)) => a
                    .iter()
                    .filter_map(|w| w.as_str().map(str::to_string))
                    .collect(),
                _ => {
                    return error(
                        2,
                        "must either specify cipher seed mnemonic or the extended master key",
                    )
                }
            };
            if let Err(e) = wallet::check_mnemonic(&words) {
                return error(2, &e);
            }
            let stateless = body.get("stateless_init") == Some(&Value::Bool(true));
            if let Err(e) = node.wallet.create(&pw, &words) {
                return error(2, &format!("unable to create wallet: {e}"));
            }
            crate::log!("[INF] LNWL: Opened wallet");
            match node.wallet.ensure_macaroons(!stateless) {
                Ok(admin) => {
                    node.unlocked();
                    ok(obj(vec![("admin_macaroon", b64(&admin))]))
                }
                Err(e) => error(2, &format!("unable to create macaroons: {e}")),
            }
        }
        "/v1/unlockwallet" => {
            if node.unlock_by_file {
                return error(
                    2,
                    "wallet unlock via RPC is disabled: wallet-unlock-password-file is set",
                );
            }
            if !node.wallet.exists() {
                return error(2, "wallet not found");
            }
            let pw = match password() {
                Ok(p) => p,
                Err(e) => return error(3, &e),
            };
            match node.wallet.unlock(&pw) {
                Ok(()) => {
                    let _ = node.wallet.ensure_macaroons(true);
                    node.unlocked();
                    ok(obj(vec![]))
                }
                Err(e) => error(2, &e),
            }
        }
        _ => error(12, "the stand-in does not change passwords"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_http() {
        assert_eq!(error(2, "x").status, 500);
        assert_eq!(error(16, "x").status, 401);
        assert_eq!(error(5, "x").status, 404);
        let r = error(2, "wallet locked, unlock it to enable full RPC access");
        let body = String::from_utf8(r.body).unwrap();
        assert!(
            body.contains(r#""code":2"#) && body.contains("wallet locked"),
            "{body}"
        );
    }
}
