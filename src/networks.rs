//! Following the node's bitcoin network. A manifest's `[networks]` lists the networks its app runs
//! on, each with the app's own words for it (fedimint's `bitcoin`, NBXplorer's `Main` folder, a
//! port). In every string value of the manifest, `{{ network.<key> }}`, `{{ node.network }}` and
//! `{{ node.chain }}` are replaced by the node's values before the typed parse, so every check,
//! every rendered unit and every hook sees what the app will run with, and an error in a replaced
//! value still points at its line. The mapping lives once, in the app's own manifest.

use crate::error::InputError;
use crate::manifest::Manifest;
use crate::node::BitcoinNetwork;
use serde::Deserialize as _;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// The key an unsupported network is reported at: such an app gets a failing unit, and never its
/// last-good copy instead (an older copy might not know it cannot run here).
pub const UNSUPPORTED_KEY: &str = "[networks]";

/// Whether `e` says the app does not run on the node's network.
pub fn is_unsupported(e: &InputError) -> bool {
    e.key.as_deref() == Some(UNSUPPORTED_KEY)
}

/// Parses a manifest for a node on `network`: placeholders replaced, `[networks]` checked.
pub fn parse_manifest(
    path: &Path,
    text: &str,
    network: BitcoinNetwork,
) -> Result<Manifest, InputError> {
    let toml_err = |e: &toml::de::Error| InputError::from_toml(path, text, e);
    let mut root = DeTable::parse(text).map_err(|e| toml_err(&e))?;
    let table = root.get_mut();
    let listed = listed_networks(table);
    // a name that is no network is the typed parse's error to report, at its line
    let all_known = listed.iter().all(|n| BitcoinNetwork::named(n).is_some());
    if !listed.is_empty() && all_known && !listed.iter().any(|n| n == network.as_str()) {
        return Err(unsupported(path, table, &listed, network));
    }
    let values = values_for(table, network);
    let vars = Vars {
        network,
        values: (!listed.is_empty()).then_some(&values),
    };
    let mut problems = Vec::new();
    for (key, value) in table.iter_mut() {
        if key.get_ref().as_ref() != "networks" {
            substitute(value, &vars, &mut problems);
        }
    }
    if let Some((span, message)) = problems.into_iter().next() {
        return Err(InputError {
            position: Some(crate::error::line_col(text, span.start)),
            ..InputError::new(path, message)
        });
    }
    let manifest =
        Manifest::deserialize(toml::de::Deserializer::from(root)).map_err(|e| toml_err(&e))?;
    check_same_keys(path, &manifest)?;
    Ok(manifest)
}

/// The network names `[networks]` has as keys, as written (the typed parse checks them).
fn listed_networks(table: &DeTable) -> Vec<String> {
    match table.get("networks").map(|v| v.get_ref()) {
        Some(DeValue::Table(t)) => t.keys().map(|k| k.get_ref().to_string()).collect(),
        _ => Vec::new(),
    }
}

/// `[networks] <network>`'s string values.
fn values_for(table: &DeTable, network: BitcoinNetwork) -> BTreeMap<String, String> {
    let Some(DeValue::Table(nets)) = table.get("networks").map(|v| v.get_ref()) else {
        return BTreeMap::new();
    };
    let Some(DeValue::Table(t)) = nets.get(network.as_str()).map(|v| v.get_ref()) else {
        return BTreeMap::new();
    };
    t.iter()
        .filter_map(|(k, v)| match v.get_ref() {
            DeValue::String(s) => Some((k.get_ref().to_string(), s.to_string())),
            _ => None,
        })
        .collect()
}

