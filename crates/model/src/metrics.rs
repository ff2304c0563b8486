//! A component's figures, declared once: each counter and gauge with its exported name
//! and help text, and what reads it. Every listing is generated from that declaration:
//! the [`StorageStats`] a backend returns, the server's `/metrics` text and
//! `/api/v1/metrics` JSON, and a writer of the figures as `kairosdb.*` series, which
//! iterates the same [`Sample`]s.
//!
//! * [`metrics!`](crate::metrics!) declares a struct of atomics, one line per figure
//!   (`counter` → `AtomicU64`, `gauge` → `AtomicI64`), and its `collect()`.
//! * A table of [`Gauge`]s declares figures read from a component's state when
//!   collected (head bytes, WAL segments, ...): `(name, help, fn(&T) -> f64)`.
//! * [`StorageStats::samples`] turns what was collected into [`Sample`]s.
//!
//! Not here: counting (each component bumps its atomics where the event happens) and
//! the exposition formats (the server's `metrics.rs` and `http/health.rs`). No I/O.

/// How a figure moves: a counter only grows, a gauge goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One exported figure, as `/metrics`, `/api/v1/metrics` and the self-metrics writer
/// see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub help: &'static str,
    pub kind: Kind,
    pub value: f64,
    /// Prometheus labels (a figure per worker); empty for most figures.
    pub labels: Vec<(&'static str, String)>,
}

/// Figures a backend (or a wrapper such as the delivery queue) exports to `/metrics`,
/// as `(name, help, value)`. Names are Prometheus names without the `kairosdb_` prefix.
/// Built by `collect()` of a [`metrics!`](crate::metrics!) struct and
/// [`StorageStats::read_gauges`].
#[derive(Clone, Debug, Default)]
pub struct StorageStats {
    pub counters: Vec<(&'static str, &'static str, u64)>,
    pub gauges: Vec<(&'static str, &'static str, f64)>,
    /// Points the store acknowledged but has not yet written to where queries read them
    /// (a delivery queue's undelivered points); 0 for a store that writes through. Not
    /// exported under its own name: the server adds it to `kairosdb_queue_size`.
    pub backlog_points: u64,
    /// Figures with one value per label value (a control node's calls per worker).
    pub labeled: Vec<Labeled>,
}

/// A figure with one value per value of its label: `name{label="value"}`.
#[derive(Clone, Debug)]
pub struct Labeled {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub label: &'static str,
    /// (label value, figure).
    pub values: Vec<(String, f64)>,
}

/// A gauge read from a component's state when collected. Declared in a table,
/// `const GAUGES: &[Gauge<Inner>] = &[Gauge::new("head_bytes", "Bytes held", |i| ...)]`,
/// and read by [`StorageStats::read_gauges`].
pub struct Gauge<T: ?Sized> {
    pub name: &'static str,
    pub help: &'static str,
    pub read: fn(&T) -> f64,
}

impl<T: ?Sized> Gauge<T> {
    pub const fn new(name: &'static str, help: &'static str, read: fn(&T) -> f64) -> Self {
        Gauge { name, help, read }
    }
}

impl StorageStats {
    /// Adds the gauges of `table`, in its order, each read from `of` now.
    pub fn read_gauges<T: ?Sized>(&mut self, table: &[Gauge<T>], of: &T) {
        self.gauges
            .extend(table.iter().map(|g| (g.name, g.help, (g.read)(of))));
    }

    /// Adds `other`'s counters and gauges after these (a wrapper's figures, then its
    /// inner store's), and its backlog to this one.
    pub fn append(&mut self, other: StorageStats) {
        self.counters.extend(other.counters);
        self.gauges.extend(other.gauges);
        self.labeled.extend(other.labeled);
        self.backlog_points += other.backlog_points;
    }

