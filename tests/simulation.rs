//! The protocol core under many adversarial schedules (issue: deterministic
//! simulation). See tests/sim/mod.rs for the simulator and the checks.
//!
//! RAFT_SIM_SEED=N    replays one seed (prints its trace even on success)
//! RAFT_SIM_SEEDS=N   how many seeds the sweep runs (default 10,000)
//! RAFT_SIM_FIRST_FAILURE=1  run seeds in order on one thread and stop at the
//!                    first failure, saying how many seeds it took

mod sim;

use std::io::Write as _;

use sim::{FaultMix, Rng, Sim, MS};

/// One seed: cluster size and fault mix drawn from the seed, a faulty
/// phase, then the liveness phase.
fn run_seed(seed: u64) -> Result<Sim, String> {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let n = [3, 5, 7][rng.range(0, 3) as usize];
    let faults = FaultMix::random(&mut rng);
    let faulty_for = rng.range(1_000, 4_000) * MS;
    let mut sim = Sim::new(n, seed, faults);
    // Some senders wait long for replies, so a reply can outlive elections.
    sim.rpc_timeout = [100, 100, 1_000, 3_000][rng.range(0, 4) as usize] * MS;
    let outcome = sim.run_until(faulty_for).and_then(|_| sim.check_liveness(10_000 * MS, 3));
    match outcome {
        Ok(()) => Ok(sim),
        Err(v) => Err(sim.report(&v)),
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")))
}

#[test]
fn safety_and_liveness_over_many_seeds() {
    if let Some(seed) = env_number("RAFT_SIM_SEED") {
        match run_seed(seed) {
            Ok(sim) => {
                eprintln!("seed {seed}: all properties held ({} steps, {} RPCs)", sim.steps, sim.rpc_count);
                for line in &sim.trace {
                    eprintln!("  {line}");
                }
            }
            Err(report) => panic!("{report}"),
        }
        return;
    }
    let seeds = env_number("RAFT_SIM_SEEDS").unwrap_or(10_000);
    if env_number("RAFT_SIM_FIRST_FAILURE") == Some(1) {
        for seed in 0..seeds {
            if let Err(report) = run_seed(seed) {
                panic!("first failure after {} seeds:\n{report}", seed + 1);
            }
        }
        return;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let started = std::time::Instant::now();
    let freezes = std::sync::atomic::AtomicU64::new(0);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let freezes = &freezes;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    let mut seed = t;
                    while seed < seeds {
                        match run_seed(seed) {
                            Ok(sim) => {
                                freezes.fetch_add(sim.freezes, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(report) => {
                                failures.push(report);
                                if failures.len() >= 3 {
                                    break;
                                }
                            }
                        }
                        seed += threads;
                    }
                    failures
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker panicked")).collect()
    });
    // Written to stderr directly: the test harness captures eprintln! of
    // passing tests, and this count is what the run is for.
    let _ = writeln!(
        std::io::stderr(),
        "simulation: checked {seeds} seeds (3, 5 and 7 servers, mixed faults, {} server freezes) in {:.1} s; {} failed",
        freezes.into_inner(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
