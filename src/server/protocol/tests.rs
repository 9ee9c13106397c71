//! One test per Figure 2 rule (and the paper sections behind them), driving
//! the pure core directly with a virtual clock.

use super::*;

const MS: Micros = 1_000;

fn config(id: NodeId, n: u16) -> CoreConfig {
    CoreConfig {
        id,
        members: (0..n).collect(),
        election_timeout: Interval::new(150 * MS, 300 * MS),
        heartbeat_interval: Interval::new(40 * MS, 50 * MS),
        unreachable_backoff: Interval::new(14 * MS, 20 * MS),
        max_in_flight: 4,
        // Ticks in these tests jump freely; stalls have tests of their own.
        stall_threshold: Micros::MAX / 4,
        election_rank: ElectionRank::NONE,
        seed: 7 + id as u64,
    }
}

fn follower(id: NodeId, n: u16) -> RaftCore<u32> {
    RaftCore::new(config(id, n), 0)
}

/// A leader of `term` in a cluster of `n`, elected with everyone's vote.
fn leader_of(id: NodeId, n: u16, term: Term) -> RaftCore<u32> {
    let mut core = follower(id, n);
    core.current_term = term - 1;
    let request = core.campaign(0);
    assert_eq!(request.term, term);
    for peer in 0..n {
        if peer != id {
            core.handle_vote_response(0, peer, VoteResponse { term, vote_granted: true });
        }
    }
    assert!(core.is_leader());
    core
}

fn append(term: Term, prev: (Index, Term), entry: Option<(Term, u32)>, commit: Index) -> AppendRequest<u32> {
    AppendRequest {
        term,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entry: entry.map(|(term, command)| Entry { term, command }),
        leader_commit: commit,
    }
}

/// A follower whose log has entries with the given terms, in `term`.
fn follower_with_log(terms: &[Term], term: Term) -> RaftCore<u32> {
    let mut core = follower(1, 5);
    for (i, &t) in terms.iter().enumerate() {
        let prev = core.log.last_term();
        let reply = core.handle_append_entries(0, append(t, (i as Index, prev), Some((t, i as u32)), 0));
        assert!(reply.success);
    }
    core.current_term = term;
    core.leader_heard_at = None; // the log's leaders are long gone
    core
}

/// Server 0, elected leader of `term` by 2 and 3 over a log with the given
/// entry terms (a five-server cluster).
fn leader_over_log(terms: &[Term], term: Term) -> RaftCore<u32> {
    let mut leader = follower_with_log(terms, term - 1);
    leader.config.id = 0;
    leader.campaign(0);
    for peer in [2, 3] {
        leader.handle_vote_response(0, peer, VoteResponse { term, vote_granted: true });
    }
    assert!(leader.is_leader());
    leader
}

/// A new leader's first request to `peer` (an empty one) and its success.
fn answered_first_heartbeat(leader: &mut RaftCore<u32>, peer: NodeId) {
    let hb = leader.next_append(0, peer).expect("a new leader contacts every follower at once");
    assert!(hb.request.entry.is_none());
    leader.handle_append_response(0, peer, hb.sent, ok_reply(leader.term()));
}

/// Steps down and wins the election of the next term (with every vote).
fn re_elected(core: &mut RaftCore<u32>, now: Micros) {
    core.step_down(now);
    let request = core.campaign(now);
    core.handle_election_outcome(now, ElectionOutcome { election_term: request.term, won: true, highest_rejecting_term: 0 });
    assert!(core.is_leader());
}

fn ok_reply(term: Term) -> AppendOutcome {
    AppendOutcome::Replied(AppendResponse { term, success: true, last_log_index: 0 })
}

// ----- All servers -----------------------------------------------------------

#[test]
fn all_servers_higher_term_in_request_converts_to_follower() {
    let mut leader = leader_of(0, 3, 2);
    let reply = leader.handle_request_vote(0, &VoteRequest { term: 5, candidate_id: 1, last_log_index: 0, last_log_term: 0 });
    assert_eq!(leader.role(), Role::Follower);
    assert_eq!(leader.term(), 5);
    assert_eq!(reply.term, 5);
}

#[test]
fn all_servers_higher_term_in_reply_converts_to_follower() {
    let mut leader = leader_of(0, 3, 2);
    let out = leader.next_append(0, 1).expect("initial heartbeat");
    let higher = AppendOutcome::Replied(AppendResponse { term: 9, success: false, last_log_index: 0 });
    leader.handle_append_response(1, 1, out.sent, higher);
    assert_eq!(leader.role(), Role::Follower);
    assert_eq!(leader.term(), 9);
    assert_eq!(leader.voted_for(), None, "a new term starts without a vote");
}

