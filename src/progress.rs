//! Progress display on a terminal: rows, bytes and rate per table.
//!
//! Shown only when stderr is a terminal and logs are human-readable; a CI
//! console or a JSON log never receives progress lines.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Creates progress bars, or nothing when disabled.
#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Progress { multi: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8))) }
    }

    pub fn disabled() -> Self {
        Progress { multi: None }
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
        TableProgress { bar }
    }
}

/// The spinner of one table; a no-op when progress is off.
#[derive(Clone)]
pub struct TableProgress {
    bar: Option<ProgressBar>,
}

impl TableProgress {
    pub fn update(&self, rows: u64, raw_bytes: u64) {
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
    fn bytes() {
        assert_eq!(super::human_bytes(12), "12 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
