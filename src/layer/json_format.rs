//! [`JsonFormat`]: the [`Format`] of a [`JsonLayer`](super::JsonLayer), one event as one JSON
//! object, rebuilt tighter when it comes out over the line-size cap.

use std::time::SystemTime;

use tracing::{Event, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer;
use tracing_subscriber::registry::LookupSpan;

use super::callsite;
use super::cap::Cap;
use super::line;
use super::line_writer::LineWriter;
use super::prepared::Prepared;
use crate::otel::SpanIdsLookup;
use crate::output::{EventContext, Format};

/// What a [`JsonLayer`](super::JsonLayer) formats with: its prepared keys, and how it finds
/// the OpenTelemetry ids of an event.
#[derive(Debug)]
pub(crate) struct JsonFormat {
    pub(crate) prepared: Prepared,
    /// Finds the OpenTelemetry span ids of an event (`crate::otel`).
    pub(crate) otel: SpanIdsLookup,
}

impl Format for JsonFormat {
    #[inline]
    fn now(&self) -> SystemTime {
        (self.prepared.settings.clock)()
    }

    fn report_errors(&self) -> bool {
        self.prepared.settings.report_errors
    }

    fn register(&self, subscriber: &tracing::Dispatch) {
        self.otel.register(subscriber);
    }

    /// Builds the event's line in this thread's buffer and hands it to `write`.
    fn format<S>(
        &self,
        event: &Event<'_>,
        cx: &layer::Context<'_, S>,
        context: &EventContext,
        now: SystemTime,
        write: impl FnOnce(&Metadata<'_>, &[u8]),
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let callsite = callsite::lookup(event, &self.prepared);
        let normalized = if callsite.is_log {
            event.normalized_metadata()
        } else {
            None
        };
        let from_log = normalized.is_some();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let settings = &self.prepared.settings;
        let span = if settings.span_name {
            cx.event_span(event)
        } else {
            None
        };
        // The ids of the innermost OpenTelemetry span the event is in replace the context's
        // trace and span ids (`crate::otel`). Looked up before the line buffer is taken, as
        // starting a span can log.
        let span_ids = self.otel.event_ids(event, cx);
        line::with_line(|line| {
            let mut cap = Cap::NONE;
            loop {
                let mut writer = LineWriter::new(line, &self.prepared, cap);
                writer.set_span_ids(span_ids);
                writer.set_callsite(&callsite, from_log);
                writer.core(now, meta.level());
                context.with(|ctx| {
                    if let Some(ctx) = ctx {
                        writer.context(&ctx.read());
                    }
                });
                writer.layer_keys(meta, span.as_ref().map(|s| s.name()));
                writer.fields(event);
                writer.finish();
                // Rare: a line over the cap is built again, tighter, rather than cut blindly.
                if line.bytes.len() <= settings.max_line {
                    break;
                }
                match cap.tighter(settings.max_line) {
                    Some(tighter) => {
                        cap = tighter;
                        line.clear();
                    }
                    None => break,
                }
            }
            write(meta, &line.bytes);
        });
    }
}
