//! Scenarios from the paper's sections and the lab's tests, run on the
//! simulator in virtual time with every safety property checked after each
//! step (tests/sim/mod.rs).

mod sim;

use sim::protocol::{NodeId, Role};
use sim::{FaultMix, Sim, MS};

/// No random faults, no random proposals: the scenario drives everything.
fn quiet(n: usize, seed: u64) -> Sim {
    let mut faults = FaultMix::calm();
    faults.propose = 0.0;
    Sim::new(n, seed, faults)
}

fn run(sim: &mut Sim, for_ms: u64) {
    let until = sim.now + for_ms * MS;
    if let Err(v) = sim.run_until(until) {
        panic!("{}", sim.report(&v));
    }
}

fn wait_for(sim: &mut Sim, within_ms: u64, what: &str, done: impl FnMut(&Sim) -> bool) {
    let deadline = sim.now + within_ms * MS;
    match sim.run_until_cond(deadline, done) {
        Ok(true) => {}
        Ok(false) => panic!("{what}: not within {within_ms} ms\n{}", sim.report(&sim::Violation { property: "scenario", detail: what.into() })),
        Err(v) => panic!("{}", sim.report(&v)),
    }
}

fn leader_among(sim: &Sim, group: &[NodeId]) -> Option<NodeId> {
    group.iter().copied().filter(|&id| sim.nodes[id as usize].is_leader()).max_by_key(|&id| sim.nodes[id as usize].term())
}

fn elect(sim: &mut Sim) -> NodeId {
    wait_for(sim, 3_000, "a leader all follow", |s| s.stable_leader().is_some());
    sim.stable_leader().unwrap()
}

fn commit_everywhere(sim: &mut Sim, within_ms: u64) -> u64 {
    let leader = sim.stable_leader().expect("a leader all follow");
    let (_, index, _) = sim.propose_to(leader).expect("the leader accepts");
    let n = sim.nodes.len() as NodeId;
    wait_for(sim, within_ms, "commit everywhere", move |s| (0..n).all(|id| s.applied_count(id) >= index));
    index
}

fn others(n: usize, except: &[NodeId]) -> Vec<NodeId> {
    (0..n as NodeId).filter(|id| !except.contains(id)).collect()
}

// ----- §5.2 Leader election ------------------------------------------------------

#[test]
fn section_5_2_a_leader_is_elected_in_3_5_and_7_server_clusters() {
    for (n, seed) in [(3, 1), (5, 2), (7, 3)] {
        let mut sim = quiet(n, seed);
        let leader = elect(&mut sim);
        run(&mut sim, 2_000);
        assert_eq!(sim.leader(), Some(leader), "leadership is stable without failures");
        let term = sim.nodes[leader as usize].term();
        assert!(sim.nodes.iter().all(|node| node.term() == term));
    }
}

#[test]
fn section_5_2_losing_the_leader_elects_another_in_a_higher_term() {
    let mut sim = quiet(5, 11);
    let old = elect(&mut sim);
    let old_term = sim.nodes[old as usize].term();
    sim.links.isolate(old);
    let rest = others(5, &[old]);
    wait_for(&mut sim, 3_000, "a new leader among the rest", |s| leader_among(s, &rest).is_some());
    let new = leader_among(&sim, &rest).unwrap();
    assert!(sim.nodes[new as usize].term() > old_term);
    assert!(sim.nodes[old as usize].is_leader(), "a cut-off leader keeps believing it leads");
    sim.links.rejoin(old);
    wait_for(&mut sim, 1_000, "the old leader steps down", |s| s.nodes[old as usize].role() == Role::Follower);
}

#[test]
fn section_5_2_no_leader_without_a_majority() {
    let mut sim = quiet(5, 12);
    let leader = elect(&mut sim);
    for k in 0..3 {
        sim.links.isolate((leader + k) % 5);
    }
    let rest = others(5, &[leader, (leader + 1) % 5, (leader + 2) % 5]);
    run(&mut sim, 3_000);
    assert_eq!(leader_among(&sim, &rest), None);
}

// ----- §5.3 Log replication --------------------------------------------------------

#[test]
fn section_5_3_entries_commit_and_apply_everywhere_in_order() {
    let mut sim = quiet(5, 21);
    let leader = elect(&mut sim);
    let mut last = 0;
    for _ in 0..20 {
        last = sim.propose_to(leader).unwrap().1;
    }
    wait_for(&mut sim, 1_000, "20 entries applied everywhere", |s| (0..5).all(|id| s.applied_count(id) >= last));
}

