//! [`ExtraKey`]: an extra key's names, escaped once and shared by every context that sets the
//! key.
//!
//! A service sets the same few keys (`tenant_id`, `order_id`) in every request, and each line
//! reads every key's names. Kept once for the process, the names of a key stay in the cache
//! however many contexts are open, and a line reads from each context only its values, which
//! sit side by side in its table. Thousands of open contexts with fifty keys each would
//! otherwise cost a line some hundred cache misses (two blocks of names per key per context).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{LazyLock, Mutex, PoisonError};

use crate::json::Key;
use crate::schema::to_camel_case;

/// The most distinct keys kept for the process. Past it (a service that makes key names from
/// data), a key's names are the context's own, as any key's would be without sharing.
const MAX_SHARED: usize = 1024;

/// The longest name shared, in bytes: with [`MAX_SHARED`], what the process keeps for ever is
/// bounded (some 400 KiB), however long the names a service makes.
const MAX_SHARED_NAME: usize = 64;

/// An extra key's names: snake case (its identity) and camel case, each also as the escaped
/// `"name":` a line copies.
#[derive(Debug, Clone)]
pub(crate) struct ExtraKey {
    pub(crate) snake: Box<str>,
    pub(crate) camel: Box<str>,
    pub(crate) snake_key: Key,
    pub(crate) camel_key: Key,
}

impl ExtraKey {
    fn new(snake: &str) -> Self {
        let camel = to_camel_case(snake);
        ExtraKey {
            snake_key: Key::new(snake),
            camel_key: Key::new(&camel),
            camel: camel.into_boxed_str(),
            snake: snake.into(),
        }
    }
}

/// The names of a context's extra key: the process's shared ones, or the context's own.
#[derive(Debug, Clone)]
pub(crate) enum ExtraKeyRef {
    Shared(&'static ExtraKey),
    Own(Box<ExtraKey>),
}

impl Deref for ExtraKeyRef {
    type Target = ExtraKey;

    #[inline]
    fn deref(&self) -> &ExtraKey {
        match self {
            ExtraKeyRef::Shared(key) => key,
            ExtraKeyRef::Own(key) => key,
        }
    }
}

/// The process's keys, each made once and never freed (at most [`MAX_SHARED`] of them, as a
/// macro's callsites are never freed).
static SHARED: LazyLock<Table> = LazyLock::new(Mutex::default);

thread_local! {
    /// What this thread has looked up already: a set of a known key takes no lock.
    static SEEN: std::cell::RefCell<HashMap<&'static str, &'static ExtraKey>> =
        std::cell::RefCell::default();
}

/// Returns the names of the extra key `snake` (already in snake case).
pub(crate) fn extra_key(snake: &str) -> ExtraKeyRef {
    if snake.len() > MAX_SHARED_NAME {
        return ExtraKeyRef::Own(Box::new(ExtraKey::new(snake)));
    }
    let seen = SEEN
        .try_with(|seen| seen.borrow().get(snake).copied())
        .ok()
        .flatten();
    if let Some(key) = seen {
        return ExtraKeyRef::Shared(key);
    }
    match shared_in(&SHARED, MAX_SHARED, snake) {
        Some(key) => {
            // Not there during the thread's teardown: the next set looks it up again.
            let _ = SEEN.try_with(|seen| {
                if let Ok(mut seen) = seen.try_borrow_mut() {
                    seen.insert(&key.snake, key);
                }
            });
            ExtraKeyRef::Shared(key)
        }
        None => ExtraKeyRef::Own(Box::new(ExtraKey::new(snake))),
    }
}

/// Keyed by the name each key holds, which lives as long.
type Table = Mutex<HashMap<&'static str, &'static ExtraKey>>;

/// The key of `table`, made when it is new and the table holds fewer than `max`.
fn shared_in(table: &Table, max: usize, snake: &str) -> Option<&'static ExtraKey> {
    let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
    match table.get(snake) {
        Some(key) => Some(*key),
        None if table.len() < max => {
            let key: &'static ExtraKey = Box::leak(Box::new(ExtraKey::new(snake)));
            table.insert(&key.snake, key);
            Some(key)
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_is_shared_across_threads_and_keeps_both_cases() {
        let here = extra_key("shared_test_tenant_id");
        let there = std::thread::spawn(|| match extra_key("shared_test_tenant_id") {
            ExtraKeyRef::Shared(key) => key as *const ExtraKey as usize,
            ExtraKeyRef::Own(_) => 0,
        })
        .join()
        .unwrap();
        let ExtraKeyRef::Shared(key) = here else {
            panic!("a new key is shared");
        };
        assert_eq!(key as *const ExtraKey as usize, there);
        assert_eq!(&*key.snake, "shared_test_tenant_id");
        assert_eq!(&*key.camel, "sharedTestTenantId");
        assert_eq!(key.camel_key, Key::new("sharedTestTenantId"));
        assert_eq!(key.snake_key, Key::new("shared_test_tenant_id"));
    }

    #[test]
    fn a_long_name_is_the_contexts_own() {
        let long = "k".repeat(MAX_SHARED_NAME + 1);
        let key = extra_key(&long);
        assert!(matches!(key, ExtraKeyRef::Own(_)));
        assert_eq!(&*key.snake, long);
        assert!(matches!(
            extra_key(&"k".repeat(MAX_SHARED_NAME)),
            ExtraKeyRef::Shared(_)
        ));
    }

    #[test]
    fn past_the_bound_no_key_is_made_but_those_made_are_kept() {
        let table = Table::default();
        let a = shared_in(&table, 2, "a_key").expect("room for it");
        assert!(shared_in(&table, 2, "b_key").is_some());
        assert!(shared_in(&table, 2, "c_key").is_none(), "the table is full");
        assert!(std::ptr::eq(shared_in(&table, 2, "a_key").unwrap(), a));
        assert_eq!(table.lock().unwrap().len(), 2);
    }
}
