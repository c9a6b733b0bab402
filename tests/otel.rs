//! With the `opentelemetry` feature, lines logged inside OpenTelemetry spans carry the ids of
//! those spans as the real SDK exports them (its in-memory exporter), checked against the
//! exported spans; outside them, the context's ids.
#![cfg(feature = "opentelemetry")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{Capture, Line};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
    TracerProvider as _,
};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};
use tracing::instrument::WithSubscriber;
use tracing::span::{Attributes, Id};
use tracing::{info, info_span, Instrument, Subscriber};
use tracing_ambient::otel::{DefaultLookupSpanIds, EventSpans, LookupSpanIds, SpanIds, SpanView};
use tracing_ambient::{Context, JsonLayer, KeepSpans};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{self, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The context's own ids, which lines outside OpenTelemetry spans keep.
const CONTEXT_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CONTEXT_SPAN_ID: &str = "00f067aa0ba902b7";

/// The real SDK with a simple (synchronous) processor into the in-memory exporter.
struct Sdk {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
}

impl Sdk {
    fn new() -> Self {
        Self::with_sampler(Sampler::AlwaysOn)
    }

    fn with_sampler(sampler: Sampler) -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_simple_exporter(exporter.clone())
            .build();
        Sdk { exporter, provider }
    }

    fn layer<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("otel-test"))
    }

    /// Every span exported so far.
    fn exported(&self) -> Vec<SpanData> {
        self.provider.force_flush().expect("flush");
        self.exporter.get_finished_spans().expect("exported spans")
    }
}

/// The one exported span of this name.
fn exported<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one exported span {name:?} in {spans:#?}");
    found[0]
}

fn by_message<'a>(lines: &'a [Line], message: &str) -> &'a Line {
    let found: Vec<_> = lines
        .iter()
        .filter(|l| l.str("message") == Some(message))
        .collect();
    assert_eq!(found.len(), 1, "one line {message:?} in {lines:#?}");
    found[0]
}

/// Asserts that `line` carries the ids of the exported `span`, in W3C lowercase hex.
fn assert_ids_of(line: &Line, span: &SpanData) {
    assert_eq!(
        line.str("traceId"),
        Some(span.span_context.trace_id().to_string().as_str()),
        "traceId of {line:?}"
    );
    assert_eq!(
        line.str("spanId"),
        Some(span.span_context.span_id().to_string().as_str()),
        "spanId of {line:?}"
    );
}

fn assert_context_ids(line: &Line) {
    assert_eq!(line.str("traceId"), Some(CONTEXT_TRACE_ID), "{line:?}");
    assert_eq!(line.str("spanId"), Some(CONTEXT_SPAN_ID), "{line:?}");
}

fn request() -> Context {
    Context::new()
        .with_request_id("r1")
        .with_trace_id(CONTEXT_TRACE_ID)
        .with_span_id(CONTEXT_SPAN_ID)
}

#[test]
fn lines_carry_the_exported_ids_of_the_innermost_span() {
    let sdk = Sdk::new();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(sdk.layer())
        .with(JsonLayer::new(capture.clone()));
    tracing::subscriber::with_default(subscriber, || {
        request().in_scope(|| {
            info!("before");
            {
                let _outer = info_span!("outer").entered();
                info!("in outer");
                {
                    let _inner = info_span!("inner").entered();
                    info!("in inner");
                }
                info!("back in outer");
            }
            info!("after");
        });
    });
    let spans = sdk.exported();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let (outer, inner) = (exported(&spans, "outer"), exported(&spans, "inner"));
    assert_eq!(inner.parent_span_id, outer.span_context.span_id());
    assert_eq!(inner.span_context.trace_id(), outer.span_context.trace_id());

    let lines = capture.lines();
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_ids_of(by_message(&lines, "in outer"), outer);
    assert_ids_of(by_message(&lines, "in inner"), inner);
    assert_ids_of(by_message(&lines, "back in outer"), outer);
    assert_context_ids(by_message(&lines, "before"));
    assert_context_ids(by_message(&lines, "after"));
    // The other context keys stay, and the ids take the context's place in the key order.
    for line in &lines {
        assert_eq!(line.str("requestId"), Some("r1"), "{line:?}");
        assert_eq!(
            &line.keys()[..6],
            [
                "timestamp",
                "level",
                "message",
                "requestId",
                "traceId",
                "spanId"
            ]
        );
    }
}

