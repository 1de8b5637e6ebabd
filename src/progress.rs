//! Progress display on a terminal: one line for the whole run (bytes done
//! of the total, rate, time left) above one spinner per table (rows, bytes,
//! rate).
//!
//! Shown only when stderr is a terminal and logs are human-readable; a CI
//! console or a JSON log never receives progress lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Creates progress bars, or nothing when disabled.
#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
    /// The whole run's line, once started; every table's bytes add to it.
    overall: Arc<Mutex<Option<ProgressBar>>>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let target = enabled.then(|| ProgressDrawTarget::stderr_with_hz(8));
        Progress { multi: target.map(MultiProgress::with_draw_target), overall: Arc::default() }
    }

    pub fn disabled() -> Self {
        Progress { multi: None, overall: Arc::default() }
    }

    /// Progress drawn nowhere, but counted (for tests).
    pub fn hidden() -> Self {
        Progress { multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::hidden())), overall: Arc::default() }
    }

    /// Starts the line for the whole run: `total` bytes of COPY text
    /// (`estimated`: from the catalog, so the bar stretches if the tables
    /// hold more), with the rate and the time left. Tables started after
    /// this add their bytes to it.
    pub fn overall(&self, verb: &str, total: u64, estimated: bool) {
        let Some(m) = &self.multi else { return };
        let bar = m.insert(0, ProgressBar::new(total.max(1)));
        let about = if estimated { "about " } else { "" };
        let style = ProgressStyle::with_template(&format!(
            "{verb}: {{bytes}} of {about}{{total_bytes}} [{{wide_bar}}] {{percent}}% {{binary_bytes_per_sec}}, {{eta}} left"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        bar.enable_steady_tick(Duration::from_millis(250));
        if let Ok(mut o) = self.overall.lock() {
            *o = Some(bar);
        }
    }

    /// Ends the whole run's line when dropped, on every way out.
    pub fn overall_guard(&self) -> OverallGuard {
        OverallGuard(self.clone())
    }

    /// Ends the whole run's line.
    pub fn finish_overall(&self) {
        if let Some(b) = self.overall.lock().ok().and_then(|mut o| o.take()) {
            b.finish_and_clear();
        }
    }

    /// Bytes counted on the whole run's line so far.
    pub fn overall_position(&self) -> Option<u64> {
        self.overall.lock().ok().and_then(|o| o.as_ref().map(ProgressBar::position))
    }

    /// Adds downloaded or loaded bytes to the whole run's line.
    pub fn add(&self, bytes: u64) {
        if let Some(b) = self.overall.lock().ok().and_then(|o| o.clone()) {
            b.inc(bytes);
            if b.position() > b.length().unwrap_or(0) {
                b.set_length(b.position());
            }
        }
    }

    /// A spinner for one table.
    pub fn table(&self, verb: &str, name: &str) -> TableProgress {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            let style = ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(format!("{verb} {name}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        TableProgress { bar, run: self.clone(), counted: Arc::new(AtomicU64::new(0)) }
    }
}

/// Ends the whole run's line when dropped ([`Progress::overall_guard`]).
pub struct OverallGuard(Progress);

impl Drop for OverallGuard {
    fn drop(&mut self) {
        self.0.finish_overall();
    }
}

/// The spinner of one table; a no-op when progress is off.
#[derive(Clone)]
pub struct TableProgress {
    bar: Option<ProgressBar>,
    run: Progress,
    /// Bytes of this table already added to the whole run's line.
    counted: Arc<AtomicU64>,
}

impl TableProgress {
    pub fn update(&self, rows: u64, raw_bytes: u64) {
        if self.bar.is_some() {
            let before = self.counted.swap(raw_bytes, Ordering::Relaxed);
            self.run.add(raw_bytes.saturating_sub(before));
        }
        if let Some(b) = &self.bar {
            let secs = b.elapsed().as_secs_f64().max(0.001);
            b.set_message(format!(
                "{rows} rows, {} ({}/s)",
                human_bytes(raw_bytes),
                human_bytes((raw_bytes as f64 / secs) as u64)
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_add_up_on_the_overall_line() {
        let p = super::Progress::hidden();
        p.overall("dumping", 1000, true);
        let (a, b) = (p.table("dumping", "a"), p.table("dumping", "b"));
        a.update(1, 300);
        b.update(1, 200);
        a.update(2, 500);
        assert_eq!(p.overall_position(), Some(700));
        b.update(3, 900);
        assert_eq!(p.overall_position(), Some(1400), "an estimate that was short stretches");
        p.finish_overall();
        assert_eq!(p.overall_position(), None);
        assert_eq!(super::Progress::disabled().overall_position(), None);
    }

    #[test]
    fn bytes() {
        assert_eq!(super::human_bytes(12), "12 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
