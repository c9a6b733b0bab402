//! A writer for the benches that discards every byte and counts, on the writing thread, the
//! writes that end a line, so that a stack that writes no line is seen (the layers measured
//! write each line with one `write_all`).

use std::cell::Cell;
use std::io;

use tracing_subscriber::fmt::MakeWriter;

thread_local! {
    static LINES: Cell<u64> = const { Cell::new(0) };
}

/// Discards every byte, counting the lines.
#[derive(Clone, Copy, Debug)]
pub struct Discard;

impl io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.last() == Some(&b'\n') {
            LINES.with(|n| n.set(n.get() + 1));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for Discard {
    type Writer = Discard;

    fn make_writer(&self) -> Discard {
        Discard
    }
}

/// The lines this thread has written so far.
pub fn lines() -> u64 {
    LINES.with(Cell::get)
}
