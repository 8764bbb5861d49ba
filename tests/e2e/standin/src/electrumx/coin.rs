//! The coins (src/electrumx/lib/coins.py @1.18.0: Bitcoin, BitcoinTestnet, BitcoinRegtest,
//! BitcoinSignet, BitcoinTestnet4; the BitcoinSegwit* names were removed in 1.17.0, ca59151) and
//! `Coin.sanitize_url`.

use super::{err, PyErr, COIN_ERROR};

#[derive(Clone, Debug)]
pub(super) struct Coin {
    pub(super) class: &'static str,
    pub(super) name: &'static str,
    pub(super) net: &'static str,
    pub(super) shortname: &'static str,
    pub(super) genesis: &'static str,
    pub(super) rpc_port: u16,
    pub(super) reorg_limit: i64,
    pub(super) tx_count: i64,
    pub(super) tx_count_height: i64,
    pub(super) tx_per_block: i64,
}

/// The testnet family: BitcoinRegtest, BitcoinSignet and BitcoinTestnet4 inherit all but these
/// from BitcoinTestnet.
fn testnet_like(
    class: &'static str,
    net: &'static str,
    genesis: &'static str,
    rpc_port: u16,
) -> Coin {
    Coin {
        class,
        name: "Bitcoin",
        net,
        shortname: "XTN",
        genesis,
        rpc_port,
        reorg_limit: 8000,
        tx_count: 1,
        tx_count_height: 1,
        tx_per_block: 21,
    }
}

pub(super) fn lookup_coin(name: &str, net: &str) -> Result<Coin, PyErr> {
    let unknown = || {
        err(
            COIN_ERROR,
            format!("unknown coin {name} and network {net} combination"),
        )
    };
    if !name.eq_ignore_ascii_case("bitcoin") {
        return Err(unknown());
    }
    Ok(match net.to_lowercase().as_str() {
        "mainnet" => Coin {
            class: "Bitcoin",
            name: "Bitcoin",
            net: "mainnet",
            shortname: "BTC",
            genesis: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
            rpc_port: 8332,
            reorg_limit: 200,
            tx_count: 565_436_782,
            tx_count_height: 646_855,
            tx_per_block: 2200,
        },
        "testnet" => Coin {
            tx_count: 12_242_438,
            tx_count_height: 1_035_428,
            ..testnet_like(
                "BitcoinTestnet",
                "testnet",
                "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
                18332,
            )
        },
        // 18443 since 1.17.0 (dc09424); 1.16.0 inherited testnet's 18332
        "regtest" => testnet_like(
            "BitcoinRegtest",
            "regtest",
            "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
            18443,
        ),
        "signet" => testnet_like(
            "BitcoinSignet",
            "signet",
            "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
            38332,
        ),
        "testnet4" => testnet_like(
            "BitcoinTestnet4",
            "testnet4",
            "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
            48332,
        ),
        _ => return Err(unknown()),
    })
}

impl Coin {
    /// `Coin.sanitize_url`: the regex `.+@(\[[0-9a-fA-F:]+\]|[^:]+)(:[0-9]+)?` (re.match: anchored
    /// at the start only), the network's port if none, `http://` and a trailing `/`.
    pub(super) fn sanitize_url(&self, url: &str) -> Result<String, PyErr> {
        let url = url.trim().trim_end_matches('/');
        let mut port_given = None;
        for (at, _) in url.rmatch_indices('@') {
            if at == 0 {
                continue;
            }
            let rest = &url[at + 1..];
            let host_len = if let Some(r) = rest.strip_prefix('[') {
                match r.find(']') {
                    Some(end)
                        if end > 0
                            && r[..end].chars().all(|c| c.is_ascii_hexdigit() || c == ':') =>
                    {
                        Some(end + 2)
                    }
                    _ => None,
                }
                .or_else(|| {
                    rest.find(':')
                        .map_or(Some(rest.len()), Some)
                        .filter(|&n| n > 0)
                })
            } else {
                Some(rest.find(':').unwrap_or(rest.len())).filter(|&n| n > 0)
            };
            let Some(hl) = host_len else { continue };
            let after = &rest[hl..];
            let digits = after
                .strip_prefix(':')
                .map_or(0, |a| a.chars().take_while(char::is_ascii_digit).count());
            port_given = Some(digits > 0);
            break;
        }
        let Some(has_port) = port_given else {
            return Err(err(COIN_ERROR, format!("invalid daemon URL: \"{url}\"")));
        };
        let mut url = url.to_string();
        if !has_port {
            url = format!("{url}:{}", self.rpc_port);
        }
        if !url.starts_with("http://") && !url.starts_with("https://") {
            url = format!("http://{url}");
        }
        Ok(url + "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_sanitize_url() {
        let c = lookup_coin("bitcoin", "mainnet").unwrap();
        assert_eq!(
            c.sanitize_url("http://u:p@bitcoind:8332/").unwrap(),
            "http://u:p@bitcoind:8332/"
        );
        assert_eq!(
            c.sanitize_url("u:p@bitcoind").unwrap(),
            "http://u:p@bitcoind:8332/"
        );
        assert_eq!(
            c.sanitize_url(" u:p@[::1]:9 ").unwrap(),
            "http://u:p@[::1]:9/"
        );
        assert!(c.sanitize_url("http://bitcoind:8332/").is_err());
        let r = lookup_coin("Bitcoin", "regtest").unwrap();
        assert_eq!(r.sanitize_url("u:p@h").unwrap(), "http://u:p@h:18443/");
        let s = lookup_coin("Bitcoin", "signet").unwrap();
        assert_eq!((s.class, s.rpc_port), ("BitcoinSignet", 38332));
        assert_eq!(lookup_coin("bitcoin", "TESTNET4").unwrap().rpc_port, 48332);
        assert!(lookup_coin("BitcoinSegwit", "testnet").is_err());
        assert!(lookup_coin("Bitcoin", "mutinynet").is_err());
    }
}
