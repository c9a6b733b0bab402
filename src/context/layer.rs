//! [`ContextLayer`]: context propagation through spans as a layer of its own, for subscribers
//! whose output layer is not a [`JsonLayer`](crate::JsonLayer).

use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{self, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::spans::{self, Owner};
use crate::schema::push_name_forms;

/// A [`Layer`] that makes spans carry the request context, and writes nothing.
///
/// A span created while a [`Context`](crate::Context) is current remembers it, and entering
/// the span where no scope is active makes it current again, exactly as with a
/// [`JsonLayer`](crate::JsonLayer). Use it when the output is another layer, so that
/// [`Context::current`](crate::context::Context::current), [`request_id`](crate::request_id),
/// [`sql::tag`](crate::sql::tag) and the HTTP middleware work under it: tracing-subscriber's
/// `fmt` layer in development, `opentelemetry-appender-tracing` for OTLP logs, a layer of
/// your own that reads the context.
///
/// A `JsonLayer` does all this itself and needs no `ContextLayer`. Several of the crate's
/// layers in one subscriber share the work: the first to see a span keeps its frames, so
/// nothing is done twice.
///
/// # Filtering
///
/// Add it without a filter, and put level filters on the output layers (per-layer filters),
/// not in front of the whole subscriber: a span that a global filter disables does not exist
/// and carries nothing. Unfiltered, this layer keeps every span enabled, as
/// [`KeepSpans`](crate::KeepSpans) does for a `JsonLayer`.
///
/// # Examples
///
/// ```
/// use tracing_ambient::{Context, ContextLayer};
/// use tracing_subscriber::prelude::*;
/// use tracing_subscriber::filter::LevelFilter;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(ContextLayer::new())
///     .with(tracing_subscriber::fmt::layer().with_filter(LevelFilter::WARN));
///
/// tracing::subscriber::with_default(subscriber, || {
///     let span = Context::new()
///         .with_request_id("r1")
///         .in_scope(|| tracing::info_span!("work"));
///     // Elsewhere, with no scope active: the span brings its request back.
///     span.in_scope(|| assert_eq!(tracing_ambient::request_id().as_deref(), Some("r1")));
/// });
/// ```
#[derive(Debug)]
pub struct ContextLayer {
    owner: Owner,
    promote: Vec<Box<str>>,
}

impl ContextLayer {
    /// Returns a layer that makes spans carry the context.
    ///
    /// ```
    /// let layer = tracing_ambient::ContextLayer::new();
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        ContextLayer {
            owner: Owner::new(),
            promote: Vec::new(),
        }
    }

    /// Promotes a span field to a context key, as
    /// [`JsonLayer::promote_span_field`](crate::layer::JsonLayer::promote_span_field) does. Defaults
    /// to none.
    ///
    /// ```
    /// let layer = tracing_ambient::ContextLayer::new().promote_span_field("tenant_id");
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn promote_span_field(mut self, name: &str) -> Self {
        self.promote(name);
        self
    }

    /// Adds a span field to promote, for the output layers' own `promote_span_field`.
    pub(crate) fn promote(&mut self, name: &str) {
        push_name_forms(&mut self.promote, name);
    }

    /// The span fields promoted, as given and in snake case.
    #[cfg(test)]
    pub(crate) fn promoted(&self) -> &[Box<str>] {
        &self.promote
    }
}

impl Default for ContextLayer {
    fn default() -> Self {
        ContextLayer::new()
    }
}

impl<S> Layer<S> for ContextLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, cx: layer::Context<'_, S>) {
        spans::on_new_span(attrs, id, &cx, &self.promote, self.owner);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, cx: layer::Context<'_, S>) {
        spans::on_record(id, values, &cx, &self.promote);
    }

    fn on_enter(&self, id: &Id, cx: layer::Context<'_, S>) {
        spans::on_enter(id, &cx, self.owner);
    }

    fn on_exit(&self, id: &Id, _cx: layer::Context<'_, S>) {
        spans::on_exit(id, self.owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::MockMakeWriter;
    use crate::{Context, JsonLayer};
    use tracing_subscriber::prelude::*;

    #[test]
    fn two_layers_of_ours_push_a_span_frame_once() {
        let writer = MockMakeWriter::default();
        let subscriber = tracing_subscriber::registry()
            .with(ContextLayer::new())
            .with(JsonLayer::new(writer.clone()))
            .with(JsonLayer::new(writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = Context::new()
                .with_request_id("r1")
                .in_scope(|| tracing::info_span!("work"));
            span.in_scope(|| {
                assert_eq!(crate::context::current::span_frames(), 1);
                tracing::info!("inside");
            });
            assert_eq!(crate::context::current::span_frames(), 0);
        });
        assert_eq!(
            writer.text().lines().count(),
            2,
            "each JsonLayer writes once"
        );
    }

    #[test]
    #[cfg(feature = "http")]
    fn a_span_entered_in_scope_pushes_no_frame_and_others_still_do() {
        use crate::context::current::span_frames;
        use crate::context::spans::enter_in_scope;
        let subscriber = tracing_subscriber::registry().with(ContextLayer::new());
        tracing::subscriber::with_default(subscriber, || {
            let ctx = Context::new().with_request_id("r1");
            let span = ctx.in_scope(|| tracing::info_span!("request"));
            ctx.in_scope(|| {
                let entered = enter_in_scope(&span);
                assert_eq!(span_frames(), 0, "the crate's own enter pushes nothing");
                // The same span entered by user code inside still carries the context.
                span.in_scope(|| assert_eq!(span_frames(), 1));
                assert_eq!(span_frames(), 0);
                drop(entered);
            });
            // The flag is gone: an ordinary enter pushes a frame, and brings the context.
            span.in_scope(|| {
                assert_eq!(span_frames(), 1);
                assert_eq!(crate::request_id().as_deref(), Some("r1"));
            });
            assert_eq!(span_frames(), 0);
        });
    }
}
