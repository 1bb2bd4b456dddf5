//! The internal numbers the dial plan sees: a snapshot of the number directory.

use std::collections::BTreeSet;
use std::ops::Bound;

/// The PBX's internal numbers. Analog ports are extensions.
pub trait NumberPlan {
    /// Whether `n` is an extension.
    fn is_extension(&self, n: &str) -> bool;
    /// Whether `n` is a ring group.
    fn is_ring_group(&self, n: &str) -> bool;
    /// Whether some extension or ring group is longer than `prefix` and starts with it
    /// (then `prefix` is an incomplete internal number).
    fn is_prefix_of_internal(&self, prefix: &str) -> bool;
}

/// A [`NumberPlan`] built from lists of numbers, e.g. read from the store once per call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticPlan {
    extensions: BTreeSet<String>,
    ring_groups: BTreeSet<String>,
}

impl StaticPlan {
    /// A plan with these extensions and ring groups.
    pub fn new<E, R>(extensions: E, ring_groups: R) -> Self
    where
        E: IntoIterator,
        E::Item: Into<String>,
        R: IntoIterator,
        R::Item: Into<String>,
    {
        StaticPlan {
            extensions: extensions.into_iter().map(Into::into).collect(),
            ring_groups: ring_groups.into_iter().map(Into::into).collect(),
        }
    }
}

/// Whether `set` holds a string longer than `prefix` that starts with it.
fn has_longer(set: &BTreeSet<String>, prefix: &str) -> bool {
    set.range::<str, _>((Bound::Excluded(prefix), Bound::Unbounded))
        .next()
        .is_some_and(|s| s.starts_with(prefix))
}

impl NumberPlan for StaticPlan {
    fn is_extension(&self, n: &str) -> bool {
        self.extensions.contains(n)
    }

    fn is_ring_group(&self, n: &str) -> bool {
        self.ring_groups.contains(n)
    }

    fn is_prefix_of_internal(&self, prefix: &str) -> bool {
        has_longer(&self.extensions, prefix) || has_longer(&self.ring_groups, prefix)
    }
}
