//! [`EventPath`]: what every output layer does around the formatting of one event.

use std::cell::Cell;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tracing::field::Value;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{self, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::errors::ErrorCounter;
use crate::context::buffer::{self, DROPPED_META};
use crate::context::level;
use crate::context::line_buffer::LineBuffer;
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
    /// Which lines held in a context's buffer are this path's (see `context/buffer.rs`).
    owner: u64,
}

/// Gives each path an owner id of its own.
fn next_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<F, W> EventPath<F, W> {
    pub(crate) fn new(format: F, make_writer: W) -> Self {
        EventPath {
            format,
            context: ContextLayer::new(),
            make_writer,
            errors: ErrorCounter::default(),
            owner: next_owner(),
        }
    }

    /// Returns the same path writing to `make_writer`.
    pub(crate) fn with_writer<W2>(self, make_writer: W2) -> EventPath<F, W2> {
        EventPath {
            format: self.format,
            context: self.context,
            make_writer,
            errors: self.errors,
            owner: self.owner,
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

    /// Writes the lines `ctx` holds that this path formatted, in order; then, if the buffer
    /// dropped lines, the `buffered lines dropped` line, formatted as any event (built here,
    /// never dispatched: no `tracing` macro on this path).
    fn flush_held<S>(&self, ctx: &Context, cx: &layer::Context<'_, S>, context: &EventContext)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // Taken under the lock, written after it: a writer may be slow.
        let Some(taken) = ctx.lock_buffer().as_mut().map(LineBuffer::take) else {
            return;
        };
        let mut others = false;
        for (owner, meta, line) in taken.lines() {
            if owner == self.owner {
                self.write_line(meta, line);
            } else {
                others = true;
            }
        }
        // Another output layer's lines (a subscriber with two of them) go back, for it to
        // write when it sees the same flush; the dropped count is reported here.
        if others {
            if let Some(buffer) = ctx.lock_buffer().as_mut() {
                for (owner, meta, line) in taken.lines().filter(|(o, ..)| *o != self.owner) {
                    buffer.push(owner, meta, line);
                }
            }
        }
        let dropped = taken.dropped;
        if dropped == 0 {
            return;
        }
        let fields = DROPPED_META.fields();
        let (Some(message), Some(count)) = (fields.field("message"), fields.field("dropped"))
        else {
            return;
        };
        let text = "buffered lines dropped";
        let values: [(&tracing::field::Field, Option<&dyn Value>); 2] =
            [(&message, Some(&text)), (&count, Some(&dropped))];
        let values = fields.value_set(&values);
        let event = Event::new(&DROPPED_META, &values);
        self.format
            .format(&event, cx, context, self.format.now(), |meta, bytes| {
                self.write_line(meta, bytes)
            });
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
            // Until some context asks for a level or a buffer (one relaxed load), no line is
            // held and no flush is sent: the event is formatted and written.
            if level::raised() == level::NONE {
                self.format
                    .format(event, &cx, &context, now, |meta, bytes| {
                        self.write_line(meta, bytes)
                    });
            } else {
                self.event_with_buffers(event, &cx, &context, now);
            }
        }));
        if built.is_err() {
            self.errors.record(
                self.format.report_errors(),
                format_args!("a panic while building a log line"),
            );
        }
    }
}

impl<F, W> EventPath<F, W>
where
    F: Format,
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// The event path once contexts may hold lines: a held event's line goes to its
    /// context's buffer, and an `ERROR` event or the flush event of `flush_buffer()` writes
    /// what the context holds first.
    #[inline(never)]
    fn event_with_buffers<S>(
        &self,
        event: &Event<'_>,
        cx: &layer::Context<'_, S>,
        context: &EventContext,
        now: SystemTime,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let meta = event.metadata();
        // The filter enabled this event only for the context's buffer: its line is held.
        let held = buffer::is_held(meta);
        let flush = buffer::is_flush(meta);
        if flush || (!held && *meta.level() == Level::ERROR) {
            context.with(|ctx| {
                if let Some(ctx) = ctx.filter(|ctx| ctx.has_held()) {
                    self.flush_held(ctx, cx, context);
                }
            });
        }
        if flush {
            return;
        }
        self.format
            .format(event, cx, context, now, |line_meta, bytes| {
                if held {
                    context.with(|ctx| {
                        let Some(ctx) = ctx else { return };
                        if let Some(buffer) = ctx.lock_buffer().as_mut() {
                            buffer.push(self.owner, meta, bytes);
                        }
                    });
                } else {
                    self.write_line(line_meta, bytes)
                }
            });
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
