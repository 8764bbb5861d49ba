//! Invoices (`GreenfieldInvoiceController.cs` CreateInvoice, `Controllers/UIInvoiceController.cs`
//! CreateInvoiceCoreRaw, `Payments/Bitcoin/BitcoinLikePaymentHandler.cs`): validation, the
//! on-chain prompt with an address NBXplorer reserves, the rows they are stored in.

use super::api::{api_error, ok_json, validation};
use super::{Ctx, StoreRow, PM};
use crate::bitcoin_encoding::b58encode;
use crate::http::{Request, Response};
use crate::json::{self, num, obj, s, Value};
use crate::postgres as pg;
use crate::util::percent_encode;
use std::collections::HashMap;

impl Ctx {
    pub(super) fn create_invoice(
        &self,
        store_id: &str,
        req: &Request,
        _q: &HashMap<String, String>,
    ) -> Result<Response, Response> {
        let text = String::from_utf8_lossy(&req.body);
        let body = match json::parse(text.trim()) {
            Ok(v @ Value::Obj(_)) => v,
            _ => {
                return Err(validation(vec![(
                    "",
                    "A non-empty request body is required.",
                )]))
            }
        };
        let checkout = body.get("checkout").cloned().unwrap_or(Value::Obj(vec![]));
        let mut errors: Vec<(String, String)> = Vec::new();
        let amount = match body.get("amount") {
            None | Some(Value::Null) => None,
            Some(v) => match parse_amount(v) {
                Some(a) => Some(a),
                None => {
                    errors.push(("amount".into(), "The field amount is invalid.".into()));
                    None
                }
            },
        };
        if amount.is_some_and(|a| a < 0) {
            errors.push(("amount".into(), "The amount should be 0 or more.".into()));
        }
        if let Some(Value::Arr(pms)) = checkout.get("paymentMethods") {
            for (i, pm) in pms.iter().enumerate() {
                if !pm
                    .as_str()
                    .is_some_and(|p| p.eq_ignore_ascii_case(PM) || p.eq_ignore_ascii_case("BTC"))
                {
                    errors.push((
                        format!("checkout.paymentMethods[{i}]"),
                        "Invalid PaymentMethodId".into(),
                    ));
                }
            }
        }
        let expiration = checkout.get("expirationMinutes").and_then(|v| match v {
            Value::Num(n) => n.parse::<f64>().ok(),
            _ => None,
        });
        if expiration.is_some_and(|m| m * 60.0 < 30.0) {
            errors.push((
                "checkout.expirationMinutes".into(),
                "Expiration time must be at least 30 seconds".into(),
            ));
        }
        let tolerance = checkout.get("paymentTolerance").and_then(|v| match v {
            Value::Num(n) => n.parse::<f64>().ok(),
            _ => None,
        });
        if tolerance.is_some_and(|t| !(0.0..=100.0).contains(&t)) {
            errors.push((
                "checkout.paymentTolerance".into(),
                "PaymentTolerance can only be between 0 and 100 percent".into(),
            ));
        }
        if !errors.is_empty() {
            return Err(validation(
                errors
                    .iter()
                    .map(|(p, m)| (p.as_str(), m.as_str()))
                    .collect(),
            ));
        }
        let store = self.store_row(store_id)?;
        let currency = body
            .get("currency")
            .and_then(Value::as_str)
            .filter(|c| !c.trim().is_empty())
            .map_or(store.default_currency.clone(), |c| c.trim().to_uppercase());
        let kind = if amount.is_none() {
            "TopUp"
        } else {
            "Standard"
        };
        let price = amount.unwrap_or(0);
        let now = crate::util::unix_secs();
        let exp_min = expiration.unwrap_or(15.0);
        let expiration_time = now + (exp_min * 60.0) as u64;
        let monitoring = expiration_time + 1440 * 60;
        let id = b58encode(&crate::sys::random_bytes(16));
        let mut logs: Vec<String> =
            vec![format!("{}:Info Creation of invoice starting", utc_stamp())];
        let mut prompt = None;
        if kind == "TopUp" || price != 0 {
            match self.prompt(&store, &currency, price, kind, &mut logs) {
                Ok(p) => prompt = Some(p),
                Err(()) => {
                    let mut m =
                        String::from("Error retrieving a matching payment method or rate.\n");
                    for l in &logs {
                        m.push_str(l);
                        m.push('\n');
                    }
                    return Err(api_error(400, "generic-error", &m));
                }
            }
        }
        let metadata = body
            .get("metadata")
            .cloned()
            .filter(|m| matches!(m, Value::Obj(_)))
            .unwrap_or(Value::Obj(vec![]));
        let entity = obj(vec![
            ("version", num(3)),
            ("id", s(&id)),
            ("storeId", s(store_id)),
            ("type", s(kind)),
            ("currency", s(&currency)),
            ("price", s(&fmt_amount(price, 8))),
            ("metadata", metadata),
            ("invoiceTime", num(now)),
            ("expirationTime", num(expiration_time)),
            ("monitoringExpiration", num(monitoring)),
            ("speedPolicy", s("HighSpeed")),
            ("paymentTolerance", num(tolerance.unwrap_or(0.0))),
            (
                "redirectURL",
                checkout.get("redirectURL").cloned().unwrap_or(Value::Null),
            ),
            (
                "defaultLanguage",
                checkout
                    .get("defaultLanguage")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            (
                "prompts",
                prompt.clone().map_or(Value::Obj(vec![]), |p| {
                    Value::Obj(vec![(PM.to_string(), p)])
                }),
            ),
            ("logs", Value::Arr(logs.iter().map(|l| s(l)).collect())),
        ]);
        let mut sql = format!(
            "INSERT INTO \"Invoices\" (\"Id\", \"Created\", \"StoreDataId\", \"Status\", \"ExceptionStatus\", \"Archived\", \"Currency\", \"Amount\", \"Blob2\") \
             VALUES ({i}, to_timestamp({now}), {st}, 'New', NULL, FALSE, {c}, {a}, {b}::JSONB);\n",
            i = pg::lit(&id),
            st = pg::lit(store_id),
            c = pg::lit(&currency),
            a = fmt_amount(price, 8),
            b = pg::lit(&entity.compact()),
        );
        if let Some(addr) = prompt
            .as_ref()
            .and_then(|p| p.get("destination"))
            .and_then(Value::as_str)
        {
            let wallet = format!("{store_id}-BTC");
            sql.push_str(&format!(
                "INSERT INTO \"AddressInvoices\" (\"Address\", \"PaymentMethodId\", \"InvoiceDataId\") VALUES ({a}, {pm}, {i}) ON CONFLICT (\"Address\", \"PaymentMethodId\") DO NOTHING;\n\
                 INSERT INTO \"WalletObjects\" (\"WalletId\", \"Type\", \"Id\", \"Data\") VALUES ({w}, 'address', {a}, '{{\"generatedBy\":\"invoice\"}}'::JSONB) ON CONFLICT DO NOTHING;\n\
                 INSERT INTO \"WalletObjects\" (\"WalletId\", \"Type\", \"Id\", \"Data\") VALUES ({w}, 'invoice', {i}, NULL) ON CONFLICT DO NOTHING;\n",
                a = pg::lit(addr),
                pm = pg::lit(PM),
                i = pg::lit(&id),
                w = pg::lit(&wallet),
            ));
        }
        self.pg.run(&sql, true).map_err(|e| self.server_error(e))?;
        Ok(ok_json(&self.invoice_model(
            &entity,
            "New",
            &Self::host(req),
            false,
        )))
    }

    /// The on-chain payment prompt (BitcoinLikePaymentHandler BeforeFetchingRates and
    /// ConfigurePrompt); Err after writing why to the invoice logs.
    fn prompt(
        &self,
        store: &StoreRow,
        currency: &str,
        price: i128,
        kind: &str,
        logs: &mut Vec<String>,
    ) -> Result<Value, ()> {
        let fail = |logs: &mut Vec<String>, why: &str| {
            logs.push(format!(
                "{}:Error {PM}: Payment method unavailable ({why})",
                utc_stamp()
            ));
        };
        // the rate of BTC in the invoice's currency: X_X = 1; SATS is a fixed 1e8
        let due = match currency {
            "BTC" => price,
            "SATS" => price / 100_000_000,
            other => {
                logs.push(format!(
                    "{}:Error {PM}: Rate unavailable: the archy e2e stand-in has no rate source for BTC_{other} (only BTC and SATS invoices)",
                    utc_stamp()
                ));
                return Err(());
            }
        };
        let rate = if currency == "SATS" { "100000000" } else { "1" };
        // BeforeFetchingRates already asks NBXplorer for an address (ReserveAddressAsync)
        let reserved = self.reserve_address(&store.scheme);
        if !self.fully_synched() {
            fail(logs, "Full node not available");
            return Err(());
        }
        let fee = match self.explorer.send("GET", "v1/cryptos/BTC/fees/1", "") {
            Ok(Some(v)) => v.get("feeRate").cloned().unwrap_or(num(1)),
            _ => num(1),
        };
        if kind != "TopUp" && due < 294 {
            fail(logs, "Amount below the dust threshold. For amounts of this size, it is recommended to enable an off-chain (Lightning) payment method");
            return Err(());
        }
        let info = match reserved {
            Ok(i) => i,
            Err(e) => {
                logs.push(format!(
                    "{}:Error {PM}: Unexpected exception ({e})",
                    utc_stamp()
                ));
                return Err(());
            }
        };
        let address = info
            .get("address")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let keypath = info
            .get("keyPath")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let index = info.get("index").and_then(Value::as_i64).unwrap_or(0);
        Ok(obj(vec![
            ("currency", s("BTC")),
            ("divisibility", num(8)),
            ("destination", s(&address)),
            ("rate", s(rate)),
            ("due", s(&fmt_amount(due, 8))),
            ("paymentMethodFee", s("0")),
            ("activated", Value::Bool(true)),
            (
                "details",
                obj(vec![
                    ("feeMode", s("MultiplePaymentsOnly")),
                    ("paymentMethodFeeRate", fee.clone()),
                    ("payjoinEnabled", Value::Bool(false)),
                    ("recommendedFeeRate", fee),
                    ("keyPath", s(&keypath)),
                    ("keyIndex", num(index)),
                    ("accountDerivation", s(&store.scheme)),
                ]),
            ),
        ]))
    }

    /// BTCPayWallet.ReserveAddressAsync: an unused address, reserved; track the scheme if
    /// NBXplorer does not know it. Err is the exception as the invoice logs show it.
    fn reserve_address(&self, scheme: &str) -> Result<Value, String> {
        let path = format!(
            "v1/cryptos/BTC/derivations/{}/addresses/unused?feature=Deposit&skip=0&reserve=true",
            percent_encode(scheme)
        );
        let wrap = |e: String| format!("NBXplorer.Models.NBXplorerException: {e}");
        match self.explorer.send("GET", &path, "").map_err(wrap)? {
            Some(v) => Ok(v),
            None => {
                self.explorer
                    .send(
                        "POST",
                        &format!("v1/cryptos/BTC/derivations/{}", percent_encode(scheme)),
                        "",
                    )
                    .map_err(wrap)?;
                self.explorer.send("GET", &path, "").map_err(wrap)?.ok_or_else(|| {
                    "System.NullReferenceException: Object reference not set to an instance of an object.".to_string()
                })
            }
        }
    }

    fn store_row(&self, store_id: &str) -> Result<StoreRow, Response> {
        let rows = self
            .pg
            .query(&format!(
                "SELECT COALESCE(\"StoreBlob\"->>'defaultCurrency', 'USD'), COALESCE(\"DerivationStrategies\"->'{PM}'->>'accountDerivation', '') FROM \"Stores\" WHERE \"Id\" = {}",
                pg::lit(store_id)
            ))
            .map_err(|e| self.server_error(e))?;
        let Some(r) = rows.first().filter(|r| r.len() == 2) else {
            return Err(api_error(404, "store-not-found", "The store was not found"));
        };
        Ok(StoreRow {
            default_currency: r[0].clone(),
            scheme: r[1].clone(),
        })
    }
}

fn parse_amount(v: &Value) -> Option<i128> {
    let t = match v {
        Value::Num(n) => n.clone(),
        Value::Str(s) => s.trim().to_string(),
        _ => return None,
    };
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut f = frac.to_string();
    f.truncate(8);
    while f.len() < 8 {
        f.push('0');
    }
    let v: i128 = format!("{}{f}", if int.is_empty() { "0" } else { int })
        .parse()
        .ok()?;
    Some(if neg { -v } else { v })
}

fn fmt_amount(v: i128, decimals: u32) -> String {
    let neg = v < 0;
    let v = v.unsigned_abs();
    let unit = 10u128.pow(decimals);
    let mut out = format!("{}", v / unit);
    if decimals > 0 {
        let frac = format!("{:0width$}", v % unit, width = decimals as usize);
        let frac = frac.trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

fn utc_stamp() -> String {
    // InvoiceLog.ToString: "{Timestamp.UtcDateTime}:{Severity} {Log}"
    let (y, m, day, h, mi, sec) = crate::util::utc(crate::util::unix_secs() as i64);
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!("{m}/{day}/{y} {h12}:{mi:02}:{sec:02} {ampm}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount(&s("0.001")), Some(100_000));
        assert_eq!(parse_amount(&num("1.5")), Some(150_000_000));
        assert_eq!(parse_amount(&s("-1")), Some(-100_000_000));
        assert_eq!(parse_amount(&s("abc")), None);
        assert_eq!(fmt_amount(100_000, 8), "0.001");
        assert_eq!(fmt_amount(150_000_000, 8), "1.5");
        assert_eq!(fmt_amount(0, 8), "0");
    }

    #[test]
    fn stamps() {
        let t = utc_stamp();
        assert!(
            t.contains('/') && (t.ends_with("AM") || t.ends_with("PM")),
            "{t}"
        );
    }
}
