//! Fixtures for the unit tests: a capturing writer and a fixed clock.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::MakeWriter;

/// A `MakeWriter` that keeps everything written to it.
#[derive(Clone, Default, Debug)]
pub(crate) struct MockMakeWriter(Arc<Mutex<Vec<u8>>>);

#[derive(Debug)]
pub(crate) struct MockWriter<'a>(MutexGuard<'a, Vec<u8>>);

impl MockMakeWriter {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl io::Write for MockWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for MockMakeWriter {
    type Writer = MockWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        MockWriter(self.0.lock().unwrap())
    }
}

/// 2026-11-24T14:02:12.123456Z.
pub(crate) fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_795_528_932, 123_456_000)
}
