//! raft-mutate's operators on small sources: what each makes, where, under
//! which id; what it leaves alone.

use grade_tools::mutate::{mutants, Mutant};

fn ids(found: &[Mutant]) -> Vec<String> {
    found.iter().map(|m| m.id.clone()).collect()
}

const SOURCE: &str = r#"
mod protocol {
    pub struct Core { term: u64, voted: Option<u64> }
    impl Core {
        pub fn can_vote(&self, candidate: u64, term: u64) -> bool {
            if term < self.term {
                return false;
            }
            self.voted.is_none() || self.voted == Some(candidate)
        }
        pub fn next(&mut self) -> u64 {
            self.term += 1;
            self.bump();
            self.term.saturating_sub(1)
        }
        fn bump(&mut self) {}
    }
    #[cfg(test)]
    mod tests {
        fn helper() -> bool { 1 < 2 }
    }
}
mod logging {
    pub fn enabled(level: u8) -> bool { level > 2 && !false }
}
"#;

#[test]
fn every_operator_makes_its_mutants_with_stable_ids() {
    let found = mutants(SOURCE, Some(&["protocol".to_string()])).unwrap();
    let ids = ids(&found);
    for expected in [
        "protocol::Core::can_vote: return value: if term < self.term { return false; } self.voted.is_none(... -> true #1",
        "protocol::Core::can_vote: return value: if term < self.term { return false; } self.voted.is_none(... -> false #1",
        "protocol::Core::can_vote: condition: term < self.term -> true #1",
        "protocol::Core::can_vote: condition: term < self.term -> false #1",
        "protocol::Core::can_vote: comparison: < -> <= #1",
        "protocol::Core::can_vote: boolean: false -> true #1",
        "protocol::Core::can_vote: logic: || -> && #1",
        "protocol::Core::can_vote: comparison: == -> != #1",
        "protocol::Core::next: statement: self.term += 1; -> (nothing) #1",
        "protocol::Core::next: statement: self.bump(); -> (nothing) #1",
        "protocol::Core::next: off by one: .saturating_sub(1) -> (nothing) #1",
    ] {
        assert!(ids.iter().any(|id| id == expected), "missing {expected}; got {ids:#?}");
    }
    assert_eq!(ids.len(), 11, "{ids:#?}");
    // Ids are unique.
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
}

#[test]
fn test_code_and_other_modules_are_left_alone() {
    let found = mutants(SOURCE, Some(&["protocol".to_string()])).unwrap();
    assert!(found.iter().all(|m| !m.function.contains("helper")), "cfg(test) code was mutated");
    assert!(found.iter().all(|m| m.module.starts_with("protocol")), "a module outside the filter was mutated");
    let all = mutants(SOURCE, None).unwrap();
    assert!(all.iter().any(|m| m.module == "logging" && m.operator == "negation"));
    assert!(all.iter().any(|m| m.module == "logging" && m.operator == "comparison" && m.to == ">="));
}

#[test]
fn applying_a_mutant_changes_exactly_its_span() {
    let found = mutants(SOURCE, None).unwrap();
    let or = found.iter().find(|m| m.operator == "logic" && m.from == "||").unwrap();
    let mutated = or.apply(SOURCE);
    assert!(mutated.contains("self.voted.is_none() && self.voted == Some(candidate)"));
    assert_eq!(mutated.len(), SOURCE.len());
    let drop_one = found.iter().find(|m| m.operator == "off by one" && m.from == ".saturating_sub(1)").unwrap();
    assert!(drop_one.apply(SOURCE).contains("            self.term\n        }"));
    // Every mutant still parses as Rust.
    for m in &found {
        syn::parse_file(&m.apply(SOURCE)).unwrap_or_else(|e| panic!("{} does not parse: {e}", m.id));
    }
}

#[test]
fn a_file_that_does_not_parse_is_an_error_with_its_place() {
    let error = mutants("fn broken( {", None).unwrap_err();
    assert!(error.starts_with("line 1:"), "{error}");
}