#[test]
fn all_servers_apply_committed_entries_in_order_once() {
    let mut core = follower_with_log(&[1, 1, 1], 1);
    let reply = core.handle_append_entries(0, append(1, (3, 1), None, 2));
    assert!(reply.success);
    assert_eq!(core.take_committed(), vec![(1, 0), (2, 1)]);
    assert_eq!(core.take_committed(), vec![]);
}

// ----- Followers and candidates: elections (§5.2) ----------------------------------------

#[test]
fn section_5_2_follower_times_out_and_becomes_candidate() {
    let mut core = follower(0, 3);
    assert!(core.tick(100 * MS).is_none(), "no election before the minimum timeout");
    let request = core.tick(301 * MS).expect("election after the maximum timeout");
    assert_eq!(core.role(), Role::Candidate);
    assert_eq!(request.term, 1);
    assert_eq!(core.voted_for(), Some(0), "a candidate votes for itself");
}

#[test]
fn section_5_2_election_timeouts_are_randomized() {
    let deadlines: BTreeSet<Micros> = (0..5).map(|id| follower(id, 5).election_deadline()).collect();
    assert!(deadlines.len() > 1, "different seeds should give different timeouts");
    for d in deadlines {
        assert!((150 * MS..300 * MS).contains(&d));
    }
}

#[test]
fn section_5_2_candidate_with_majority_becomes_leader() {
    let mut core = follower(0, 5);
    let request = core.campaign(0);
    core.handle_vote_response(0, 1, VoteResponse { term: request.term, vote_granted: true });
    assert_eq!(core.role(), Role::Candidate, "two of five is not a majority");
    core.handle_vote_response(0, 2, VoteResponse { term: request.term, vote_granted: false });
    core.handle_vote_response(0, 3, VoteResponse { term: request.term, vote_granted: true });
    assert!(core.is_leader());
}

#[test]
fn section_5_2_vote_replies_from_an_old_election_are_ignored() {
    let mut core = follower(0, 3);
    let first = core.campaign(0);
    let _second = core.campaign(400 * MS);
    core.handle_vote_response(400 * MS, 1, VoteResponse { term: first.term, vote_granted: true });
    assert_eq!(core.role(), Role::Candidate);
}

#[test]
fn section_5_2_candidate_steps_down_on_append_from_current_leader() {
    let mut core = follower(0, 3);
    let request = core.campaign(0);
    let reply = core.handle_append_entries(MS, append(request.term, (0, 0), None, 0));
    assert!(reply.success);
    assert_eq!(core.role(), Role::Follower);
    assert_eq!(core.term(), request.term);
}

#[test]
fn section_5_2_election_outcome_from_quorum_event() {
    let mut core = follower(0, 5);
    let request = core.campaign(0);
    core.handle_election_outcome(0, ElectionOutcome { election_term: request.term - 1, won: true, highest_rejecting_term: 0 });
    assert_eq!(core.role(), Role::Candidate, "an outcome for an older election is ignored");
    core.handle_election_outcome(0, ElectionOutcome { election_term: request.term, won: true, highest_rejecting_term: 0 });
    assert!(core.is_leader());
}

#[test]
fn section_5_2_leader_does_not_time_out() {
    let mut leader = leader_of(0, 3, 1);
    assert!(leader.tick(10_000 * MS).is_none());
    assert!(leader.is_leader());
}

// ----- RequestVote receiver ------------------------------------------------------------

#[test]
fn request_vote_rule_1_reject_stale_term() {
    let mut core = follower(1, 3);
    core.current_term = 4;
    let reply = core.handle_request_vote(0, &VoteRequest { term: 3, candidate_id: 0, last_log_index: 9, last_log_term: 3 });
    assert!(!reply.vote_granted);
    assert_eq!(reply.term, 4);
}

#[test]
fn request_vote_rule_2_one_vote_per_term() {
    let mut core = follower(2, 3);
    let a = VoteRequest { term: 1, candidate_id: 0, last_log_index: 0, last_log_term: 0 };
    let b = VoteRequest { term: 1, candidate_id: 1, last_log_index: 0, last_log_term: 0 };
    assert!(core.handle_request_vote(0, &a).vote_granted);
    assert!(!core.handle_request_vote(0, &b).vote_granted, "already voted for 0 in term 1");
    assert!(core.handle_request_vote(0, &a).vote_granted, "a repeated request from the same candidate");
}

#[test]
fn request_vote_new_term_clears_the_old_vote() {
    let mut core = follower(2, 3);
    core.handle_request_vote(0, &VoteRequest { term: 1, candidate_id: 0, last_log_index: 0, last_log_term: 0 });
    let reply = core.handle_request_vote(0, &VoteRequest { term: 2, candidate_id: 1, last_log_index: 0, last_log_term: 0 });
    assert!(reply.vote_granted);
    assert_eq!(core.voted_for(), Some(1));
}

