//! One request through the middleware, with no network: from the request reaching the tower
//! service to the access line, for `RequestContextLayer` and, as references, the bare handler
//! and tower-http's `SetRequestIdLayer` + `TraceLayer` with `fmt().json()`.
//!
//! ```text
//! cargo bench --bench middleware                 # allocations table, then criterion
//! cargo bench --bench middleware -- report-only  # only the table
//! cargo bench --bench middleware --features actix  # adds actix_bare and actix_json
//! # instructions per request, independent of machine load:
//! B=$(ls -t target/release/deps/middleware-* | grep -v '\.d$' | head -1)
//! valgrind --tool=callgrind $B ops ours_json fresh 20000
//! ```
//!
//! Each request is built (`GET /orders/42` with a `user-agent`, and for `propagated` a valid
//! `x-request-id` and `traceparent`), sent with `ServiceExt::oneshot` on `&mut service` (the
//! service is made once, as hyper makes it once per connection), its future polled with a
//! no-op waker (the handler is ready at once: a `service_fn` returning `"hello"`), and its
//! body polled to the end and dropped, which is when the access line is written. Lines go to
//! a writer that discards them.
//!
//! With the `actix` feature, the same request and handler through an actix-web `App` made
//! once with `test::init_service` and called directly (no network, no dispatcher), bare and
//! wrapped in `actix::RequestContext`: the middleware's cost over `actix_bare`, set against
//! `ours_json` over `bare`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::Criterion;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Empty, Full};
use tower::{Layer, ServiceExt};
use tracing::Dispatch;
use tracing_ambient::http::RequestContextLayer;
use tracing_ambient::{JsonLayer, KeepSpans};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

// === counting: allocations of this thread ===

#[path = "support/counting.rs"]
mod counting;
#[path = "support/lines.rs"]
mod lines;

use lines::Discard;

// === the request and the handler ===

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// No ids: the middleware makes a request id, a trace id and a span id.
    Fresh,
    /// A valid `x-request-id` and `traceparent`: validated and continued.
    Propagated,
}

const SHAPES: [Shape; 2] = [Shape::Fresh, Shape::Propagated];

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Fresh => "fresh",
            Shape::Propagated => "propagated",
        }
    }

    fn request(self) -> Request<Empty<Bytes>> {
        let builder = Request::get("/orders/42").header("user-agent", "bench/1.0");
        let builder = match self {
            Shape::Fresh => builder,
            Shape::Propagated => builder
                .header("x-request-id", "0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
        };
        builder.body(Empty::new()).expect("a valid request")
    }
}

fn handler(
    _: Request<Empty<Bytes>>,
) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"hello")))))
}

/// Polls a future that is ready without waiting.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Polls a body to its end, then drops it.
fn drain<B: Body + Unpin>(mut body: B) {
    let mut cx = TaskContext::from_waker(Waker::noop());
    while let Poll::Ready(Some(_)) = Pin::new(&mut body).poll_frame(&mut cx) {}
}

// === the setups ===

#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    /// The handler alone: what a request costs without any of this.
    Bare,
    /// `RequestContextLayer` with no subscriber: the middleware's own work.
    OursNoSubscriber,
    /// `RequestContextLayer` with `KeepSpans(EnvFilter("info"))` in front of `JsonLayer`, as
    /// `init()` builds it (on a discarding writer rather than the non-blocking one).
    OursJson,
    /// tower-http's `SetRequestIdLayer::x_request_id(MakeRequestUuid)` +
    /// `PropagateRequestIdLayer` + `TraceLayer::new_for_http()` with
    /// `fmt().json().with_current_span(true)` at `info` and an `on_response` at `info`, so
    /// that it writes an access line too.
    TowerHttp,
    /// An actix-web `App` with the same handler and no middleware, called in-process
    /// (`test::init_service`, the service called directly): what actix's own routing costs.
    #[cfg(feature = "actix")]
    ActixBare,
    /// The same `App` wrapped in `actix::RequestContext`, with `OursJson`'s subscriber: its
    /// cost over `ActixBare` is the actix middleware's, to set against `OursJson` over `Bare`.
    #[cfg(feature = "actix")]
    ActixJson,
}

