//! The setup UI (fedimint-server-ui src/setup.rs; fedimint-server src/config/setup.rs
//! `set_local_parameters`, `start_dkg`): the guardian form, login, federation setup, DKG.

use super::setup::{default_modules, LocalParams, Setup};
use super::web::{asset, card, empty, esc, form, html, login_form, redirect};
use super::MODULES;
use crate::http::{Request, Response};

fn setup_form(error: Option<&str>) -> String {
    let options: String = [
        "1", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18",
        "19", "20",
    ]
    .iter()
    .map(|n| format!("<option value=\"{n}\">{n}</option>"))
    .collect();
    let defaults = default_modules();
    let modules: String = MODULES
        .iter()
        .filter(|k| **k != "meta" || defaults.iter().any(|d| d == "meta"))
        .map(|k| {
            let on = if defaults.iter().any(|d| d == k) { " checked" } else { "" };
            format!("<input type=\"checkbox\" id=\"module_{k}\" name=\"enabled_modules\" value=\"{k}\"{on}><label for=\"module_{k}\">{k}</label>")
        })
        .collect();
    let err = error.map_or(String::new(), |e| {
        format!("<div class=\"alert alert-danger mb-3\">{}</div>", esc(e))
    });
    format!(
        "<form id=\"setup-form\" hx-post=\"/\" hx-target=\"#setup-form\" hx-swap=\"outerHTML\">\
<input type=\"text\" id=\"name\" name=\"name\" placeholder=\"Your Guardian Name\" required>\
<input type=\"password\" id=\"password\" name=\"password\" placeholder=\"Your Password\" required>\
<div class=\"alert alert-warning mb-3\">Exactly one guardian must set the global config.</div>\
<input type=\"checkbox\" id=\"is_lead\" name=\"is_lead\" value=\"true\"><label for=\"is_lead\">Set the global config</label>\
<input type=\"text\" id=\"federation_name\" name=\"federation_name\" placeholder=\"Federation Name\">\
<select id=\"federation_size\" name=\"federation_size\"><option value=\"\" selected disabled>Federation Size</option>{options}</select>\
<input type=\"checkbox\" id=\"enable_base_fees\" name=\"enable_base_fees\" checked value=\"true\">\
<div id=\"modules-list\">{modules}</div>{err}<button type=\"submit\">Confirm</button></form>"
    )
}

pub(super) fn setup_ui(st: &Setup, req: &Request) -> Response {
    let path = req.path.split('?').next().unwrap_or("/");
    let local = st.local.lock().map(|l| l.clone()).unwrap_or(None);
    let get = req.method == "GET" || req.method == "HEAD";
    let post = req.method == "POST";
    match path {
        "/" if get => match local {
            Some(_) => redirect("/federation_setup"),
            None => html(card("Guardian Setup", &setup_form(None))),
        },
        "/" if post => submit_setup(st, req),
        "/login" if get => match local {
            None => redirect("/"),
            Some(_) => html(card("Enter Password", &login_form(None))),
        },
        "/login" if post => match local {
            None => redirect("/"),
            Some(lp) => st.cookie.login(&lp.password, req),
        },
        "/ui/connectivity-check" if get => st.cookie.connectivity(req),
        "/federation_setup" | "/add_setup_code" | "/reset_setup_codes" | "/start_dkg"
            if !st.cookie.ok(req) =>
        {
            if (path == "/federation_setup" && get) || (path != "/federation_setup" && post) {
                redirect("/login")
            } else {
                empty(405)
            }
        }
        "/federation_setup" if get => {
            let lp = local.expect("authenticated: the local parameters are set");
            let content = format!(
                "<p>Share this with your fellow guardians.</p><input type=\"text\" value=\"{}\" readonly>{}",
                esc(&lp.setup_code),
                peer_list(&lp, None)
            );
            html(card("Federation Setup", &content))
        }
        "/add_setup_code" if post => {
            let lp = local.expect("authenticated");
            html(peer_list(
                &lp,
                Some("The stand-in sets up single-guardian federations only"),
            ))
        }
        "/reset_setup_codes" if post => redirect("/federation_setup"),
        "/start_dkg" if post => {
            let lp = local.expect("authenticated");
            match start_dkg(&lp) {
                Err(e) => html(peer_list(&lp, Some(&e))),
                Ok(()) => {
                    if let Some(tx) = st.dkg.lock().ok().and_then(|mut d| d.take()) {
                        let _ = tx.send(lp.clone());
                    }
                    let content = format!(
                        "<p>Share with guardians who still need it.</p><input type=\"text\" value=\"{}\" readonly>\
<div class=\"alert alert-info mb-3\">All guardians need to confirm their settings. Once completed you will be redirected to the Dashboard.</div>\
<div hx-get=\"/\" hx-trigger=\"every 2s\" hx-swap=\"none\"></div><p>Waiting for federation setup to complete...</p>",
                        esc(&lp.setup_code)
                    );
                    let mut r = html(card("DKG Started", &content));
                    r.headers.push(("hx-retarget".into(), "body".into()));
                    r.headers.push(("hx-reswap".into(), "innerHTML".into()));
                    r
                }
            }
        }
        "/"
        | "/login"
        | "/ui/connectivity-check"
        | "/federation_setup"
        | "/add_setup_code"
        | "/reset_setup_codes"
        | "/start_dkg" => empty(405),
        p if get => asset(p).unwrap_or_else(|| empty(404)),
        _ => empty(404),
    }
}