#[test]
fn section_5_4_1_election_restriction_rejects_stale_logs() {
    let mut core = follower_with_log(&[1, 2], 2);
    // Lower last term loses even with a longer log.
    let reply = core.handle_request_vote(0, &VoteRequest { term: 3, candidate_id: 0, last_log_index: 5, last_log_term: 1 });
    assert!(!reply.vote_granted);
    // Same last term, shorter log loses.
    let reply = core.handle_request_vote(0, &VoteRequest { term: 3, candidate_id: 2, last_log_index: 1, last_log_term: 2 });
    assert!(!reply.vote_granted);
    // Same last term, same length wins.
    let reply = core.handle_request_vote(0, &VoteRequest { term: 3, candidate_id: 3, last_log_index: 2, last_log_term: 2 });
    assert!(reply.vote_granted);
}

#[test]
fn granting_a_vote_restarts_the_election_timer() {
    let mut core = follower(1, 3);
    let before = core.election_deadline();
    core.handle_request_vote(200 * MS, &VoteRequest { term: 1, candidate_id: 0, last_log_index: 0, last_log_term: 0 });
    assert!(core.election_deadline() >= 200 * MS + 150 * MS);
    assert!(core.election_deadline() > before);
}

// ----- AppendEntries receiver -------------------------------------------------------------

#[test]
fn append_entries_rule_1_reject_stale_term() {
    let mut core = follower_with_log(&[1], 3);
    let reply = core.handle_append_entries(0, append(2, (1, 1), Some((2, 9)), 1));
    assert!(!reply.success);
    assert_eq!(reply.term, 3);
    assert_eq!(core.log().last_index(), 1);
    assert_eq!(core.commit_index(), 0);
}

#[test]
fn append_entries_rule_2_reject_missing_prev_entry_with_last_index_hint() {
    let mut core = follower_with_log(&[1, 1], 1);
    let reply = core.handle_append_entries(0, append(1, (5, 1), Some((1, 9)), 0));
    assert!(!reply.success);
    assert_eq!(reply.last_log_index, 2, "the follower's log ends at 2");
}

#[test]
fn append_entries_rule_2_conflicting_term_hint_skips_the_whole_term() {
    // Entries 2..=6 come from a deposed leader of term 2.
    let mut core = follower_with_log(&[1, 2, 2, 2, 2, 2], 3);
    let reply = core.handle_append_entries(0, append(3, (6, 3), None, 0));
    assert!(!reply.success);
    assert_eq!(reply.last_log_index, 1, "all of term 2 is skipped in one round trip");
}

#[test]
fn append_entries_rule_3_conflict_deletes_entry_and_all_that_follow() {
    let mut core = follower_with_log(&[1, 2, 2], 3);
    let reply = core.handle_append_entries(0, append(3, (1, 1), Some((3, 7)), 0));
    assert!(reply.success);
    assert_eq!(core.log().last_index(), 2);
    assert_eq!(core.log().term_at(2), Some(3));
}

#[test]
fn append_entries_rule_3_stale_request_does_not_truncate_matching_entries() {
    let mut core = follower_with_log(&[1, 1, 1], 1);
    // A delayed duplicate of the request that carried entry 2.
    let reply = core.handle_append_entries(0, append(1, (1, 1), Some((1, 1)), 0));
    assert!(reply.success);
    assert_eq!(core.log().last_index(), 3, "entry 3 survives");
}

#[test]
fn append_entries_rule_4_appends_new_entry() {
    let mut core = follower_with_log(&[1], 1);
    let reply = core.handle_append_entries(0, append(1, (1, 1), Some((1, 42)), 0));
    assert!(reply.success);
    assert_eq!(reply.last_log_index, 2);
    assert_eq!(core.log().entry(2).map(|e| e.command), Some(42));
}

#[test]
fn append_entries_rule_5_commit_is_min_of_leader_commit_and_last_new_entry() {
    // The follower has a stale extra entry 3 beyond what this request proves.
    let mut core = follower_with_log(&[1, 1, 1], 1);
    let reply = core.handle_append_entries(0, append(1, (1, 1), None, 3));
    assert!(reply.success);
    assert_eq!(core.commit_index(), 1, "only entries proven by this request may commit");
    core.handle_append_entries(0, append(1, (3, 1), None, 3));
    assert_eq!(core.commit_index(), 3);
}

#[test]
fn append_entries_restarts_the_election_timer() {
    let mut core = follower(1, 3);
    core.handle_append_entries(1_000 * MS, append(1, (0, 0), None, 0));
    assert!(core.election_deadline() >= 1_150 * MS);
}

// ----- Leaders (§5.3) ------------------------------------------------------------------------

#[test]
fn leader_sends_initial_heartbeat_upon_election() {
    let mut leader = leader_of(0, 3, 1);
    for peer in [1, 2] {
        let out = leader.next_append(0, peer).expect("a heartbeat right after the election");
        assert!(out.request.entry.is_none());
        assert_eq!(out.request.term, 1);
    }
}