#[test]
fn lines_without_a_context_carry_the_span_ids_too() {
    let sdk = Sdk::new();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(sdk.layer())
        .with(JsonLayer::new(capture.clone()));
    tracing::subscriber::with_default(subscriber, || {
        info_span!("job").in_scope(|| info!("in job"));
        info!("nowhere");
    });
    let spans = sdk.exported();
    assert_eq!(spans.len(), 1);
    let lines = capture.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let in_job = by_message(&lines, "in job");
    assert_ids_of(in_job, exported(&spans, "job"));
    assert_eq!(
        &in_job.keys()[..6],
        [
            "timestamp",
            "level",
            "message",
            "traceId",
            "spanId",
            "target"
        ]
    );
    let nowhere = by_message(&lines, "nowhere");
    assert_eq!(nowhere.get("traceId"), None);
    assert_eq!(nowhere.get("spanId"), None);
}

#[test]
fn an_explicit_parent_gives_its_ids_even_if_never_entered() {
    let sdk = Sdk::new();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(sdk.layer())
        .with(JsonLayer::new(capture.clone()));
    tracing::subscriber::with_default(subscriber, || {
        request().in_scope(|| {
            // Never entered: tracing-opentelemetry has not started its OpenTelemetry span, so
            // it has no ids yet; the line must carry the ids it is then exported with.
            let job = info_span!("job");
            let _other = info_span!("other").entered();
            info!(parent: &job, "for job");
            info!("in other");
            drop(job);
        });
        // From outside any context and span.
        let late = info_span!("late");
        info!(parent: &late, "for late");
    });
    let spans = sdk.exported();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let lines = capture.lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_ids_of(by_message(&lines, "for job"), exported(&spans, "job"));
    assert_ids_of(by_message(&lines, "in other"), exported(&spans, "other"));
    assert_ids_of(by_message(&lines, "for late"), exported(&spans, "late"));
}

#[test]
fn a_span_the_otel_layer_skips_gives_way_to_its_tracked_parent() {
    let sdk = Sdk::new();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(
            sdk.layer()
                .with_filter(filter_fn(|meta| meta.name() != "untracked")),
        )
        .with(JsonLayer::new(capture.clone()));
    tracing::subscriber::with_default(subscriber, || {
        request().in_scope(|| {
            let tracked = info_span!("tracked");
            tracked.in_scope(|| {
                info_span!("untracked").in_scope(|| info!("in untracked"));
            });
            // Explicit parent: the untracked span, under the tracked one.
            let untracked = tracked.in_scope(|| info_span!("untracked"));
            info!(parent: &untracked, "for untracked");
            // Untracked with no tracked parent: the context's ids.
            info_span!("untracked").in_scope(|| info!("alone"));
        });
    });
    let spans = sdk.exported();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let tracked = exported(&spans, "tracked");
    let lines = capture.lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_ids_of(by_message(&lines, "in untracked"), tracked);
    assert_ids_of(by_message(&lines, "for untracked"), tracked);
    assert_context_ids(by_message(&lines, "alone"));
}

