//! Lines from 8 threads × 50,000 events to one shared writer never interleave.
//!
//! The writer is an OS pipe shared by all threads with no lock of ours around it: a write of up
//! to PIPE_BUF bytes to a pipe is atomic, so lines stay whole only if the layer hands each line
//! to the writer in one write.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;

use tracing::info;
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::prelude::*;

const THREADS: usize = 8;
const EVENTS: usize = 50_000;

#[test]
fn lines_from_many_threads_never_interleave() {
    let (reader, writer) = std::io::pipe().unwrap();
    let writer = Arc::new(writer);
    let make_writer = {
        let writer = Arc::clone(&writer);
        move || PipeWriter(Arc::clone(&writer))
    };
    let reading = std::thread::spawn(move || {
        let mut counts = vec![0usize; THREADS];
        for line in BufReader::new(reader).lines() {
            let line = common::parse_line(&line.unwrap());
            let t = line.at("thread").as_u64().unwrap() as usize;
            assert_eq!(line.str("requestId"), Some(format!("thread-{t}").as_str()));
            assert_eq!(
                line.at("seq").as_u64(),
                Some(counts[t] as u64),
                "lines of a thread stay in order"
            );
            counts[t] += 1;
        }
        counts
    });
    let subscriber: tracing::Dispatch = tracing_subscriber::registry()
        .with(JsonLayer::new(make_writer))
        .into();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let subscriber = subscriber.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&subscriber, || {
                    Context::new()
                        .with_request_id(format!("thread-{t}"))
                        .in_scope(|| {
                            for seq in 0..EVENTS {
                                info!(
                                    thread = t,
                                    seq,
                                    padding = "some text to make the line longer than a cache line",
                                    "event {seq}"
                                );
                            }
                        })
                })
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(subscriber);
    drop(writer);
    let counts = reading.join().unwrap();
    assert_eq!(counts, vec![EVENTS; THREADS]);
    eprintln!(
        "interleave: {} lines from {THREADS} threads, each parsed",
        THREADS * EVENTS
    );
}

/// A shared pipe end: every `write` goes straight to the OS, with no lock of ours.
struct PipeWriter(Arc<std::io::PipeWriter>);

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