#[test]
fn leader_heartbeats_only_after_an_idle_interval() {
    let mut leader = leader_of(0, 3, 1);
    let out = leader.next_append(0, 1).unwrap();
    leader.handle_append_response(MS, 1, out.sent, ok_reply(1));
    assert!(leader.next_append(10 * MS, 1).is_none(), "the follower heard from us 10 ms ago");
    assert!(leader.next_append(50 * MS, 1).is_some(), "one heartbeat interval later");
}

#[test]
fn leader_appends_client_command_and_streams_it() {
    let mut leader = leader_of(0, 3, 1);
    let hb = leader.next_append(0, 1).unwrap();
    leader.handle_append_response(MS, 1, hb.sent, ok_reply(1));
    assert_eq!(leader.propose(10), Some((1, 1)));
    assert_eq!(leader.propose(11), Some((2, 1)));
    let first = leader.next_append(2 * MS, 1).expect("entry 1");
    let second = leader.next_append(2 * MS, 1).expect("entry 2 without waiting (pipelined)");
    assert_eq!(first.request.entry.as_ref().map(|e| e.command), Some(10));
    assert_eq!(second.request.prev_log_index, 1);
    assert_eq!(second.request.entry.as_ref().map(|e| e.command), Some(11));
}

#[test]
fn follower_rejects_proposals() {
    let mut core = follower(0, 3);
    assert_eq!(core.propose(1), None);
}

#[test]
fn leader_success_updates_next_and_match_index() {
    let mut leader = leader_of(0, 3, 1);
    answered_first_heartbeat(&mut leader, 1);
    leader.propose(10);
    let out = leader.next_append(0, 1).unwrap();
    leader.handle_append_response(MS, 1, out.sent, ok_reply(1));
    let pr = leader.progress(1).unwrap();
    assert_eq!(pr.match_index, 1);
    assert_eq!(pr.next_index, 2);
}

#[test]
fn leader_failure_moves_next_index_back_by_the_hint() {
    // A leader elected with ten entries probes at its last index first.
    let mut leader = leader_over_log(&[1; 10], 3);
    let out = leader.next_append(0, 2).unwrap();
    assert_eq!(out.request.prev_log_index, 10);
    let reject = AppendOutcome::Replied(AppendResponse { term: 3, success: false, last_log_index: 4 });
    leader.handle_append_response(MS, 2, out.sent, reject);
    assert_eq!(leader.progress(2).unwrap().next_index, 5, "jump to the follower's hint, not 10");
}

#[test]
fn leader_ignores_replies_from_an_older_term() {
    let mut leader = leader_of(0, 3, 1);
    leader.propose(1);
    let out = leader.next_append(0, 1).unwrap();
    re_elected(&mut leader, 0); // now leader of term 2
    leader.handle_append_response(MS, 1, out.sent, ok_reply(2));
    assert_eq!(leader.progress(1).unwrap().match_index, 0);
}

#[test]
fn leader_stale_rejection_from_an_old_epoch_is_ignored() {
    let mut leader = leader_of(0, 3, 1);
    for c in 0..4 {
        leader.propose(c);
    }
    let hb = leader.next_append(0, 1).unwrap();
    leader.handle_append_response(MS, 1, hb.sent, ok_reply(1)); // now streaming
    let a = leader.next_append(MS, 1).unwrap();
    let b = leader.next_append(MS, 1).unwrap();
    let reject = AppendOutcome::Replied(AppendResponse { term: 1, success: false, last_log_index: 0 });
    leader.handle_append_response(2 * MS, 1, a.sent, reject);
    let next_after_first = leader.progress(1).unwrap().next_index;
    leader.handle_append_response(2 * MS, 1, b.sent, reject);
    assert_eq!(leader.progress(1).unwrap().next_index, next_after_first);
}

#[test]
fn leader_lost_request_pauses_then_probes_from_the_lost_request() {
    let mut leader = leader_of(0, 3, 1);
    leader.propose(1);
    let out = leader.next_append(0, 1).unwrap();
    leader.handle_append_response(MS, 1, out.sent, AppendOutcome::Lost);
    assert!(leader.next_append(2 * MS, 1).is_none(), "paused after a loss");
    let retry = leader.next_append(25 * MS, 1).expect("retried after the backoff");
    assert_eq!(retry.request.prev_log_index, 0);
}

#[test]
fn leader_lost_probe_of_a_new_term_does_not_rewind_to_the_start() {
    // A leader elected over ten entries loses its first heartbeat to a
    // follower that is off the network: the retry probes at the end of the
    // log again, not from index 1.
    let mut leader = leader_over_log(&[1; 10], 3);
    let hb = leader.next_append(0, 4).unwrap();
    leader.handle_append_response(MS, 4, hb.sent, AppendOutcome::Lost);
    let retry = leader.next_append(100 * MS, 4).expect("retried after the backoff");
    assert_eq!(retry.request.prev_log_index, 10);
    assert!(retry.request.entry.is_none());
}

