//! The protocol's clock, made from the framework's.
//!
//! The framework's `raft_time_now` is a wall clock (CLOCK_REALTIME_COARSE,
//! ../shared/abi.md): it can jump, backward as well as forward. The core
//! compares times with deadlines it computed earlier, so a backward jump of
//! an hour would leave every deadline an hour away: a follower that never
//! campaigns, a leader that never sends a heartbeat. A forward jump looks
//! like a stall (the core's stall detection handles it).

use super::Micros;

/// A clock that never goes back: it advances by what the wall clock
/// advanced between two readings, and stands still when the wall clock
/// went back.
#[derive(Debug, Clone, Default)]
pub struct MonotonicClock {
    last_wall: Option<Micros>,
    now: Micros,
}

impl MonotonicClock {
    /// The time for a wall-clock reading `wall`. The first reading sets the
    /// clock to it (so, until a jump, the two agree).
    pub fn read(&mut self, wall: Micros) -> Micros {
        match self.last_wall {
            None => self.now = wall,
            Some(last) if wall >= last => self.now += wall - last,
            Some(_) => {} // the wall clock went back: this clock stands still
        }
        self.last_wall = Some(wall);
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_wall_clock_forward_and_stands_still_when_it_goes_back() {
        let mut clock = MonotonicClock::default();
        assert_eq!(clock.read(5_000), 5_000);
        assert_eq!(clock.read(9_000), 9_000);
        assert_eq!(clock.read(1_000), 9_000, "a jump back does not move it back");
        assert_eq!(clock.read(1_500), 9_500, "and it moves on from there");
    }
}
