//! 10,000 concurrent contexts on a multi-thread runtime, each awaiting and yielding at random
//! points: every line carries its own request's id, never another's.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::Capture;
use tracing::instrument::WithSubscriber;
use tracing::{info, info_span, Instrument};
use tracing_ambient::{Context, JsonLayer};
use tracing_subscriber::prelude::*;

const REQUESTS: usize = 10_000;
/// Tasks without a context, interleaved with the requests on the same worker threads: a frame
/// left behind by a request would show up on their lines.
const BACKGROUND: usize = 1_000;

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn random_pause(rng: &mut XorShift) {
    match rng.next() % 4 {
        0 => {}
        1 => tokio::task::yield_now().await,
        2 => tokio::time::sleep(Duration::from_micros(rng.next() % 500)).await,
        _ => {
            for _ in 0..(rng.next() % 3) {
                tokio::task::yield_now().await;
            }
        }
    }
}

async fn background(j: usize) {
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03 ^ (j as u64 + 1));
    for step in 0..3 {
        random_pause(&mut rng).await;
        info!(bg = j, step, "background work");
    }
}

async fn request(i: usize) {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
    info!(i, "start");
    random_pause(&mut rng).await;
    tracing_ambient::set_user_id(i as u64);
    async {
        random_pause(&mut rng).await;
        info!(i, "in child span");
        let carried = tracing_ambient::spawn(async move {
            tokio::task::yield_now().await;
            info!(i, "in spawned task");
        });
        random_pause(&mut rng).await;
        carried.await.unwrap();
    }
    .instrument(info_span!("child", i))
    .await;
    random_pause(&mut rng).await;
    info!(i, "end");
}

#[test]
fn every_line_carries_its_own_request() {
    let capture = Capture::default();
    let dispatch: tracing::Dispatch = tracing_subscriber::registry()
        .with(JsonLayer::new(capture.clone()))
        .into();
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&for_threads)))
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(
        async {
            let mut tasks: Vec<_> = (0..REQUESTS)
                .map(|i| {
                    let ctx = Context::new().with_request_id(format!("req-{i}"));
                    tokio::spawn(ctx.scope(request(i)))
                })
                .collect();
            tasks.extend((0..BACKGROUND).map(|j| tokio::spawn(background(j))));
            for task in tasks {
                task.await.unwrap();
            }
        }
        .with_subscriber(dispatch),
    );
    drop(runtime);

    let lines = capture.lines();
    assert_eq!(lines.len(), REQUESTS * 4 + BACKGROUND * 3);
    let (background, lines): (Vec<_>, Vec<_>) =
        lines.into_iter().partition(|l| l.get("bg").is_some());
    assert_eq!(background.len(), BACKGROUND * 3);
    for line in &background {
        assert!(
            line.get("requestId").is_none(),
            "a request leaked: {line:?}"
        );
        assert!(line.get("userId").is_none(), "a request leaked: {line:?}");
    }
    let mut per_request: HashMap<u64, usize> = HashMap::new();
    for line in &lines {
        let i = line.at("i").as_u64().expect("i is a number");
        assert_eq!(
            line.str("requestId"),
            Some(format!("req-{i}").as_str()),
            "{line:?}"
        );
        if line.str("message") != Some("start") {
            assert_eq!(line.at("userId").as_u64(), Some(i), "{line:?}");
        }
        *per_request.entry(i).or_default() += 1;
    }
    assert_eq!(per_request.len(), REQUESTS);
    assert!(per_request.values().all(|&n| n == 4));
    eprintln!(
        "isolation: {} lines from {REQUESTS} concurrent requests, all with their own requestId; \
         {} lines from {BACKGROUND} tasks without context, none with a requestId",
        lines.len(),
        background.len()
    );
}
