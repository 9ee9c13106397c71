//! Majority arithmetic, kept apart from the protocol so it can be checked on
//! its own.

use super::log::Index;

/// Smallest number of servers that is a majority of `cluster_size`.
pub fn majority(cluster_size: usize) -> usize {
    cluster_size / 2 + 1
}

/// The highest index that a majority of servers hold, given each server's
/// match index (the leader's own last index included). §5.3: an entry is
/// replicated on a majority when at least `majority` match indexes reach it.
pub fn quorum_index(match_indexes: &[Index]) -> Index {
    if match_indexes.is_empty() {
        return 0;
    }
    let mut sorted = match_indexes.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted[majority(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_of_odd_and_even_clusters() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
    }

    #[test]
    fn quorum_index_is_the_majority_th_highest() {
        assert_eq!(quorum_index(&[5, 1, 3, 2, 4]), 3);
        assert_eq!(quorum_index(&[7, 7, 0, 0, 0]), 0);
        assert_eq!(quorum_index(&[7, 7, 7, 0, 0]), 7);
        assert_eq!(quorum_index(&[4]), 4);
    }
}
