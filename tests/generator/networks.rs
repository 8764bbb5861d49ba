//! The shipped catalog on every network: each app follows node.toml's `network` through its own
//! manifest, never through a literal (issue 12).

use crate::common::{ctx, manifest_dir, Tree, LAST_GOOD};
use archy::generate;
use archy::node::BitcoinNetwork;
use archy::render;

/// Network names as the apps spell them; none may be written into a catalog manifest's settings.
/// (fedimint's `bitcoin` is left out: it is also the chain's name in paths such as lnd's.)
const NAMES: &[&str] = &[
    "mainnet", "main", "testnet", "testnet3", "testnet4", "signet", "regtest", "Main", "TestNet",
    "Testnet4", "Signet", "RegTest",
];

/// Every string value outside `[networks]`, with its key path.
fn strings(v: &toml::Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::String(s) => out.push((path.to_string(), s.clone())),
        toml::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                strings(x, &format!("{path}[{i}]"), out);
            }
        }
        toml::Value::Table(t) => {
            for (k, x) in t {
                if path.is_empty() && k == "networks" {
                    continue;
                }
                strings(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// The words of a value outside its `{{ ... }}` placeholders, split where shell, URL, path and
/// env syntax would split them.
fn words(s: &str) -> Vec<String> {
    let mut text = String::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        text.push_str(&rest[..open]);
        text.push(' ');
        rest = rest[open..]
            .find("}}")
            .map_or("", |c| &rest[open + c + 2..]);
    }
    text.push_str(rest);
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn no_network_name_is_a_literal_in_a_catalog_manifest() {
    let dir = manifest_dir().join("catalog/apps");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&dir).expect("catalog") {
        let path = e.expect("entry").path();
        let table: toml::Value =
            toml::from_str(&std::fs::read_to_string(&path).expect("read")).expect("toml");
        let mut all = Vec::new();
        strings(&table, "", &mut all);
        // what the app is called and shown as is not a setting (`bitcoin-core`, "Bitcoin Core")
        let settings = all.iter().filter(|(k, _)| {
            !matches!(
                k.as_str(),
                ".app.id" | ".app.name" | ".app.description" | ".image.ref"
            ) && !k.starts_with(".app.provides")
                && !k.starts_with(".app.conflicts")
                && !k.starts_with(".dependencies")
                && !k.starts_with(".container.network_aliases")
                && !k.starts_with(".app.companion_for")
        });
        for (k, v) in settings {
            if let Some(w) = words(v).into_iter().find(|w| NAMES.contains(&w.as_str())) {
                found.push(format!("{}: {k} = {v:?} names `{w}`", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "network names written into settings:\n{}",
        found.join("\n")
    );
}

/// (file name, text) or (app id, error) pairs.
type Named = Vec<(String, String)>;

/// The catalog rendered for a node on `network`: each quadlet source with its text, and the
/// invalid apps with their first error.
fn render_for(network: BitcoinNetwork) -> (Named, Named) {
    let t = Tree::catalog();
    t.node(&format!("network = \"{}\"\n", network.as_str()));
    let (node, catalog) = generate::load_catalog(&t.paths());
    let node = node.expect("node.toml");
    let out = render::render_all(&node, &catalog, &ctx());
    let invalid = catalog
        .invalid
        .iter()
        .map(|(id, a)| (id.clone(), a.errors[0].to_string()))
        .collect();
    (out.sources, invalid)
}

fn source<'a>(sources: &'a [(String, String)], id: &str) -> &'a str {
    let name = format!("archy-{id}.container");
    &sources
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[test]
fn every_app_follows_the_network_or_says_it_cannot() {
    for net in BitcoinNetwork::ALL {
        let (sources, invalid) = render_for(net);
        let n = net.as_str();
        for (id, text) in sources.iter().filter(|(n, _)| n.ends_with(".container")) {
            assert!(
                text.contains(&format!("Label=\"archy.network={n}\"")),
                "{id} on {n}: no network label"
            );
        }
        // BTCPay Server 2.4 knows no testnet4
        let mut refused: Vec<&str> = invalid.iter().map(|(id, _)| id.as_str()).collect();
        refused.sort();
        let expected: &[&str] = match net {
            BitcoinNetwork::Testnet4 => &["btcpayserver"],
            _ => &[],
        };
        assert_eq!(refused, expected, "on {n}: {invalid:?}");
        for (id, e) in &invalid {
            assert!(e.contains(&format!("not on {n}")), "{id}: {e}");
        }
        let core = source(&sources, "bitcoin-core");
        let p2p = match net {
            BitcoinNetwork::Mainnet => 8333,
            BitcoinNetwork::Testnet => 18333,
            BitcoinNetwork::Testnet4 => 48333,
            BitcoinNetwork::Signet => 38333,
            BitcoinNetwork::Regtest => 18444,
        };
        assert!(
            core.contains(&format!("PublishPort={p2p}:{p2p}/tcp")),
            "core on {n}:\n{core}"
        );
        let nbx = source(&sources, "nbxplorer");
        assert!(nbx.contains(&format!("NBXPLORER_NETWORK={n}")), "{nbx}");
        assert!(
            nbx.contains(&format!("NBXPLORER_BTCNODEENDPOINT=bitcoind:{p2p}")),
            "{nbx}"
        );
        // data each network keeps apart: the same app's data dir, one subdirectory per network
        for id in [
            "btcpay-postgres",
            "mempool-mariadb",
            "mempool-backend",
            "fedimint",
        ] {
            assert!(
                source(&sources, id).contains(&format!("/var/lib/archipelago/{id}/{n}:")),
                "{id} on {n}"
            );
        }
        let fm = source(&sources, "fedimint");
        let fm_name = if net == BitcoinNetwork::Mainnet {
            "bitcoin"
        } else {
            n
        };
        assert!(
            fm.contains(&format!("FM_BITCOIN_NETWORK={fm_name}")),
            "{fm}"
        );
    }
}

#[test]
fn an_app_off_the_network_gets_a_unit_that_says_so() {
    let t = Tree::catalog();
    t.node("network = \"testnet4\"\n");
    let (node, catalog) = generate::load_catalog(&t.paths());
    let out = render::render_all(&node.expect("node.toml"), &catalog, &ctx());
    let unit = &out
        .units
        .iter()
        .find(|(n, _)| n == "archy-btcpayserver.service")
        .expect("a unit for btcpayserver")
        .1;
    assert!(
        unit.contains("Description=archy app btcpayserver (not on this network: see `archy-hook explain btcpayserver`)"),
        "{unit}"
    );
    assert!(
        unit.contains("ExecStart=/usr/libexec/archipelago/archy-hook explain btcpayserver"),
        "{unit}"
    );
    // still wanted by archy.target, so that its failure shows
    assert!(
        out.target_wants.iter().any(|w| w == "btcpayserver"),
        "{:?}",
        out.target_wants
    );
    // an older copy that knew nothing of networks (valid here) does not stand in for it
    let text = std::fs::read_to_string(manifest_dir().join("catalog/apps/btcpayserver.toml"))
        .expect("read");
    let older = text[..text.find("[networks]").expect("[networks]")]
        .replace("{{ network.name }}", "testnet4")
        .replace("{{ network.nbxplorer_folder }}", "Testnet4");
    t.write(&format!("{LAST_GOOD}/btcpayserver.toml"), &older);
    let older_ok = archy::load::read_manifest(
        &t.path(&format!("{LAST_GOOD}/btcpayserver.toml")),
        "btcpayserver",
        BitcoinNetwork::Testnet4,
    );
    assert!(
        older_ok.is_ok(),
        "the older copy should be valid: {older_ok:?}"
    );
    let (_, catalog) = generate::load_catalog(&t.paths());
    assert!(
        catalog.invalid.contains_key("btcpayserver"),
        "the last-good copy was used on a network the app does not list"
    );
}

#[test]
fn a_switch_changes_every_apps_digest() {
    let digests = |net| {
        let (sources, _) = render_for(net);
        sources
            .into_iter()
            .filter(|(n, _)| n.ends_with(".container"))
            .map(|(n, t)| {
                let d = archy::digest::in_container_file(&t).expect("digest");
                (n, d)
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (a, b) = (
        digests(BitcoinNetwork::Regtest),
        digests(BitcoinNetwork::Mainnet),
    );
    for (name, d) in &a {
        if let Some(other) = b.get(name) {
            assert_ne!(d, other, "{name}: same digest on regtest and mainnet");
        }
    }
    assert!(a.contains_key("archy-lnd.container"), "{a:?}");
}
