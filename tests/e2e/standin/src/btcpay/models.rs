//! What the invoice endpoints answer (`BTCPayServer.Client/Models/InvoiceData.cs`,
//! `InvoicePaymentMethodDataModel.cs`, `Payments/Bitcoin/BitcoinPaymentLinkExtension.cs`,
//! GreenfieldInvoiceController.ToModel).

use super::api::{api_error, ok_json};
use super::Ctx;
use crate::http::{Request, Response};
use crate::json::{self, num, obj, s, Value};
use crate::postgres as pg;
use std::collections::HashMap;

impl Ctx {
    fn load_invoice(&self, store: Option<&str>, id: &str) -> Result<(Value, String), Response> {
        let mut sql = format!(
            "SELECT \"Blob2\"::text, \"Status\", \"StoreDataId\" FROM \"Invoices\" WHERE \"Id\" = {}",
            pg::lit(id)
        );
        if let Some(st) = store {
            sql.push_str(&format!(" AND \"StoreDataId\" = {}", pg::lit(st)));
        }
        let rows = self.pg.query(&sql).map_err(|e| self.server_error(e))?;
        let Some(r) = rows.first().filter(|r| r.len() == 3) else {
            return Err(api_error(
                404,
                "invoice-not-found",
                "The invoice was not found",
            ));
        };
        let entity = json::parse(&r[0]).map_err(|_| Response::new(500, "text/plain", ""))?;
        Ok((entity, r[1].clone()))
    }

