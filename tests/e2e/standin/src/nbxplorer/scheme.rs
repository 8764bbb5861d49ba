//! Derivation schemes as NBXplorer writes them (single-key only) and the stand-in's addresses
//! for their key paths (not BIP-32: see the module's doc).

use crate::bitcoin_encoding::{b58check_decode, b58check_encode, segwit_address, sha256};
use crate::dotnet::Net;
use crate::util::hex;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Segwit,
    P2shSegwit,
    Legacy,
    Taproot,
}

#[derive(Clone, Debug)]
pub struct Strategy {
    pub text: String,
    pub kind: Kind,
}

/// A single-key derivation scheme as NBXplorer writes them: `<extpubkey>[-[legacy|p2sh|taproot]]`.
pub fn parse_strategy(text: &str, version: [u8; 4]) -> Result<Strategy, String> {
    let (key, kind) = if let Some(k) = text.strip_suffix("-[legacy]") {
        (k, Kind::Legacy)
    } else if let Some(k) = text.strip_suffix("-[p2sh]") {
        (k, Kind::P2shSegwit)
    } else if let Some(k) = text.strip_suffix("-[taproot]") {
        (k, Kind::Taproot)
    } else {
        (text, Kind::Segwit)
    };
    let raw = b58check_decode(key).ok_or("Invalid derivation scheme")?;
    if raw.len() != 78 || raw[..4] != version {
        return Err("Invalid derivation scheme".into());
    }
    Ok(Strategy {
        text: text.to_string(),
        kind,
    })
}

/// The stand-in's address for `keypath` (not BIP32: see the module's doc).
/// Returns (scriptPubKey hex, address, redeem script hex).
pub fn derive(st: &Strategy, keypath: &str, net: &Net) -> (String, String, Option<String>) {
    let h = sha256(format!("archy-standin-nbxplorer|{}|{keypath}", st.text).as_bytes());
    match st.kind {
        Kind::Segwit => {
            let script = format!("0014{}", hex(&h[..20]));
            (
                script.clone(),
                segwit_address(net.hrp, 0, &h[..20]),
                Some(script),
            )
        }
        Kind::Taproot => (
            format!("5120{}", hex(&h)),
            segwit_address(net.hrp, 1, &h),
            None,
        ),
        Kind::Legacy => {
            let mut p = vec![net.p2pkh];
            p.extend_from_slice(&h[..20]);
            (
                format!("76a914{}88ac", hex(&h[..20])),
                b58check_encode(&p),
                None,
            )
        }
        Kind::P2shSegwit => {
            let redeem = format!("0014{}", hex(&h[..20]));
            let rh = sha256(redeem.as_bytes());
            let mut p = vec![net.p2sh];
            p.extend_from_slice(&rh[..20]);
            (
                format!("a914{}87", hex(&rh[..20])),
                b58check_encode(&p),
                Some(redeem),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let xpub = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
        assert!(parse_strategy(xpub, [0x04, 0x88, 0xb2, 0x1e]).is_ok());
        assert!(parse_strategy(&format!("{xpub}-[p2sh]"), [0x04, 0x88, 0xb2, 0x1e]).is_ok());
        assert!(parse_strategy("xpub123", [0x04, 0x88, 0xb2, 0x1e]).is_err());
        assert!(parse_strategy(xpub, [0x04, 0x35, 0x87, 0xcf]).is_err());
    }
}
