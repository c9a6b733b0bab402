//! [`Reserved`]: the keys no context key or event field may take on a line, and their
//! dotted prefixes, checked with a filter first.

use super::line::{bloom_bits, bloom_has, for_each_dotted_prefix};
use crate::json::Key;

/// The prefix of a context key that loses to a core key.
pub(super) const CONTEXT_RENAME: &str = "context.";
/// The prefix of an event field that loses to a core or context key.
pub(super) const FIELD_RENAME: &str = "fields.";
/// Returns `true` for a key made only of one root of the renames, repeated: `fields`,
/// `fields.fields`, `context`, `context.context`… On a line, such a key would be the dotted
/// prefix of every key renamed often enough, and no number of renames could make a key
/// unique. No key so named goes on a line: it gets [`ROOT_SUFFIX`] first (`fields_`).
#[inline]
pub(super) fn is_rename_root(key: &[u8]) -> bool {
    // Asked of every key on the line: most fail on their first byte or their length.
    if !matches!(key.first(), Some(b'f' | b'c')) {
        return false;
    }
    [FIELD_RENAME, CONTEXT_RENAME].iter().any(|prefix| {
        let word = &prefix.as_bytes()[..prefix.len() - 1];
        (key.len() + 1).is_multiple_of(prefix.len())
            && key.split(|&b| b == b'.').all(|segment| segment == word)
    })
}

/// Appended to a key that [`is_rename_root`].
pub(super) const ROOT_SUFFIX: &str = "_";

/// Keys no context key or event field may take: the core keys and the layer's own keys, and
/// their dotted prefixes (`log` when the schema writes `log.level`).
#[derive(Debug, Default)]
pub(crate) struct Reserved {
    bloom: u64,
    keys: Vec<Key>,
    prefix_bloom: u64,
    prefixes: Vec<(u64, Box<[u8]>)>,
}

impl Reserved {
    pub(crate) fn insert(&mut self, key: Key) {
        self.bloom |= bloom_bits(key.hash());
        for_each_dotted_prefix(key.escaped(), |hash, len| {
            self.prefix_bloom |= bloom_bits(hash);
            self.prefixes.push((hash, key.escaped()[..len].into()));
        });
        self.keys.push(key);
    }

    /// Returns `true` if a key with these [`bloom_bits`] may be reserved or the dotted prefix
    /// of a reserved key: `false` proves it is neither.
    #[inline]
    pub(super) fn may_conflict(&self, bits: u64) -> bool {
        bloom_has(self.bloom, bits) || bloom_has(self.prefix_bloom, bits)
    }

    /// Returns `true` if `key` is reserved, the dotted prefix of a reserved key, has a
    /// reserved key as its dotted prefix, or is made of a root of the renames (`fields`, `context`).
    pub(crate) fn contains(&self, key: &Key) -> bool {
        is_rename_root(key.escaped()) || self.conflicts(key.hash(), key.escaped())
    }

    #[inline]
    pub(super) fn contains_escaped(&self, hash: u64, escaped: &[u8]) -> bool {
        bloom_has(self.bloom, bloom_bits(hash))
            && self
                .keys
                .iter()
                .any(|k| k.hash() == hash && k.escaped() == escaped)
    }

    #[inline]
    pub(super) fn is_prefix(&self, hash: u64, escaped: &[u8]) -> bool {
        bloom_has(self.prefix_bloom, bloom_bits(hash))
            && self
                .prefixes
                .iter()
                .any(|(h, p)| *h == hash && **p == *escaped)
    }

    fn conflicts(&self, hash: u64, escaped: &[u8]) -> bool {
        let mut taken = self.contains_escaped(hash, escaped) || self.is_prefix(hash, escaped);
        for_each_dotted_prefix(escaped, |hash, len| {
            taken = taken || self.contains_escaped(hash, &escaped[..len]);
        });
        taken
    }
}
