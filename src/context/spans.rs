//! How spans carry the context: a span created while a context is current remembers it, and
//! entering the span (on any thread, in any task) makes it current again. Called from the
//! layer's span callbacks.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer;
use tracing_subscriber::registry::LookupSpan;

use super::current::{pop_span, push_span, with_current_or};
use super::store::Context;
use super::value::Value;

/// Which of our layers keeps a span's frames. Every layer of ours in a subscriber sees every
/// span; the first one to store the span's context pushes and pops its frames, so two layers
/// (a `ContextLayer` and a `JsonLayer`, or two `JsonLayer`s) never push them twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner(u64);

impl Owner {
    /// Returns an owner id no other layer has.
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Owner(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The context a span carries, kept in the span's extensions, and the layer that keeps its
/// frames.
#[derive(Debug)]
struct SpanContext {
    ctx: Context,
    owner: Owner,
}

/// Remembers the context of a new span: its explicit parent's, or else the current one. Span
/// fields named in `promote` are set in that context.
pub(crate) fn on_new_span<S>(
    attrs: &Attributes<'_>,
    id: &Id,
    cx: &layer::Context<'_, S>,
    promote: &[Box<str>],
    owner: Owner,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = cx.span(id) else { return };
    // Like a line, a span takes the innermost scope's context; where no scope is active, its
    // explicit parent's, else the current span's.
    let parent = attrs.parent().and_then(|parent| context_of(parent, cx));
    let ctx = with_current_or(parent.as_ref(), |ctx| ctx.cloned());
    let Some(ctx) = ctx else { return };
    if !promote.is_empty() {
        // A field's `Value::record` is user code; a panic there skips the rest of the fields.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            attrs.record(&mut Promote { ctx: &ctx, promote })
        }));
    }
    let mut extensions = span.extensions_mut();
    // Two of our layers in one subscriber both see the span; the first one stores it.
    if extensions.get_mut::<SpanContext>().is_none() {
        extensions.insert(SpanContext { ctx, owner });
    }
}

/// Sets promoted fields recorded after the span was created.
pub(crate) fn on_record<S>(
    id: &Id,
    values: &Record<'_>,
    cx: &layer::Context<'_, S>,
    promote: &[Box<str>],
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if promote.is_empty() {
        return;
    }
    if let Some(ctx) = context_of(id, cx) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            values.record(&mut Promote { ctx: &ctx, promote })
        }));
    }
}

/// Returns the context a span carries, if any.
pub(crate) fn context_of<S>(id: &Id, cx: &layer::Context<'_, S>) -> Option<Context>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = cx.span(id)?;
    let extensions = span.extensions();
    extensions.get::<SpanContext>().map(|c| c.ctx.clone())
}

/// Makes the span's context current while it is entered, if `owner` keeps its frames.
pub(crate) fn on_enter<S>(id: &Id, cx: &layer::Context<'_, S>, owner: Owner)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if IN_SCOPE.get() {
        return;
    }
    let Some(span) = cx.span(id) else { return };
    let extensions = span.extensions();
    if let Some(stored) = extensions.get::<SpanContext>() {
        if stored.owner == owner {
            push_span(id.into_u64(), owner.0, stored.ctx.clone());
        }
    }
}

/// Removes what [`on_enter`] pushed. A span without a context, or kept by another layer,
/// pushed nothing of this owner's, so this needs no lookup.
pub(crate) fn on_exit(id: &Id, owner: Owner) {
    if IN_SCOPE.get() {
        return;
    }
    pop_span(id.into_u64(), owner.0);
}

thread_local! {
    /// Set while the crate enters or exits a span of its own inside a scope (see
    /// [`enter_in_scope`]): the span callbacks then leave the frames alone.
    static IN_SCOPE: Cell<bool> = const { Cell::new(false) };
}

/// Enters `span`, a span the crate entered only where a scope of its own is (or is about to
/// be) active and no code that reads the context runs outside that scope while the span is
/// entered: the HTTP middleware's request span, around its calls and polls.
///
/// A span frame makes the span's context current only where no scope is active (scopes win),
/// so such a frame would never be read: the layers' callbacks skip pushing and popping it,
/// which saves a span lookup, a read lock and a frame per enter. The span is entered as usual
/// for every other layer (the registry's current span, OpenTelemetry's context). Entering the
/// span any other way (`Span::current().in_scope(..)` in user code, `.instrument(span)`) is
/// unaffected.
#[cfg(feature = "http")]
pub(crate) fn enter_in_scope(span: &tracing::Span) -> EnteredInScope<'_> {
    let _flag = InScopeFlag::set();
    EnteredInScope(Some(span.enter()))
}

/// The guard of [`enter_in_scope`]: exits the span the same way when dropped.
#[cfg(feature = "http")]
pub(crate) struct EnteredInScope<'a>(Option<tracing::span::Entered<'a>>);

#[cfg(feature = "http")]
impl Drop for EnteredInScope<'_> {
    fn drop(&mut self) {
        let _flag = InScopeFlag::set();
        drop(self.0.take());
    }
}

/// Sets [`IN_SCOPE`] for the duration of one enter or exit, and puts back what was there
/// (also when a layer's callback panics).
#[cfg(feature = "http")]
struct InScopeFlag(bool);

#[cfg(feature = "http")]
impl InScopeFlag {
    fn set() -> Self {
        InScopeFlag(IN_SCOPE.replace(true))
    }
}

#[cfg(feature = "http")]
impl Drop for InScopeFlag {
    fn drop(&mut self) {
        IN_SCOPE.set(self.0);
    }
}

/// Copies span fields named in the promote list into the context.
struct Promote<'a> {
    ctx: &'a Context,
    promote: &'a [Box<str>],
}

impl Promote<'_> {
    fn set(&mut self, field: &Field, value: impl Into<Value>) {
        if self.promote.iter().any(|p| **p == *field.name()) {
            self.ctx.set_value(field.name(), value.into());
        }
    }
}

impl Visit for Promote<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.promote.iter().any(|p| **p == *field.name()) {
            // A `Debug` impl that panics leaves the context as it was.
            let text = catch_unwind(AssertUnwindSafe(|| format!("{value:?}")));
            if let Ok(text) = text {
                self.ctx.set_value(field.name(), text.into());
            }
        }
    }
}
