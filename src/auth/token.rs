//! API token secrets: how they are made, written, parsed and checked. Pure code; the table of
//! tokens is `store::tokens`.
//!
//! A token reads `alm_<id>_<secret>`: `id` is 16 hex digits (public: listings show it and
//! revocation names it), `secret` is 256 random bits in URL-safe base64. The store keeps only the
//! SHA-256 of the secret. A request's token is found by its id, then its secret's hash is compared
//! in constant time, so neither the lookup nor the comparison leaks how much of a guess was right.
//! (A plain hash suffices: the secret is random, not a password, so there is nothing to salt.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "alm_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// What a token may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Everything its identity's roles allow.
    Full,
    /// Reads only (GET).
    Read,
    /// Only `POST /v2/events`.
    Ingest,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Full => "full",
            Access::Read => "read",
            Access::Ingest => "ingest",
        }
    }

    pub fn parse(text: &str) -> Option<Access> {
        [Access::Full, Access::Read, Access::Ingest]
            .into_iter()
            .find(|a| a.as_str() == text)
    }
}

/// A freshly made token: the text to hand out once, and what the store keeps.
#[derive(Debug)]
pub struct NewSecret {
    pub id: String,
    pub token: String,
    pub secret_hash: String,
}

/// Makes a token from the operating system's random source.
pub fn generate() -> anyhow::Result<NewSecret> {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    let id = hex(&id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    Ok(NewSecret {
        token: format!("{PREFIX}{id}_{secret}"),
        secret_hash: hash_secret(&secret),
        id,
    })
}

/// A presented token, split into its public id and its secret.
#[derive(Debug, PartialEq, Eq)]
pub struct Presented<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// Splits a presented token; `None` if it cannot be one of ours (then no lookup is needed).
pub fn parse(token: &str) -> Option<Presented<'_>> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_at_checked(ID_BYTES * 2)?;
    let secret = secret.strip_prefix('_')?;
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let secret_ok = !secret.is_empty()
        && secret.len() <= 64
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some(Presented { id, secret })
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` is the one whose hash is stored, in time independent of where they differ.
pub fn verify(secret: &str, stored_hash: &str) -> bool {
    hash_secret(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_verifies() {
        let made = generate().unwrap();
        let p = parse(&made.token).expect("our own token parses");
        assert_eq!(p.id, made.id);
        assert!(verify(p.secret, &made.secret_hash));
        assert!(!made.token.contains(&made.secret_hash));
        // 256 bits of secret: 43 base64 characters.
        assert_eq!(p.secret.len(), 43);
    }

    #[test]
    fn tokens_differ() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a.token, b.token);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn a_wrong_secret_fails() {
        let made = generate().unwrap();
        let p = parse(&made.token).unwrap();
        let mut wrong = p.secret.to_string();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!verify(&wrong, &made.secret_hash));
        assert!(!verify("", &made.secret_hash));
    }

    #[test]
    fn foreign_strings_do_not_parse() {
        for bad in [
            "",
            "alm_",
            "alm_0123456789abcdef",
            "alm_0123456789abcdef_",
            "alm_0123456789ABCDEF_secret",
            "alm_0123456789abcdeX_secret",
            "xyz_0123456789abcdef_secret",
            "alm_0123456789abcdef_sec ret",
            "gAAAAABk-keystone-fernet-token",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse("alm_0123456789abcdef_a_b-c"),
            Some(Presented {
                id: "0123456789abcdef",
                secret: "a_b-c"
            })
        );
    }
}
