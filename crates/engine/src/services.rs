//! The metadata store of the embedded engine (`/api/v1/metadata`, spec §1.13): the
//! fjall `services` keyspace, its key layout, and the [`ServiceStore`] semantics on it.
//! Not the series index (`index.rs`) and not on the WAL: metadata is small and rare, so
//! each set or delete is one fjall write followed by an fsync of fjall's journal
//! ([`Store::persist`]) before it is acknowledged, which makes it survive `kill -9`
//! and power loss without the WAL. A failed fsync poisons the engine (the caller does
//! that, see `Engine`'s `ServiceStore`).
//!
//! Layout (drawn in `docs/format/index.md`, `services`):
//! * service-key marker `0x01 ‖ bytes(service) ‖ service_key` → `0x01` (version): the
//!   service key is listed (KairosDB's static `mtime` row, written by set and delete).
//! * value `0x02 ‖ bytes(service) ‖ bytes(service_key) ‖ key` → `0x01 ‖ UTF-8 value`.
//!
//! `bytes(x)` is a uvarint length and the UTF-8 bytes, so a prefix names one service
//! (and service key) exactly; the last component is bare, so keys and service keys list
//! in UTF-8 byte order, Cassandra's `text` order.

use fjall::Keyspace;
use kairosdb_model::services::in_prefix_bounds;
use kairosdb_model::StorageError;

use crate::codec::put_bytes;
use crate::store::fjall_err;

const MARKER: u8 = 0x01;
const VALUE: u8 = 0x02;
const VERSION: u8 = 0x01;

fn marker_prefix(service: &str) -> Vec<u8> {
    let mut k = vec![MARKER];
    put_bytes(&mut k, service.as_bytes());
    k
}

fn value_prefix(service: &str, service_key: &str) -> Vec<u8> {
    let mut k = vec![VALUE];
    put_bytes(&mut k, service.as_bytes());
    put_bytes(&mut k, service_key.as_bytes());
    k
}

fn utf8(what: &str, b: &[u8]) -> Result<String, StorageError> {
    String::from_utf8(b.to_vec())
        .map_err(|_| StorageError::Corruption(format!("services keyspace: {what} is not UTF-8")))
}

/// Writes `value` and the service-key marker in one fjall batch (not yet fsynced).
pub fn set_value(
    db: &fjall::Database,
    ks: &Keyspace,
    service: &str,
    service_key: &str,
    key: &str,
    value: &str,
) -> Result<(), StorageError> {
    let mut k = value_prefix(service, service_key);
    k.extend_from_slice(key.as_bytes());
    let mut v = Vec::with_capacity(1 + value.len());
    v.push(VERSION);
    v.extend_from_slice(value.as_bytes());
    let mut b = db.batch();
    b.insert(ks, k, v);
    b.insert(ks, marker(service, service_key), [VERSION]);
    b.commit().map_err(fjall_err)
}

fn marker(service: &str, service_key: &str) -> Vec<u8> {
    let mut m = marker_prefix(service);
    m.extend_from_slice(service_key.as_bytes());
    m
}

pub fn get_value(
    ks: &Keyspace,
    service: &str,
    service_key: &str,
    key: &str,
) -> Result<Option<String>, StorageError> {
    let mut k = value_prefix(service, service_key);
    k.extend_from_slice(key.as_bytes());
    match ks.get(k).map_err(fjall_err)? {
        None => Ok(None),
        Some(v) => match v.split_first() {
            Some((&VERSION, rest)) => utf8("a value", rest).map(Some),
            _ => Err(StorageError::Corruption(format!(
                "services keyspace: value of {service}/{service_key}/{key} has an unknown version"
            ))),
        },
    }
}

pub fn list_service_keys(ks: &Keyspace, service: &str) -> Result<Vec<String>, StorageError> {
    let p = marker_prefix(service);
    let mut out = Vec::new();
    for kv in ks.prefix(&p) {
        let k = kv.key().map_err(fjall_err)?;
        out.push(utf8("a service key", &k[p.len()..])?);
    }
    Ok(out)
}

pub fn list_keys(
    ks: &Keyspace,
    service: &str,
    service_key: &str,
    starts_with: Option<&str>,
) -> Result<Vec<String>, StorageError> {
    let p = value_prefix(service, service_key);
    let mut scan = p.clone();
    scan.extend_from_slice(starts_with.unwrap_or("").as_bytes());
    let mut out = Vec::new();
    for kv in ks.prefix(&scan) {
        let k = kv.key().map_err(fjall_err)?;
        let key = utf8("a key", &k[p.len()..])?;
        // The byte prefix is wider than KairosDB's `[p, p + U+FFFF)` bound.
        if starts_with.is_none_or(|pre| in_prefix_bounds(&key, pre)) {
            out.push(key);
        }
    }
    Ok(out)
}

/// Removes the value and writes the marker, in one fjall batch (not yet fsynced).
pub fn delete_key(
    db: &fjall::Database,
    ks: &Keyspace,
    service: &str,
    service_key: &str,
    key: &str,
) -> Result<(), StorageError> {
    let mut k = value_prefix(service, service_key);
    k.extend_from_slice(key.as_bytes());
    let mut b = db.batch();
    b.remove(ks, k);
    b.insert(ks, marker(service, service_key), [VERSION]);
    b.commit().map_err(fjall_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_key_bytes() {
        assert_eq!(marker("ab", "c"), [0x01, 2, b'a', b'b', b'c']);
        let mut k = value_prefix("ab", "c");
        k.extend_from_slice(b"k");
        assert_eq!(k, [0x02, 2, b'a', b'b', 1, b'c', b'k']);
    }

    #[test]
    fn a_service_is_not_a_prefix_of_another() {
        // "a" + service key "b…" must not list under service "ab".
        assert!(!marker("a", "bx").starts_with(&marker_prefix("ab")));
    }
}
