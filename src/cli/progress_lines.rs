//! Index progress as plain lines on stderr when it is not a terminal (a log
//! file, a pipe, a service), where the progress bar draws nothing: a line
//! each time the phase changes, and one every few seconds within a phase.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sift::Phase;

/// How often a line is written within one phase.
const EVERY: Duration = Duration::from_secs(10);

/// The phase of the last line written, and when.
#[derive(Default)]
pub struct ProgressLines {
    last: Mutex<Option<(Phase, Instant)>>,
}

impl ProgressLines {
    /// Writes "embedding chunks 1200/5684, 140.2 chunks/s, 32s left" when the
    /// phase changed or the last line is [`EVERY`] old.
    pub fn show(&self, phase: Phase, label: &str, done: usize, total: usize, pace: &str) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|(shown, at)| shown != phase || at.elapsed() >= EVERY);
        if !due {
            return;
        }
        *last = Some((phase, Instant::now()));
        eprintln!("{}", line(label, done, total, pace));
    }
}

fn line(label: &str, done: usize, total: usize, pace: &str) -> String {
    let mut line = label.to_string();
    if total > 0 {
        line.push_str(&format!(" {done}/{total}"));
    }
    if !pace.is_empty() {
        line.push_str(", ");
        line.push_str(pace);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_the_phase_the_count_and_the_pace() {
        assert_eq!(
            line("embedding chunks", 1200, 5684, "140.2 chunks/s, 32s left"),
            "embedding chunks 1200/5684, 140.2 chunks/s, 32s left"
        );
        assert_eq!(line("scanning", 0, 0, ""), "scanning");
    }
}