fn unsupported(
    path: &Path,
    table: &DeTable,
    listed: &[String],
    network: BitcoinNetwork,
) -> InputError {
    let id = match table.get("app").map(|v| v.get_ref()) {
        Some(DeValue::Table(app)) => match app.get("id").map(|v| v.get_ref()) {
            Some(DeValue::String(s)) => s.to_string(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let app = if id.is_empty() {
        "this app".to_string()
    } else {
        format!("`{id}`")
    };
    InputError::at_key(
        path,
        UNSUPPORTED_KEY,
        format!(
            "{app} runs on {} only, not on {} (node.toml's `network`): it is not started",
            crate::text::one_line(&listed.join(", ")),
            network.as_str()
        ),
    )
}

struct Vars<'a> {
    network: BitcoinNetwork,
    /// The app's values for the node's network; None when the manifest has no `[networks]`.
    values: Option<&'a BTreeMap<String, String>>,
}

fn substitute(
    value: &mut toml::Spanned<DeValue<'_>>,
    vars: &Vars,
    problems: &mut Vec<(std::ops::Range<usize>, String)>,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) => match expand(s, vars) {
            Ok(Cow::Owned(new)) => *s = Cow::Owned(new),
            Ok(Cow::Borrowed(_)) => {}
            Err(message) => problems.push((span, message)),
        },
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                substitute(item, vars, problems);
            }
        }
        DeValue::Table(t) => {
            for (_, v) in t.iter_mut() {
                substitute(v, vars, problems);
            }
        }
        _ => {}
    }
}

/// `s` with the network placeholders replaced. Other `{{ ... }}` stay as written: `[[init]]
/// creates` and `[[backup]] path` are templates rendered later with more variables.
fn expand<'s>(s: &'s str, vars: &Vars) -> Result<Cow<'s, str>, String> {
    if !s.contains("{{") {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}").map(|c| open + c) else {
            break;
        };
        let inner = rest[open + 2..close].trim();
        let replacement: Option<Cow<str>> = match inner {
            "node.network" => Some(Cow::Borrowed(vars.network.as_str())),
            "node.chain" => Some(Cow::Borrowed(vars.network.chain())),
            _ => match inner.strip_prefix("network.") {
                Some(key) => Some(Cow::Owned(lookup(key, vars)?)),
                None => None,
            },
        };
        out.push_str(&rest[..open]);
        match replacement {
            Some(r) => {
                out.push_str(&r);
                changed = true;
            }
            None => out.push_str(&rest[open..close + 2]),
        }
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    Ok(if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    })
}

fn lookup(key: &str, vars: &Vars) -> Result<String, String> {
    let key = crate::text::one_line(key);
    match vars.values {
        None => Err(format!(
            "`{{{{ network.{key} }}}}`: the manifest has no [networks] table to take `{key}` from"
        )),
        Some(values) => values.get(key.as_str()).cloned().ok_or_else(|| {
            format!(
                "`{{{{ network.{key} }}}}`: [networks] {} has no `{key}`",
                vars.network.as_str()
            )
        }),
    }
}

