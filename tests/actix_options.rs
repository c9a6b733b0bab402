//! The actix-web middleware's level, buffer and deadline options, and an app service's error,
//! under `init()` in a real process (the global filter matters: `RUST_LOG` unset, `info`): the
//! test binary runs itself as a child serving a real actix-web server on 127.0.0.1, drives it
//! with a real HTTP client, and the parent parses every line of the child's stdout.
#![cfg(feature = "actix")]

mod common;
mod writer_support;

use std::fmt;
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::Service;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer, ResponseError};
use bytes::Bytes;
use common::Line;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing::{debug, info, Level};
use tracing_ambient::actix::RequestContext;
use writer_support::{is_child, json_child_lines};

/// The marker the layer writes for a value whose impl panicked (documented on `JsonLayer`).
const MARKER: &str = "<panicked while formatting>";

/// The request's own level comes from this header, for allow-listed values only.
const DEBUG_HEADER: &str = "x-debug-token";

async fn fails() -> HttpResponse {
    debug!("looked up the order");
    info!("charging");
    debug!("charge refused");
    HttpResponse::ServiceUnavailable().finish()
}

async fn works() -> &'static str {
    debug!("looked up the order");
    info!("charging");
    "ok"
}

/// The time left of the request's deadline, in whole seconds, as the handler sees it.
async fn remaining() -> String {
    let left = tracing_ambient::remaining().map(|d| d.as_secs());
    info!(left, "deadline read");
    format!("{left:?}")
}

/// An error whose `Display` panics, answered with a fixed response (actix-web's default
/// `error_response` would call `Display` itself).
#[derive(Debug)]
struct Treacherous;

impl fmt::Display for Treacherous {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display of the app's error blew up")
    }
}

impl ResponseError for Treacherous {
    fn status_code(&self) -> StatusCode {
        StatusCode::BAD_GATEWAY
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        HttpResponse::BadGateway().finish()
    }
}

/// A request the child sends: path, request id, extra headers, and the status it expects.
type Sent = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    u16,
);

#[test]
fn child_actix() {
    if !is_child() {
        return;
    }
    let guard = tracing_ambient::init();
    actix_web::rt::System::new().block_on(async {
        let server = HttpServer::new(|| {
            App::new()
                // Inside the middleware: a service of the app that fails on `/error`.
                .wrap_fn(|req, srv| {
                    let failing = req.path() == "/error";
                    let call = srv.call(req);
                    async move {
                        if failing {
                            info!("about to fail");
                            return Err(Treacherous.into());
                        }
                        call.await
                    }
                })
                .wrap(
                    RequestContext::new()
                        .buffer(Level::DEBUG, tracing_ambient::DEFAULT_BUFFER_LIMIT)
                        .level_from(|request: &http::request::Parts| {
                            // Never the client's word alone: a value from an allow list.
                            (request.headers.get(DEBUG_HEADER)?.as_bytes() == b"allowed-1")
                                .then_some(Level::DEBUG)
                        })
                        .timeout(Duration::from_secs(30)),
                )
                .route("/fails", web::get().to(fails))
                .route("/works", web::get().to(works))
                .route("/remaining", web::get().to(remaining))
                .route("/error", web::get().to(works))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let requests: [Sent; 6] = [
            ("/fails", "fails", &[], 503),
            ("/works", "works", &[], 200),
            ("/works", "raised", &[(DEBUG_HEADER, "allowed-1")], 200),
            ("/works", "refused", &[(DEBUG_HEADER, "forged")], 200),
            ("/remaining", "deadline", &[], 200),
            ("/error", "error", &[], 502),
        ];
        for (path, id, headers, status) in requests {
            let mut request =
                http::Request::get(format!("http://{addr}{path}")).header("x-request-id", id);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = client
                .request(request.body(Full::default()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{id}");
            response.into_body().collect().await.unwrap();
        }
        // The access line of the last request is written when its body ends.
        tokio::time::sleep(Duration::from_millis(50)).await;
        handle.stop(true).await;
    });
    drop(guard);
}

/// A request's lines, in the order written, as (level, message or "access").
type Entries = Vec<(String, String)>;

/// Each request's id and its lines.
fn per_request(lines: &[Line]) -> Vec<(String, Entries)> {
    let mut per_request: Vec<(String, Entries)> = Vec::new();
    for line in lines {
        let Some(id) = line.str("requestId") else {
            continue;
        };
        let message = if line.str("target") == Some("access") {
            "access"
        } else {
            line.str("message").unwrap()
        };
        let entry = (line.str("level").unwrap().to_owned(), message.to_owned());
        match per_request.iter_mut().find(|(known, _)| known == id) {
            Some((_, entries)) => entries.push(entry),
            None => per_request.push((id.to_owned(), vec![entry])),
        }
    }
    per_request
}

fn entries(list: &[(&str, &str)]) -> Entries {
    list.iter()
        .map(|(level, message)| (level.to_string(), message.to_string()))
        .collect()
}

#[test]
fn level_buffer_deadline_and_errors_are_the_tower_layers() {
    let lines = json_child_lines("child_actix");
    let got = per_request(&lines);
    let want = [
        (
            "fails",
            // Held back, then written at the 5xx before the access line, in order.
            entries(&[
                ("info", "charging"),
                ("debug", "looked up the order"),
                ("debug", "charge refused"),
                ("error", "access"),
            ]),
        ),
        // A request that did not fail writes none of what it held.
        (
            "works",
            entries(&[("info", "charging"), ("info", "access")]),
        ),
        // Raised by the hook: its debug lines are written as they come.
        (
            "raised",
            entries(&[
                ("debug", "looked up the order"),
                ("info", "charging"),
                ("info", "access"),
            ]),
        ),
        // A value the hook refuses raises nothing.
        (
            "refused",
            entries(&[("info", "charging"), ("info", "access")]),
        ),
        (
            "deadline",
            entries(&[("info", "deadline read"), ("info", "access")]),
        ),
        (
            "error",
            entries(&[("info", "about to fail"), ("error", "access")]),
        ),
    ];
    let want: Vec<_> = want.into_iter().map(|(id, e)| (id.to_owned(), e)).collect();
    assert_eq!(got, want, "{lines:#?}");
    let find = |id: &str, message: &str| -> &Line {
        let found: Vec<_> = lines
            .iter()
            .filter(|l| l.str("requestId") == Some(id))
            .filter(|l| l.str("message") == Some(message))
            .collect();
        assert_eq!(found.len(), 1, "{id} {message}: {found:?}");
        found[0]
    };
    // The deadline of 30 s reached the handler (whole seconds left: 29 or 30).
    let left = find("deadline", "deadline read")
        .at("left")
        .as_u64()
        .unwrap();
    assert!((29..=30).contains(&left), "{left}");
    // The app service's error: the access line says it failed, with the marker for a
    // `Display` that panicked, and the status of the error's response.
    let access = find("error", "request failed");
    assert_eq!(access.at("target"), "access");
    assert_eq!(access.at("outcome"), "failed");
    assert_eq!(access.at("error"), MARKER);
    assert_eq!(access.at("status"), 502);
}