    /// Every figure as a [`Sample`], counters first, each name after `prefix`.
    pub fn samples<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = Sample> + 'a {
        let counters = self
            .counters
            .iter()
            .map(move |&(name, help, value)| Sample {
                name: format!("{prefix}{name}"),
                help,
                kind: Kind::Counter,
                value: value as f64,
                labels: Vec::new(),
            });
        let gauges = self.gauges.iter().map(move |&(name, help, value)| Sample {
            name: format!("{prefix}{name}"),
            help,
            kind: Kind::Gauge,
            value,
            labels: Vec::new(),
        });
        let labeled = self.labeled.iter().flat_map(move |l| {
            l.values.iter().map(move |(label, value)| Sample {
                name: format!("{prefix}{}", l.name),
                help: l.help,
                kind: l.kind,
                value: *value,
                labels: vec![(l.label, label.clone())],
            })
        });
        counters.chain(gauges).chain(labeled)
    }
}

/// Declares a struct of atomics, one line per figure — `counter field: "name", "help";`
/// (an `AtomicU64`) or `gauge field: "name", "help";` (an `AtomicI64`) — and its
/// `collect()`, which reads them all into a [`StorageStats`] in declaration order.
/// Attributes (docs, derives) pass through to the struct and its fields; the fields
/// get the struct's visibility.
///
/// ```
/// kairosdb_model::metrics! {
///     #[derive(Debug, Default)]
///     pub struct Counters {
///         counter writes: "writes_total", "Writes acknowledged.";
///         gauge open: "connections", "Open connections.";
///     }
/// }
/// let c = Counters::default();
/// c.writes.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
/// let s = c.collect();
/// assert_eq!(s.counters, vec![("writes_total", "Writes acknowledged.", 2)]);
/// assert_eq!(s.gauges, vec![("connections", "Open connections.", 0.0)]);
/// ```
#[macro_export]
macro_rules! metrics {
    (@atomic counter) => { ::std::sync::atomic::AtomicU64 };
    (@atomic gauge) => { ::std::sync::atomic::AtomicI64 };
    (@push counter, $stats:ident, $name:literal, $help:literal, $atomic:expr) => {
        $stats.counters.push((
            $name,
            $help,
            $atomic.load(::std::sync::atomic::Ordering::Relaxed),
        ))
    };
    (@push gauge, $stats:ident, $name:literal, $help:literal, $atomic:expr) => {
        $stats.gauges.push((
            $name,
            $help,
            $atomic.load(::std::sync::atomic::Ordering::Relaxed) as f64,
        ))
    };
    (
        $(#[$attr:meta])*
        $vis:vis struct $ty:ident {
            $(
                $(#[$field_attr:meta])*
                $kind:ident $field:ident: $name:literal, $help:literal;
            )*
        }
    ) => {
        $(#[$attr])*
        $vis struct $ty {
            $(
                $(#[$field_attr])*
                $vis $field: $crate::metrics!(@atomic $kind),
            )*
        }

        impl $ty {
            /// Every figure of this struct, read now, in declaration order.
            $vis fn collect(&self) -> $crate::StorageStats {
                let mut stats = $crate::StorageStats::default();
                $($crate::metrics!(@push $kind, stats, $name, $help, self.$field);)*
                stats
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::metrics! {
        #[derive(Default)]
        struct Figures {
            counter hits: "hits_total", "Hits.";
            gauge open: "open", "Open things.";
            counter misses: "misses_total", "Misses.";
        }
    }

    struct State {
        held: u64,
    }

    const GAUGES: &[Gauge<State>] = &[Gauge::new("held_bytes", "Bytes held.", |s| s.held as f64)];

    #[test]
    fn collect_lists_declared_figures_in_order_with_their_kinds() {
        let f = Figures::default();
        f.hits.fetch_add(3, std::sync::atomic::Ordering::Relaxed);
        f.open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let mut stats = f.collect();
        stats.read_gauges(GAUGES, &State { held: 7 });
        assert_eq!(
            stats.counters,
            vec![("hits_total", "Hits.", 3), ("misses_total", "Misses.", 0)]
        );
        assert_eq!(
            stats.gauges,
            vec![
                ("open", "Open things.", -1.0),
                ("held_bytes", "Bytes held.", 7.0)
            ]
        );
        let samples: Vec<Sample> = stats.samples("kairosdb_").collect();
        let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kairosdb_hits_total",
                "kairosdb_misses_total",
                "kairosdb_open",
                "kairosdb_held_bytes"
            ]
        );
        assert_eq!(samples[0].kind, Kind::Counter);
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[3].kind, Kind::Gauge);
        assert_eq!(samples[3].help, "Bytes held.");
    }
}