const SETUPS: &[Setup] = &[
    Setup::Bare,
    Setup::OursNoSubscriber,
    Setup::OursJson,
    Setup::TowerHttp,
    #[cfg(feature = "actix")]
    Setup::ActixBare,
    #[cfg(feature = "actix")]
    Setup::ActixJson,
];

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Bare => "bare",
            Setup::OursNoSubscriber => "ours_no_subscriber",
            Setup::OursJson => "ours_json",
            Setup::TowerHttp => "tower_http_fmt",
            #[cfg(feature = "actix")]
            Setup::ActixBare => "actix_bare",
            #[cfg(feature = "actix")]
            Setup::ActixJson => "actix_json",
        }
    }

    fn dispatch(self) -> Dispatch {
        match self {
            Setup::Bare | Setup::OursNoSubscriber => Dispatch::none(),
            #[cfg(feature = "actix")]
            Setup::ActixBare => Dispatch::none(),
            #[cfg(feature = "actix")]
            Setup::ActixJson => Setup::OursJson.dispatch(),
            Setup::OursJson => tracing_subscriber::registry()
                .with(KeepSpans::new(EnvFilter::new("info")))
                .with(JsonLayer::new(Discard))
                .into(),
            Setup::TowerHttp => tracing_subscriber::registry()
                .with(EnvFilter::new("info"))
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .with_current_span(true)
                        .with_writer(Discard),
                )
                .into(),
        }
    }

    /// Runs `run` with one request-serving operation of this setup, inside its subscriber.
    fn run<R>(self, shape: Shape, run: impl FnOnce(&mut dyn FnMut()) -> R) -> R {
        let dispatch = self.dispatch();
        tracing::dispatcher::with_default(&dispatch, || match self {
            Setup::Bare => {
                let mut service = tower::service_fn(handler);
                run(&mut || {
                    let response = ready((&mut service).oneshot(shape.request()));
                    drain(response.expect("infallible").into_body());
                })
            }
            Setup::OursNoSubscriber | Setup::OursJson => {
                let mut service = RequestContextLayer::new().layer(tower::service_fn(handler));
                run(&mut || {
                    let response = ready((&mut service).oneshot(shape.request()));
                    drain(response.expect("infallible").into_body());
                })
            }
            Setup::TowerHttp => {
                use tower_http::request_id::{
                    MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer,
                };
                use tower_http::trace::{DefaultOnResponse, TraceLayer};
                let mut service = tower::ServiceBuilder::new()
                    .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                    .layer(
                        TraceLayer::new_for_http()
                            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                    )
                    .layer(PropagateRequestIdLayer::x_request_id())
                    .service(tower::service_fn(handler));
                run(&mut || {
                    let response = ready((&mut service).oneshot(shape.request()));
                    drain(response.expect("infallible").into_body());
                })
            }
            #[cfg(feature = "actix")]
            Setup::ActixBare => actix::run(false, shape, run),
            #[cfg(feature = "actix")]
            Setup::ActixJson => actix::run(true, shape, run),
        })
    }
}

/// The actix-web setups: one `App`, made once, its service called as actix-web's dispatcher
/// calls it, the response body polled to its end and dropped.
#[cfg(feature = "actix")]
mod actix {
    use std::pin::pin;
    use std::task::{Context as TaskContext, Poll, Waker};

    use actix_web::body::MessageBody;
    use actix_web::dev::Service;
    use actix_web::{test, web, App};
    use tracing_ambient::actix::RequestContext;

    use super::{ready, Shape};

