//! Issue 11 §3: `ContextLayer` gives context propagation to any output layer. Here the output
//! is tracing-subscriber's own JSON formatter plus a layer that records
//! `tracing_ambient::request_id()` at each event, under a real axum server and client, with a
//! level filter on the output layer only.
#![cfg(feature = "http")]

mod common;

use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::Capture;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tracing::{info_span, warn, Instrument};
use tracing_ambient::http::RequestContextLayer;
use tracing_ambient::ContextLayer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::prelude::*;

/// Records, for each event, its message and what `tracing_ambient::request_id()` said then.
#[derive(Clone, Default)]
struct SeenIds(Arc<Mutex<Vec<Seen>>>);

/// An event's message and the request id current when it was logged.
type Seen = (String, Option<String>);

impl<S: tracing::Subscriber> Layer<S> for SeenIds {
    fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0 = format!("{v:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let id = tracing_ambient::request_id();
        self.0.lock().unwrap().push((message.0, id));
    }
}

async fn handler() -> &'static str {
    // A plain tokio::spawn loses the scope; the span brings the request back.
    tokio::spawn(
        async {
            tokio::task::yield_now().await;
            warn!("from a spawned task");
        }
        .instrument(info_span!("background")),
    )
    .await
    .unwrap();
    warn!("in the handler");
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_output_layer_sees_the_request_context() {
    let fmt_out = Capture::default();
    let seen = SeenIds::default();
    let subscriber = tracing_subscriber::registry()
        .with(ContextLayer::new())
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(fmt_out.clone())
                .with_filter(LevelFilter::WARN),
        )
        .with(seen.clone().with_filter(LevelFilter::WARN));
    // Worker threads need the subscriber: set it for this test binary only.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = Router::new()
        .route("/", get(handler))
        .layer(RequestContextLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let ids = ["ctx-layer-1", "ctx-layer-2", "ctx-layer-3"];
    for id in ids {
        let request = http::Request::get(format!("http://{addr}/"))
            .header("x-request-id", id)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }

    let seen = seen.0.lock().unwrap().clone();
    // Per request: the spawned task's line and the handler's (the access line is info).
    assert_eq!(seen.len(), 6, "{seen:?}");
    for (i, id) in ids.iter().enumerate() {
        let expected = Some(id.to_string());
        assert_eq!(
            seen[2 * i],
            ("from a spawned task".into(), expected.clone())
        );
        assert_eq!(seen[2 * i + 1], ("in the handler".into(), expected));
    }
    // tracing-subscriber's own JSON formatter wrote the same six lines, each valid JSON.
    let lines = common::parse_lines(fmt_out.text().as_bytes());
    assert_eq!(lines.len(), 6);
    for line in &lines {
        assert_eq!(line.at("level"), &Value::from("WARN"));
    }
}
