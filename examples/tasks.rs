//! A few dozen concurrent "requests" as tokio tasks, each with its own context: awaits, child
//! spans, a late `set_user_id`, a spawned subtask carried with `tracing_ambient::spawn`, and an
//! error line. Every line on stdout carries the request it came from.
//!
//! ```text
//! cargo run --example tasks
//! ```

use std::time::Duration;

use tracing::{error, info, info_span, Instrument};
use tracing_ambient::Context;

#[derive(Debug)]
struct PaymentDeclined;

impl std::fmt::Display for PaymentDeclined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("payment declined by the issuer")
    }
}

impl std::error::Error for PaymentDeclined {}

#[tracing::instrument]
async fn load_cart(order_id: u64) -> u32 {
    tokio::time::sleep(Duration::from_millis(order_id % 7)).await;
    info!("cart loaded");
    (order_id % 5) as u32 + 1
}

async fn handle(order_id: u64) {
    info!("request received");
    // Authentication happens after the request's spans exist; later lines still get the user.
    tokio::task::yield_now().await;
    tracing_ambient::set_user_id(1000 + order_id);
    tracing_ambient::set(
        "tenant_id",
        if order_id.is_multiple_of(2) {
            "acme"
        } else {
            "globex"
        },
    );

    let items = load_cart(order_id).await;
    async {
        tokio::time::sleep(Duration::from_millis(order_id % 3)).await;
        if order_id % 10 == 3 {
            let err = PaymentDeclined;
            error!(
                error = &err as &dyn std::error::Error,
                items, "checkout failed"
            );
        } else {
            info!(items, amount = 19.99 * f64::from(items), "order placed");
        }
    }
    .instrument(info_span!("checkout"))
    .await;

    // The receipt goes out in the background and still carries the request.
    let receipt = tracing_ambient::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        info!(order_id, "receipt e-mailed");
    });
    receipt.await.expect("receipt task");
}

#[tokio::main]
async fn main() {
    let _guard = tracing_ambient::init();
    info!("demo starting");

    let requests: Vec<_> = (1..=30u64)
        .map(|order_id| {
            let ctx = Context::new()
                .with_request_id(format!("req-{order_id:04}"))
                .with_trace_id(format!("{order_id:032x}"));
            tokio::spawn(ctx.scope(handle(order_id)))
        })
        .collect();
    for request in requests {
        request.await.expect("request task");
    }
    info!("demo finished");
}