    pub(super) fn get_invoice(
        &self,
        store: Option<&str>,
        id: &str,
        req: &Request,
        q: &HashMap<String, String>,
        perms: &[String],
    ) -> Result<Response, Response> {
        let (entity, status) = self.load_invoice(store, id)?;
        if store.is_none() {
            let st = entity
                .get("storeId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            self.authorize(perms, "btcpay.store.canviewinvoices", st)?;
        }
        let with_pm = q
            .get("includepaymentmethods")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(ok_json(&self.invoice_model(
            &entity,
            &status,
            &Self::host(req),
            with_pm,
        )))
    }

    pub(super) fn list_invoices(&self, store: &str, req: &Request) -> Result<Response, Response> {
        let rows = self
            .pg
            .query(&format!("SELECT \"Blob2\"::text, \"Status\" FROM \"Invoices\" WHERE \"StoreDataId\" = {} AND NOT \"Archived\" ORDER BY \"Created\" DESC", pg::lit(store)))
            .map_err(|e| self.server_error(e))?;
        let list: Vec<Value> = rows
            .iter()
            .filter(|r| r.len() == 2)
            .filter_map(|r| {
                json::parse(&r[0])
                    .ok()
                    .map(|e| self.invoice_model(&e, &r[1], &Self::host(req), false))
            })
            .collect();
        Ok(ok_json(&Value::Arr(list)))
    }

    pub(super) fn payment_methods(
        &self,
        store: Option<&str>,
        id: &str,
        q: &HashMap<String, String>,
        perms: &[String],
    ) -> Result<Response, Response> {
        let (entity, _) = self.load_invoice(store, id)?;
        let st = entity
            .get("storeId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if store.is_none() {
            self.authorize(perms, "btcpay.store.canviewinvoices", &st)?;
        }
        let sensitive = q
            .get("includesensitive")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if sensitive {
            self.authorize(perms, "btcpay.store.canmodifystoresettings", &st)?;
        }
        Ok(ok_json(&Value::Arr(
            self.payment_method_models(&entity, sensitive),
        )))
    }

    fn payment_method_models(&self, entity: &Value, sensitive: bool) -> Vec<Value> {
        let Some(Value::Obj(prompts)) = entity.get("prompts") else {
            return vec![];
        };
        prompts
            .iter()
            .map(|(pmid, p)| {
                let due = p
                    .get("due")
                    .and_then(Value::as_str)
                    .unwrap_or("0")
                    .to_string();
                let dest = p
                    .get("destination")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let mut details = p.get("details").cloned().unwrap_or(Value::Null);
                if !sensitive {
                    if let Value::Obj(fields) = &mut details {
                        for (k, v) in fields.iter_mut() {
                            if k == "accountDerivation" {
                                *v = Value::Null;
                            }
                        }
                    }
                }
                let link = if due == "0" {
                    format!("bitcoin:{dest}")
                } else {
                    format!("bitcoin:{dest}?amount={due}")
                };
                obj(vec![
                    (
                        "activated",
                        p.get("activated").cloned().unwrap_or(Value::Bool(true)),
                    ),
                    ("destination", s(&dest)),
                    ("paymentLink", s(&link)),
                    ("rate", p.get("rate").cloned().unwrap_or(s("1"))),
                    ("paymentMethodPaid", s("0")),
                    ("totalPaid", s("0")),
                    ("due", s(&due)),
                    ("amount", s(&due)),
                    ("paymentMethodFee", s("0")),
                    ("payments", Value::Arr(vec![])),
                    ("paymentMethodId", s(pmid)),
                    ("additionalData", details),
                    ("currency", p.get("currency").cloned().unwrap_or(s("BTC"))),
                ])
            })
            .collect()
    }

    /// GreenfieldInvoiceController.ToModel.
    pub(super) fn invoice_model(
        &self,
        e: &Value,
        status: &str,
        host: &str,
        with_payment_methods: bool,
    ) -> Value {
        let g = |k: &str| e.get(k).cloned().unwrap_or(Value::Null);
        let t = |k: &str| e.get(k).and_then(Value::as_i64).unwrap_or(0);
        let id = e.get("id").and_then(Value::as_str).unwrap_or_default();
        let pms: Vec<Value> = match e.get("prompts") {
            Some(Value::Obj(p)) => p.iter().map(|(k, _)| s(k)).collect(),
            _ => vec![],
        };
        let checkout_link = if host.is_empty() {
            Value::Null
        } else {
            s(&format!("http://{host}/i/{id}"))
        };
        let mut fields = vec![
            ("id", g("id")),
            ("storeId", g("storeId")),
            ("amount", g("price")),
            ("paidAmount", s("0")),
            ("checkoutLink", checkout_link),
            ("status", s(status)),
            ("additionalStatus", s("None")),
            ("monitoringExpiration", num(t("monitoringExpiration"))),
            ("expirationTime", num(t("expirationTime"))),
            ("createdTime", num(t("invoiceTime"))),
            (
                "availableStatusesForManualMarking",
                Value::Arr(if status == "New" {
                    vec![s("Settled"), s("Invalid")]
                } else {
                    vec![]
                }),
            ),
            ("archived", Value::Bool(false)),
            ("type", g("type")),
            ("currency", g("currency")),
            ("metadata", g("metadata")),
            (
                "checkout",
                obj(vec![
                    ("speedPolicy", g("speedPolicy")),
                    ("paymentMethods", Value::Arr(pms.clone())),
                    ("defaultPaymentMethod", Value::Null),
                    (
                        "expirationMinutes",
                        num((t("expirationTime") - t("invoiceTime")) / 60),
                    ),
                    (
                        "monitoringMinutes",
                        num((t("monitoringExpiration") - t("expirationTime")) / 60),
                    ),
                    ("paymentTolerance", g("paymentTolerance")),
                    ("redirectURL", g("redirectURL")),
                    ("redirectAutomatically", Value::Bool(false)),
                    ("defaultLanguage", g("defaultLanguage")),
                    ("lazyPaymentMethods", Value::Null),
                ]),
            ),
            (
                "receipt",
                obj(vec![
                    ("enabled", Value::Bool(true)),
                    ("showQR", Value::Bool(true)),
                    ("showPayments", Value::Bool(true)),
                ]),
            ),
        ];
        if with_payment_methods {
            fields.push((
                "paymentMethods",
                Value::Arr(self.payment_method_models(e, false)),
            ));
        }
        obj(fields)
    }
}