/// Every network an app lists gives the same keys: a value missing on one network would only
/// show when the node switches to it.
fn check_same_keys(path: &Path, m: &Manifest) -> Result<(), InputError> {
    let mut nets = m.networks.iter();
    let Some((first, first_values)) = nets.next() else {
        return Ok(());
    };
    for (net, values) in nets {
        let a: Vec<&str> = first_values.keys().map(|k| k.as_str()).collect();
        let b: Vec<&str> = values.keys().map(|k| k.as_str()).collect();
        if a != b {
            return Err(InputError::at_key(
                path,
                format!("[networks] {}", net.as_str()),
                format!(
                    "has the keys [{}], but {} has [{}]: every network needs the same keys",
                    b.join(", "),
                    first.as_str(),
                    a.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The app's own values for the node's network (empty when it lists none), for templates.
pub fn values(m: &Manifest, network: BitcoinNetwork) -> BTreeMap<&str, &str> {
    m.networks
        .get(&network)
        .map(|v| v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[app]\nid = \"x\"\n[image]\nref = \"r\"\n";

    fn parse(extra: &str, net: BitcoinNetwork) -> Result<Manifest, InputError> {
        parse_manifest(Path::new("x.toml"), &format!("{BASE}{extra}"), net)
    }

    const NETS: &str = "[networks]\nmainnet = { name = \"bitcoin\", p2p = \"8333\" }\n\
                        signet = { name = \"signet\", p2p = \"38333\" }\n";

    #[test]
    fn values_follow_the_node_network() {
        let extra = format!(
            "[container]\nenvironment = {{ NET = \"{{{{ network.name }}}}\", C = \"{{{{node.chain}}}}-x\" }}\n\
             ports = [{{ host = \"{{{{ network.p2p }}}}\", container = \"{{{{ network.p2p }}}}\" }}]\n\
             [[container.volumes]]\nsubpath = \"{{{{ node.network }}}}\"\ntarget = \"/data\"\n{NETS}"
        );
        for (net, name, chain, port) in [
            (BitcoinNetwork::Mainnet, "bitcoin", "main", 8333),
            (BitcoinNetwork::Signet, "signet", "signet", 38333),
        ] {
            let m = parse(&extra, net).unwrap();
            let env = &m.container.environment;
            let get = |k: &str| {
                env.iter()
                    .find(|(n, _)| n.as_str() == k)
                    .unwrap()
                    .1
                    .as_str()
            };
            assert_eq!(get("NET"), name);
            assert_eq!(get("C"), format!("{chain}-x"));
            assert_eq!(
                (m.container.ports[0].host, m.container.ports[0].container),
                (port, port)
            );
            let sub = m.container.volumes[0].subpath.as_ref().unwrap();
            assert_eq!(sub.as_str(), net.as_str());
        }
    }

    #[test]
    fn an_unlisted_network_is_refused_by_name() {
        let e = parse(NETS, BitcoinNetwork::Regtest).unwrap_err();
        assert!(is_unsupported(&e), "{e}");
        let s = e.to_string();
        assert!(
            s.contains("`x` runs on mainnet, signet only, not on regtest"),
            "{s}"
        );
        // an app without [networks] runs anywhere
        assert!(parse("", BitcoinNetwork::Regtest).is_ok());
    }

    #[test]
    fn unknown_keys_and_missing_tables_are_errors_at_their_line() {
        let e = parse(
            &format!("[container]\ncommand = [\"{{{{ network.nope }}}}\"]\n{NETS}"),
            BitcoinNetwork::Signet,
        )
        .unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(6), "{e}");
        assert!(e.message.contains("[networks] signet has no `nope`"), "{e}");
        let e = parse(
            "[container]\ncommand = [\"{{ network.name }}\"]\n",
            BitcoinNetwork::Signet,
        )
        .unwrap_err();
        assert!(e.message.contains("no [networks] table"), "{e}");
    }

    #[test]
    fn other_placeholders_are_left_for_later_templates() {
        let m = parse(
            "[[init]]\nname = \"w\"\ncommand = [\"x\"]\ncreates = \"{{ app.id }}/{{ node.network }}\"\n",
            BitcoinNetwork::Signet,
        )
        .unwrap();
        assert_eq!(m.init[0].creates.as_str(), "{{ app.id }}/signet");
    }

    #[test]
    fn a_replaced_value_is_still_checked() {
        // a value that makes a bad port or path is refused by the typed parse, at its line
        let e = parse(
            "[container]\nports = [{ host = \"{{ network.name }}\", container = 1 }]\n[networks]\nmainnet = { name = \"bitcoin\" }\n",
            BitcoinNetwork::Mainnet,
        )
        .unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(6), "{e}");
        assert!(e.message.contains("`bitcoin` is not a port number"), "{e}");
    }

    #[test]
    fn every_network_needs_the_same_keys() {
        let e = parse(
            "[networks]\nmainnet = { name = \"bitcoin\" }\nsignet = { other = \"x\" }\n",
            BitcoinNetwork::Mainnet,
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("[networks] signet"), "{e}");
        let e = parse("[networks]\nmoonnet = {}\n", BitcoinNetwork::Mainnet).unwrap_err();
        assert!(e.message.contains("moonnet"), "{e}");
        let e = parse(
            "[networks]\nmainnet = { name = \"a b\" }\n",
            BitcoinNetwork::Mainnet,
        )
        .unwrap_err();
        assert!(e.position.is_some(), "{e}");
    }
}
