//! The metadata store (`/api/v1/metadata`, spec §1.13, §7.7): string values under
//! `service` → `service_key` → `key`, KairosDB's `ServiceKeyStore`. A supertrait of
//! [`crate::Storage`], so every backend provides it and the HTTP code reaches it through
//! the one storage handle.
//!
//! Not time-series data: no batches, no time ranges, no TTL. [`ServiceMap`] is the
//! reference model of the semantics (the suite's own in-memory double uses it); the
//! backends keep their own durable form.
//!
//! # Why a separate trait with five methods
//!
//! The series methods of `Storage` grow by widening their request structs; this is a
//! different store (KairosDB splits it the same way: `Datastore` and `ServiceKeyStore`,
//! and puts it on a different Cassandra cluster), with exactly KairosDB's five calls
//! that the REST API makes. A single `metadata(request) -> answer` method would hide
//! five distinct shapes behind one enum for no reuse. Being a supertrait (rather than an
//! optional extra handle) means no backend can silently lack it.
//!
//! # Semantics every backend shows (checked by the suite)
//!
//! * Keys list in ascending byte order of their UTF-8 (Cassandra's `text` clustering
//!   order); `starts_with` keeps keys in `[prefix, prefix + U+FFFF)`, as KairosDB's
//!   bounds do.
//! * A service key is listed once anything was set *or deleted* under it, and stays
//!   listed after its last key is deleted: KairosDB's `setValue` and `deleteKey` both
//!   write the partition's static `mtime`, and its service-key listing returns the
//!   partition from that static row. Deliberate deviation: KairosDB's listing
//!   (`SELECT service_key … ALLOW FILTERING`) returns one row per stored key, so a
//!   service key repeats, in token order; we answer each once, sorted (no client can
//!   rely on the repeats).
//! * Deleting a key that does not exist succeeds.
//! * KairosDB has no call listing the services themselves; neither do we.

use std::collections::{BTreeMap, BTreeSet};

use crate::storage::StorageError;

/// KairosDB's `ServiceKeyStore` (minus `getServiceKeyLastModifiedTime`, used only by
/// roll-ups). See the module docs for the semantics.
pub trait ServiceStore {
    /// Stores `value` under `service`/`service_key`/`key`, replacing any earlier one.
    fn set_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError>;

    /// The value stored under `service`/`service_key`/`key`, if any.
    fn get_value(
        &self,
        service: &str,
        service_key: &str,
        key: &str,
    ) -> Result<Option<String>, StorageError>;

    /// The service keys of `service`, sorted, each once.
    fn list_service_keys(&self, service: &str) -> Result<Vec<String>, StorageError>;

    /// The keys under `service`/`service_key`, sorted; with `starts_with`, only those
    /// starting with it (callers pass `None` for an empty filter, as KairosDB does).
    fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        starts_with: Option<&str>,
    ) -> Result<Vec<String>, StorageError>;

    /// Removes `key` (a no-op when absent); the service key stays listed.
    fn delete_key(&self, service: &str, service_key: &str, key: &str) -> Result<(), StorageError>;
}

/// Implements [`ServiceStore`] for `$ty` by handing every call to `$target` (an
/// expression of `$this`, the `&self`), for wrappers and test doubles:
/// `forward_service_store!(Wrapper, this => this.inner);`
#[macro_export]
macro_rules! forward_service_store {
    ($ty:ty, $this:ident => $target:expr) => {
        impl $crate::ServiceStore for $ty {
            fn set_value(
                &self,
                service: &str,
                service_key: &str,
                key: &str,
                value: &str,
            ) -> Result<(), $crate::StorageError> {
                let $this = self;
                $target.set_value(service, service_key, key, value)
            }
            fn get_value(
                &self,
                service: &str,
                service_key: &str,
                key: &str,
            ) -> Result<Option<String>, $crate::StorageError> {
                let $this = self;
                $target.get_value(service, service_key, key)
            }
            fn list_service_keys(
                &self,
                service: &str,
            ) -> Result<Vec<String>, $crate::StorageError> {
                let $this = self;
                $target.list_service_keys(service)
            }
            fn list_keys(
                &self,
                service: &str,
                service_key: &str,
                starts_with: Option<&str>,
            ) -> Result<Vec<String>, $crate::StorageError> {
                let $this = self;
                $target.list_keys(service, service_key, starts_with)
            }
            fn delete_key(
                &self,
                service: &str,
                service_key: &str,
                key: &str,
            ) -> Result<(), $crate::StorageError> {
                let $this = self;
                $target.delete_key(service, service_key, key)
            }
        }
    };
}