#[test]
fn tasks_on_a_multi_thread_runtime_carry_their_spans() {
    let sdk = Sdk::new();
    let capture = Capture::default();
    let dispatch: tracing::Dispatch = tracing_subscriber::registry()
        .with(sdk.layer())
        .with(JsonLayer::new(capture.clone()).with_filter(KeepSpans::new(EnvFilter::new("info"))))
        .into();
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&for_threads));
        })
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(
        async {
            request()
                .scope(async {
                    let tasks: Vec<_> = (0..8)
                        .map(|n| {
                            tokio::spawn(
                                async move {
                                    tokio::task::yield_now().await;
                                    info!(n, "in task");
                                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                                    info!(n, "in task after sleep");
                                }
                                .instrument(info_span!("task", n)),
                            )
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                })
                .instrument(info_span!("request"))
                .await;
        }
        .with_subscriber(dispatch),
    );
    drop(runtime);
    let spans = sdk.exported();
    assert_eq!(spans.len(), 9, "{spans:#?}");
    let request = exported(&spans, "request");
    let tasks: Vec<_> = spans.iter().filter(|s| s.name == "task").collect();
    let lines = capture.lines();
    assert_eq!(lines.len(), 16, "{lines:#?}");
    for line in &lines {
        let n = line.at("n").as_i64().unwrap();
        let task = tasks
            .iter()
            .find(|s| {
                s.attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "n" && kv.value == opentelemetry::Value::I64(n))
            })
            .unwrap_or_else(|| panic!("an exported task span n={n}"));
        assert_eq!(task.parent_span_id, request.span_context.span_id());
        assert_ids_of(line, task);
    }
}

#[test]
fn a_server_span_with_a_remote_parent_gives_the_incoming_trace_id() {
    let sdk = Sdk::new();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(sdk.layer())
        .with(JsonLayer::new(capture.clone()));
    let remote_trace = TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128);
    let remote_span = SpanId::from(0xb7ad6b7169203331_u64);
    tracing::subscriber::with_default(subscriber, || {
        // What a middleware does with an incoming `traceparent`.
        let remote = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            remote_trace,
            remote_span,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        let server = info_span!("GET /orders", otel.kind = "server");
        server.set_parent(remote).expect("parent set before start");
        request().in_scope(|| server.in_scope(|| info!("handling")));
    });
    let spans = sdk.exported();
    assert_eq!(spans.len(), 1);
    let server = exported(&spans, "GET /orders");
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(server.span_context.trace_id(), remote_trace);
    assert_eq!(server.parent_span_id, remote_span);
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    let line = by_message(&lines, "handling");
    assert_eq!(
        line.str("traceId"),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
    assert_ids_of(line, server);
}

#[test]
fn a_remote_context_attached_by_hand_is_not_a_span_of_ours() {
    let capture = Capture::default();
    let sdk = Sdk::new();
    let subscriber = tracing_subscriber::registry()
        .with(sdk.layer())
        .with(JsonLayer::new(capture.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let remote = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(5),
            SpanId::from(6),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        let _attached = remote.attach();
        request().in_scope(|| info!("under a remote context"));
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    assert_context_ids(&lines[0]);
}

#[test]
fn an_unsampled_span_gives_its_propagated_ids_marked_unsampled() {
    let sdk = Sdk::with_sampler(Sampler::AlwaysOff);
    let capture = Capture::default();
    let seen = Arc::new(Mutex::new(None));
    let subscriber = tracing_subscriber::registry()
        .with(sdk.layer())
        .with(JsonLayer::new(capture.clone()).lookup_span_ids(Recording(seen.clone())));
    let mut propagated = None;
    tracing::subscriber::with_default(subscriber, || {
        let span = info_span!("dropped");
        span.in_scope(|| info!("in a dropped span"));
        propagated = Some(span.context().span().span_context().clone());
    });
    assert_eq!(sdk.exported().len(), 0, "AlwaysOff exports nothing");
    let propagated = propagated.unwrap();
    assert!(propagated.is_valid() && !propagated.is_sampled());
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0].str("traceId"),
        Some(propagated.trace_id().to_string().as_str())
    );
    assert_eq!(
        lines[0].str("spanId"),
        Some(propagated.span_id().to_string().as_str())
    );
    let ids = seen.lock().unwrap().expect("ids");
    assert!(!ids.is_sampled());
}

/// The default lookup, keeping what it found for the test to see.
struct Recording(Arc<Mutex<Option<SpanIds>>>);

