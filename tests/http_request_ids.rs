//! Generated request ids (issue 7 §5): UUID v7 (RFC 9562), which sort in creation order as
//! strings and never repeat, in a tight loop and across threads; read back with the `uuid`
//! crate, which the crate no longer uses to make them.
#![cfg(feature = "http")]

use std::collections::HashSet;

use tracing_ambient::http::{DefaultMakeRequestId, MakeRequestId};

fn ids(n: usize) -> Vec<String> {
    let (parts, ()) = http::Request::new(()).into_parts();
    let make = DefaultMakeRequestId::new();
    (0..n)
        .map(|_| make.make_request_id(&parts).unwrap().as_str().to_owned())
        .collect()
}

#[test]
fn ids_made_in_a_tight_loop_sort_in_creation_order_and_are_unique() {
    let made = ids(100_000);
    assert_eq!(made.len(), 100_000);
    let out_of_order = made.windows(2).filter(|w| w[0] >= w[1]).count();
    assert_eq!(
        out_of_order, 0,
        "every id sorts after the one made before it"
    );
    let unique: HashSet<&String> = made.iter().collect();
    assert_eq!(unique.len(), 100_000);
    for id in [&made[0], &made[99_999]] {
        assert_eq!(&id[14..15], "7", "version 7: {id}");
        assert!(
            matches!(&id[19..20], "8" | "9" | "a" | "b"),
            "RFC variant: {id}"
        );
    }
    println!("100000 ids from {} to {}", made[0], made[99_999]);
}

#[test]
fn ids_made_on_several_threads_are_ordered_per_thread_and_unique() {
    let threads: Vec<_> = (0..4).map(|_| std::thread::spawn(|| ids(25_000))).collect();
    let mut all = HashSet::new();
    for thread in threads {
        let made = thread.join().unwrap();
        assert_eq!(made.len(), 25_000);
        assert!(made.windows(2).all(|w| w[0] < w[1]));
        all.extend(made);
    }
    assert_eq!(all.len(), 100_000);
}
