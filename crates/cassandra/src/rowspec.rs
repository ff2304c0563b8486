//! Row geometry: row times and the 4-byte `data_points.column1` names
//! (spec §7.3, §8.3; KairosDB's `RowSpec`).
//!
//! A series is split into rows of width W (default 3 weeks). A point lives in
//! the row starting at [`RowSpec::row_time`] under a column naming its offset
//! in that row. Not here: reading the `spec` table (the driver's job) — this
//! only computes with the values read from it.

use crate::error::{ConfigError, DecodeError};

/// Default `row_width` for `MILLISECONDS` and `LEGACY` clusters: 21 days.
pub const DEFAULT_ROW_WIDTH_MS: i64 = 1_814_400_000;
/// Default `row_width` for `SECONDS` clusters.
pub const DEFAULT_ROW_WIDTH_SECONDS: i64 = 1_814_400;

/// The `row_time_unit` stored in the `spec` table (spec §7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowTimeUnit {
    /// Column = offset in ms.
    Milliseconds,
    /// Column = offset in whole seconds; the ms part is lost.
    Seconds,
    /// Milliseconds shifted left by one: a cluster that predates 1.3 and
    /// may hold `kairos_legacy` rows whose low column bit is the value kind.
    Legacy,
}

impl RowTimeUnit {
    /// The value stored in `spec.value`.
    pub fn as_spec_str(self) -> &'static str {
        match self {
            RowTimeUnit::Milliseconds => "MILLISECONDS",
            RowTimeUnit::Seconds => "SECONDS",
            RowTimeUnit::Legacy => "LEGACY",
        }
    }

    pub fn from_spec_str(s: &str) -> Result<RowTimeUnit, ConfigError> {
        match s {
            "MILLISECONDS" => Ok(RowTimeUnit::Milliseconds),
            "SECONDS" => Ok(RowTimeUnit::Seconds),
            "LEGACY" => Ok(RowTimeUnit::Legacy),
            _ => Err(ConfigError::RowTimeUnit {
                value: s.to_string(),
            }),
        }
    }

    /// The default `row_width` in this unit.
    pub fn default_width(self) -> i64 {
        match self {
            RowTimeUnit::Seconds => DEFAULT_ROW_WIDTH_SECONDS,
            RowTimeUnit::Milliseconds | RowTimeUnit::Legacy => DEFAULT_ROW_WIDTH_MS,
        }
    }
}

/// Row width and unit of one cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowSpec {
    unit: RowTimeUnit,
    width: i64,
    width_ms: i64,
}

impl Default for RowSpec {
    /// What a read cluster without a `spec` table uses: ms, 3 weeks, not legacy.
    fn default() -> RowSpec {
        RowSpec {
            unit: RowTimeUnit::Milliseconds,
            width: DEFAULT_ROW_WIDTH_MS,
            width_ms: DEFAULT_ROW_WIDTH_MS,
        }
    }
}

impl RowSpec {
    /// `width` is in `unit` (seconds for [`RowTimeUnit::Seconds`], else ms).
    ///
    /// Deviation: KairosDB accepts any width and silently wraps column
    /// offsets past 2^31; we refuse widths whose offsets do not fit an int.
    pub fn new(unit: RowTimeUnit, width: i64) -> Result<RowSpec, ConfigError> {
        let max = i32::MAX as i64;
        if !(1..=max).contains(&width) {
            return Err(ConfigError::RowWidth { width, max });
        }
        let width_ms = match unit {
            RowTimeUnit::Seconds => width * 1000,
            RowTimeUnit::Milliseconds | RowTimeUnit::Legacy => width,
        };
        Ok(RowSpec {
            unit,
            width,
            width_ms,
        })
    }

    pub fn unit(&self) -> RowTimeUnit {
        self.unit
    }

    /// The width as stored in the `spec` table, in the unit's own terms.
    pub fn width(&self) -> i64 {
        self.width
    }

    pub fn width_ms(&self) -> i64 {
        self.width_ms
    }

