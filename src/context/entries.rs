//! [`Entries`]: the table of a context's values, each kept as its JSON, and the bound on its
//! size (see "Size" on [`Context`](super::store::Context)).

use std::borrow::Cow;
use std::time::Instant;

use super::extra_key::{extra_key, ExtraKeyRef};
use super::slot::Slot;
use super::value::Value;
use crate::schema::to_snake_case;
use crate::trace_context::TraceInfo;

/// The most extra keys a context holds (see "Size" on [`Context`](super::store::Context)).
pub(crate) const MAX_EXTRA_KEYS: usize = 64;

/// The most bytes a context's values (as JSON) and extra key names take together (see "Size"
/// on [`Context`]).
pub(crate) const MAX_CONTEXT_BYTES: usize = 8 * 1024;

/// What a value that does not fit is replaced with.
const CONTEXT_FULL: &str = "[context full]";

/// The well-known keys, in the order they are written.
#[allow(clippy::enum_variant_names)] // named after the keys they stand for
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    RequestId = 0,
    UserId = 1,
    TraceId = 2,
    SpanId = 3,
}

impl Known {
    pub(crate) const ALL: [Known; 4] = [
        Known::RequestId,
        Known::UserId,
        Known::TraceId,
        Known::SpanId,
    ];

    pub(crate) const fn snake_name(self) -> &'static str {
        match self {
            Known::RequestId => "request_id",
            Known::UserId => "user_id",
            Known::TraceId => "trace_id",
            Known::SpanId => "span_id",
        }
    }

    fn from_snake(key: &str) -> Option<Known> {
        Known::ALL.into_iter().find(|k| k.snake_name() == key)
    }
}

/// An extra key: its names (shared by the contexts that set the key, see `extra_key.rs`) and
/// its value, kept in the context's table itself.
#[derive(Debug, Clone)]
pub(crate) struct Extra {
    pub(crate) key: ExtraKeyRef,
    pub(crate) slot: Slot,
}

#[derive(Debug, Clone)]
pub(crate) struct Entries {
    pub(crate) known: [Option<Slot>; 4],
    /// Added to only by [`Entries::set`], which keeps [`Self::extras_apart`] true to them.
    pub(crate) extras: Vec<Extra>,
    /// Whether no two extra keys can take each other's place on a line: none has a `.` (so
    /// none is another's dotted prefix), and their camel-case names differ as their snake-case
    /// ones do. A line then checks each only against the keys written before the extras.
    extras_apart: bool,
    /// What the request's `traceparent` and `tracestate` said besides its ids (flags, parent
    /// span id, trace state): kept with the request, never written on a line nor serialized.
    /// A field of its own rather than a map of typed values: setting it allocates nothing.
    pub(crate) trace_info: Option<TraceInfo>,
    /// When the context was made: `elapsed()` and the `elapsedMs` key count from here. A
    /// context derived with the `with*` builders keeps its parent's.
    pub(crate) created: Instant,
    /// When the request's work should be over, if ever (see `deadline.rs`).
    pub(crate) deadline: Option<Instant>,
    /// The bytes the values (as JSON) and the extra key names take, against
    /// [`MAX_CONTEXT_BYTES`].
    bytes: usize,
    /// Whether something did not fit, and whether that was reported.
    overflow: Overflow,
}

/// Whether a context had to leave a key out or replace a value (see "Size" on [`Context`]).
#[derive(Debug, Clone, Default)]
enum Overflow {
    #[default]
    None,
    /// The first key that did not fit, not reported yet.
    Pending(Box<str>),
    Reported,
}

impl Default for Entries {
    fn default() -> Self {
        Entries {
            known: Default::default(),
            extras: Vec::new(),
            extras_apart: true,
            trace_info: None,
            // One read of the monotonic clock (a vDSO call): the only cost deadlines and
            // elapsed time add to `Context::new()`.
            created: Instant::now(),
            deadline: None,
            bytes: 0,
            overflow: Overflow::None,
        }
    }
}

impl Entries {
    /// Sets a well-known key to an id of printable ASCII with nothing to escape (see
    /// [`Slot::from_plain_ascii`]).
    #[cfg_attr(not(feature = "http"), allow(dead_code))] // the middleware's ids
    pub(crate) fn set_known_ascii(&mut self, known: Known, id: &[u8]) {
        // Counted before the slot is made, so the slot is written in place (the middleware
        // sets two ids per request).
        let slot = if self.fits(self.known_len(known), id.len() + 2, known.snake_name()) {
            Slot::from_plain_ascii(id)
        } else {
            Slot::from_plain_str(CONTEXT_FULL)
        };
        self.known[known as usize] = Some(slot);
    }

