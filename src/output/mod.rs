//! The event path every output layer shares: finding an event's context, catching what
//! panics, writing the finished line once and counting what could not be written.
//!
//! An output layer ([`JsonLayer`](crate::JsonLayer), [`PrettyLayer`](crate::PrettyLayer)) is
//! an [`EventPath`] and a [`Format`]: the path keeps the spans carrying the context (through
//! its [`ContextLayer`](crate::ContextLayer)), finds the context an event is logged in, and
//! hands the finished line to the writer; the format only turns one event into bytes. A new
//! output layer is a new `Format` and nothing else.

mod errors;
mod path;

pub use errors::ErrorCounter;
pub(crate) use path::{EventContext, EventPath, Format};

/// Implements `tracing_subscriber::Layer` for an output layer `$layer<W>` whose event path is
/// its field `path`: every callback goes to the path, so the layer itself only formats.
macro_rules! output_layer {
    ($layer:ident) => {
        // The event path does it all; the layer only formats.
        impl<S, W> ::tracing_subscriber::layer::Layer<S> for $layer<W>
        where
            S: ::tracing::Subscriber + for<'a> ::tracing_subscriber::registry::LookupSpan<'a>,
            W: for<'w> ::tracing_subscriber::fmt::MakeWriter<'w> + 'static,
        {
            fn on_register_dispatch(&self, subscriber: &::tracing::Dispatch) {
                ::tracing_subscriber::layer::Layer::<S>::on_register_dispatch(
                    &self.path, subscriber,
                );
            }

            fn on_new_span(
                &self,
                attrs: &::tracing::span::Attributes<'_>,
                id: &::tracing::span::Id,
                cx: ::tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.path.on_new_span(attrs, id, cx);
            }

            fn on_record(
                &self,
                id: &::tracing::span::Id,
                values: &::tracing::span::Record<'_>,
                cx: ::tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.path.on_record(id, values, cx);
            }

            fn on_enter(
                &self,
                id: &::tracing::span::Id,
                cx: ::tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.path.on_enter(id, cx);
            }

            fn on_exit(
                &self,
                id: &::tracing::span::Id,
                cx: ::tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.path.on_exit(id, cx);
            }

            #[inline]
            fn on_event(
                &self,
                event: &::tracing::Event<'_>,
                cx: ::tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.path.on_event(event, cx);
            }
        }
    };
}

pub(crate) use output_layer;