#[test]
fn section_5_3_conflicting_entries_are_overwritten_and_repair_is_quick() {
    // The lab's test 8: a leader cut off with a minority keeps appending 50
    // entries; the majority moves on with 50 others; on rejoin the minority's
    // wrong entries are replaced, in a few round trips per follower.
    let mut sim = quiet(5, 22);
    let old = elect(&mut sim);
    commit_everywhere(&mut sim, 1_000);
    let minority = [old, (old + 1) % 5];
    let majority = others(5, &minority);
    sim.links.split(&minority);
    for _ in 0..50 {
        sim.propose_to(old).unwrap();
    }
    run(&mut sim, 100);
    wait_for(&mut sim, 3_000, "a majority leader", |s| leader_among(s, &majority).is_some());
    let new = leader_among(&sim, &majority).unwrap();
    let mut last = 0;
    for _ in 0..50 {
        last = sim.propose_to(new).unwrap().1;
    }
    wait_for(&mut sim, 2_000, "the majority commits", |s| majority.iter().all(|&id| s.applied_count(id) >= last));
    let rejected_before = sim.rejected_appends;
    sim.links.heal();
    wait_for(&mut sim, 2_000, "the minority is repaired", |s| (0..5).all(|id| s.applied_count(id) >= last));
    for id in minority {
        assert_eq!(sim.nodes[id as usize].log().entries(), sim.nodes[new as usize].log().entries());
    }
    // Backing up over 50 wrong entries takes a round trip per conflicting
    // term, not per entry (the old leader's own stale requests to the
    // majority are refused too).
    let rejections = sim.rejected_appends - rejected_before;
    assert!(rejections <= 10, "{rejections} rejected AppendEntries while repairing 2 followers");
}

// ----- §5.4 Safety ------------------------------------------------------------------------

#[test]
fn section_5_4_1_a_server_missing_committed_entries_cannot_win() {
    let mut sim = quiet(5, 31);
    let leader = elect(&mut sim);
    let lagging = (leader + 1) % 5;
    sim.links.isolate(lagging);
    let mut last = 0;
    for _ in 0..3 {
        last = sim.propose_to(leader).unwrap().1;
    }
    let up_to_date = others(5, &[lagging]);
    wait_for(&mut sim, 1_000, "commit without the lagging server", |s| up_to_date.iter().all(|&id| s.applied_count(id) >= last));
    // Now only the lagging server and one up-to-date voter can talk.
    let voter = (leader + 2) % 5;
    for id in 0..5 {
        sim.links.isolate(id);
    }
    sim.links.rejoin(lagging);
    for id in others(5, &[lagging, voter]) {
        sim.links.isolate(id);
    }
    run(&mut sim, 3_000);
    assert!(!sim.nodes[lagging as usize].is_leader() || sim.nodes[lagging as usize].term() <= sim.nodes[leader as usize].term());
    assert_eq!(sim.nodes[voter as usize].voted_for().filter(|&v| v == lagging), None, "the up-to-date voter refuses");
}

#[test]
fn section_5_4_2_figure_8_an_old_term_entry_is_not_committed_by_counting() {
    // The lab's test 11 in virtual time.
    let mut sim = quiet(5, 41);
    let l1 = elect(&mut sim);
    commit_everywhere(&mut sim, 1_000);
    for k in 1..=3 {
        sim.links.isolate((l1 + k) % 5);
    }
    let (c1, i1, t1) = sim.propose_to(l1).unwrap();
    run(&mut sim, 500);
    assert!((0..5).all(|id| sim.applied_count(id) < i1), "no majority: not committed");
    // L1 and L1+4 leave; L1+1..L1+3 elect L2.
    for id in 0..5 {
        sim.links.rejoin(id);
    }
    sim.links.split(&[(l1 + 1) % 5, (l1 + 2) % 5, (l1 + 3) % 5]);
    sim.links.isolate(l1);
    sim.links.isolate((l1 + 4) % 5);
    let group: Vec<NodeId> = (1..=3).map(|k| (l1 + k) % 5).collect();
    wait_for(&mut sim, 3_000, "L2", |s| leader_among(s, &group).is_some());
    let l2 = leader_among(&sim, &group).unwrap();
    // L2 alone takes an entry at i1 in a higher term.
    for id in 0..5 {
        if id != l2 {
            sim.links.isolate(id);
        }
    }
    let (_, i2, t2) = sim.propose_to(l2).unwrap();
    assert_eq!(i2, i1);
    assert!(t2 > t1);
    run(&mut sim, 300);
    // L1, L1+4 and one more come back; the third lacks C1.
    sim.links.heal();
    sim.links.isolate(l2);
    let third = if l2 == (l1 + 1) % 5 { (l1 + 2) % 5 } else { (l1 + 1) % 5 };
    for id in others(5, &[l1, (l1 + 4) % 5, third]) {
        sim.links.isolate(id);
    }
    let group = [l1, (l1 + 4) % 5, third];
    wait_for(&mut sim, 5_000, "L3", |s| leader_among(s, &group).is_some_and(|l| s.nodes[l as usize].term() > t2));
    let l3 = leader_among(&sim, &group).unwrap();
    assert!(l3 == l1 || l3 == (l1 + 4) % 5, "the election restriction keeps {third} out");
    run(&mut sim, 500);
    assert!((0..5).all(|id| sim.applied_count(id) < i1), "C1 is replicated on 3 but from an old term: not committed");
    let (_, later, _) = sim.propose_to(l3).unwrap();
    wait_for(&mut sim, 1_000, "the new entry commits, and C1 with it", |s| group.iter().all(|&id| s.applied_count(id) >= later));
    assert_eq!(sim.nodes[l3 as usize].log().entry(i1).unwrap().command, c1);
}

