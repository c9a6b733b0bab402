//! What a layer knows about an event's callsite before the event: each field's key escaped
//! as `,"name":`, whether that key can ever conflict with the layer's reserved keys or with
//! another key of the same callsite, whether the field is the message, a `log.` field or
//! redacted, and the target escaped. Worked out the first time a thread sees the callsite
//! through a layer, then read from a thread-local table: no lock, no allocation.
//!
//! A callsite's fields are fixed (`tracing` takes them from its static metadata), so this
//! holds for every event of the callsite. What varies per event (the context's keys, the keys
//! renamed on the line) is still checked on each line, through the line's filter of keys.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Weak;

use tracing::{Event, Metadata};
use tracing_log::NormalizeEvent;

use super::line::bloom_bits;
use super::prepared::Prepared;
use crate::json;
use crate::schema::KeyCase;

/// What is known about one field of a callsite.
#[derive(Debug)]
pub(crate) struct FieldInfo {
    /// `,"name":`, escaped.
    pub(crate) fragment: Box<[u8]>,
    pub(crate) hash: u64,
    pub(crate) bits: u64,
    /// The field may skip the full duplicate check and be written at once: it is not named
    /// `message`, nor redacted, nor the schema's error field (written under another key), its
    /// key has no dot, is no reserved key nor the dotted prefix of one, and no other field of
    /// the callsite (nor the `…Sources` key of an error among them) has its name or has it as
    /// a dotted prefix. Only the line's own keys (the context's,
    /// renamed fields) are left to check, by the line's filter.
    pub(crate) plain: bool,
    /// Named `message`: the first such field is the message.
    pub(crate) message: bool,
    /// A field of an event from the `log` crate, written as target, file and line instead.
    pub(crate) log: bool,
    pub(crate) redacted: bool,
}

/// What is known about one callsite, for one layer.
#[derive(Debug)]
pub(crate) struct CallsiteInfo {
    /// By field index.
    pub(crate) fields: Box<[FieldInfo]>,
    /// `,"target":"…"` with the layer's key, when the layer writes the target. Not for events
    /// from the `log` crate: those share one callsite per level and carry their own target.
    pub(crate) target: Option<Box<[u8]>>,
    /// Whether this is one of `tracing-log`'s callsites, whose events carry the metadata of
    /// a `log` record in fields.
    pub(crate) is_log: bool,
}

impl CallsiteInfo {
    fn new(meta: &'static Metadata<'static>, prepared: &Prepared, is_log: bool) -> Self {
        let names: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
        let schema = prepared.settings.schema;
        let tail = match schema.extra_keys {
            KeyCase::Camel => "Sources",
            KeyCase::Snake => "_sources",
        };
        let fields = names
            .iter()
            .enumerate()
            .map(|(i, &name)| {
                let mut fragment = Vec::with_capacity(name.len() + 4);
                fragment.push(b',');
                json::write_key(&mut fragment, name);
                let escaped = &fragment[2..fragment.len() - 2];
                let hash = json::hash_key(escaped);
                let dotted = escaped.contains(&b'.');
                let dotted_prefix_of = |other: &str| {
                    other.len() > name.len()
                        && other.starts_with(name)
                        && other.as_bytes()[name.len()] == b'.'
                };
                let shared = names.iter().enumerate().any(|(j, &other)| {
                    let sources = other.len() + tail.len() == name.len()
                        && name.starts_with(other)
                        && name.ends_with(tail);
                    (j != i && (other == name || dotted_prefix_of(other))) || sources
                });
                let reserved = prepared.reserved.contains(&json::Key::new(name));
                let fast = !dotted && !reserved && !shared;
                let (message, redacted) = (name == "message", prepared.redacts(name));
                // The schema's error field is written under its error message key instead.
                let error = schema.error.is_some_and(|keys| keys.field == name);
                FieldInfo {
                    hash,
                    bits: bloom_bits(hash),
                    plain: fast && !message && !redacted && !error,
                    message,
                    log: name.starts_with("log."),
                    redacted,
                    fragment: fragment.into_boxed_slice(),
                }
            })
            .collect();
        let target = prepared.settings.target.then(|| {
            let mut target = vec![b','];
            target.extend_from_slice(prepared.keys.target.fragment());
            json::write_str(&mut target, meta.target());
            target.into_boxed_slice()
        });
        CallsiteInfo {
            fields,
            target,
            is_log,
        }
    }
}

