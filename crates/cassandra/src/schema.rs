//! KairosDB's CQL (spec §7): schema creation (§7.2), the `spec` table (§7.3),
//! and the statements of the write (§7.4), read (§7.5), delete (§7.6) and
//! service-index (§7.7) paths, as text.
//!
//! Statements name tables as `<keyspace>.<table>` so they do not depend on a
//! session's current keyspace, and every write or delete we send carries an
//! explicit write time in milliseconds: `USING TIMESTAMP ?` (`USING TTL ? AND
//! TIMESTAMP ?` after KairosDB's `USING TTL ?`). KairosDB 1.3.0-1 leaves the
//! stamp to its driver, whose timestamp generator returns
//! `System.currentTimeMillis()`, so its statements carry milliseconds too (see
//! [`crate::Mutation`]). Otherwise the text is KairosDB's. This module only
//! builds strings: preparing and binding them is the driver's job.

use crate::error::ConfigError;

/// KairosDB's default replication for a new keyspace.
pub const DEFAULT_REPLICATION: &str = "{'class': 'SimpleStrategy','replication_factor' : 1}";

/// Tables on the write cluster in KairosDB's creation order; `service_index`
/// lives on the meta cluster ([`META_CLUSTER_TABLES`]).
pub const WRITE_CLUSTER_TABLES: [&str; 7] = [
    "data_points",
    "row_key_index",
    "string_index",
    "row_keys",
    "tag_indexed_row_keys",
    "row_key_time_index",
    "spec",
];

/// Tables KairosDB creates on its meta cluster. We have one cluster, so they are
/// created after the write cluster's, in the same keyspace.
pub const META_CLUSTER_TABLES: [&str; 1] = ["service_index"];

/// A validated keyspace name: an unquoted CQL identifier, so it can be
/// pasted into statements safely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace(String);

