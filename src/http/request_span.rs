//! The request span: made where a layer needs it (tracing-opentelemetry's, or where the user
//! asks with `with_span(true)`), and named after OpenTelemetry's HTTP server conventions.
//!
//! The request's lines, its access line and every span made inside it carry the context
//! without the request span: the middleware makes the context current around the service's
//! `call`, its future and every poll of the body. The span costs a registry slot, its fields
//! and the callbacks of every layer; only an OpenTelemetry layer, which exports it as the
//! server span, needs it. So by default ([`SpanMode::Auto`]) it is made while the subscriber
//! is not known, and from then on only when the subscriber's OpenTelemetry layer tracked it.

use std::fmt;
#[cfg(feature = "opentelemetry")]
use std::sync::atomic::{AtomicUsize, Ordering};

use http::request::Parts;
use tracing::Span;

/// Whether a request span is made: [`RequestContextLayer::with_span`] sets `On` or `Off`.
///
/// [`RequestContextLayer::with_span`]: super::layer::RequestContextLayer::with_span
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanMode {
    /// Made where a layer of the subscriber needs it: tracing-opentelemetry's.
    Auto,
    /// Always made.
    On,
    /// Never made.
    Off,
}

/// The choice for one request: whether its span is made, and what to learn from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanChoice {
    make: bool,
    /// In `Auto` mode, the subscriber the answer is learnt for.
    #[cfg(feature = "opentelemetry")]
    learn: Option<SubscriberKey>,
}

impl SpanChoice {
    /// Decides for a request served under the current subscriber.
    pub(crate) fn new(mode: SpanMode) -> Self {
        match mode {
            SpanMode::On => SpanChoice::fixed(true),
            SpanMode::Off => SpanChoice::fixed(false),
            SpanMode::Auto => SpanChoice::auto(),
        }
    }

    fn fixed(make: bool) -> Self {
        SpanChoice {
            make,
            #[cfg(feature = "opentelemetry")]
            learn: None,
        }
    }

    /// Without the `opentelemetry` feature no layer of the subscriber can need the span.
    #[cfg(not(feature = "opentelemetry"))]
    fn auto() -> Self {
        SpanChoice::fixed(false)
    }

    #[cfg(feature = "opentelemetry")]
    fn auto() -> Self {
        let key = SubscriberKey::current();
        match key.and_then(SubscriberKey::known_need) {
            Some(needed) => SpanChoice {
                make: needed,
                learn: None,
            },
            // Not known yet (or not a registry-based subscriber, which is never learnt): make
            // the span and ask the subscriber whether it tracked it.
            None => SpanChoice {
                make: true,
                learn: key,
            },
        }
    }

    /// Whether the request's span is made.
    pub(crate) fn makes_span(&self) -> bool {
        self.make
    }

    /// Remembers, for the subscriber this choice was made under, whether its OpenTelemetry
    /// layer tracked the request span.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn learn(&self, tracked: impl FnOnce() -> bool) {
        if let Some(key) = self.learn {
            key.remember(tracked());
        }
    }
}

/// The current subscriber, told apart by the address of its `Registry`.
///
/// A subscriber has one registry for its lifetime, and the global one lives as long as the
/// process, so the answer learnt once holds for every later request under it. A scoped
/// subscriber (tests) that is dropped may leave its address to the next one: the answer is
/// then learnt again only if it changes address, which is why a span is made whenever the
/// answer is not known and never left out on a guess.
#[cfg(feature = "opentelemetry")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SubscriberKey(usize);

/// The last subscriber learnt: its registry's address with the low bit set when it needs the
/// span (a `Registry` is aligned to more than one byte, so that bit is free), 0 for none.
#[cfg(feature = "opentelemetry")]
static LEARNT: AtomicUsize = AtomicUsize::new(0);

#[cfg(feature = "opentelemetry")]
impl SubscriberKey {
    fn current() -> Option<Self> {
        tracing::dispatcher::get_default(|dispatch| {
            let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
            let address = std::ptr::from_ref(registry) as usize;
            (address & 1 == 0).then_some(SubscriberKey(address))
        })
    }

    fn known_need(self) -> Option<bool> {
        let learnt = LEARNT.load(Ordering::Relaxed);
        (learnt & !1 == self.0).then_some(learnt & 1 == 1)
    }

    fn remember(self, needed: bool) {
        LEARNT.store(self.0 | usize::from(needed), Ordering::Relaxed);
    }
}

/// The request span's `otel.name`: `{method} {http.route}`, or `{method}` when the route is
/// unknown. Formatted only by a layer that reads it, so a request whose span no layer
/// records makes no `String` for it.
struct OtelName<'a> {
    method: &'a str,
    route: Option<&'a str>,
}

impl fmt::Display for OtelName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.route {
            Some(route) => write!(f, "{} {route}", self.method),
            None => f.write_str(self.method),
        }
    }
}

/// Opens the request's span, named and fielded after OpenTelemetry's HTTP server
/// conventions; `http.response.status_code` is recorded when the response is made.
pub(crate) fn request_span(parts: &Parts, route: Option<&str>) -> Span {
    let method = parts.method.as_str();
    tracing::info_span!(
        "HTTP request",
        otel.name = %OtelName { method, route },
        otel.kind = "server",
        http.request.method = method,
        url.path = parts.uri.path(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    )
}
