//! The terminal: progress bars on stderr, and a log writer that keeps log lines from being
//! drawn over by them.
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressDrawTarget};

static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// The one set of bars of this process. Hidden unless stderr is a terminal, so cron jobs and CI
/// logs never see escape codes.
pub(crate) fn bars() -> &'static MultiProgress {
    BARS.get_or_init(|| {
        let target = match std::io::stderr().is_terminal() {
            true => ProgressDrawTarget::stderr(),
            false => ProgressDrawTarget::hidden(),
        };
        MultiProgress::with_draw_target(target)
    })
}

pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Writes log lines to stderr with the bars lifted out of the way.
pub(crate) struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

pub(crate) fn log_writer() -> LogWriter {
    LogWriter
}