/// One thread's table of callsites, by layer and metadata address: open addressing with
/// linear probing, rebuilt at half full. Callsites are static and few, but layers come and go
/// (rebuilt in tests, on a reload): a rebuild leaves out the entries of layers that were
/// dropped, so the table holds the live layers' callsites and no more (at most four times as
/// many slots, or 64).
struct Table {
    slots: Vec<Option<Entry>>,
    len: usize,
}

struct Entry {
    layer: u64,
    /// Dead once the layer's `Prepared` is dropped: the entry can never be read again (ids
    /// are never reused) and goes at the next rebuild.
    alive: Weak<()>,
    meta: usize,
    info: Rc<CallsiteInfo>,
}

thread_local! {
    static TABLE: RefCell<Table> = const {
        RefCell::new(Table {
            slots: Vec::new(),
            len: 0,
        })
    };
}

impl Table {
    fn slot(&self, layer: u64, meta: usize) -> usize {
        let hash = (meta as u64 ^ layer.rotate_left(40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // The table's length is a power of two.
        (hash >> 32) as usize & (self.slots.len() - 1)
    }

    fn get(&self, layer: u64, meta: usize) -> Option<&Rc<CallsiteInfo>> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.slot(layer, meta);
        loop {
            match &self.slots[i] {
                Some(e) if e.layer == layer && e.meta == meta => return Some(&e.info),
                Some(_) => i = (i + 1) & (self.slots.len() - 1),
                None => return None,
            }
        }
    }

    fn insert(&mut self, entry: Entry) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.rebuild();
        }
        self.put(entry);
    }

    /// Rebuilds the table with the entries of live layers only, at most a quarter full, so
    /// that the next rebuild is at least as many inserts away as there are live entries.
    fn rebuild(&mut self) {
        let live: Vec<Entry> = std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .filter(|e| e.alive.strong_count() > 0)
            .collect();
        let mut size = 64;
        while (live.len() + 1) * 4 > size {
            size *= 2;
        }
        self.slots = (0..size).map(|_| None).collect();
        self.len = 0;
        for entry in live {
            self.put(entry);
        }
    }

    fn put(&mut self, entry: Entry) {
        let mut i = self.slot(entry.layer, entry.meta);
        while self.slots[i].is_some() {
            i = (i + 1) & (self.slots.len() - 1);
        }
        self.slots[i] = Some(entry);
        self.len += 1;
    }
}

/// Returns what `prepared`'s layer knows about the callsite of `event`, working it out the
/// first time this thread asks. At thread teardown it is worked out afresh each time.
#[inline]
pub(crate) fn lookup(event: &Event<'_>, prepared: &Prepared) -> Rc<CallsiteInfo> {
    let meta = event.metadata();
    let addr = std::ptr::from_ref(meta) as usize;
    let found = TABLE.try_with(|table| {
        let table = table.try_borrow().ok()?;
        table.get(prepared.id, addr).cloned()
    });
    match found {
        Ok(Some(info)) => info,
        _ => prepare(event, prepared, addr),
    }
}

/// The first event of a callsite for a layer on this thread: prepares its keys and keeps them
/// in the thread's table (a rebuild may prune dropped layers' entries). Out of line, so that
/// the look-up every event makes stays small.
#[cold]
#[inline(never)]
fn prepare(event: &Event<'_>, prepared: &Prepared, addr: usize) -> Rc<CallsiteInfo> {
    let info = Rc::new(CallsiteInfo::new(
        event.metadata(),
        prepared,
        event.is_log(),
    ));
    let _ = TABLE.try_with(|table| {
        if let Ok(mut table) = table.try_borrow_mut() {
            if table.get(prepared.id, addr).is_none() {
                table.insert(Entry {
                    layer: prepared.id,
                    alive: prepared.liveness(),
                    meta: addr,
                    info: Rc::clone(&info),
                });
            }
        }
    });
    info
}

