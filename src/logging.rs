//! Structured log lines on stderr, for the `log` facade, without a logger
//! crate. One fixed format, shared with the stand-in framework's own events
//! (README, "Logs"), easy to read raw and to parse:
//!
//! ```text
//!     TIME SRV TERM ROLE TOPIC    MESSAGE
//! 2831.004 S2  T7   L    election won term 7 with the votes of S0 S3
//! 2831.010 --  --   -    network  disconnect S3
//! ```
//!
//! - TIME: the framework's clock (`raft_time_now`, so a virtual-time run
//!   logs virtual time) in seconds, modulo 10^4, to the millisecond;
//! - SRV, TERM, ROLE: the server, its current term and role (F follower,
//!   C candidate, L leader) when the line was written; `--` and `-` for
//!   lines about no one server;
//! - TOPIC: election, vote, append, commit, apply, network, timer, api.
//!
//! `RUST_RAFT_LOG=error|warn|info|debug|trace` sets the level (default
//! warn); `RUST_RAFT_TOPICS=election,vote,...` keeps only those topics
//! (default all).
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::{Once, OnceLock};

use crate::core::{NodeId, Role, Term};

/// The topics a line can have; the `log` target carries it.
pub const TOPICS: [&str; 8] = ["election", "vote", "append", "commit", "apply", "network", "timer", "api"];

/// Who a line is about: the server and its term and role at the time.
#[derive(Debug, Clone, Copy)]
pub struct Who {
    pub id: NodeId,
    pub term: Term,
    pub role: Role,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            Role::Follower => 'F',
            Role::Candidate => 'C',
            Role::Leader => 'L',
        };
        write!(f, "{:<3} {:<4} {}   ", format!("S{}", self.id), format!("T{}", self.term), role)
    }
}

/// The prefix of a line about no one server.
pub const NO_ONE: &str = "--  --   -   ";

/// A line about one server: `event!(level, "topic", who, "format", args...)`.
/// The message carries everything after the time; the logger adds that.
#[macro_export]
macro_rules! event {
    ($level:ident, $topic:literal, $who:expr, $($arg:tt)+) => {
        ::log::$level!(target: $topic, "{}{:<8} {}", $who, $topic, format_args!($($arg)+))
    };
}

struct StderrLogger;

static TOPIC_FILTER: OnceLock<Option<Vec<String>>> = OnceLock::new();

fn topic_wanted(topic: &str) -> bool {
    match TOPIC_FILTER.get() {
        Some(Some(topics)) => topics.iter().any(|t| t == topic),
        _ => true,
    }
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        let topic = if TOPICS.contains(&metadata.target()) { metadata.target() } else { "api" };
        metadata.level() <= log::max_level() && topic_wanted(topic)
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = crate::wrappers::now_us();
        let seconds = now / 1_000_000 % 10_000;
        let millis = now / 1_000 % 1_000;
        if TOPICS.contains(&record.target()) {
            // From event!: server, term, role and topic are in the message.
            eprintln!("{seconds:>4}.{millis:03} {}", record.args());
        } else {
            // Anything else (the exports' complaints) is about no one server.
            eprintln!("{seconds:>4}.{millis:03} {NO_ONE}{:<8} {}", "api", record.args());
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
        let topics = std::env::var("RUST_RAFT_TOPICS")
            .ok()
            .map(|list| list.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect());
        let _ = TOPIC_FILTER.set(topics);
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(level);
        }
    });
}