#[test]
fn section_5_3_leader_commits_entry_on_a_majority() {
    let mut leader = leader_of(0, 5, 1);
    for peer in [1, 2] {
        answered_first_heartbeat(&mut leader, peer);
    }
    leader.propose(1);
    for peer in [1, 2] {
        let out = leader.next_append(0, peer).unwrap();
        leader.handle_append_response(MS, peer, out.sent, ok_reply(1));
        if peer == 1 {
            assert_eq!(leader.commit_index(), 0, "two of five is not a majority");
        }
    }
    assert_eq!(leader.commit_index(), 1);
}

#[test]
fn section_5_3_followers_learn_commit_without_an_extra_rpc_per_entry() {
    let mut leader = leader_of(0, 3, 1);
    let hb = leader.next_append(0, 1).unwrap();
    leader.handle_append_response(0, 1, hb.sent, ok_reply(1));
    leader.propose(1);
    leader.propose(2);
    let e1 = leader.next_append(MS, 1).unwrap();
    leader.handle_append_response(2 * MS, 1, e1.sent, ok_reply(1));
    assert_eq!(leader.commit_index(), 1);
    let e2 = leader.next_append(2 * MS, 1).unwrap();
    assert_eq!(e2.request.leader_commit, 1, "entry 2 carries the news that 1 committed");
    leader.handle_append_response(3 * MS, 1, e2.sent, ok_reply(1));
    let notice = leader.next_append(3 * MS, 1).expect("one commit notice for the last entry");
    assert!(notice.request.entry.is_none());
    assert_eq!(notice.request.leader_commit, 2);
    leader.handle_append_response(4 * MS, 1, notice.sent, ok_reply(1));
    assert!(leader.next_append(5 * MS, 1).is_none(), "nothing more until the heartbeat interval");
}

#[test]
fn section_5_4_2_leader_never_commits_previous_term_entries_by_counting() {
    // Figure 8: an entry of term 2 on a majority must not commit while the
    // leader of term 4 has no entry of its own term there.
    let mut leader = leader_of(0, 5, 2);
    leader.propose(2);
    leader.current_term = 3;
    re_elected(&mut leader, 0);
    assert_eq!(leader.term(), 4);
    for peer in [1, 2] {
        let out = leader.next_append(0, peer).unwrap();
        assert_eq!(out.request.prev_log_index, 1);
        leader.handle_append_response(MS, peer, out.sent, ok_reply(4));
    }
    assert_eq!(leader.progress(1).unwrap().match_index, 1);
    assert_eq!(leader.commit_index(), 0, "replicated on 3 of 5, but from term 2");
    leader.propose(4);
    for peer in [1, 2] {
        let out = leader.next_append(2 * MS, peer).unwrap();
        leader.handle_append_response(3 * MS, peer, out.sent, ok_reply(4));
    }
    assert_eq!(leader.commit_index(), 2, "committing a term-4 entry commits the term-2 one too");
}

#[test]
fn single_server_cluster_commits_alone() {
    let mut core = follower(0, 1);
    core.campaign(0);
    assert!(core.is_leader());
    assert_eq!(core.propose(5), Some((1, 1)));
    assert_eq!(core.commit_index(), 1);
}

#[test]
fn section_5_2_heartbeat_goes_out_even_with_the_window_full() {
    let mut leader = leader_of(0, 3, 1);
    let hb = leader.next_append(0, 1).unwrap();
    leader.handle_append_response(MS, 1, hb.sent, ok_reply(1));
    for c in 0..10 {
        leader.propose(c);
    }
    let mut sent = 0;
    while leader.next_append(2 * MS, 1).is_some() {
        sent += 1;
    }
    assert_eq!(sent, 4, "the window holds four requests");
    assert!(leader.next_append(30 * MS, 1).is_none(), "nothing due yet");
    let heartbeat = leader.next_append(60 * MS, 1).expect("a heartbeat once the interval passed");
    assert!(heartbeat.request.entry.is_none());
}

// ----- Requests delivered late (labtest.md, test 11) -------------------------------

#[test]
fn a_new_leader_sends_no_entry_before_the_follower_answers() {
    let mut leader = leader_of(0, 3, 1);
    leader.propose(10);
    let first = leader.next_append(0, 1).expect("first contact");
    assert!(first.request.entry.is_none(), "no entry to a follower that has not answered in this term");
    assert!(leader.next_append(MS, 1).is_none(), "one probe at a time");
    leader.handle_append_response(2 * MS, 1, first.sent, ok_reply(1));
    let entry = leader.next_append(2 * MS, 1).expect("entries once it answered");
    assert_eq!(entry.request.entry.map(|e| e.command), Some(10));
}