/// This thread's table: entries, then slots.
#[cfg(test)]
fn table_size() -> (usize, usize) {
    TABLE.with(|table| {
        let table = table.borrow();
        (table.len, table.slots.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::prepared::Settings;

    fn prepared() -> Prepared {
        Prepared::new(Settings::default(), &[], vec!["password".into()])
    }

    struct Cs;
    impl tracing::callsite::Callsite for Cs {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            &META
        }
    }
    static CS: Cs = Cs;
    static META: Metadata<'static> = Metadata::new(
        "test",
        "my\"target",
        tracing::Level::INFO,
        None,
        None,
        None,
        tracing::field::FieldSet::new(
            &[
                "message",
                "a",
                "a.b",
                "timestamp",
                "err",
                "errSources",
                "password",
                "log.line",
                "b",
                "b",
            ],
            tracing::callsite::Identifier(&CS),
        ),
        tracing::metadata::Kind::EVENT,
    );

    #[test]
    fn only_fields_that_cannot_conflict_are_plain() {
        let info = CallsiteInfo::new(&META, &prepared(), false);
        let plain: Vec<bool> = info.fields.iter().map(|f| f.plain).collect();
        // message: the message; a: prefix of a.b; a.b: dotted; timestamp: reserved; err:
        // free; errSources: an error's causes key; password: redacted; log.line: dotted; b:
        // twice.
        assert_eq!(
            plain,
            [false, false, false, false, true, false, false, false, false, false]
        );
        assert!(info.fields[0].message && !info.fields[1].message);
        assert!(info.fields[6].redacted && !info.fields[4].redacted);
        assert!(info.fields[7].log);
        assert_eq!(&*info.fields[4].fragment, br#","err":"#);
        assert_eq!(
            info.target.as_deref(),
            Some(&br#","target":"my\"target""#[..])
        );
    }

    #[test]
    fn one_entry_per_layer_and_callsite() {
        let (a, b) = (prepared(), prepared());
        let values = META.fields().value_set(&[]);
        let event = Event::new(&META, &values);
        let first = lookup(&event, &a);
        assert!(Rc::ptr_eq(&first, &lookup(&event, &a)));
        assert!(!Rc::ptr_eq(&first, &lookup(&event, &b)));
        assert!(!first.is_log);
    }

    /// Issue 19 §4: rebuilding layers on one thread (tests, reloads) does not grow its
    /// callsite table: the entries of dropped layers are pruned.
    #[test]
    fn dropped_layers_leave_the_table() {
        use tracing_subscriber::prelude::*;

        let writer = crate::test_support::MockMakeWriter::default();
        for i in 0..1_000 {
            let layer = crate::JsonLayer::new(writer.clone());
            let subscriber = tracing_subscriber::registry().with(layer);
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!(i, "one line per layer");
                tracing::warn!(i, "another callsite");
            });
        }
        let text = writer.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2_000, "every layer wrote its lines");
        assert_eq!(lines[1_999]["i"], 999);
        let (entries, slots) = table_size();
        // Two callsites of one live layer at most, plus the dead ones since the last rebuild.
        assert!(entries <= 32, "{entries} entries in {slots} slots");
        assert!(slots <= 64, "{entries} entries in {slots} slots");
    }

    #[test]
    fn live_layers_keep_their_entries_through_a_rebuild() {
        let live: Vec<Prepared> = (0..100).map(|_| prepared()).collect();
        let values = META.fields().value_set(&[]);
        let event = Event::new(&META, &values);
        let first: Vec<Rc<CallsiteInfo>> = live.iter().map(|p| lookup(&event, p)).collect();
        for _ in 0..1_000 {
            let dropped = prepared();
            lookup(&event, &dropped);
        }
        for (p, info) in live.iter().zip(&first) {
            assert!(Rc::ptr_eq(info, &lookup(&event, p)), "still cached");
        }
        let (entries, slots) = table_size();
        assert!(entries >= 100, "{entries}");
        assert!(slots <= 1024, "{entries} entries in {slots} slots");
    }
}
