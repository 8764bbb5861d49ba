//! Greenfield's authentication and authorization (`Security/GreenField/APIKeyExtensions.cs`,
//! `APIKeysAuthenticationHandler.cs`, `GreenfieldAuthenticationHandler.cs`), the routes, the
//! health and stores endpoints.

use super::Ctx;
use crate::dotnet::{self, json_response};
use crate::http::{self, Request, Response};
use crate::json::{self, num, obj, s, Value};
use crate::postgres::{self as pg, PgError};

pub(super) fn api_error(status: u16, code: &str, message: &str) -> Response {
    json_response(
        status,
        &obj(vec![("code", s(code)), ("message", s(message))]),
    )
}

pub(super) fn ok_json(v: &Value) -> Response {
    json_response(200, v)
}

/// Which store-scoped policies a permission grants (the policy definitions in
/// `Hosting/BTCPayServerServices.cs`, as far as the stand-in's routes need them).
fn grants(perm: &str, policy: &str) -> bool {
    perm == policy
        || match perm {
            "btcpay.store.canmodifystoresettings" => matches!(
                policy,
                "btcpay.store.canviewstoresettings"
                    | "btcpay.store.canmodifyinvoices"
                    | "btcpay.store.canviewinvoices"
                    | "btcpay.store.cancreateinvoice"
            ),
            "btcpay.store.canmodifyinvoices" => {
                matches!(
                    policy,
                    "btcpay.store.canviewinvoices" | "btcpay.store.cancreateinvoice"
                )
            }
            _ => false,
        }
}

impl Ctx {
    /// The API key's permissions, or the 401 to answer.
    fn authenticate(&self, req: &Request) -> Result<Vec<String>, Response> {
        let unauth = |m: &str| api_error(401, "unauthenticated", m);
        let Some(h) = req.header("Authorization") else {
            return Err(unauth(
                "Authentication is required for accessing this endpoint",
            ));
        };
        let mut parts = h.split_whitespace();
        let scheme = parts.next().unwrap_or_default();
        let Some(key) = parts.next().filter(|_| {
            scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer")
        }) else {
            return Err(unauth(
                "Authentication is required for accessing this endpoint",
            ));
        };
        let rows = self
            .pg
            .query(&format!(
                "SELECT COALESCE(\"Blob2\"->'permissions', '[]'::jsonb)::text FROM \"ApiKeys\" WHERE \"Id\" = {}",
                pg::lit(key)
            ))
            .map_err(|e| self.server_error(e))?;
        let Some(perms) = rows.first().and_then(|r| r.first()) else {
            return Err(unauth("ApiKey authentication failed: Unknown API Key"));
        };
        Ok(match json::parse(perms) {
            Ok(Value::Arr(a)) => a
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        })
    }

    pub(super) fn server_error(&self, e: PgError) -> Response {
        dotnet::request_failed(&e.dotnet())
    }

    /// The policy for a store, or the 403.
    pub(super) fn authorize(
        &self,
        perms: &[String],
        policy: &str,
        store: &str,
    ) -> Result<(), Response> {
        let ok = perms.iter().any(|p| match p.split_once(':') {
            Some((perm, scope)) => scope == store && grants(perm, policy),
            None => grants(p, policy),
        });
        if ok {
            return Ok(());
        }
        let v = obj(vec![
            ("missingPermission", s(policy)),
            ("code", s("missing-permission")),
            (
                "message",
                s(&format!(
                    "Insufficient API Permissions. Please use an API key with permission \"{policy}\". You can create an API key in your account's settings / Api Keys."
                )),
            ),
        ]);
        Err(json_response(403, &v))
    }

    pub(super) fn handle(&self, req: Request) -> Response {
        let (segs, q) = http::split_target(&req.path);
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        if req.method == "GET" && segs == ["api", "v1", "health"] {
            return ok_json(&obj(vec![(
                "synchronized",
                Value::Bool(self.fully_synched()),
            )]));
        }
        if segs.len() < 3 || segs[0] != "api" || segs[1] != "v1" {
            return Response::new(404, "text/html", "");
        }
        let perms = match self.authenticate(&req) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let r = match (req.method.as_str(), &segs[2..]) {
            ("GET", ["stores"]) => Ok(self.stores(&perms, None)),
            ("GET", ["stores", st]) => self
                .authorize(&perms, "btcpay.store.canviewstoresettings", st)
                .map(|_| self.stores(&perms, Some(st))),
            ("POST", ["stores", st, "invoices"]) => self
                .authorize(&perms, "btcpay.store.cancreateinvoice", st)
                .and_then(|_| self.create_invoice(st, &req, &q)),
            ("GET", ["stores", st, "invoices"]) => self
                .authorize(&perms, "btcpay.store.canviewinvoices", st)
                .and_then(|_| self.list_invoices(st, &req)),
            ("GET", ["stores", st, "invoices", id]) => self
                .authorize(&perms, "btcpay.store.canviewinvoices", st)
                .and_then(|_| self.get_invoice(Some(st), id, &req, &q, &perms)),
            ("GET", ["invoices", id]) => self.get_invoice(None, id, &req, &q, &perms),
            ("GET", ["stores", st, "invoices", id, "payment-methods"]) => self
                .authorize(&perms, "btcpay.store.canviewinvoices", st)
                .and_then(|_| self.payment_methods(Some(st), id, &q, &perms)),
            ("GET", ["invoices", id, "payment-methods"]) => {
                self.payment_methods(None, id, &q, &perms)
            }
            _ => Err(Response::new(404, "text/html", "")),
        };
        r.unwrap_or_else(|e| e)
    }

    fn stores(&self, perms: &[String], only: Option<&str>) -> Response {
        let rows = match self.pg.query("SELECT \"Id\", \"StoreName\", COALESCE(\"StoreBlob\"->>'defaultCurrency', 'USD'), \"Archived\" FROM \"Stores\" ORDER BY \"Id\"") {
            Ok(r) => r,
            Err(e) => return self.server_error(e),
        };
        let list: Vec<Value> = rows
            .iter()
            .filter(|r| {
                r.len() == 4
                    && only.is_none_or(|o| o == r[0])
                    && self
                        .authorize(perms, "btcpay.store.canviewstoresettings", &r[0])
                        .is_ok()
            })
            .map(|r| {
                obj(vec![
                    ("id", s(&r[0])),
                    ("name", s(&r[1])),
                    ("website", Value::Null),
                    ("defaultCurrency", s(&r[2])),
                    ("archived", Value::Bool(r[3] == "t")),
                    ("speedPolicy", s("HighSpeed")),
                    ("invoiceExpiration", num(900)),
                    ("monitoringExpiration", num(86400)),
                ])
            })
            .collect();
        match only {
            Some(_) => match list.into_iter().next() {
                Some(v) => ok_json(&v),
                None => api_error(404, "store-not-found", "The store was not found"),
            },
            None => ok_json(&Value::Arr(list)),
        }
    }

    pub(super) fn host(req: &Request) -> String {
        req.header("Host").unwrap_or("localhost").to_string()
    }
}

pub(super) fn validation(errors: Vec<(&str, &str)>) -> Response {
    let v = Value::Arr(
        errors
            .into_iter()
            .map(|(p, m)| obj(vec![("path", s(p)), ("message", s(m))]))
            .collect(),
    );
    json_response(422, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions() {
        assert!(grants(
            "btcpay.store.canmodifystoresettings",
            "btcpay.store.cancreateinvoice"
        ));
        assert!(!grants(
            "btcpay.store.canviewinvoices",
            "btcpay.store.cancreateinvoice"
        ));
    }
}
