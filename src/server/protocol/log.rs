//! The replicated log of one server (Figure 2, "State": `log[]`, `commitIndex`,
//! `lastApplied`).
//!
//! Indices start at 1; index 0 is the empty prefix whose term is 0, so the
//! consistency check of §5.3 works unchanged for the first entry.

/// A log index. The first entry has index 1.
pub type Index = u64;
/// A term number (§5.1). Terms start at 0 and only grow.
pub type Term = u64;

/// One log entry: the term in which a leader created it and the client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<C> {
    pub term: Term,
    pub command: C,
}

/// The log together with its two cursors.
///
/// Invariant: `applied_index <= commit_index <= last_index()`.
#[derive(Debug, Clone)]
pub struct RaftLog<C> {
    /// `entries[i]` holds the entry with index `i + 1`.
    entries: Vec<Entry<C>>,
    /// Highest index known to be committed (Figure 2 `commitIndex`).
    commit_index: Index,
    /// Highest index handed to the state machine (Figure 2 `lastApplied`).
    applied_index: Index,
}

impl<C> Default for RaftLog<C> {
    fn default() -> Self {
        Self { entries: Vec::new(), commit_index: 0, applied_index: 0 }
    }
}

impl<C: Clone> RaftLog<C> {
    pub fn last_index(&self) -> Index {
        self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(0, |e| e.term)
    }

    pub fn commit_index(&self) -> Index {
        self.commit_index
    }

    pub fn applied_index(&self) -> Index {
        self.applied_index
    }

    /// The term of the entry at `index`; `Some(0)` for index 0, `None` past the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        self.entries.get(index as usize - 1).map(|e| e.term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry<C>> {
        if index == 0 {
            return None;
        }
        self.entries.get(index as usize - 1)
    }

    /// Appends at the end and returns the new entry's index.
    pub fn append(&mut self, entry: Entry<C>) -> Index {
        self.entries.push(entry);
        self.last_index()
    }

    /// Deletes the entry at `index` and all that follow it (Figure 2,
    /// AppendEntries receiver rule 3). Committed entries are never deleted:
    /// Leader Completeness (§5.4) guarantees no leader asks for it, so a
    /// request that would is refused and reported as `false`.
    #[must_use]
    pub fn truncate_from(&mut self, index: Index) -> bool {
        if index <= self.commit_index || index == 0 {
            return false;
        }
        self.entries.truncate(index as usize - 1);
        true
    }

    /// The first index of the run of entries that share the term of the entry
    /// at `index` (used for the conflict hint of §5.3's last paragraph).
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let Some(term) = self.term_at(index) else { return self.last_index() + 1 };
        let mut first = index;
        while first > 1 && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// Is a log ending at (`last_index`, `last_term`) at least as up-to-date
    /// as this one? (§5.4.1: compare last terms, then lengths.)
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Raises the commit index; it never decreases, and never passes the end.
    pub fn commit_to(&mut self, index: Index) {
        let index = index.min(self.last_index());
        if index > self.commit_index {
            self.commit_index = index;
        }
    }

    /// Takes the committed entries not yet applied, advancing `lastApplied`
    /// (Figure 2, "Rules for Servers / All Servers", first rule).
    pub fn take_committed(&mut self) -> Vec<(Index, C)> {
        let from = self.applied_index + 1;
        let to = self.commit_index;
        let batch = (from..=to)
            .map(|i| (i, self.entries[i as usize - 1].command.clone()))
            .collect();
        self.applied_index = to;
        batch
    }

    #[allow(dead_code)] // used by the simulator (tests/sim) and the paper tests
    pub fn entries(&self) -> &[Entry<C>] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(terms: &[Term]) -> RaftLog<u32> {
        let mut log = RaftLog::default();
        for (i, &term) in terms.iter().enumerate() {
            log.append(Entry { term, command: i as u32 });
        }
        log
    }

    #[test]
    fn index_zero_has_term_zero_and_no_entry() {
        let log = log_of(&[1, 1]);
        assert_eq!(log.term_at(0), Some(0));
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(3), None);
        assert!(log.entry(0).is_none());
    }

    #[test]
    fn first_index_of_term_finds_start_of_run() {
        let log = log_of(&[1, 2, 2, 2, 3]);
        assert_eq!(log.first_index_of_term_at(4), 2);
        assert_eq!(log.first_index_of_term_at(1), 1);
        assert_eq!(log.first_index_of_term_at(5), 5);
    }

    #[test]
    fn truncate_never_removes_committed_entries() {
        let mut log = log_of(&[1, 1, 1]);
        log.commit_to(2);
        assert!(!log.truncate_from(2));
        assert_eq!(log.last_index(), 3);
        assert!(log.truncate_from(3));
        assert_eq!(log.last_index(), 2);
    }

    #[test]
    fn up_to_date_compares_term_then_length() {
        let log = log_of(&[1, 2]);
        assert!(log.is_up_to_date(1, 3));
        assert!(!log.is_up_to_date(5, 1));
        assert!(log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(1, 2));
    }

    #[test]
    fn take_committed_applies_each_index_once_in_order() {
        let mut log = log_of(&[1, 1, 1]);
        log.commit_to(2);
        assert_eq!(log.take_committed(), vec![(1, 0), (2, 1)]);
        assert!(log.take_committed().is_empty());
        log.commit_to(9);
        assert_eq!(log.commit_index(), 3);
        assert_eq!(log.take_committed(), vec![(3, 2)]);
    }
}
