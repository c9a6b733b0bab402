//! [`LineBuffer`]: the lines a context holds back, as bytes in order, bounded.

use std::sync::Mutex;

use tracing::Metadata;

/// One held line: the layer that formatted it, the metadata its writer is made for, and
/// where its bytes end in [`LineBuffer::bytes`].
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) owner: u64,
    pub(crate) meta: &'static Metadata<'static>,
    pub(crate) end: usize,
}

/// The lines a context holds, in the order they were logged, as the layers formatted them:
/// each keeps its own timestamp and the context as it was when it was logged.
#[derive(Debug)]
pub(crate) struct LineBuffer {
    /// Every held line's bytes, one after the other: no allocation per line, only growth.
    pub(crate) bytes: Vec<u8>,
    pub(crate) held: Vec<Held>,
    /// Lines not held because the buffer was full, not yet reported.
    pub(crate) dropped: u64,
    pub(crate) limit: usize,
}

impl LineBuffer {
    pub(crate) const fn new(limit: usize) -> Self {
        LineBuffer {
            bytes: Vec::new(),
            held: Vec::new(),
            dropped: 0,
            limit,
        }
    }

    /// Holds `line`, or counts it as dropped when it would take the buffer past its limit.
    pub(crate) fn push(&mut self, owner: u64, meta: &'static Metadata<'static>, line: &[u8]) {
        if self.bytes.len() + line.len() > self.limit {
            self.dropped += 1;
            return;
        }
        self.bytes.extend_from_slice(line);
        self.held.push(Held {
            owner,
            meta,
            end: self.bytes.len(),
        });
    }

    /// Takes every held line out (the buffer is left empty, with its limit) and the count of
    /// dropped lines.
    pub(crate) fn take(&mut self) -> LineBuffer {
        std::mem::replace(self, LineBuffer::new(self.limit))
    }

    /// Each held line: the layer that formatted it, its metadata and its bytes, in order.
    pub(crate) fn lines(&self) -> impl Iterator<Item = (u64, &'static Metadata<'static>, &[u8])> {
        let mut start = 0;
        self.held.iter().map(move |held| {
            let line = &self.bytes[start..held.end];
            start = held.end;
            (held.owner, held.meta, line)
        })
    }
}

/// A store's buffer: `None` until the context buffers.
pub(crate) type BufferSlot = Mutex<Option<LineBuffer>>;
