//! [`EventPath`]: what every output layer does around the formatting of one event.

use std::cell::Cell;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::SystemTime;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{self, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::errors::ErrorCounter;
use crate::context::{spans, with_current_or, Context, ContextLayer};

/// Turns one event into one line: the only part an output layer adds to the [`EventPath`].
pub(crate) trait Format {
    /// Returns the time the line is stamped with.
    fn now(&self) -> SystemTime;

    /// Whether failed writes are said on stderr (they are counted either way).
    fn report_errors(&self) -> bool;

    /// Called when the subscriber the layer is part of becomes a `Dispatch`.
    fn register(&self, _subscriber: &tracing::Dispatch) {}

    /// Builds the line of `event`, logged in `context`, and hands it to `write` once with the
    /// metadata it was written for. User code it runs (`Debug`, `Display`, `Error`) may panic;
    /// the path catches what the format does not.
    fn format<S>(
        &self,
        event: &Event<'_>,
        cx: &layer::Context<'_, S>,
        context: &EventContext,
        now: SystemTime,
        write: impl FnOnce(&Metadata<'_>, &[u8]),
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>;
}

/// Where an event finds its context: the innermost active scope's; where none is active, the
/// context of the event's explicit parent (`info!(parent: &span, ..)`), else the current
/// span's (see [`Context::current`]).
#[derive(Debug)]
pub(crate) struct EventContext {
    parent: Option<Context>,
}

impl EventContext {
    /// Looks up the context of the event's explicit parent, the one lookup done before the
    /// line is built.
    fn of<S>(event: &Event<'_>, cx: &layer::Context<'_, S>) -> Self
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let parent = event
            .parent()
            .and_then(|parent| spans::context_of(parent, cx));
        EventContext { parent }
    }

    /// Calls `f` with the event's context, or `None` outside any.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&Context>) -> R) -> R {
        with_current_or(self.parent.as_ref(), f)
    }
}

/// The shared part of an output layer: the span callbacks, the event's context, panics, the
/// writer and its failures. `F` formats; this does everything else.
#[derive(Debug)]
pub(crate) struct EventPath<F, W> {
    pub(crate) format: F,
    /// Makes spans carry the context; the one place that does, for every layer.
    pub(crate) context: ContextLayer,
    pub(crate) make_writer: W,
    pub(crate) errors: ErrorCounter,
}

impl<F, W> EventPath<F, W> {
    pub(crate) fn new(format: F, make_writer: W) -> Self {
        EventPath {
            format,
            context: ContextLayer::new(),
            make_writer,
            errors: ErrorCounter::default(),
        }
    }

    /// Returns the same path writing to `make_writer`.
    pub(crate) fn with_writer<W2>(self, make_writer: W2) -> EventPath<F, W2> {
        EventPath {
            format: self.format,
            context: self.context,
            make_writer,
            errors: self.errors,
        }
    }
}

impl<F, W> EventPath<F, W>
where
    F: Format,
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// Writes one finished line, counting a failure or a panicking writer.
    ///
    /// A line logged from inside the writer itself (a writer that logs, or the panic hook while
    /// the writer panics with its lock held) goes to stderr instead: writing it to the writer
    /// could deadlock on that lock.
    fn write_line(&self, meta: &Metadata<'_>, bytes: &[u8]) {
        let Some(_writing) = WritingGuard::enter() else {
            let _ = io::stderr().write_all(bytes);
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.make_writer.make_writer_for(meta).write_all(bytes)
        }));
        let report = self.format.report_errors();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => self
                .errors
                .record(report, format_args!("could not write a log line: {err}")),
            Err(_) => self
                .errors
                .record(report, format_args!("the log writer panicked")),
        }
    }
}

impl<S, F, W> Layer<S> for EventPath<F, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    F: Format + 'static,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.format.register(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: layer::Context<'_, S>) {
        self.context.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: layer::Context<'_, S>) {
        self.context.on_record(id, values, cx);
    }

    fn on_enter(&self, id: &Id, cx: layer::Context<'_, S>) {
        self.context.on_enter(id, cx);
    }

    fn on_exit(&self, id: &Id, cx: layer::Context<'_, S>) {
        self.context.on_exit(id, cx);
    }

    fn on_event(&self, event: &Event<'_>, cx: layer::Context<'_, S>) {
        let now = self.format.now();
        // Formats catch the panics of the values they write and put a marker in their place.
        // This catches the rest (a subscriber's span lookup, anything missed): the line is
        // dropped and counted, the format's buffer resets itself, and the application never
        // sees the panic.
        let built = catch_unwind(AssertUnwindSafe(|| {
            let context = EventContext::of(event, &cx);
            self.format
                .format(event, &cx, &context, now, |meta, bytes| {
                    self.write_line(meta, bytes)
                });
        }));
        if built.is_err() {
            self.errors.record(
                self.format.report_errors(),
                format_args!("a panic while building a log line"),
            );
        }
    }
}

thread_local! {
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as inside a writer call until dropped.
struct WritingGuard;

impl WritingGuard {
    /// Returns `None` if this thread is already inside a writer call (or being torn down).
    fn enter() -> Option<Self> {
        WRITING
            .try_with(|writing| !writing.replace(true))
            .unwrap_or(false)
            .then_some(WritingGuard)
    }
}

impl Drop for WritingGuard {
    fn drop(&mut self) {
        let _ = WRITING.try_with(|writing| writing.set(false));
    }
}
