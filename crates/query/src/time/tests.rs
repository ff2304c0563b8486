//! Calendar arithmetic checks.
