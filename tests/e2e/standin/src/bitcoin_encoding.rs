//! Bitcoin's text encodings, as the stand-ins of wallets and explorers need them: SHA-256,
//! base58check (addresses, extended keys) and bech32/bech32m (segwit addresses).

use sha2::{Digest, Sha256};

const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

pub fn sha256(d: &[u8]) -> [u8; 32] {
    Sha256::digest(d).into()
}

pub fn sha256d(d: &[u8]) -> [u8; 32] {
    sha256(&sha256(d))
}

pub fn b58encode(data: &[u8]) -> String {
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    let mut digits: Vec<u8> = Vec::new();
    for &byte in data {
        let mut carry = byte as u32;
        for d in digits.iter_mut() {
            carry += (*d as u32) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut s = String::new();
    for _ in 0..zeros {
        s.push('1');
    }
    for d in digits.iter().rev() {
        s.push(B58[*d as usize] as char);
    }
    s
}

pub fn b58decode(s: &str) -> Option<Vec<u8>> {
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut bytes: Vec<u8> = Vec::new();
    for c in s.bytes() {
        let mut carry = B58.iter().position(|&x| x == c)? as u32;
        for b in bytes.iter_mut() {
            carry += (*b as u32) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Some(out)
}

pub fn b58check_encode(payload: &[u8]) -> String {
    let mut v = payload.to_vec();
    v.extend_from_slice(&sha256d(payload)[..4]);
    b58encode(&v)
}

pub fn b58check_decode(s: &str) -> Option<Vec<u8>> {
    let v = b58decode(s)?;
    if v.len() < 5 {
        return None;
    }
    let (payload, check) = v.split_at(v.len() - 4);
    (sha256d(payload)[..4] == *check).then(|| payload.to_vec())
}

const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// The bech32 checksum's BCH code.
fn polymod(values: &[u8]) -> u32 {
    const G: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk: u32 = 1;
    for &v in values {
        let b = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ v as u32;
        for (i, g) in G.iter().enumerate() {
            if (b >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// The human-readable part as the checksum covers it.
fn hrp_expand(hrp: &str) -> Vec<u8> {
    let mut v: Vec<u8> = hrp.bytes().map(|c| c >> 5).collect();
    v.push(0);
    v.extend(hrp.bytes().map(|c| c & 31));
    v
}

/// A segwit address (BIP-173 bech32 for version 0, BIP-350 bech32m above).
pub fn segwit_address(hrp: &str, version: u8, program: &[u8]) -> String {
    let mut data = vec![version];
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in program {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            data.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        data.push(((acc << (5 - bits)) & 31) as u8);
    }
    let mut values = hrp_expand(hrp);
    values.extend(&data);
    values.extend([0u8; 6]);
    let constant = if version == 0 { 1 } else { 0x2bc830a3 };
    let pm = polymod(&values) ^ constant;
    let mut s = format!("{hrp}1");
    for d in data {
        s.push(CHARSET[d as usize] as char);
    }
    for i in 0..6 {
        s.push(CHARSET[((pm >> (5 * (5 - i))) & 31) as usize] as char);
    }
    s
}

/// A segwit address's (human-readable part, witness version, program), checked as BIP-173
/// and BIP-350 say (bech32 for version 0, bech32m above).
pub fn segwit_decode(addr: &str) -> Option<(String, u8, Vec<u8>)> {
    if addr.chars().any(|c| c.is_ascii_uppercase()) && addr.chars().any(|c| c.is_ascii_lowercase())
    {
        return None;
    }
    let a = addr.to_lowercase();
    let pos = a.rfind('1')?;
    let (hrp, data) = (&a[..pos], &a[pos + 1..]);
    if hrp.is_empty() || data.len() < 6 {
        return None;
    }
    let values: Vec<u8> = data
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
        .collect::<Option<_>>()?;
    let mut exp = hrp_expand(hrp);
    exp.extend(&values);
    let check = polymod(&exp);
    let version = *values.first()?;
    let want = if version == 0 { 1 } else { 0x2bc8_30a3 };
    if check != want {
        return None;
    }
    let mut acc = 0u32;
    let mut bits = 0;
    let mut prog = Vec::new();
    for &v in &values[1..values.len() - 6] {
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            prog.push(((acc >> bits) & 0xff) as u8);
        }
    }
    if bits >= 5 || (acc & ((1 << bits) - 1)) != 0 {
        return None;
    }
    if prog.len() < 2
        || prog.len() > 40
        || version > 16
        || (version == 0 && prog.len() != 20 && prog.len() != 32)
    {
        return None;
    }
    Some((hrp.to_string(), version, prog))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        // BIP-173's example: the P2WPKH of 751e76e8199196d454941c45d1b3a323f1433bd6
        let prog = [
            0x75, 0x1e, 0x76, 0xe8, 0x19, 0x91, 0x96, 0xd4, 0x54, 0x94, 0x1c, 0x45, 0xd1, 0xb3,
            0xa3, 0x23, 0xf1, 0x43, 0x3b, 0xd6,
        ];
        assert_eq!(
            segwit_address("bc", 0, &prog),
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        );
        assert_eq!(
            segwit_decode("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            Some(("bc".into(), 0, prog.to_vec()))
        );
        let taproot = segwit_address("tb", 1, &[7; 32]);
        assert_eq!(segwit_decode(&taproot), Some(("tb".into(), 1, vec![7; 32])));
        assert_eq!(segwit_decode(&taproot.replace("tb1p", "tb1q")), None);
        let xpub = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
        let raw = b58check_decode(xpub).unwrap();
        assert_eq!(raw.len(), 78);
        assert_eq!(b58check_encode(&raw), xpub);
        assert_eq!(b58decode(&b58encode(&[0, 0, 1, 2])), Some(vec![0, 0, 1, 2]));
        assert_eq!(b58check_decode("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"), None);
    }
}
