//! Terminal progress bars for long stages (indicatif), quiet when not on a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use spire_pipeline::Progress;

/// Progress on stderr: bars on a terminal, one summary line per stage otherwise.
pub struct Terminal {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, (ProgressBar, Instant)>>,
    tty: bool,
    quiet: bool,
}

impl Terminal {
    /// `quiet` suppresses everything (used with `--json`).
    pub fn new(quiet: bool) -> Terminal {
        Terminal {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
            tty: std::io::stderr().is_terminal(),
            quiet,
        }
    }
}

impl Progress for Terminal {
    fn start(&self, stage: &str, total: u64) {
        if self.quiet {
            return;
        }
        let bar = if !self.tty {
            ProgressBar::hidden()
        } else if total > 0 {
            let b = self.multi.add(ProgressBar::new(total));
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix:<28} [{bar:30}] {pos}/{len} {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        } else {
            let b = self.multi.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<28} {pos} ({per_sec}) {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        };
        bar.set_prefix(stage.to_string());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(stage.to_string(), (bar, Instant::now()));
        }
    }

    fn update(&self, stage: &str, done: u64) {
        if let Ok(bars) = self.bars.lock() {
            if let Some((b, _)) = bars.get(stage) {
                b.set_position(done);
            }
        }
    }

    fn finish(&self, stage: &str, summary: &str) {
        if self.quiet {
            return;
        }
        let entry = self.bars.lock().ok().and_then(|mut b| b.remove(stage));
        let secs = entry
            .as_ref()
            .map_or(0.0, |(_, t)| t.elapsed().as_secs_f64());
        if let Some((b, _)) = entry {
            b.finish_and_clear();
        }
        let line = format!("✓ {summary} ({secs:.1} s)");
        if self.tty {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}
