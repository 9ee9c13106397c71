//! A small stderr logger for the `log` facade, so the crate needs no logger
//! crate. `RUST_RAFT_LOG=error|warn|info|debug|trace` sets the level
//! (default: warn). Each line carries the framework's clock
//! (`raft_time_now`, so a virtual-time run logs virtual time), in
//! milliseconds modulo 10^6.
#![forbid(unsafe_code)]

use std::sync::Once;

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let ms = crate::wrappers::now_us() / 1_000 % 1_000_000;
            eprintln!("[rust_raft {ms:>6} {:<5}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;
static INIT: Once = Once::new();

/// Installs the logger once; leaves an already installed logger alone.
pub fn init() {
    INIT.call_once(|| {
        let level = match std::env::var("RUST_RAFT_LOG").as_deref() {
            Ok("off") => log::LevelFilter::Off,
            Ok("error") => log::LevelFilter::Error,
            Ok("info") => log::LevelFilter::Info,
            Ok("debug") => log::LevelFilter::Debug,
            Ok("trace") => log::LevelFilter::Trace,
            _ => log::LevelFilter::Warn,
        };
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(level);
        }
    });
}
