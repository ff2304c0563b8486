//! Secrets: how they are stored (hashed), how a presented one is checked, and how the
//! `Authorization` header is read.
//!
//! * **Tokens** (`Authorization: Bearer <token>`) are random, high-entropy strings
//!   ([`generate_token`]: 32 random bytes, base64url), so a plain SHA-256 of the token is
//!   enough to store (`sha256:<hex>`): nobody can search a 256-bit space for a preimage.
//!   A presented token is hashed once and compared with *every* configured hash in constant
//!   time ([`subtle`]), so neither the time nor the order of the tokens tells anything.
//! * **User passwords** (HTTP Basic, what KairosDB's Jetty basic-auth users have) are chosen
//!   by people, so they are stored as Argon2id PHC strings (`$argon2id$v=19$m=...`, RustCrypto's
//!   `argon2` with its default, OWASP-recommended parameters): one check costs tens of
//!   milliseconds, which is the point. `sha256:<hex>` is accepted for a user too, for
//!   machine accounts whose "password" is itself random.
//!
//! Not here: which route needs which scope, or the cache of successful checks (`mod.rs`).

use argon2::password_hash::{PasswordHash, PasswordHashString, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of a SHA-256 secret hash in the configuration.
pub const SHA256_PREFIX: &str = "sha256:";

/// A stored secret, parsed from the configuration.
#[derive(Clone, Debug)]
pub enum Hashed {
    Sha256([u8; 32]),
    Argon2(PasswordHashString),
}

impl Hashed {
    /// Parses `sha256:<64 hex digits>` or an Argon2 PHC string (`$argon2id$...`).
    pub fn parse(text: &str) -> Result<Hashed, String> {
        let text = text.trim();
        if let Some(hex) = text.strip_prefix(SHA256_PREFIX) {
            return parse_hex32(hex)
                .map(Hashed::Sha256)
                .ok_or_else(|| format!("{text:?} is not sha256: followed by 64 hex digits"));
        }
        if text.starts_with("$argon2") {
            let hash = PasswordHash::new(text)
                .map_err(|e| format!("{text:?} is not a valid Argon2 PHC string: {e}"))?;
            // Rejects a PHC string whose algorithm or parameters Argon2 cannot run, or
            // that lacks the salt or the hash (it would never verify).
            argon2::Algorithm::try_from(hash.algorithm)
                .map_err(|e| format!("{text:?} is not an Argon2 hash: {e}"))?;
            argon2::Params::try_from(&hash)
                .map_err(|e| format!("{text:?} has invalid Argon2 parameters: {e}"))?;
            if hash.salt.is_none() || hash.hash.is_none() {
                return Err(format!("{text:?} has no salt or no hash"));
            }
            return Ok(Hashed::Argon2(hash.serialize()));
        }
        Err(format!(
            "unknown secret hash {text:?}; expected sha256:<hex> or $argon2id$... \
             (`kairosdb hash-secret` prints one)"
        ))
    }

    /// True when checking a secret against this hash is slow (Argon2).
    pub fn is_slow(&self) -> bool {
        matches!(self, Hashed::Argon2(_))
    }

    /// Does `secret` match? Constant time in the secret for SHA-256; Argon2's own
    /// verification compares its output in constant time too.
    pub fn verify(&self, secret: &[u8]) -> bool {
        match self {
            Hashed::Sha256(want) => bool::from(sha256(secret).ct_eq(want)),
            Hashed::Argon2(hash) => Argon2::default()
                .verify_password(secret, &hash.password_hash())
                .is_ok(),
        }
    }
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// `sha256:<hex>` of a token, as the configuration stores it.
pub fn hash_token(token: &str) -> String {
    let digest = sha256(token.as_bytes());
    let mut out = String::with_capacity(SHA256_PREFIX.len() + 64);
    out.push_str(SHA256_PREFIX);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// An Argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| format!("no random bytes for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// A new random token: 32 bytes from the operating system, base64url without padding.
pub fn generate_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no random bytes for a token: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Random bytes for keys that live only as long as the process.
pub fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    // Without an OS random source the key is all zeroes: the cache it keys is still
    // correct, only its entries are guessable hashes (the process then has bigger problems).
    let _ = getrandom::getrandom(&mut key);
    key
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// What a request's `Authorization` header presents.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// `Basic base64(user:password)` (RFC 7617).
    Basic { user: String, password: String },
    /// `Bearer <token>` (RFC 6750).
    Bearer(String),
    /// A header that is neither, or a Basic value that does not decode.
    Malformed,
}

/// Reads an `Authorization` header value; schemes are case-insensitive (RFC 9110 §11.1).
pub fn parse_authorization(value: &[u8]) -> Presented {
    let Ok(value) = std::str::from_utf8(value) else {
        return Presented::Malformed;
    };
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Presented::Bearer(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Presented::Basic {
                user: user.to_string(),
                password: password.to_string(),
            };
        }
    }
    Presented::Malformed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_verify_and_reject() {
        let hash = hash_token("s3cret");
        assert_eq!(hash.len(), SHA256_PREFIX.len() + 64);
        let h = Hashed::parse(&hash).unwrap();
        assert!(!h.is_slow());
        assert!(h.verify(b"s3cret"));
        assert!(!h.verify(b"s3cres"));
        assert!(!h.verify(b""));
        // The known SHA-256 of "abc".
        assert_eq!(
            hash_token("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn password_hashes_are_salted_argon2id() {
        let a = hash_password("hunter2").unwrap();
        let b = hash_password("hunter2").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        let h = Hashed::parse(&a).unwrap();
        assert!(h.is_slow());
        assert!(h.verify(b"hunter2"));
        assert!(!h.verify(b"hunter3"));
    }

    #[test]
    fn bad_hashes_are_explained() {
        for bad in [
            "",
            "md5:abc",
            "sha256:12",
            "$argon2id$nonsense",
            "plaintext",
        ] {
            assert!(Hashed::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let a = generate_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, generate_token().unwrap());
    }

    #[test]
    fn authorization_headers_parse() {
        // "Aladdin:open sesame", RFC 7617's example.
        assert_eq!(
            parse_authorization(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            Presented::Basic {
                user: "Aladdin".into(),
                password: "open sesame".into()
            }
        );
        assert_eq!(
            parse_authorization(b"bearer abc.def"),
            Presented::Bearer("abc.def".into())
        );
        for bad in [
            &b"Basic !!!"[..],
            b"Basic YWJj",
            b"Bearer",
            b"Digest x",
            b"\xff",
        ] {
            assert_eq!(parse_authorization(bad), Presented::Malformed, "{bad:?}");
        }
    }
}