impl LookupSpanIds for Recording {
    fn lookup_span_ids(&self, spans: &EventSpans<'_>) -> Option<SpanIds> {
        let ids = DefaultLookupSpanIds::new().lookup_span_ids(spans);
        *self.0.lock().unwrap() = ids;
        ids
    }
}

/// A layer of the test's own that gives each span ids, as some other tracing system would.
struct OwnIds;

struct Assigned {
    trace_id: u128,
    span_id: u64,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

impl<S> Layer<S> for OwnIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _: &Attributes<'_>, id: &Id, cx: layer::Context<'_, S>) {
        let span = cx.span(id).expect("new span");
        let parent_trace = span
            .parent()
            .and_then(|p| p.extensions().get::<Assigned>().map(|a| a.trace_id));
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        span.extensions_mut().insert(Assigned {
            trace_id: parent_trace
                .unwrap_or(0xfeed_0000_0000_0000_0000_0000_0000_0000 | u128::from(n)),
            span_id: 0xbeef_0000_0000_0000 | n,
        });
    }
}

#[test]
fn ids_given_by_a_hook_appear() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(OwnIds).with(
        JsonLayer::new(capture.clone()).lookup_span_ids(|span: &SpanView<'_>| {
            let extensions = span.extensions();
            let ids = extensions.get::<Assigned>()?;
            SpanIds::new(ids.trace_id.to_be_bytes(), ids.span_id.to_be_bytes())
        }),
    );
    let mut expected = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        request().in_scope(|| {
            let outer = info_span!("outer");
            let inner = outer.in_scope(|| info_span!("inner"));
            outer.in_scope(|| info!("in outer"));
            inner.in_scope(|| info!("in inner"));
            for span in [&outer, &inner] {
                tracing::dispatcher::get_default(|d| {
                    let registry = d.downcast_ref::<tracing_subscriber::Registry>().unwrap();
                    let span = registry.span(&span.id().unwrap()).unwrap();
                    let extensions = span.extensions();
                    let a = extensions.get::<Assigned>().unwrap();
                    expected.push((
                        format!("{:032x}", a.trace_id),
                        format!("{:016x}", a.span_id),
                    ));
                });
            }
        });
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    for (message, (trace, span)) in ["in outer", "in inner"].into_iter().zip(&expected) {
        let line = by_message(&lines, message);
        assert_eq!(line.str("traceId"), Some(trace.as_str()));
        assert_eq!(line.str("spanId"), Some(span.as_str()));
        assert!(trace.starts_with("feed"), "{trace}");
    }
    assert_eq!(expected[0].0, expected[1].0, "one trace");
    assert_ne!(expected[0].1, expected[1].1, "two spans");
}

#[test]
fn a_hook_covers_context_activation_switched_off() {
    let sdk = Sdk::new();
    let run = |hook: bool| {
        let capture = Capture::default();
        let layer = JsonLayer::new(capture.clone());
        let layer = if hook {
            // The `get_otel_context` closure documented on `LookupSpanIds`.
            layer.lookup_span_ids(|span: &SpanView<'_>| {
                let cx = tracing_opentelemetry::get_otel_context(&span.id(), span.dispatch()?)?;
                let sc = cx.span().span_context().clone();
                SpanIds::new(sc.trace_id().to_bytes(), sc.span_id().to_bytes())
                    .map(|ids| ids.with_sampled(sc.is_sampled()))
            })
        } else {
            layer
        };
        let subscriber = tracing_subscriber::registry()
            .with(sdk.layer().with_context_activation(false))
            .with(layer);
        tracing::subscriber::with_default(subscriber, || {
            request().in_scope(|| info_span!("quiet").in_scope(|| info!("in quiet")));
        });
        capture.lines()
    };
    // The default reads the current OpenTelemetry context, which nothing makes current here.
    let lines = run(false);
    assert_eq!(lines.len(), 1);
    assert_context_ids(&lines[0]);
    let lines = run(true);
    assert_eq!(lines.len(), 1);
    let spans = sdk.exported();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    // The second run's span is the one exported last.
    assert_ids_of(&lines[0], &spans[1]);
}
