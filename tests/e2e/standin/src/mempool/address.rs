//! Addresses as `validateaddress` answers for them, decoded locally (for a stand-in bitcoind
//! without it), and ElectrumX's scripthashes.

use crate::bitcoin_encoding::{b58check_decode, segwit_decode, sha256};
use crate::json::{num, obj, s, Value};
use crate::util::{hex, unhex};

/// What `validateaddress` answers, decoded locally.
pub(super) fn local_validateaddress(addr: &str, network: &str) -> Value {
    let (hrp, p2pkh, p2sh) = match network {
        "mainnet" => ("bc", 0x00, 0x05),
        "regtest" => ("bcrt", 0x6f, 0xc4),
        _ => ("tb", 0x6f, 0xc4),
    };
    if let Some(p) = b58check_decode(addr).filter(|p| p.len() == 21) {
        if p[0] == p2pkh {
            return obj(vec![
                ("isvalid", Value::Bool(true)),
                ("address", s(addr)),
                ("scriptPubKey", s(&format!("76a914{}88ac", hex(&p[1..])))),
                ("isscript", Value::Bool(false)),
                ("iswitness", Value::Bool(false)),
            ]);
        }
        if p[0] == p2sh {
            return obj(vec![
                ("isvalid", Value::Bool(true)),
                ("address", s(addr)),
                ("scriptPubKey", s(&format!("a914{}87", hex(&p[1..])))),
                ("isscript", Value::Bool(true)),
                ("iswitness", Value::Bool(false)),
            ]);
        }
    }
    if let Some((h, version, prog)) = segwit_decode(addr).filter(|(h, _, _)| h == hrp) {
        let _ = h;
        let op = if version == 0 { 0 } else { 0x50 + version };
        return obj(vec![
            ("isvalid", Value::Bool(true)),
            ("address", s(&addr.to_lowercase())),
            (
                "scriptPubKey",
                s(&format!("{op:02x}{:02x}{}", prog.len(), hex(&prog))),
            ),
            (
                "isscript",
                Value::Bool(version == 0 && prog.len() == 32 || version == 1),
            ),
            ("iswitness", Value::Bool(true)),
            ("witness_version", num(version)),
            ("witness_program", s(&hex(&prog))),
        ]);
    }
    obj(vec![
        ("isvalid", Value::Bool(false)),
        ("error_locations", Value::Arr(vec![])),
        (
            "error",
            s("Invalid or unsupported Segwit (Bech32) or Base58 encoding."),
        ),
    ])
}

/// The scripthash ElectrumX wants (sha256 of the script, bytes reversed).
pub(super) fn script_hash(script_hex: &str) -> String {
    let mut h = sha256(&unhex(script_hex).unwrap_or_default());
    h.reverse();
    hex(&h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let v = local_validateaddress("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "mainnet");
        assert_eq!(
            v.get("scriptPubKey").and_then(Value::as_str),
            Some("76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac")
        );
        let v = local_validateaddress("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "mainnet");
        assert_eq!(
            v.get("scriptPubKey").and_then(Value::as_str),
            Some("0014e8df018c7e326cc253faac7e46cdc51e68542c42")
        );
        let v = local_validateaddress(
            "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
            "mainnet",
        );
        assert_eq!(v.get("isvalid"), Some(&Value::Bool(true)));
        assert_eq!(
            local_validateaddress("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", "mainnet").get("isvalid"),
            Some(&Value::Bool(false))
        );
        // the scripthash of the genesis address' script, as Electrum computes it
        assert_eq!(
            script_hash("76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"),
            "8b01df4e368ea28f8dc0423bcf7a4923e3a12d307c875e47a0cfbf90b5c39161"
        );
    }
}
