//! The server above the protocol core: the node's one lock, and the entry
//! points the lab's glue calls, on the mock framework of `testing`.
//! The concurrency tests hammer one property from two threads; each fails
//! (often within a few hundred iterations) when the property's fix is
//! taken out, and cannot fail with it.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use super::framework::{FrameIds, OwnedCommand};
use super::node::{Cmd, Node};
use super::protocol::{AppendRequest, ElectionOutcome, Entry};
use super::testing::{advance_clock, releases, serial, MockFrame};
use super::RaftServer;
use crate::wrappers::Command;

fn node(id: u16) -> Arc<Node> {
    Arc::new(Node::new(FrameIds { locale_id: id as u32, site_id: id, partition_id: 0 }, (0..5).collect(), None))
}

fn command(tag: usize) -> Command {
    Command::from_raw((0x1000 + tag) as *mut c_void)
}

fn cmd(tag: usize) -> Cmd {
    Arc::new(OwnedCommand::adopt(command(tag)).expect("not NULL"))
}

fn server(frame: &mut MockFrame, is_test_mode: bool) -> RaftServer {
    let null = std::ptr::null_mut();
    RaftServer::new(frame.raw(), null, null, null, null, is_test_mode)
}

/// Makes the server's node leader of the next term.
fn win_election(server: &RaftServer) {
    let mut state = server.node.lock();
    let now = state.now();
    let request = state.core.campaign(now);
    state.core.handle_election_outcome(now, ElectionOutcome { election_term: request.term, won: true, highest_rejecting_term: 0 });
    assert!(state.core.is_leader());
}

#[test]
fn reconnect_gives_the_grace_in_the_step_that_clears_the_flag() {
    // While disconnected the election timer runs out (the election fiber
    // ticks without campaigning). An election fiber that sees the server
    // connected must already see the grace of the reconnect, or it would
    // campaign at once with the old deadline.
    let _serial = serial();
    let node = node(1);
    let stop = Arc::new(AtomicBool::new(false));
    let campaigns = Arc::new(AtomicUsize::new(0));
    let looks = Arc::new(AtomicUsize::new(0));
    let fiber = {
        let (node, stop, campaigns, looks) = (Arc::clone(&node), Arc::clone(&stop), Arc::clone(&campaigns), Arc::clone(&looks));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut state = node.lock();
                looks.fetch_add(1, Ordering::Relaxed);
                if !state.disconnected {
                    let now = state.now();
                    if state.core.tick(now).is_some() {
                        campaigns.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    // Until the fiber has looked many times (it must really interleave).
    let mut reconnects = 0;
    while looks.load(Ordering::Relaxed) < 200_000 && reconnects < 1_000_000 {
        reconnects += 1;
        node.disconnect(true);
        for _ in 0..30 {
            advance_clock(100_000);
            let mut state = node.lock();
            let now = state.now();
            state.core.tick_without_campaign(now);
        }
        node.reconnect();
    }
    stop.store(true, Ordering::Relaxed);
    fiber.join().unwrap();
    assert_eq!(campaigns.load(Ordering::Relaxed), 0, "campaigns right after a reconnect");
}

#[test]
fn once_disconnect_returns_no_request_is_acted_on() {
    // A handler keeps appending entries; after `disconnect(true)` returns,
    // the log must not grow (the flag is read in the step it guards).
    let _serial = serial();
    let node = node(2);
    let stop = Arc::new(AtomicBool::new(false));
    let handler = {
        let (node, stop) = (Arc::clone(&node), Arc::clone(&stop));
        thread::spawn(move || {
            let mut tag = 0;
            while !stop.load(Ordering::Relaxed) {
                let last = node.lock().core.last_index();
                tag += 1;
                let request = AppendRequest {
                    term: 1,
                    prev_log_index: last,
                    prev_log_term: if last == 0 { 0 } else { 1 },
                    entry: Some(Entry { term: 1, command: cmd(tag) }),
                    leader_commit: 0,
                };
                node.handle_append_entries(request);
            }
        })
    };
    let mut late = 0;
    for _ in 0..5000 {
        node.disconnect(true);
        let before = node.lock().core.last_index();
        for _ in 0..20 {
            thread::yield_now();
        }
        if node.lock().core.last_index() != before {
            late += 1;
        }
        node.disconnect(false);
        for _ in 0..20 {
            thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    handler.join().unwrap();
    assert!(node.lock().core.last_index() > 0, "the handler appended while connected");
    assert_eq!(late, 0, "entries appended after disconnect returned");
}

#[test]
fn set_is_leader_runs_an_election_and_never_declares_leadership() {
    // Two servers told to lead at once must not lead the same term: neither
    // leads until it wins an election (the election fiber runs it).
    let _serial = serial();
    let (mut frame0, mut frame1) = (MockFrame::site(0), MockFrame::site(1));
    let mut s0 = server(&mut frame0, false);
    let mut s1 = server(&mut frame1, false);
    assert!(!s0.is_leader(), "outside test mode locale 0 still starts as a follower");
    s0.set_is_leader(true);
    s1.set_is_leader(true);
    assert_eq!((s0.get_state(), s1.get_state()), ((false, 0), (false, 0)));
    assert!(s0.node.lock().election_requested && s1.node.lock().election_requested);
    // A leader told to step down keeps its term and stops leading.
    win_election(&s0);
    s0.set_is_leader(false);
    assert_eq!(s0.get_state(), (false, 1));
}

#[test]
fn set_local_append_appends_on_a_leader_only_and_owns_the_command() {
    let _serial = serial();
    let mut frame = MockFrame::site(3);
    let mut s = server(&mut frame, true);
    let (mut term, mut index) = (9, 9);
    let released = releases();
    s.set_local_append(command(1), &mut term, &mut index, 0, 0);
    assert_eq!((index, term), (0, 0), "a follower appends nothing");
    assert_eq!(s.node.lock().core.last_index(), 0);
    assert_eq!(releases(), released + 1, "and releases the command it was handed");
    win_election(&s);
    s.set_local_append(command(2), &mut term, &mut index, 0, 0);
    assert_eq!((index, term), (1, 1));
    assert_eq!(releases(), released + 1, "the log keeps the leader's command");
    let (mut i, mut t) = (0, 0);
    assert!(s.start(command(3), &mut i, &mut t, 0, 0));
    assert_eq!((i, t), (2, 1));
}

#[test]
fn start_on_a_follower_refuses_and_releases_the_command() {
    let _serial = serial();
    let mut frame = MockFrame::site(4);
    let mut s = server(&mut frame, true);
    let released = releases();
    let (mut index, mut term) = (7, 7);
    assert!(!s.start(command(5), &mut index, &mut term, 0, 0));
    assert_eq!((index, term, releases()), (0, 0, released + 1));
    assert!(!s.start(Command::null(), &mut index, &mut term, 0, 0), "no command, no entry");
    assert_eq!(releases(), released + 1, "nothing to release for NULL");
}