// ----- The lab's situations ---------------------------------------------------------------

#[test]
fn lab_rejoin_of_a_disconnected_leader() {
    // Test 6: a cut-off leader accepts entries nobody will commit; on rejoin
    // it steps down and its entries are replaced.
    let mut sim = quiet(5, 51);
    let l1 = elect(&mut sim);
    commit_everywhere(&mut sim, 1_000);
    sim.links.isolate(l1);
    for _ in 0..3 {
        sim.propose_to(l1).expect("it still thinks it leads");
    }
    let rest = others(5, &[l1]);
    wait_for(&mut sim, 3_000, "L2", |s| leader_among(s, &rest).is_some());
    let l2 = leader_among(&sim, &rest).unwrap();
    let (_, index, _) = sim.propose_to(l2).unwrap();
    wait_for(&mut sim, 1_000, "commit among four", |s| rest.iter().all(|&id| s.applied_count(id) >= index));
    sim.links.rejoin(l1);
    wait_for(&mut sim, 2_000, "the old leader catches up", move |s| s.applied_count(l1) >= index);
    assert!(!sim.nodes[l1 as usize].is_leader());
}

#[test]
fn lab_no_agreement_without_a_majority() {
    // Test 5: three of five followers gone; the leader's entry must not commit.
    let mut sim = quiet(5, 52);
    let leader = elect(&mut sim);
    for k in 1..=3 {
        sim.links.isolate((leader + k) % 5);
    }
    let (_, index, _) = sim.propose_to(leader).unwrap();
    run(&mut sim, 2_000);
    assert!((0..5).all(|id| sim.applied_count(id) < index));
    // Back together, the cluster agrees again (the uncommitted entry may be
    // overwritten: three servers without it can elect one of themselves).
    sim.links.heal();
    wait_for(&mut sim, 3_000, "a leader all follow after healing", |s| s.stable_leader().is_some());
    let later = commit_everywhere(&mut sim, 3_000);
    assert!(later >= index);
}

#[test]
fn lab_idle_leader_sends_only_heartbeats() {
    // Test 9's idle second: with nothing to replicate, a leader sends one
    // heartbeat per follower per heartbeat interval (50 ms here).
    let mut sim = quiet(5, 53);
    elect(&mut sim);
    commit_everywhere(&mut sim, 1_000);
    run(&mut sim, 500);
    let before = sim.rpc_count;
    run(&mut sim, 1_000);
    let idle = sim.rpc_count - before;
    assert!(idle <= 4 * 21, "{idle} RPCs in one idle second");
    assert!(idle >= 4 * 15, "{idle} RPCs: followers must still hear heartbeats");
}

#[test]
fn lab_agreement_costs_one_rpc_per_entry_and_follower_plus_one_commit_notice() {
    // Test 9: 11 entries started back to back reach 4 followers with 44
    // AppendEntries; the last commit needs one more each.
    let mut sim = quiet(5, 54);
    let leader = elect(&mut sim);
    commit_everywhere(&mut sim, 1_000);
    run(&mut sim, 20);
    let before = sim.rpc_count;
    let mut last = 0;
    for _ in 0..11 {
        last = sim.propose_to(leader).unwrap().1;
    }
    wait_for(&mut sim, 1_000, "11 entries everywhere", |s| (0..5).all(|id| s.applied_count(id) >= last));
    let used = sim.rpc_count - before;
    assert!(used <= 11 * 4 + 4 + 4, "{used} RPCs for 11 entries (at most one heartbeat round on top)");
}