    /// Sets a well-known key, within the size bound.
    pub(super) fn set_known(&mut self, known: Known, slot: Slot) {
        let old = self.known_len(known);
        let slot = if self.fits(old, slot.json().len(), known.snake_name()) {
            slot
        } else {
            Slot::from_plain_str(CONTEXT_FULL)
        };
        self.known[known as usize] = Some(slot);
    }

    /// The JSON length of a well-known key's value, 0 when it has none.
    fn known_len(&self, known: Known) -> usize {
        self.known[known as usize]
            .as_ref()
            .map_or(0, |s| s.json().len())
    }

    /// Whether a value of `new` bytes of JSON fits within [`MAX_CONTEXT_BYTES`] in place of one
    /// of `old` bytes; counts it, or the replacement (`"[context full]"`) and the overflow.
    pub(super) fn fits(&mut self, old: usize, new: usize, key: &str) -> bool {
        let rest = self.bytes - old;
        let fits = rest + new <= MAX_CONTEXT_BYTES;
        if !fits {
            self.overflowed(key);
        }
        self.bytes = rest + if fits { new } else { CONTEXT_FULL.len() + 2 };
        fits
    }

    /// Returns `slot` if it fits (see [`Self::fits`]), else the replacement.
    fn fit(&mut self, old: usize, slot: Slot, key: &str) -> Slot {
        if self.fits(old, slot.json().len(), key) {
            slot
        } else {
            Slot::from_plain_str(CONTEXT_FULL)
        }
    }

    pub(super) fn overflowed(&mut self, key: &str) {
        if let Overflow::None = self.overflow {
            self.overflow = Overflow::Pending(key.into());
        }
    }

    /// Takes the key of an overflow not reported yet, marking it reported.
    pub(super) fn take_report(&mut self) -> Option<Box<str>> {
        match std::mem::replace(&mut self.overflow, Overflow::Reported) {
            Overflow::Pending(key) => Some(key),
            Overflow::None => {
                self.overflow = Overflow::None;
                None
            }
            Overflow::Reported => None,
        }
    }

    pub(super) fn set(&mut self, key: &str, value: Value) {
        let snake = to_snake_case(key);
        if let Some(known) = Known::from_snake(&snake) {
            self.set_known(known, Slot::new(value));
        } else if let Some(at) = self.extras.iter().position(|e| *e.key.snake == *snake) {
            let old = self.extras[at].slot.json().len();
            let slot = self.fit(old, Slot::new(value), &snake);
            self.extras[at].slot = slot;
        } else {
            // A new key: its name counts too, and it must leave room for at least the
            // replacement, or it is left out.
            let name = snake.len() + CONTEXT_FULL.len() + 2;
            if self.extras.len() >= MAX_EXTRA_KEYS || self.bytes + name > MAX_CONTEXT_BYTES {
                self.overflowed(&snake);
                return;
            }
            self.bytes += snake.len();
            let slot = self.fit(0, Slot::new(value), &snake);
            // Most requests set one to three extra keys: grow one at a time up to four
            // rather than reserving four entries (some 150 bytes each) for the first.
            if self.extras.len() < 4 {
                self.extras.reserve_exact(1);
            }
            let key = extra_key(&snake);
            self.extras_apart &= !key.snake_key.dotted()
                && !key.camel_key.dotted()
                && self.extras.iter().all(|e| e.key.camel != key.camel);
            self.extras.push(Extra { key, slot });
        }
    }

    /// Whether no two extra keys can take each other's place on a line (the field of that
    /// name says when).
    pub(crate) fn extras_apart(&self) -> bool {
        self.extras_apart
    }

    pub(super) fn get(&self, key: &str) -> Option<Cow<'_, Value>> {
        let snake = to_snake_case(key);
        match Known::from_snake(&snake) {
            Some(known) => self.known[known as usize].as_ref().map(Slot::value),
            None => self
                .extras
                .iter()
                .find(|e| *e.key.snake == *snake)
                .map(|e| e.slot.value()),
        }
    }

    /// Every entry as `(snake-case key, slot)`, well-known keys first; allocates nothing.
    pub(crate) fn slots(&self) -> impl Iterator<Item = (&str, &Slot)> {
        let known = Known::ALL
            .into_iter()
            .filter_map(|k| self.known[k as usize].as_ref().map(|s| (k.snake_name(), s)));
        known.chain(self.extras.iter().map(|e| (&*e.key.snake, &e.slot)))
    }

    /// Every entry as `(snake-case key, value)`, well-known keys first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, Cow<'_, Value>)> {
        let known = Known::ALL.into_iter().filter_map(|k| {
            self.known[k as usize]
                .as_ref()
                .map(|s| (k.snake_name(), s.value()))
        });
        known.chain(self.extras.iter().map(|e| (&*e.key.snake, e.slot.value())))
    }
}