    async fn hello() -> &'static str {
        "hello"
    }

    /// The bench's request, as actix-web's test request.
    fn request(shape: Shape) -> test::TestRequest {
        let request = test::TestRequest::get()
            .uri("/orders/42")
            .insert_header(("user-agent", "bench/1.0"));
        match shape {
            Shape::Fresh => request,
            Shape::Propagated => request
                .insert_header(("x-request-id", "0195b4e2-7d4c-7cc3-9a8e-2f1d5c0b9a77"))
                .insert_header((
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )),
        }
    }

    fn drain<B: MessageBody>(body: B) {
        let mut body = pin!(body);
        let mut cx = TaskContext::from_waker(Waker::noop());
        while let Poll::Ready(Some(_)) = body.as_mut().poll_next(&mut cx) {}
    }

    pub(super) fn run<R>(ours: bool, shape: Shape, run: impl FnOnce(&mut dyn FnMut()) -> R) -> R {
        // actix-web's services expect its runtime; every future here is ready at once.
        actix_web::rt::System::new().block_on(async move {
            let route = || web::resource("/orders/{id}").route(web::get().to(hello));
            if ours {
                let service =
                    test::init_service(App::new().wrap(RequestContext::new()).service(route()))
                        .await;
                run(&mut || {
                    let response = ready(service.call(request(shape).to_request())).expect("ok");
                    drain(response.into_body());
                })
            } else {
                let service = test::init_service(App::new().service(route())).await;
                run(&mut || {
                    let response = ready(service.call(request(shape).to_request())).expect("ok");
                    drain(response.into_body());
                })
            }
        })
    }
}

// === the report: allocations and lines per request ===

const REPORT_OPS: u64 = 10_000;

fn report() {
    println!("\n## Allocations and lines per request ({REPORT_OPS} requests after warm-up)\n");
    println!("| setup | request | allocations/request | lines/request |");
    println!("| --- | --- | ---: | ---: |");
    for &setup in SETUPS {
        for shape in SHAPES {
            let (allocations, lines) = setup.run(shape, |op| {
                for _ in 0..100 {
                    op();
                }
                let (a0, l0) = (counting::allocations(), lines::lines());
                for _ in 0..REPORT_OPS {
                    op();
                }
                (counting::allocations() - a0, lines::lines() - l0)
            });
            println!(
                "| {} | {} | {:.2} | {:.2} |",
                setup.name(),
                shape.name(),
                allocations as f64 / REPORT_OPS as f64,
                lines as f64 / REPORT_OPS as f64
            );
        }
    }
    println!();
}

fn benches(c: &mut Criterion) {
    for shape in SHAPES {
        let mut group = c.benchmark_group(format!("request_{}", shape.name()));
        for &setup in SETUPS {
            setup.run(shape, |op| {
                group.bench_function(setup.name(), |b| b.iter(&mut *op));
            });
        }
        group.finish();
    }
}

/// `-- ops <setup> <request> [n]`: `n` requests (default 20,000) of one setup and nothing
/// else, for `valgrind --tool=callgrind`: `(I(2n) - I(n)) / n` is one request's instructions.
fn ops_only(args: &[String]) -> bool {
    let Some(at) = args.iter().position(|a| a == "ops") else {
        return false;
    };
    let (Some(setup), Some(shape)) = (args.get(at + 1), args.get(at + 2)) else {
        panic!("usage: ops <setup> <request> [requests]");
    };
    let n: u64 = args
        .get(at + 3)
        .map_or(20_000, |n| n.parse().expect("a count"));
    let setup = SETUPS
        .iter()
        .copied()
        .find(|s| s.name() == setup)
        .expect("setup");
    let shape = SHAPES
        .into_iter()
        .find(|s| s.name() == shape)
        .expect("request");
    setup.run(shape, |op| {
        for _ in 0..n {
            op();
        }
    });
    true
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if ops_only(&args) {
        return;
    }
    if !args.iter().any(|a| a == "--profile-time") {
        report();
    }
    if args.iter().any(|a| a == "report-only") {
        return;
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