#[test]
fn after_a_loss_only_empty_probes_go_out_until_the_follower_answers() {
    // A request retried into a partition change could be delivered after
    // the test reconnected its receiver; with no entry in it, it cannot put
    // an uncommitted entry into that log.
    let mut leader = leader_of(0, 3, 1);
    answered_first_heartbeat(&mut leader, 1);
    leader.propose(10);
    let entry = leader.next_append(MS, 1).expect("entry");
    assert!(entry.request.entry.is_some());
    leader.handle_append_response(2 * MS, 1, entry.sent, AppendOutcome::Lost);
    let mut now = 2 * MS;
    for _ in 0..5 {
        assert!(leader.next_append(now + MS / 2, 1).is_none(), "paced after a loss (the first pause is an eighth of 14-20 ms)");
        now += 60 * MS; // past any backoff (at most 20 ms) and heartbeat (at most 50 ms)
        let probe = leader.next_append(now, 1).expect("probe after the pause");
        assert!(probe.request.entry.is_none(), "no entry while the follower is silent");
        assert_eq!(probe.request.prev_log_index, 0, "probing from the lost request");
        leader.handle_append_response(now, 1, probe.sent, AppendOutcome::Lost);
    }
    now += 60 * MS;
    let probe = leader.next_append(now, 1).expect("probe");
    leader.handle_append_response(now + MS, 1, probe.sent, ok_reply(1));
    let resent = leader.next_append(now + MS, 1).expect("the entry again, once it answered");
    assert_eq!(resent.request.entry.map(|e| e.command), Some(10));
}

#[test]
fn heartbeat_and_backoff_intervals_are_drawn_not_fixed() {
    // Nothing periodic may stay in step with a harness that sleeps round
    // numbers: successive heartbeat gaps differ.
    let mut leader = leader_of(0, 3, 1);
    answered_first_heartbeat(&mut leader, 1);
    let mut now = 0;
    let mut sent_at = Vec::new();
    while sent_at.len() < 20 {
        now += MS;
        if let Some(out) = leader.next_append(now, 1) {
            sent_at.push(now);
            leader.handle_append_response(now, 1, out.sent, ok_reply(1));
        }
    }
    let gaps: std::collections::BTreeSet<Micros> = sent_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() > 3, "heartbeat gaps {gaps:?}");
    assert!(gaps.iter().all(|&g| (40 * MS..=51 * MS).contains(&g)), "heartbeat gaps {gaps:?}");
}

// ----- Stalls and disruptive servers -------------------------------------------------

fn stall_aware_follower() -> RaftCore<u32> {
    let mut config = config(1, 3);
    config.stall_threshold = 50 * MS;
    RaftCore::new(config, 0)
}

#[test]
fn section_6_a_follower_that_heard_a_leader_disregards_request_vote() {
    let mut core = follower(1, 3);
    let reply = core.handle_append_entries(100 * MS, append(2, (0, 0), None, 0));
    assert!(reply.success);
    // Within the minimum election timeout (150 ms) of hearing the leader:
    // neither the term nor the vote moves.
    let vote = core.handle_request_vote(200 * MS, &VoteRequest { term: 3, candidate_id: 2, last_log_index: 0, last_log_term: 0 });
    assert!(!vote.vote_granted);
    assert_eq!((vote.term, core.term(), core.voted_for()), (2, 2, None));
    // After it, the usual rules.
    let vote = core.handle_request_vote(251 * MS, &VoteRequest { term: 3, candidate_id: 2, last_log_index: 0, last_log_term: 0 });
    assert!(vote.vote_granted);
    assert_eq!(core.term(), 3);
}

#[test]
fn a_stalled_follower_does_not_campaign_on_resume() {
    let mut core = stall_aware_follower();
    let mut now = 0;
    while now < 100 * MS {
        assert!(core.tick(now).is_none());
        now += 10 * MS;
    }
    let deadline = core.election_deadline();
    // Frozen for 2 s: far past the deadline, but that time did not count.
    now += 2_000 * MS;
    assert!(core.tick(now).is_none(), "a stall is not a silent leader");
    assert!(core.election_deadline() >= deadline + 2_000 * MS);
    assert!(core.election_deadline() >= now + 75 * MS, "at least half the minimum timeout is left");
}

#[test]
fn a_running_follower_whose_leader_is_silent_still_campaigns() {
    let mut core = stall_aware_follower();
    let mut now = 0;
    let mut campaigned = false;
    while now < 400 * MS && !campaigned {
        campaigned = core.tick(now).is_some();
        now += 10 * MS;
    }
    assert!(campaigned, "ticks every 10 ms and no leader: an election within the maximum timeout");
}

