//! Log lines. The lab's glue installs the logger (`env_logger`, level Info,
//! its default format, on standard error); this server only writes through
//! the `log` facade, with a target per topic (`raft::election`,
//! `raft::vote`, `raft::append`, `raft::commit`, `raft::apply`,
//! `raft::network`, `raft::timer`, `raft::api`) and a message that starts
//! with fields of its own, so a line reads
//!
//! ```text
//! [2026-11-30T05:01:02Z INFO  raft::election]    2.444 S0  T1   L   election won term 1
//! ```
//!
//! after env_logger's `[time LEVEL target]`: the framework's clock
//! (`raft_time_now`, so a virtual-time run logs virtual time) in seconds
//! modulo 10^4 to the millisecond; the server, its term and role (F, C, L)
//! when the line was written; the topic; the message. `scripts/raftlog`
//! reads this format. Levels are chosen for the glue's default (Info):
//! Info has only elections won and stalls; Debug adds every election,
//! vote, network change, loss, commit and apply; Trace every AppendEntries.
//! `RUST_LOG=raft=debug` shows Debug (a bare `RUST_LOG=debug` does not: the
//! glue's Info overrides a bare level; a directive naming a target stays).

#![forbid(unsafe_code)]

use std::fmt;

use super::protocol::{NodeId, Role, Term};

/// Who a line is about: the server and its term and role at the time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Who {
    pub(crate) id: NodeId,
    pub(crate) term: Term,
    pub(crate) role: Role,
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

/// The framework's time as a log field: `SSSS.mmm`.
pub(crate) struct Clock(pub(crate) u64);

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>4}.{:03}", self.0 / 1_000_000 % 10_000, self.0 / 1_000 % 1_000)
    }
}

/// A line about one server: `event!(level, "topic", who, "format", args...)`.
/// The arguments (and `who`) are evaluated only when the line is enabled.
macro_rules! event {
    ($level:ident, $topic:literal, $who:expr, $($arg:tt)+) => {
        ::log::$level!(
            target: concat!("raft::", $topic),
            "{} {}{:<8} {}",
            $crate::server::logging::Clock($crate::server::framework::wall_clock_us()),
            $who,
            $topic,
            format_args!($($arg)+)
        )
    };
}
pub(crate) use event;