/// A [`ServiceMap`] behind a lock is a complete [`ServiceStore`] (for test doubles).
impl ServiceStore for std::sync::Mutex<ServiceMap> {
    fn set_value(&self, s: &str, sk: &str, k: &str, v: &str) -> Result<(), StorageError> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_value(s, sk, k, v);
        Ok(())
    }
    fn get_value(&self, s: &str, sk: &str, k: &str) -> Result<Option<String>, StorageError> {
        Ok(self
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_value(s, sk, k))
    }
    fn list_service_keys(&self, s: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .list_service_keys(s))
    }
    fn list_keys(&self, s: &str, sk: &str, p: Option<&str>) -> Result<Vec<String>, StorageError> {
        Ok(self
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .list_keys(s, sk, p))
    }
    fn delete_key(&self, s: &str, sk: &str, k: &str) -> Result<(), StorageError> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .delete_key(s, sk, k);
        Ok(())
    }
}

/// The semantics of [`ServiceStore`] on plain maps: no locking, no I/O.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceMap {
    /// (service, service key) → key → value. An entry with no keys is a service key
    /// that stays listed (KairosDB's static-only partition).
    partitions: BTreeMap<(String, String), BTreeMap<String, String>>,
}

impl ServiceMap {
    pub fn set_value(&mut self, service: &str, service_key: &str, key: &str, value: &str) {
        self.partition(service, service_key)
            .insert(key.to_string(), value.to_string());
    }

    pub fn get_value(&self, service: &str, service_key: &str, key: &str) -> Option<String> {
        self.partitions
            .get(&(service.to_string(), service_key.to_string()))
            .and_then(|p| p.get(key).cloned())
    }

    pub fn list_service_keys(&self, service: &str) -> Vec<String> {
        let keys: BTreeSet<&String> = self
            .partitions
            .keys()
            .filter(|(s, _)| s == service)
            .map(|(_, sk)| sk)
            .collect();
        keys.into_iter().cloned().collect()
    }

    pub fn list_keys(
        &self,
        service: &str,
        service_key: &str,
        starts_with: Option<&str>,
    ) -> Vec<String> {
        let Some(p) = self
            .partitions
            .get(&(service.to_string(), service_key.to_string()))
        else {
            return Vec::new();
        };
        p.keys()
            .filter(|k| starts_with.is_none_or(|pre| in_prefix_bounds(k, pre)))
            .cloned()
            .collect()
    }

    pub fn delete_key(&mut self, service: &str, service_key: &str, key: &str) {
        self.partition(service, service_key).remove(key);
    }

    /// Every (service, service key) with its keys, in order: for stores that keep the map
    /// in their own form (the cluster's Raft state).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &BTreeMap<String, String>)> {
        self.partitions
            .iter()
            .map(|((s, sk), keys)| (s.as_str(), sk.as_str(), keys))
    }

    /// The inverse of [`ServiceMap::entries`]: a service key with these keys (none: listed
    /// and empty).
    pub fn insert_entry(
        &mut self,
        service: &str,
        service_key: &str,
        keys: BTreeMap<String, String>,
    ) {
        self.partition(service, service_key).extend(keys);
    }

    fn partition(&mut self, service: &str, service_key: &str) -> &mut BTreeMap<String, String> {
        self.partitions
            .entry((service.to_string(), service_key.to_string()))
            .or_default()
    }
}

/// KairosDB's prefix bounds: `prefix <= key < prefix + U+FFFF` (Java's
/// `Character.MAX_VALUE`), compared as Cassandra compares `text`, by UTF-8 bytes. Keys
/// that start with the prefix followed by a character above U+FFFF (4-byte UTF-8, which
/// sorts after U+FFFF's `EF BF BF`) are outside, exactly as on Cassandra.
pub fn in_prefix_bounds(key: &str, prefix: &str) -> bool {
    let upper = format!("{prefix}\u{FFFF}");
    key >= prefix && key < upper.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_are_kairosdbs() {
        assert!(in_prefix_bounds("abc", "ab"));
        assert!(in_prefix_bounds("ab", "ab"));
        assert!(!in_prefix_bounds("b", "ab"));
        assert!(!in_prefix_bounds("aa", "ab"));
        assert!(in_prefix_bounds("ab\u{FFFE}", "ab"));
        assert!(!in_prefix_bounds("ab\u{10000}", "ab"));
    }

    #[test]
    fn map_keeps_emptied_service_keys_listed() {
        let mut m = ServiceMap::default();
        m.set_value("s", "b", "k", "v");
        m.delete_key("s", "b", "k");
        m.delete_key("s", "a", "never");
        assert_eq!(m.list_service_keys("s"), ["a", "b"]);
        assert!(m.list_keys("s", "b", None).is_empty());
        assert_eq!(m.get_value("s", "b", "k"), None);
    }
}