#[test]
fn a_server_off_the_network_keeps_its_stall_clock_without_campaigning() {
    let mut core = stall_aware_follower();
    let mut now = 0;
    while now < 1_000 * MS {
        core.tick_without_campaign(now);
        now += 10 * MS;
    }
    assert_eq!(core.role(), Role::Follower);
    assert_eq!(core.term(), 0);
    // Back on the network: no stall was seen, so the timer runs out as usual.
    assert!(core.tick(now).is_some());
}

// ----- Review findings (each fails without its fix) ---------------------------------------

fn vote_request(term: Term, candidate_id: NodeId) -> VoteRequest {
    VoteRequest { term, candidate_id, last_log_index: 0, last_log_term: 0 }
}

#[test]
fn section_6_a_leader_with_a_recent_quorum_disregards_request_vote() {
    let mut leader = leader_of(0, 5, 2);
    // Followers 1 and 2 answer at 100 ms: with the leader, a majority.
    for peer in [1, 2] {
        let hb = leader.next_append(100 * MS, peer).unwrap();
        leader.handle_append_response(100 * MS, peer, hb.sent, ok_reply(2));
    }
    // Within the minimum election timeout (150 ms) of that round, a
    // disruptive candidate moves neither the term nor the vote.
    let vote = leader.handle_request_vote(200 * MS, &vote_request(3, 4));
    assert!(!vote.vote_granted);
    assert_eq!((vote.term, leader.term(), leader.is_leader()), (2, 2, true));
    // Past it, without a newer round, the usual rules: a higher term deposes it.
    let vote = leader.handle_request_vote(251 * MS, &vote_request(3, 4));
    assert!(vote.vote_granted);
    assert_eq!((leader.term(), leader.role()), (3, Role::Follower));
}

#[test]
fn section_6_a_leader_heard_by_a_minority_only_still_yields() {
    let mut leader = leader_of(0, 5, 2);
    let hb = leader.next_append(100 * MS, 1).unwrap();
    leader.handle_append_response(100 * MS, 1, hb.sent, ok_reply(2));
    // One follower of four: no quorum, so no reason to disregard anyone.
    let vote = leader.handle_request_vote(110 * MS, &vote_request(3, 4));
    assert!(vote.vote_granted);
    assert_eq!(leader.role(), Role::Follower);
}

#[test]
fn stalls_cannot_postpone_a_leaderless_followers_campaign_forever() {
    // A follower that runs 540 ms, is frozen 260 ms, runs 540 ms, ... (the
    // lab's timings: minimum timeout 1.2 s, stall threshold 250 ms, ticks
    // every 20 ms). Each freeze used to leave a fresh floor of at least
    // 600 ms, which 540 ms of running never reached.
    let mut config = CoreConfig::lab_defaults(1, vec![0, 1, 2, 3, 4], 11);
    config.election_rank = ElectionRank::NONE;
    let mut core: RaftCore<u32> = RaftCore::new(config, 0);
    let mut now = 0;
    let mut campaigned_at = None;
    'cycles: for _ in 0..100 {
        for _ in 0..27 {
            now += 20 * MS;
            if core.tick(now).is_some() {
                campaigned_at = Some(now);
                break 'cycles;
            }
        }
        now += 260 * MS;
    }
    let at = campaigned_at.expect("a follower that keeps running part of the time campaigns");
    assert!(at < 20_000 * MS, "campaigned only at {} ms", at / MS);
}

#[test]
fn the_first_stall_of_a_timer_period_still_leaves_its_floor() {
    let mut config = CoreConfig::lab_defaults(1, vec![0, 1, 2], 3);
    config.election_rank = ElectionRank::NONE;
    let mut core: RaftCore<u32> = RaftCore::new(config, 0);
    core.tick(20 * MS);
    core.tick(20 * MS + 5_000 * MS); // frozen 5 s
    assert!(core.election_deadline() >= 5_020 * MS + 600 * MS);
}

#[test]
fn a_backward_jump_of_the_wall_clock_does_not_silence_a_server() {
    // The driver reads the framework's wall clock through a MonotonicClock.
    // An hour back: the follower still campaigns within its timeout, and a
    // leader still sends its heartbeats.
    let hour = 3_600_000 * MS;
    let mut wall = 2 * hour;
    let mut follower_clock = MonotonicClock::default();
    let mut follower = RaftCore::<u32>::new(config(1, 3), follower_clock.read(wall));
    let mut leader = leader_of(0, 3, 1);
    let mut leader_clock = MonotonicClock::default();
    let now = leader_clock.read(wall);
    let hb = leader.next_append(now, 1).unwrap();
    leader.handle_append_response(now, 1, hb.sent, ok_reply(1));
    wall -= hour;
    let wall_at_jump = wall;
    let (mut campaigned, mut heartbeats) = (false, 0);
    while wall < wall_at_jump + 400 * MS {
        wall += 5 * MS;
        campaigned |= follower.tick(follower_clock.read(wall)).is_some();
        if leader.next_append(leader_clock.read(wall), 1).is_some() {
            heartbeats += 1;
        }
    }
    assert!(campaigned, "the follower campaigned within 400 ms of the jump");
    assert!(heartbeats >= 5, "the leader kept sending heartbeats ({heartbeats})");
}