impl Keyspace {
    pub fn new(name: &str) -> Result<Keyspace, ConfigError> {
        let ok = (1..=48).contains(&name.len())
            && name.as_bytes()[0].is_ascii_alphabetic()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Keyspace(name.to_string()))
        } else {
            Err(ConfigError::Keyspace {
                name: name.to_string(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Keyspace {
    fn default() -> Keyspace {
        Keyspace("kairosdb".to_string())
    }
}

/// `kairosdb.datastore.cassandra.table_create_with.<table>`: text appended
/// (after one space) to each `CREATE TABLE`.
///
/// Deviation (spec §14.24): KairosDB defaults `data_points` to
/// `WITH COMPACT STORAGE`; we default every table to nothing. Cassandra 4+
/// refuses to create COMPACT STORAGE tables, and the CQL-level layout
/// (`key blob, column1 blob, value blob`) is the same either way, so our
/// reads and writes address an existing 3.x compact table and a new
/// non-compact one identically. `IF NOT EXISTS` leaves an existing table
/// untouched. Set `data_points` to `WITH COMPACT STORAGE` to reproduce a 3.x
/// cluster exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// Pairs of (table name, text); tables not listed get the empty text.
    pub create_with: Vec<(String, String)>,
}

impl TableOptions {
    pub fn for_table(&self, table: &str) -> &str {
        self.create_with
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, w)| w.as_str())
            .unwrap_or("")
    }
}

/// Builds every statement for one keyspace.
#[derive(Clone, Debug, Default)]
pub struct Cql {
    ks: Keyspace,
}

impl Cql {
    pub fn new(keyspace: Keyspace) -> Cql {
        Cql { ks: keyspace }
    }

    pub fn keyspace(&self) -> &Keyspace {
        &self.ks
    }

    fn t(&self, table: &str) -> String {
        format!("{}.{}", self.ks.0, table)
    }

    // ---- §7.2 schema ----

    /// Note the two spaces before `WITH`, as in KairosDB.
    pub fn create_keyspace(&self, replication: &str) -> String {
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {}  WITH REPLICATION = {}",
            self.ks.0, replication
        )
    }

    /// The `CREATE TABLE` of `table` followed by one space and its
    /// `create_with` text, or `None` for a table KairosDB does not have.
    pub fn create_table(&self, table: &str, options: &TableOptions) -> Option<String> {
        let body = match table {
            "data_points" | "row_key_index" => format!(
                "CREATE TABLE IF NOT EXISTS {} (\n  key blob,\n  column1 blob,\n  value blob,\n  PRIMARY KEY ((key), column1)\n)",
                self.t(table)
            ),
            "string_index" => format!(
                "CREATE TABLE IF NOT EXISTS {} (\n  key blob,\n  column1 text,\n  value blob,\n  PRIMARY KEY ((key), column1)\n)",
                self.t(table)
            ),
            // The trailing space after `table_name text,` is KairosDB's.
            "row_keys" => format!(
                "CREATE TABLE IF NOT EXISTS {} (\n  metric text,\n  table_name text, \n  row_time timestamp,\n  data_type text,\n  tags frozen<map<text, text>>,\n  mtime timeuuid static,\n  value text,\n  PRIMARY KEY ((metric, table_name, row_time), data_type, tags)\n)",
                self.t(table)
            ),
            "tag_indexed_row_keys" => format!(
                "CREATE TABLE IF NOT EXISTS {} (\n  metric text,\n  table_name text, \n  row_time timestamp,\n  single_tag_pair text,\n  tag_collection_hash int,\n  data_type text,\n  tags frozen<map<text, text>>,\n  mtime timeuuid static,\n  value text,\n  PRIMARY KEY ((metric, table_name, row_time, single_tag_pair), data_type, tag_collection_hash, tags)\n)",
                self.t(table)
            ),
            "row_key_time_index" => format!(
                "CREATE TABLE IF NOT EXISTS {} (\n  metric text,\n  table_name text,\n  row_time timestamp,\n  value text,\n  PRIMARY KEY ((metric), table_name, row_time)\n)",
                self.t(table)
            ),
            "spec" => format!(
                "CREATE TABLE IF NOT EXISTS {} ( spec_type text, name text, value text, PRIMARY KEY ((spec_type), name))",
                self.t(table)
            ),
            "service_index" => format!(
                "CREATE TABLE IF NOT EXISTS {} ( service text, service_key text, key text, mtime timeuuid static,  value text, PRIMARY KEY ((service, service_key), key))",
                self.t(table)
            ),
            _ => return None,
        };
        Some(format!("{body} {}", options.for_table(table)))
    }

    /// The `CREATE TABLE`s of the write cluster, in KairosDB's order.
    pub fn create_write_cluster_tables(&self, options: &TableOptions) -> Vec<String> {
        WRITE_CLUSTER_TABLES
            .iter()
            .filter_map(|t| self.create_table(t, options))
            .collect()
    }

    /// The `CREATE TABLE`s of the meta cluster (`service_index`).
    pub fn create_meta_cluster_tables(&self, options: &TableOptions) -> Vec<String> {
        META_CLUSTER_TABLES
            .iter()
            .filter_map(|t| self.create_table(t, options))
            .collect()
    }

    // ---- §7.3 spec table ----

    pub fn select_row_time_unit(&self) -> String {
        format!(
            "SELECT value FROM {} WHERE spec_type = 'cluster_config' AND name = 'row_time_unit'",
            self.t("spec")
        )
    }

    pub fn select_row_width(&self) -> String {
        format!(
            "SELECT value FROM {} WHERE spec_type = 'cluster_config' AND name = 'row_width'",
            self.t("spec")
        )
    }

    /// `unit` is `MILLISECONDS`, `SECONDS` or `LEGACY`
    /// ([`crate::RowTimeUnit::as_spec_str`]), never user text.
    pub fn insert_row_time_unit(&self, unit: crate::RowTimeUnit) -> String {
        format!(
            "INSERT INTO {} (spec_type, name, value) VALUES ('cluster_config', 'row_time_unit', '{}') USING TIMESTAMP ?",
            self.t("spec"),
            unit.as_spec_str()
        )
    }

    pub fn insert_row_width(&self, width: i64) -> String {
        format!(
            "INSERT INTO {} (spec_type, name, value) VALUES ('cluster_config', 'row_width', '{width}') USING TIMESTAMP ?",
            self.t("spec")
        )
    }

    /// Whether the cluster predates 1.3 (any metric name in `string_index`).
    pub fn select_any_metric_name(&self) -> String {
        format!(
            "SELECT column1 FROM {} WHERE key = ? LIMIT 1",
            self.t("string_index")
        )
    }

    // ---- §7.4 write path ----

    /// TIMESTAMP is the batch's wall clock in **milliseconds** (spec §7.4); the
    /// index inserts below carry the same stamp (KairosDB's text plus `AND
    /// TIMESTAMP ?` / `USING TIMESTAMP ?`, see the module docs).
    pub fn insert_data_point(&self) -> String {
        format!(
            "INSERT INTO {} (key, column1, value) VALUES (?, ?, ?) USING TTL ? AND TIMESTAMP ?",
            self.t("data_points")
        )
    }

    pub fn insert_row_key(&self) -> String {
        format!(
            "INSERT INTO {} (metric, table_name, row_time, data_type, tags, mtime) VALUES (?, ?, ?, ?, ?, now()) USING TTL ? AND TIMESTAMP ?",
            self.t("row_keys")
        )
    }

    pub fn insert_tag_indexed_row_key(&self) -> String {
        format!(
            "INSERT INTO {} (metric, table_name, row_time, data_type, single_tag_pair, tag_collection_hash, tags, mtime) VALUES (?, ?, ?, ?, ?, ?, ?, now()) USING TTL ? AND TIMESTAMP ?",
            self.t("tag_indexed_row_keys")
        )
    }

    pub fn insert_string_index(&self) -> String {
        format!(
            "INSERT INTO {} (key, column1, value) VALUES (?, ?, 0x00) USING TIMESTAMP ?",
            self.t("string_index")
        )
    }

    pub fn insert_row_key_time(&self) -> String {
        format!(
            "INSERT INTO {} (metric, table_name, row_time) VALUES (?, ?, ?) USING TTL ? AND TIMESTAMP ?",
            self.t("row_key_time_index")
        )
    }

    // ---- §7.5 read path ----

    pub fn select_row_key_index(&self) -> String {
        format!(
            "SELECT column1 FROM {} WHERE key = ? AND column1 >= ? AND column1 < ?",
            self.t("row_key_index")
        )
    }

    pub fn select_row_key_times(&self) -> String {
        format!(
            "SELECT row_time FROM {} WHERE metric = ? AND table_name = ? AND row_time >= ? AND row_time <= ?",
            self.t("row_key_time_index")
        )
    }

    pub fn select_row_keys(&self) -> String {
        format!(
            "SELECT row_time, data_type, tags, TTL (value) FROM {} WHERE metric = ? AND table_name = ? AND row_time = ?",
            self.t("row_keys")
        )
    }

    pub fn select_tag_indexed_row_keys(&self) -> String {
        format!(
            "SELECT row_time, data_type, tags, TTL (value), tag_collection_hash FROM {} WHERE metric = ? AND table_name = ? AND row_time = ? and single_tag_pair = ? ORDER BY data_type, tag_collection_hash",
            self.t("tag_indexed_row_keys")
        )
    }

    /// Points of one row; with `limit`, a ` LIMIT ?` is appended.
    pub fn select_data_points(&self, descending: bool, limit: bool) -> String {
        format!(
            "SELECT column1, value FROM {} WHERE key = ? AND column1 >= ? AND column1 < ? ORDER BY column1 {}{}",
            self.t("data_points"),
            if descending { "DESC" } else { "ASC" },
            if limit { " LIMIT ?" } else { "" }
        )
    }

    pub fn select_metric_names(&self) -> String {
        format!(
            "SELECT column1 FROM {} WHERE key = ?",
            self.t("string_index")
        )
    }

    pub fn select_metric_names_prefix(&self) -> String {
        format!(
            "SELECT column1 FROM {} WHERE key = ? and column1 >= ? and column1 < ?",
            self.t("string_index")
        )
    }

    // ---- §7.6 delete path ----
    // KairosDB's text with `USING TIMESTAMP ?` (milliseconds, see the module docs)
    // between the table and `WHERE`; the write time is the first bind.

    pub fn delete_data_points_row(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE key = ?",
            self.t("data_points")
        )
    }

    pub fn delete_data_points_range(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE key = ? AND column1 >= ? AND column1 <= ?",
            self.t("data_points")
        )
    }

    pub fn delete_data_point(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE key = ? AND column1 = ?",
            self.t("data_points")
        )
    }

    pub fn delete_row_key_index_entry(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE KEY = ? AND column1 = ?",
            self.t("row_key_index")
        )
    }

    pub fn delete_row_key_index_row(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE KEY = ?",
            self.t("row_key_index")
        )
    }

    pub fn delete_row_key(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE metric = ? AND table_name = ? AND row_time = ? AND data_type = ? AND tags = ?",
            self.t("row_keys")
        )
    }

    pub fn delete_tag_indexed_row_key(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE metric = ? AND table_name = ? AND row_time = ? AND data_type = ? AND single_tag_pair = ? AND tag_collection_hash = ? AND tags = ?",
            self.t("tag_indexed_row_keys")
        )
    }

    pub fn delete_row_key_time(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE metric = ? AND table_name = ? AND row_time = ?",
            self.t("row_key_time_index")
        )
    }

    pub fn delete_string_index(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE key = ? AND column1 = ?",
            self.t("string_index")
        )
    }

    // ---- §7.7 service index ----
    // The metadata API (`ServiceStore` in store.rs). KairosDB's text; the three writes
    // carry our `USING TIMESTAMP ?` (its `now()` for `mtime` is kept: the server's
    // timeuuid, read only by roll-ups). The last two are not sent (no roll-ups).

    pub fn service_index_insert(&self) -> String {
        format!(
            "INSERT INTO {} (service, service_key, key, value, mtime) VALUES (?, ?, ?, ?, now()) USING TIMESTAMP ?",
            self.t("service_index")
        )
    }

    pub fn service_index_get(&self) -> String {
        format!(
            "SELECT value, WRITETIME(value) FROM {} WHERE service = ? AND service_key = ? AND key = ?",
            self.t("service_index")
        )
    }

    pub fn service_index_list_keys(&self) -> String {
        format!(
            "SELECT key FROM {} WHERE service = ? AND service_key = ? ORDER BY key ASC",
            self.t("service_index")
        )
    }

    pub fn service_index_list_keys_prefix(&self) -> String {
        format!(
            "SELECT key FROM {} WHERE service = ? AND service_key = ? AND key >= ? AND key < ?",
            self.t("service_index")
        )
    }

    pub fn service_index_list_service_keys(&self) -> String {
        format!(
            "SELECT service_key FROM {} WHERE service = ? ALLOW FILTERING",
            self.t("service_index")
        )
    }

    pub fn service_index_delete_key(&self) -> String {
        format!(
            "DELETE FROM {} USING TIMESTAMP ? WHERE service = ? AND service_key = ? AND key = ?",
            self.t("service_index")
        )
    }

    pub fn service_index_insert_modified_time(&self) -> String {
        format!(
            "INSERT INTO {} (service, service_key, mtime) VALUES (?, ?, now()) USING TIMESTAMP ?",
            self.t("service_index")
        )
    }

    pub fn service_index_last_modified_time(&self) -> String {
        format!(
            "select mtime from {} WHERE service = ? AND service_key = ? LIMIT 1",
            self.t("service_index")
        )
    }

    pub fn service_index_entries(&self) -> String {
        format!(
            "select key, value from {} WHERE service = ? AND service_key = ?",
            self.t("service_index")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RowTimeUnit;

    /// Statements for keyspace `ks` with the `ks.` qualifier removed must be
    /// the spec's text exactly (plus our write time, see the module docs).
    fn spec_text(stmt: String) -> String {
        assert!(stmt.contains("ks."), "{stmt}");
        stmt.replace("ks.", "")
    }

    /// The spec's `text` of a write or delete with our `USING TIMESTAMP ?` added:
    /// `AND TIMESTAMP ?` after a `USING TTL ?`, before `WHERE` in a delete, else
    /// at the end.
    fn stamped(text: &str) -> String {
        if let Some(head) = text.strip_suffix(" USING TTL ?") {
            format!("{head} USING TTL ? AND TIMESTAMP ?")
        } else if let Some((head, tail)) = text.split_once(" WHERE ") {
            assert!(head.starts_with("DELETE "), "{text}");
            format!("{head} USING TIMESTAMP ? WHERE {tail}")
        } else {
            format!("{text} USING TIMESTAMP ?")
        }
    }

    fn cql() -> Cql {
        Cql::new(Keyspace::new("ks").unwrap())
    }

    #[test]
    fn keyspace() {
        assert_eq!(
            Cql::default().create_keyspace(DEFAULT_REPLICATION),
            "CREATE KEYSPACE IF NOT EXISTS kairosdb  WITH REPLICATION = {'class': 'SimpleStrategy','replication_factor' : 1}"
        );
        assert!(Keyspace::new("kairos_db2").is_ok());
        for bad in ["", "1ks", "ks;drop", "k s", &"k".repeat(49)] {
            assert!(Keyspace::new(bad).is_err(), "{bad:?}");
        }
    }

    const CREATE_TABLES: [(&str, &str); 8] = [
        ("data_points", "CREATE TABLE IF NOT EXISTS data_points (\n  key blob,\n  column1 blob,\n  value blob,\n  PRIMARY KEY ((key), column1)\n)"),
        ("row_key_index", "CREATE TABLE IF NOT EXISTS row_key_index (\n  key blob,\n  column1 blob,\n  value blob,\n  PRIMARY KEY ((key), column1)\n)"),
        ("string_index", "CREATE TABLE IF NOT EXISTS string_index (\n  key blob,\n  column1 text,\n  value blob,\n  PRIMARY KEY ((key), column1)\n)"),
        ("row_keys", "CREATE TABLE IF NOT EXISTS row_keys (\n  metric text,\n  table_name text, \n  row_time timestamp,\n  data_type text,\n  tags frozen<map<text, text>>,\n  mtime timeuuid static,\n  value text,\n  PRIMARY KEY ((metric, table_name, row_time), data_type, tags)\n)"),
        ("tag_indexed_row_keys", "CREATE TABLE IF NOT EXISTS tag_indexed_row_keys (\n  metric text,\n  table_name text, \n  row_time timestamp,\n  single_tag_pair text,\n  tag_collection_hash int,\n  data_type text,\n  tags frozen<map<text, text>>,\n  mtime timeuuid static,\n  value text,\n  PRIMARY KEY ((metric, table_name, row_time, single_tag_pair), data_type, tag_collection_hash, tags)\n)"),
        ("row_key_time_index", "CREATE TABLE IF NOT EXISTS row_key_time_index (\n  metric text,\n  table_name text,\n  row_time timestamp,\n  value text,\n  PRIMARY KEY ((metric), table_name, row_time)\n)"),
        ("spec", "CREATE TABLE IF NOT EXISTS spec ( spec_type text, name text, value text, PRIMARY KEY ((spec_type), name))"),
        ("service_index", "CREATE TABLE IF NOT EXISTS service_index ( service text, service_key text, key text, mtime timeuuid static,  value text, PRIMARY KEY ((service, service_key), key))"),
    ];

    #[test]
    fn create_tables_match_spec() {
        let opts = TableOptions::default();
        for (table, text) in CREATE_TABLES {
            let stmt = cql().create_table(table, &opts).unwrap();
            assert_eq!(spec_text(stmt), format!("{text} "), "{table}");
        }
        assert_eq!(cql().create_table("nope", &opts), None);
        let all = cql().create_write_cluster_tables(&opts);
        assert_eq!(all.len(), 7);
        for (stmt, (table, _)) in all.iter().zip(CREATE_TABLES) {
            assert!(stmt.starts_with(&format!("CREATE TABLE IF NOT EXISTS ks.{table} (")));
        }
    }

    #[test]
    fn compact_storage_is_opt_in() {
        let default = cql()
            .create_table("data_points", &TableOptions::default())
            .unwrap();
        assert!(!default.contains("COMPACT"));
        let opts = TableOptions {
            create_with: vec![("data_points".into(), "WITH COMPACT STORAGE".into())],
        };
        let compact = cql().create_table("data_points", &opts).unwrap();
        assert!(compact.ends_with(")\n) WITH COMPACT STORAGE"));
        assert!(!cql()
            .create_table("row_keys", &opts)
            .unwrap()
            .contains("COMPACT"));
    }

    #[test]
    fn spec_table_statements() {
        let c = cql();
        assert_eq!(
            spec_text(c.insert_row_time_unit(RowTimeUnit::Legacy)),
            stamped("INSERT INTO spec (spec_type, name, value) VALUES ('cluster_config', 'row_time_unit', 'LEGACY')")
        );
        assert_eq!(
            spec_text(c.insert_row_width(1814400000)),
            stamped("INSERT INTO spec (spec_type, name, value) VALUES ('cluster_config', 'row_width', '1814400000')")
        );
        assert_eq!(
            spec_text(c.select_any_metric_name()),
            "SELECT column1 FROM string_index WHERE key = ? LIMIT 1"
        );
        assert_eq!(
            spec_text(c.select_row_time_unit()),
            "SELECT value FROM spec WHERE spec_type = 'cluster_config' AND name = 'row_time_unit'"
        );
        assert_eq!(
            spec_text(c.select_row_width()),
            "SELECT value FROM spec WHERE spec_type = 'cluster_config' AND name = 'row_width'"
        );
    }

    #[test]
    fn write_path_statements() {
        let c = cql();
        let cases = [
            // The one statement whose stamp KairosDB's text already binds.
            (c.insert_data_point(), "INSERT INTO data_points (key, column1, value) VALUES (?, ?, ?) USING TTL ? AND TIMESTAMP ?".to_string()),
            (c.insert_row_key(), stamped("INSERT INTO row_keys (metric, table_name, row_time, data_type, tags, mtime) VALUES (?, ?, ?, ?, ?, now()) USING TTL ?")),
            (c.insert_tag_indexed_row_key(), stamped("INSERT INTO tag_indexed_row_keys (metric, table_name, row_time, data_type, single_tag_pair, tag_collection_hash, tags, mtime) VALUES (?, ?, ?, ?, ?, ?, ?, now()) USING TTL ?")),
            (c.insert_string_index(), stamped("INSERT INTO string_index (key, column1, value) VALUES (?, ?, 0x00)")),
            (c.insert_row_key_time(), stamped("INSERT INTO row_key_time_index (metric, table_name, row_time) VALUES (?, ?, ?) USING TTL ?")),
        ];
        for (stmt, text) in cases {
            assert_eq!(spec_text(stmt), text);
        }
    }

    #[test]
    fn read_path_statements() {
        let c = cql();
        let cases = [
            (c.select_row_key_index(), "SELECT column1 FROM row_key_index WHERE key = ? AND column1 >= ? AND column1 < ?"),
            (c.select_row_key_times(), "SELECT row_time FROM row_key_time_index WHERE metric = ? AND table_name = ? AND row_time >= ? AND row_time <= ?"),
            (c.select_row_keys(), "SELECT row_time, data_type, tags, TTL (value) FROM row_keys WHERE metric = ? AND table_name = ? AND row_time = ?"),
            (c.select_tag_indexed_row_keys(), "SELECT row_time, data_type, tags, TTL (value), tag_collection_hash FROM tag_indexed_row_keys WHERE metric = ? AND table_name = ? AND row_time = ? and single_tag_pair = ? ORDER BY data_type, tag_collection_hash"),
            (c.select_data_points(false, false), "SELECT column1, value FROM data_points WHERE key = ? AND column1 >= ? AND column1 < ? ORDER BY column1 ASC"),
            (c.select_data_points(true, false), "SELECT column1, value FROM data_points WHERE key = ? AND column1 >= ? AND column1 < ? ORDER BY column1 DESC"),
            (c.select_data_points(false, true), "SELECT column1, value FROM data_points WHERE key = ? AND column1 >= ? AND column1 < ? ORDER BY column1 ASC LIMIT ?"),
            (c.select_data_points(true, true), "SELECT column1, value FROM data_points WHERE key = ? AND column1 >= ? AND column1 < ? ORDER BY column1 DESC LIMIT ?"),
            (c.select_metric_names(), "SELECT column1 FROM string_index WHERE key = ?"),
            (c.select_metric_names_prefix(), "SELECT column1 FROM string_index WHERE key = ? and column1 >= ? and column1 < ?"),
        ];
        for (stmt, text) in cases {
            assert_eq!(spec_text(stmt), text);
        }
    }

    #[test]
    fn delete_path_statements() {
        let c = cql();
        let cases = [
            (c.delete_data_points_row(), "DELETE FROM data_points WHERE key = ?"),
            (c.delete_row_key_index_entry(), "DELETE FROM row_key_index WHERE KEY = ? AND column1 = ?"),
            (c.delete_row_key(), "DELETE FROM row_keys WHERE metric = ? AND table_name = ? AND row_time = ? AND data_type = ? AND tags = ?"),
            (c.delete_tag_indexed_row_key(), "DELETE FROM tag_indexed_row_keys WHERE metric = ? AND table_name = ? AND row_time = ? AND data_type = ? AND single_tag_pair = ? AND tag_collection_hash = ? AND tags = ?"),
            (c.delete_row_key_time(), "DELETE FROM row_key_time_index WHERE metric = ? AND table_name = ? AND row_time = ?"),
            (c.delete_data_points_range(), "DELETE FROM data_points WHERE key = ? AND column1 >= ? AND column1 <= ?"),
            (c.delete_data_point(), "DELETE FROM data_points WHERE key = ? AND column1 = ?"),
            (c.delete_row_key_index_row(), "DELETE FROM row_key_index WHERE KEY = ?"),
            (c.delete_string_index(), "DELETE FROM string_index WHERE key = ? AND column1 = ?"),
        ];
        for (stmt, text) in cases {
            assert_eq!(spec_text(stmt), stamped(text));
        }
        assert_eq!(
            stamped("DELETE FROM data_points WHERE key = ?"),
            "DELETE FROM data_points USING TIMESTAMP ? WHERE key = ?"
        );
    }

    #[test]
    fn service_index_statements() {
        let c = cql();
        let cases = [
            (c.service_index_insert(), stamped("INSERT INTO service_index (service, service_key, key, value, mtime) VALUES (?, ?, ?, ?, now())")),
            (c.service_index_get(), "SELECT value, WRITETIME(value) FROM service_index WHERE service = ? AND service_key = ? AND key = ?".to_string()),
            (c.service_index_list_keys(), "SELECT key FROM service_index WHERE service = ? AND service_key = ? ORDER BY key ASC".to_string()),
            (c.service_index_list_keys_prefix(), "SELECT key FROM service_index WHERE service = ? AND service_key = ? AND key >= ? AND key < ?".to_string()),
            (c.service_index_list_service_keys(), "SELECT service_key FROM service_index WHERE service = ? ALLOW FILTERING".to_string()),
            (c.service_index_delete_key(), stamped("DELETE FROM service_index WHERE service = ? AND service_key = ? AND key = ?")),
            (c.service_index_insert_modified_time(), stamped("INSERT INTO service_index (service, service_key, mtime) VALUES (?, ?, now())")),
            (c.service_index_last_modified_time(), "select mtime from service_index WHERE service = ? AND service_key = ? LIMIT 1".to_string()),
            (c.service_index_entries(), "select key, value from service_index WHERE service = ? AND service_key = ?".to_string()),
        ];
        for (stmt, text) in cases {
            assert_eq!(spec_text(stmt), text);
        }
    }
}