    /// `ts − (|ts| mod W)` (spec §8.3, §14.11). Not a floor for negative
    /// timestamps: −1 → −2 and −5 → −10 with W = 5. Kept for byte
    /// compatibility with data KairosDB wrote. `i64::MIN` follows Java, where
    /// `Math.abs(Long.MIN_VALUE)` is negative.
    ///
    /// W is the stored width taken as milliseconds, in every unit: KairosDB's
    /// `RowSpec.calculateRowTime` uses the raw `row_width`, so a SECONDS
    /// cluster's rows are 1000× shorter than the width suggests (1814400 ms,
    /// about 30 minutes, by default). Spec §8.3 says `W_ms = width × 1000`;
    /// we follow the Java code, because that is what existing SECONDS data
    /// was written with. See [`RowSpec::span_ms`].
    pub fn row_time(&self, ts: i64) -> i64 {
        ts.wrapping_sub(ts.wrapping_abs() % self.width)
    }

    /// Milliseconds one row covers, `[row_time, row_time + span)`: the stored
    /// width taken as ms (see [`RowSpec::row_time`]). Equals
    /// [`RowSpec::width_ms`] except in SECONDS clusters.
    pub fn span_ms(&self) -> i64 {
        self.width
    }

    /// The column of `ts` in the row starting at `row_time`, as the 32 bits
    /// stored big-endian (Java's `int`, compared unsigned by Cassandra).
    pub fn column_name(&self, row_time: i64, ts: i64) -> u32 {
        let offset = ts.wrapping_sub(row_time);
        let name = match self.unit {
            RowTimeUnit::Seconds => (offset / 1000) as i32,
            RowTimeUnit::Milliseconds => offset as i32,
            RowTimeUnit::Legacy => (offset as i32).wrapping_shl(1),
        };
        name as u32
    }

    /// Inverse of [`RowSpec::column_name`]: the point's timestamp in ms.
    pub fn column_timestamp(&self, row_time: i64, column: u32) -> i64 {
        let offset = match self.unit {
            RowTimeUnit::Seconds => (column as i32 as i64) * 1000,
            RowTimeUnit::Milliseconds => column as i32 as i64,
            // Java's `>>> 1` on the int: unsigned, so the low (kind) bit drops.
            RowTimeUnit::Legacy => (column >> 1) as i64,
        };
        row_time.wrapping_add(offset)
    }

    /// `[lower, upper)` columns to read from a row for the query range
    /// `[start, end]` (spec §7.5 step 5), exactly the cells whose timestamps
    /// are in the range (so a CQL `LIMIT` counts only those). KairosDB rounds
    /// a SECONDS lower bound down and leaves a LEGACY double at exactly `end`
    /// out of the upper bound; we do neither.
    pub fn read_bounds(&self, row_time: i64, start: i64, end: i64) -> (u32, u32) {
        let lower = if start <= row_time {
            0
        } else {
            match self.unit {
                // The first whole second at or after `start`.
                RowTimeUnit::Seconds => {
                    let offset = start.wrapping_sub(row_time);
                    (offset.saturating_add(999) / 1000) as i32 as u32
                }
                _ => self.column_name(row_time, start),
            }
        };
        let last = end.min(row_time.saturating_add(self.span_ms() - 1));
        if last < row_time {
            return (0, 0);
        }
        let last_column = match self.unit {
            // The odd column of a legacy double at `last` is in range too.
            RowTimeUnit::Legacy => self.column_name(row_time, last) | 1,
            _ => self.column_name(row_time, last),
        };
        (lower, last_column.wrapping_add(1))
    }

    /// Inclusive `[first, last]` columns of a partial-row delete of
    /// `[start, end]` (spec §7.6); in LEGACY clusters including the odd column
    /// of a legacy double at `end`.
    pub fn delete_bounds(&self, row_time: i64, start: i64, end: i64) -> (u32, u32) {
        let (first, upper) = self.read_bounds(row_time, start, end);
        (first, upper.wrapping_sub(1))
    }

    /// Whether `[start, end]` covers the whole row, so that the row is
    /// deleted with its index entries instead of by columns (spec §7.6).
    pub fn covers_row(&self, row_time: i64, start: i64, end: i64) -> bool {
        start <= row_time && end >= row_time.saturating_add(self.span_ms() - 1)
    }

    /// TTL of the index rows of a series written with `ttl` seconds:
    /// `0` stays "forever", otherwise one row width longer (spec §7.4).
    pub fn row_key_ttl(&self, ttl: u32) -> u32 {
        if ttl == 0 {
            0
        } else {
            let extra = (self.width_ms / 1000).min(u32::MAX as i64) as u32;
            ttl.saturating_add(extra)
        }
    }
}