#[test]
fn append_entries_with_prev_index_0_and_a_nonzero_prev_term_is_rejected_safely() {
    let mut core = follower_with_log(&[1, 1], 2);
    let reply = core.handle_append_entries(MS, append(2, (0, 5), Some((2, 9)), 0));
    assert!(!reply.success);
    assert_eq!(reply.last_log_index, 0);
    assert_eq!(core.last_index(), 2, "nothing changed");
}

#[test]
fn a_rejection_hint_past_the_log_moves_nothing_forward() {
    let mut leader = leader_over_log(&[1; 4], 3);
    let out = leader.next_append(0, 2).unwrap();
    let reject = AppendOutcome::Replied(AppendResponse { term: 3, success: false, last_log_index: Index::MAX });
    leader.handle_append_response(MS, 2, out.sent, reject);
    let pr = leader.progress(2).unwrap();
    assert_eq!(pr.next_index, 4, "no further than the rejected request's own position");
    assert!(pr.match_index < pr.next_index);
}

// ----- Ranked elections (README, "Ranked elections") --------------------------------------

#[test]
fn the_lab_ranks_server_0_last_and_server_1_first() {
    assert_eq!(ElectionRank::lab(1, 5), ElectionRank { position: 0, of: 5 });
    assert_eq!(ElectionRank::lab(4, 5), ElectionRank { position: 3, of: 5 });
    assert_eq!(ElectionRank::lab(0, 5), ElectionRank { position: 4, of: 5 });
}

#[test]
fn every_campaign_timeout_is_drawn_from_the_servers_own_band() {
    // Election timeout 1.2-2.4 s, grace 0.6-1.2 s, five bands: a server of
    // position p draws from [min + p w, min + (p + 1) w) of each.
    for id in 0..5u16 {
        let rank = ElectionRank::lab(id, 5);
        let p = rank.position as Micros;
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let config = CoreConfig::lab_defaults(id, vec![0, 1, 2, 3, 4], seed);
            let mut core: RaftCore<u32> = RaftCore::new(config, 0);
            let timeout = core.election_deadline();
            assert!((1_200_000 + p * 240_000..1_200_000 + (p + 1) * 240_000).contains(&timeout), "S{id}: {timeout}");
            core.restart_election_timer_after_reconnect(10_000_000);
            let grace = core.election_deadline() - 10_000_000;
            assert!((600_000 + p * 120_000..600_000 + (p + 1) * 120_000).contains(&grace), "S{id}: grace {grace}");
            seen.insert(timeout);
            // Ticks every 20 ms until just before the deadline, then a 5 s
            // stall: what is left is the floor, from the band.
            let mut core: RaftCore<u32> = RaftCore::new(CoreConfig::lab_defaults(id, vec![0, 1, 2, 3, 4], seed), 0);
            let mut now = 0;
            while now + 40_000 < core.election_deadline() {
                now += 20_000;
                assert!(core.tick(now).is_none());
            }
            now += 5_000_000;
            assert!(core.tick(now).is_none());
            let floor = core.election_deadline() - now;
            assert!((600_000 + p * 120_000..600_000 + (p + 1) * 120_000).contains(&floor), "S{id}: stall floor {floor}");
        }
        assert!(seen.len() > 30, "still random inside the band: {} distinct of 40", seen.len());
    }
}

#[test]
fn servers_reconnected_together_campaign_in_rank_order() {
    // Test 11 of the lab: three servers with equal logs reconnected within
    // microseconds of each other; the best-ranked campaigns first, always.
    for seed in 0..200 {
        let mut first = None;
        let mut cores: Vec<RaftCore<u32>> = [0u16, 1, 2]
            .iter()
            .map(|&id| {
                let mut core = RaftCore::new(CoreConfig::lab_defaults(id, vec![0, 1, 2, 3, 4], seed * 7 + id as u64), 0);
                core.restart_election_timer_after_reconnect(10_000_000 + id as Micros);
                core
            })
            .collect();
        let mut now = 10_000_000;
        while first.is_none() {
            now += 1_000;
            for (i, core) in cores.iter_mut().enumerate() {
                if first.is_none() && core.tick(now).is_some() {
                    first = Some(i);
                }
            }
        }
        assert_eq!(first, Some(1), "seed {seed}: server {first:?} campaigned first");
    }
}