fn peer_list(lp: &LocalParams, error: Option<&str>) -> String {
    let err = error.map_or(String::new(), |e| {
        format!("<div class=\"alert alert-danger mb-3\">{}</div>", esc(e))
    });
    let can_start = lp.federation_size == Some(1);
    let head = match lp.federation_size {
        Some(n) => format!("<p>1 of {n} guardians connected.</p>"),
        None => "<p>Add setup code for every other guardian.</p>".into(),
    };
    let action = if can_start {
        format!("<form id=\"start-dkg-form\" hx-post=\"/start_dkg\" hx-target=\"#peer-list-section\" hx-swap=\"outerHTML\">{err}<button type=\"submit\">Confirm</button></form>")
    } else {
        format!("<form id=\"add-setup-code-form\" hx-post=\"/add_setup_code\" hx-target=\"#peer-list-section\" hx-swap=\"outerHTML\">\
<input type=\"text\" id=\"peer_info\" name=\"peer_info\" placeholder=\"Paste Setup Code\" required>{err}<button type=\"submit\">Add Guardian</button></form>")
    };
    format!("<div id=\"peer-list-section\">{head}{action}</div>")
}

/// setup_submit + SetupApi::set_local_parameters
fn submit_setup(st: &Setup, req: &Request) -> Response {
    if !req
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        return Response::new(
            415,
            "text/plain; charset=utf-8",
            "Form requests must have `Content-Type: application/x-www-form-urlencoded`",
        );
    }
    let f = form(&req.body);
    let one = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut missing = None;
    for k in ["password", "name", "federation_name"] {
        if one(k).is_none() && missing.is_none() {
            missing = Some(k);
        }
    }
    let flag = |k: &str| -> Result<bool, String> {
        match one(k).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => {
                Err("Failed to deserialize form: provided string was not `true` or `false`".into())
            }
        }
    };
    if let Some(k) = missing {
        return Response::new(
            400,
            "text/plain; charset=utf-8",
            format!("Failed to deserialize form: missing field `{k}`"),
        );
    }
    let (is_lead, base_fees) = match (flag("is_lead"), flag("enable_base_fees")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return Response::new(400, "text/plain; charset=utf-8", e),
    };
    let size = one("federation_size").unwrap_or_default();
    let federation_size = if !is_lead || size.trim().is_empty() {
        None
    } else {
        match size.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => return html(setup_form(Some("Invalid federation size"))),
        }
    };
    let modules: Vec<String> = f
        .iter()
        .filter(|(k, _)| k == "enabled_modules")
        .map(|(_, v)| v.clone())
        .collect();
    let mut lp = LocalParams {
        password: one("password").unwrap_or_default(),
        name: one("name").unwrap_or_default(),
        federation_name: is_lead.then(|| one("federation_name").unwrap_or_default()),
        disable_base_fees: is_lead.then_some(!base_fees),
        enabled_modules: is_lead.then_some(modules),
        federation_size,
        setup_code: String::new(),
    };
    let mut local = st.local.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = local.as_ref() {
        if (LocalParams {
            setup_code: String::new(),
            ..existing.clone()
        }) == lp
        {
            return redirected_to_federation_setup();
        }
    }
    let check = || -> Result<(), &'static str> {
        if lp.name.is_empty() {
            return Err("The guardian name is empty");
        }
        if lp.password.is_empty() {
            return Err("The password is empty");
        }
        if lp.password.trim() != lp.password {
            return Err("The password contains leading/trailing whitespace");
        }
        if lp.federation_name.as_deref() == Some("") {
            return Err("The federation name is empty");
        }
        if lp.federation_name.is_some() && lp.federation_size.is_none() {
            return Err("The leader must set the federation size");
        }
        if lp.federation_size.is_some_and(|n| n != 1 && n < 4) {
            return Err("Federation size must be 1 or at least 4");
        }
        if local.is_some() {
            return Err("Local parameters have already been set");
        }
        if !st.ctx.enable_iroh {
            st.ctx
                .api_url
                .as_ref()
                .ok_or("Api URL must be configured")?;
            st.ctx
                .p2p_url
                .as_ref()
                .ok_or("P2P URL must be configured")?;
        }
        Ok(())
    };
    if let Err(e) = check() {
        return html(setup_form(Some(e)));
    }
    // base32 of the encoded PeerSetupCode upstream; here only its "fedimint" prefix is real
    lp.setup_code = format!("fedimint{}", crate::sys::random_hex(48));
    *local = Some(lp);
    redirected_to_federation_setup()
}

fn redirected_to_federation_setup() -> Response {
    let mut r = html(String::new());
    r.headers
        .push(("hx-redirect".into(), "/federation_setup".into()));
    r
}

/// SetupApi::start_dkg for the guardians this stand-in knows: itself
fn start_dkg(lp: &LocalParams) -> Result<(), String> {
    let guardians = 1;
    if let Some(n) = lp.federation_size {
        if n as usize != guardians {
            return Err(format!("Expected {n} guardians but got {guardians}"));
        }
    }
    if lp.federation_name.is_none() {
        return Err("We need one guardian to configure the federations name".into());
    }
    Ok(())
}
