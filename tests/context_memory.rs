//! Issue 10 §5: the memory an open request context holds, measured with a counting allocator
//! (this test binary's own): the bytes still allocated on this thread after 1,000 requests
//! through the middleware whose handlers each kept their context, divided by 1,000.
//!
//! Every request ends (its response is sent and dropped), so what stays allocated is what the
//! kept contexts hold. Sizes are those asked of the allocator (its own bookkeeping, some 8 to
//! 16 bytes per allocation, is not counted), so the figure is the same on every run.
#![cfg(feature = "http")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};

use bytes::Bytes;
use http_body::Body;
use http_body_util::{Empty, Full};
use tower::{Layer, ServiceExt};
use tracing_ambient::http::RequestContextLayer;
use tracing_ambient::Context;

struct Counting;

thread_local! {
    // `const` and `Cell`: no lazy initialisation and no destructor, so touching it from
    // inside the allocator cannot allocate.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

#[allow(unsafe_code)]
// Safety: every call is forwarded unchanged to the system allocator; counting touches only a
// thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REQUESTS: usize = 1_000;

fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = TaskContext::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Bytes per open context: `REQUESTS` requests through `RequestContextLayer`, each handler
/// running `in_handler` and then keeping `Context::current()`.
fn bytes_per_open_context(in_handler: fn()) -> f64 {
    let kept: Rc<RefCell<Vec<Context>>> = Rc::new(RefCell::new(Vec::new()));
    let handler = {
        let kept = Rc::clone(&kept);
        tower::service_fn(move |_: http::Request<Empty<Bytes>>| {
            in_handler();
            kept.borrow_mut()
                .push(Context::current().expect("the middleware's context"));
            std::future::ready(Ok::<_, Infallible>(http::Response::new(Full::new(
                Bytes::from_static(b"hello"),
            ))))
        })
    };
    let mut service = RequestContextLayer::new().layer(handler);
    let mut request = || {
        let request = http::Request::get("/orders/42")
            .body(Empty::new())
            .expect("request");
        let response = ready((&mut service).oneshot(request)).expect("infallible");
        let mut body = response.into_body();
        let mut cx = TaskContext::from_waker(Waker::noop());
        while let Poll::Ready(Some(_)) = Pin::new(&mut body).poll_frame(&mut cx) {}
    };
    // Warm-up: whatever is made once (the access line's callsites, thread-locals).
    for _ in 0..10 {
        request();
    }
    kept.borrow_mut().clear();
    kept.borrow_mut().reserve(REQUESTS);
    let before = LIVE.with(Cell::get);
    for _ in 0..REQUESTS {
        request();
    }
    let after = LIVE.with(Cell::get);
    assert_eq!(
        kept.borrow().len(),
        REQUESTS,
        "every handler kept its context"
    );
    (after - before) as f64 / REQUESTS as f64
}

#[test]
fn an_open_request_context_holds_at_most_one_kib() {
    // What the middleware puts in: request id, trace id, span id, the incoming trace state.
    let bare = bytes_per_open_context(|| {});
    println!("bytes per open request context (middleware): {bare}");
    assert!(bare > 0.0, "the kept contexts hold memory: {bare}");
    assert!(bare <= 1024.0, "{bare} bytes per open context");
}

#[test]
fn late_keys_add_to_an_open_context() {
    // As an authenticated request has it: a user id and a tenant besides. The store grows its
    // extra keys one at a time up to four, so this stays under 1 KiB too (1,186 bytes when
    // the first extra key made room for four).
    let bare = bytes_per_open_context(|| {});
    let authenticated = bytes_per_open_context(|| {
        tracing_ambient::set_user_id(42);
        tracing_ambient::set("tenant_id", "acme");
    });
    println!("bytes per open request context (+ userId, tenantId): {authenticated}");
    assert!(authenticated > bare, "{authenticated} > {bare}");
    assert!(
        authenticated <= 1024.0,
        "{authenticated} bytes per open context"
    );
}