#[test]
fn section_5_3_a_success_reply_from_an_old_term_does_not_count() {
    // A leads term T1 and streams a tail to F, whose replies are held back.
    // B's majority moves on in T2 and truncates A and F. A wins T3 and
    // appends entries that only A and C get. Then F's old-term successes
    // arrive: counted, they would make A commit entries only two of five
    // servers hold, which B could then lose as leader of T4.
    let mut sim = quiet(5, 61);
    // Requests stay outstanding until answered, as over a slow network.
    sim.rpc_timeout = 10_000 * MS;
    let a = elect(&mut sim);
    commit_everywhere(&mut sim, 1_000);
    let (f, b, c, d) = ((a + 1) % 5, (a + 2) % 5, (a + 3) % 5, (a + 4) % 5);
    sim.hold(f, a);
    sim.links.split(&[a, f]);
    for _ in 0..5 {
        sim.propose_to(a).unwrap();
    }
    run(&mut sim, 200);
    // With its replies held, F gets one window (4 entries) of the tail.
    assert!(sim.nodes[f as usize].last_index() >= 5, "F holds A's tail");
    wait_for(&mut sim, 3_000, "a leader of the majority", |s| leader_among(s, &[b, c, d]).is_some());
    let new = leader_among(&sim, &[b, c, d]).unwrap();
    let (_, index, _) = sim.propose_to(new).unwrap();
    wait_for(&mut sim, 1_000, "the majority commits", |s| [b, c, d].iter().all(|&id| s.applied_count(id) >= index));
    sim.links.heal();
    wait_for(&mut sim, 2_000, "A and F are truncated", |s| {
        [a, f].iter().all(|&id| s.nodes[id as usize].log().entries() == s.nodes[new as usize].log().entries())
    });
    // A leads T3 with C's and D's votes, and only C hears its new entries.
    sim.links.isolate(b);
    sim.links.cut(a, f);
    sim.campaign(a);
    wait_for(&mut sim, 1_000, "A leads again", |s| s.nodes[a as usize].is_leader());
    sim.links.isolate(d);
    for _ in 0..3 {
        sim.propose_to(a).unwrap();
    }
    run(&mut sim, 100);
    sim.release(f, a);
    run(&mut sim, 100);
    if std::env::var("SCENARIO_TRACE").is_ok() {
        eprintln!("{}", sim.report(&sim::Violation { property: "trace", detail: String::new() }));
    }
    assert!(sim.nodes[a as usize].commit_index() <= index, "entries on 2 of 5 servers must not commit");
    // B, D and F elect B again; every property is still checked.
    sim.links.heal();
    sim.links.isolate(a);
    sim.links.isolate(c);
    sim.campaign(b);
    run(&mut sim, 1_000);
}

// ----- Stalls: a frozen process is not a failed one ------------------------------------

/// Every node's term and role, to compare before and after a stall.
fn terms_and_roles(sim: &Sim) -> Vec<(u64, Role)> {
    sim.nodes.iter().map(|n| (n.term(), n.role())).collect()
}

#[test]
fn a_stall_of_every_server_with_a_healthy_leader_causes_no_election() {
    for (seed, freeze_ms) in [(41, 300), (42, 2_500), (43, 6_000)] {
        let mut sim = quiet(5, seed);
        let leader = elect(&mut sim);
        commit_everywhere(&mut sim, 1_000);
        let before = terms_and_roles(&sim);
        for id in 0..5 {
            sim.freeze(id, freeze_ms * MS);
        }
        run(&mut sim, freeze_ms + 2_000);
        assert_eq!(terms_and_roles(&sim), before, "seed {seed}: a {freeze_ms} ms stall changed terms or roles");
        assert_eq!(sim.stable_leader(), Some(leader));
        commit_everywhere(&mut sim, 1_000);
    }
}

#[test]
fn a_stalled_follower_does_not_depose_a_healthy_leader() {
    let mut sim = quiet(5, 44);
    let leader = elect(&mut sim);
    let follower = (leader + 1) % 5;
    let before = terms_and_roles(&sim);
    sim.freeze(follower, 6_000 * MS);
    run(&mut sim, 8_000);
    assert_eq!(terms_and_roles(&sim), before, "the follower campaigned after its stall");
    commit_everywhere(&mut sim, 1_000);
}

#[test]
fn a_stalled_leader_is_replaced_and_steps_down_when_it_resumes() {
    // To the others a frozen leader is a failed one: they elect another.
    let mut sim = quiet(5, 45);
    let leader = elect(&mut sim);
    let old_term = sim.nodes[leader as usize].term();
    sim.freeze(leader, 3_000 * MS);
    wait_for(&mut sim, 2_000, "a new leader among the others", |s| {
        leader_among(s, &others(5, &[leader])).is_some()
    });
    run(&mut sim, 3_000);
    let new_leader = elect(&mut sim);
    assert_ne!(new_leader, leader);
    assert!(sim.nodes[new_leader as usize].term() > old_term);
    commit_everywhere(&mut sim, 1_000);
}
