//! The grading tool's syntax-tree helpers (scripts/grading calls the
//! binaries): `raft-rules` checks the handout's DO NOT rules on a
//! server.rs; `raft-mutate` makes the mutants of the grade's mutation
//! score.

pub mod json;
pub mod mutate;
pub mod rules;