/// The 4 bytes of `data_points.column1`.
pub fn column_bytes(column: u32) -> [u8; 4] {
    column.to_be_bytes()
}

/// Parses `data_points.column1`.
pub fn parse_column(bytes: &[u8]) -> Result<u32, DecodeError> {
    let b: [u8; 4] = bytes
        .try_into()
        .map_err(|_| DecodeError::ColumnNameLength { len: bytes.len() })?;
    Ok(u32::from_be_bytes(b))
}

/// In a `kairos_legacy` row the low column bit is the value kind (spec §8.3).
pub fn legacy_column_is_long(column: u32) -> bool {
    column & 1 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(unit: RowTimeUnit) -> RowSpec {
        RowSpec::new(unit, unit.default_width()).unwrap()
    }

    #[test]
    fn spec_example_columns() {
        let ms = spec(RowTimeUnit::Milliseconds);
        let ts = 1359788400000;
        let row = ms.row_time(ts);
        assert_eq!(row, 1358985600000);
        assert_eq!(
            row.to_be_bytes(),
            [0x00, 0x00, 0x01, 0x3c, 0x69, 0xda, 0x9c, 0x00]
        );
        let col = ms.column_name(row, ts);
        assert_eq!(col, 802800000);
        assert_eq!(column_bytes(col), [0x2f, 0xd9, 0xc1, 0x80]);
        assert_eq!(ms.column_timestamp(row, col), ts);

        let legacy = spec(RowTimeUnit::Legacy);
        let col = legacy.column_name(row, ts);
        assert_eq!(column_bytes(col), [0x5f, 0xb3, 0x83, 0x00]);
        assert!(legacy_column_is_long(col));
        let double_col = parse_column(&[0x5f, 0xb3, 0x83, 0x01]).unwrap();
        assert!(!legacy_column_is_long(double_col));
        assert_eq!(legacy.column_timestamp(row, col), ts);
        assert_eq!(legacy.column_timestamp(row, double_col), ts);

        let secs = spec(RowTimeUnit::Seconds);
        assert_eq!(secs.width_ms(), DEFAULT_ROW_WIDTH_MS);
        // KairosDB's calculateRowTime takes the stored width (1814400) as ms,
        // so a SECONDS row starts here, not at the spec's 1358985600000.
        assert_eq!(secs.span_ms(), 1_814_400);
        assert_eq!(secs.row_time(ts), 1359787564800);
        assert_eq!(secs.column_name(secs.row_time(ts), ts), 835);
        // The column arithmetic of spec §8.3's example (a row at 1358985600000).
        let col = secs.column_name(row, ts);
        assert_eq!(col, 802800);
        assert_eq!(column_bytes(col), [0x00, 0x0c, 0x3f, 0xf0]);
        assert_eq!(secs.column_timestamp(row, col), ts);
        assert_eq!(
            secs.column_timestamp(row, secs.column_name(row, ts + 999)),
            ts
        );

        let ts = 1375202962764;
        let row = ms.row_time(ts);
        assert_eq!(row, 1373500800000);
        assert_eq!(ms.column_name(row, ts), 1702162764);
    }

    #[test]
    fn negative_timestamps_are_not_floored() {
        let ms = spec(RowTimeUnit::Milliseconds);
        assert_eq!(ms.row_time(-1), -2);
        assert_eq!(ms.column_name(-2, -1), 1);
        assert_eq!(ms.row_time(-5), -10);
        assert_eq!(ms.column_name(-10, -5), 5);
        assert_eq!(ms.column_timestamp(-10, 5), -5);
        let five = RowSpec::new(RowTimeUnit::Milliseconds, 5).unwrap();
        assert_eq!(five.row_time(-5), -5);
        assert_eq!(five.row_time(-7), -9);
        assert_eq!(five.row_time(7), 5);
        assert_eq!(ms.row_time(0), 0);
        // Java: Math.abs(Long.MIN_VALUE) % W is negative.
        assert_eq!(ms.row_time(i64::MIN), i64::MIN + 1_494_775_808);
        assert_eq!(
            ms.row_time(i64::MAX),
            i64::MAX - (i64::MAX % DEFAULT_ROW_WIDTH_MS)
        );
    }

    #[test]
    fn read_and_delete_bounds() {
        let ms = spec(RowTimeUnit::Milliseconds);
        let row = 1358985600000;
        assert_eq!(ms.read_bounds(row, 0, i64::MAX), (0, 1814400000));
        assert_eq!(ms.read_bounds(row, row + 10, row + 20), (10, 21));
        assert_eq!(ms.read_bounds(row, 0, row - 1), (0, 0), "before the row");
        let legacy = spec(RowTimeUnit::Legacy);
        // Columns 20..=41: the long at +10 (20) through the double at +20 (41).
        assert_eq!(legacy.read_bounds(row, row + 10, row + 20), (20, 42));
        assert_eq!(legacy.delete_bounds(row, row + 10, row + 20), (20, 41));
        assert_eq!(ms.delete_bounds(row, 0, i64::MAX), (0, 1814399999));
        // SECONDS: the lower bound is the first whole second at or after start.
        let secs = RowSpec::new(RowTimeUnit::Seconds, 3600).unwrap();
        assert_eq!(secs.read_bounds(0, 1, 2_999), (1, 3));
        assert_eq!(secs.read_bounds(0, 1_000, 2_000), (1, 3));
        assert_eq!(secs.read_bounds(0, 0, i64::MAX), (0, 4));
        assert_eq!(secs.delete_bounds(0, 1, 2_999), (1, 2));
        assert!(ms.covers_row(row, row, row + DEFAULT_ROW_WIDTH_MS - 1));
        assert!(!ms.covers_row(row, row + 1, i64::MAX));
        assert!(ms.covers_row(row, i64::MIN, i64::MAX));
    }

    #[test]
    fn spec_values() {
        for u in [
            RowTimeUnit::Milliseconds,
            RowTimeUnit::Seconds,
            RowTimeUnit::Legacy,
        ] {
            assert_eq!(RowTimeUnit::from_spec_str(u.as_spec_str()), Ok(u));
        }
        assert!(RowTimeUnit::from_spec_str("millis").is_err());
        assert!(RowSpec::new(RowTimeUnit::Milliseconds, 0).is_err());
        assert!(RowSpec::new(RowTimeUnit::Milliseconds, 1 << 31).is_err());
        assert_eq!(spec(RowTimeUnit::Milliseconds).row_key_ttl(0), 0);
        assert_eq!(
            spec(RowTimeUnit::Milliseconds).row_key_ttl(60),
            60 + 1814400
        );
    }

    #[test]
    fn column_parse_errors() {
        assert!(matches!(
            parse_column(&[1, 2, 3]),
            Err(DecodeError::ColumnNameLength { len: 3 })
        ));
    }

    fn any_unit() -> impl Strategy<Value = RowTimeUnit> {
        prop_oneof![
            Just(RowTimeUnit::Milliseconds),
            Just(RowTimeUnit::Seconds),
            Just(RowTimeUnit::Legacy),
        ]
    }

    proptest! {
        #[test]
        fn column_round_trip(
            unit in any_unit(),
            width in 1i64..=2_000_000_000,
            ts in -(1i64 << 60)..(1i64 << 60),
        ) {
            let width = if unit == RowTimeUnit::Seconds { width / 1000 + 1 } else { width };
            let rs = RowSpec::new(unit, width).unwrap();
            let row = rs.row_time(ts);
            let offset = ts - row;
            prop_assert!(offset >= 0);
            prop_assert!(offset < rs.span_ms());
            if ts >= 0 {
                prop_assert_eq!(row.rem_euclid(rs.span_ms()), 0);
            }
            let col = rs.column_name(row, ts);
            prop_assert_eq!(parse_column(&column_bytes(col)).unwrap(), col);
            let back = rs.column_timestamp(row, col);
            match unit {
                RowTimeUnit::Seconds => prop_assert_eq!(back, row + offset / 1000 * 1000),
                _ => prop_assert_eq!(back, ts),
            }
        }

        #[test]
        fn column_order_follows_time(ts in 0i64..(1i64 << 50), d in 0i64..1000) {
            let rs = RowSpec::default();
            let row = rs.row_time(ts);
            if rs.row_time(ts + d) == row {
                prop_assert!(column_bytes(rs.column_name(row, ts)) <= column_bytes(rs.column_name(row, ts + d)));
            }
        }

        #[test]
        fn parse_column_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
            let _ = parse_column(&bytes);
        }
    }
}
