//! Progress of a long import or export, on stderr: an `indicatif` bar with points/s and
//! an ETA when stderr is a terminal, otherwise a plain `progress: ...` line every few
//! seconds (logs, CI, `2>file`), so piped output stays readable and greppable.
//!
//! The bar's length is what the ETA is measured in: input bytes for an import of a file
//! (the compressed bytes of a `.gz`), metrics for an export; unknown (a spinner) for stdin.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain lines are printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    what: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    last_plain: Instant,
    /// Points at the start of this run (a resumed run counts on from its state file).
    points_at_start: u64,
}

impl Progress {
    /// `total` is the bar's length in `unit` (`bytes` or `metrics`), `None` if unknown.
    pub fn new(what: &'static str, total: Option<u64>, unit: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            let template = match (total.is_some(), unit) {
                (true, "bytes") => {
                    "{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}"
                }
                (true, _) => "{spinner} {prefix} [{bar:30}] {pos}/{len} metrics {msg} ETA {eta}",
                (false, _) => "{spinner} {prefix} {bytes} {msg}",
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(what);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            what,
            bar,
            started: now,
            last_plain: now,
            points_at_start: 0,
        }
    }

    /// Where a resumed run starts: position (bytes or metrics) and points so far.
    pub fn resume_at(&mut self, position: u64, points: u64) {
        self.points_at_start = points;
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.reset_eta();
        }
    }

    /// Reports the current position and totals; `detail` is shown after the rate.
    pub fn update(&mut self, position: u64, points: u64, detail: &str) {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = (points.saturating_sub(self.points_at_start)) as f64 / elapsed;
        match &self.bar {
            Some(bar) => {
                bar.set_position(position);
                bar.set_message(format!("{points} points, {rate:.0} points/s {detail}"));
            }
            None => {
                if self.last_plain.elapsed() >= PLAIN_EVERY {
                    self.last_plain = Instant::now();
                    eprintln!(
                        "progress: {} {detail} {points} points, {rate:.0} points/s, {:.0} s",
                        self.what, elapsed
                    );
                }
            }
        }
    }

    /// Prints a message above the bar (or as a plain line).
    pub fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}
