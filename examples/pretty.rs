//! Human-readable lines on a terminal, JSON lines elsewhere: the output is chosen by
//! `LogFormat::from_env()` (`LOG_FORMAT`, `NO_COLOR`, and whether stdout is a terminal), as
//! `init()` chooses it.
//!
//! ```text
//! cargo run --example pretty                     # a terminal: coloured lines
//! cargo run --example pretty | cat               # a pipe: JSON lines
//! LOG_FORMAT=pretty cargo run --example pretty | cat   # plain human-readable lines
//! NO_COLOR=1 cargo run --example pretty          # a terminal, without colours
//! ```
//!
//! ```text
//! 14:02:12.120  INFO starting version=0.1.0
//! 14:02:12.121  INFO order placed order_id=42 [req=9f1c user=42 tenant_id=acme]
//! 14:02:12.121  WARN retrying attempt=2 note="two words" [req=9f1c user=42 tenant_id=acme]
//! 14:02:12.122 ERROR checkout failed error="query failed: connection reset: timeout" [req=9f1c user=42 tenant_id=acme]
//! ```

use std::error::Error;
use std::fmt;

use tracing::{error, info, info_span, warn};
use tracing_ambient::{Context, JsonLayer, KeepSpans, LogFormat, PrettyLayer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// An error with a cause, which has a cause.
#[derive(Debug)]
struct Failed(&'static str, Option<Box<Failed>>);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for Failed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.1.as_deref().map(|cause| cause as _)
    }
}

pub fn main() {
    let filter = || KeepSpans::new(EnvFilter::new("info"));
    let (json, pretty) = match LogFormat::from_env() {
        LogFormat::Pretty { ansi } => (
            None,
            Some(PrettyLayer::stdout().with_ansi(ansi).with_filter(filter())),
        ),
        _ => (Some(JsonLayer::stdout().with_filter(filter())), None),
    };
    let subscriber = tracing_subscriber::registry().with(json).with(pretty);
    tracing::subscriber::set_global_default(subscriber).expect("no subscriber yet");

    info!(version = env!("CARGO_PKG_VERSION"), "starting");
    Context::new().with_request_id("9f1c").in_scope(|| {
        tracing_ambient::set_user_id(42);
        tracing_ambient::set("tenant_id", "acme");
        info!(order_id = 42, "order placed");

        // The span carries the request to another thread.
        let span = info_span!("payment");
        std::thread::spawn(move || {
            span.in_scope(|| {
                warn!(attempt = 2, note = "two words", "retrying");
                let err = Failed(
                    "query failed",
                    Some(Box::new(Failed(
                        "connection reset",
                        Some(Box::new(Failed("timeout", None))),
                    ))),
                );
                error!(error = &err as &dyn Error, "checkout failed");
            });
        })
        .join()
        .expect("the thread does not panic");
    });
}
