//! The `log` crate's key-values as fields (issue 11.5): the test binary runs itself as a
//! child with `init()` installed (so the bridge is the global `log` logger, as in a real
//! program), logs through the `log` macros, and the parent parses the child's stdout.

mod common;

use std::process::Command;

use serde_json::json;
use tracing_ambient::Context;

use common::Line;

const CHILD: &str = "TRACING_AMBIENT_LOG_KV_CHILD";

/// How many distinct record shapes the hostile child sends: well past the bridge's 1,024
/// callsites.
const SHAPES: usize = 3000;

/// Threads logging one shape at once, and records each.
const THREADS: usize = 8;
const PER_THREAD: usize = 50;

/// A `Source` of the application's own that panics when visited.
struct Panicking;

impl log::kv::Source for Panicking {
    fn visit<'kvs>(
        &'kvs self,
        _: &mut dyn log::kv::VisitSource<'kvs>,
    ) -> Result<(), log::kv::Error> {
        panic!("a key-value source that panics");
    }
}

#[derive(Debug)]
#[allow(dead_code)] // read through `Debug`
struct Order {
    id: u32,
}

/// The child's part: only does something when started by the parent tests.
#[test]
fn child_kv() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let guard = tracing_ambient::init();
    Context::new().with_request_id("req-kv").in_scope(|| {
        log::info!(order_id = 7, user = "u1"; "placed");
        log::warn!(
            negative = -3i64,
            big = u64::MAX,
            huge = u128::MAX,
            ratio = 0.5f64,
            ok = true,
            letter = 'x',
            quoted = "a \"b\"\nc",
            debugged:? = Order { id: 9 },
            shown:% = 1.25f32,
            missing = None::<i32>;
            "types"
        );
        log::info!("no key-values");
        log::info!(target: "quiet", hidden = 1; "below the target's level");
        log::warn!(target: "quiet", shown = 2; "at the target's level");
        log::info!(requestId = "spoofed", message = "second"; "collides");
        // A shape seen twice shares its callsite; the values differ.
        for n in 0..2 {
            log::info!(n = n; "repeated");
        }
        let pairs: Vec<(String, i32)> = (0..40).map(|i| (format!("k{i}"), i)).collect();
        log::logger().log(
            &log::Record::builder()
                .args(format_args!("many"))
                .level(log::Level::Info)
                .target("log_kv")
                .key_values(&pairs)
                .build(),
        );
        log::logger().log(
            &log::Record::builder()
                .args(format_args!("panicking source"))
                .level(log::Level::Info)
                .target("log_kv")
                .key_values(&Panicking)
                .build(),
        );
    });
    log::info!(outside = true; "no context");
    // Threads meeting one new shape at once: every record gets its fields.
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let ctx = Context::new().with_request_id(format!("req-thread-{t}"));
                ctx.in_scope(|| {
                    for n in 0..PER_THREAD {
                        log::info!(thread = t, n = n; "concurrent");
                    }
                })
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(guard);
}

/// The hostile child: distinct targets and keys made at run time, one record each.
#[test]
fn child_hostile() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let guard = tracing_ambient::init();
    Context::new().with_request_id("req-hostile").in_scope(|| {
        for i in 0..SHAPES {
            let key = format!("key{i}");
            let target = format!("hostile::t{i}");
            let pairs = [(key.as_str(), i)];
            log::logger().log(
                &log::Record::builder()
                    .args(format_args!("shape {i}"))
                    .level(log::Level::Info)
                    .target(&target)
                    .key_values(&pairs)
                    .build(),
            );
        }
    });
    drop(guard);
}

/// Runs the child test `name` of this binary and returns the JSON lines of its stdout.
fn run_child(name: &str, rust_log: &str) -> Vec<Line> {
    let output = common::output_within_timeout(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("RUST_LOG", rust_log)
            .env_remove("LOG_FORMAT"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    // The test harness prints around the lines, sometimes on the same line.
    stdout
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .map(common::parse_line)
        .collect()
}

fn by_message<'a>(lines: &'a [Line], message: &str) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|l| l.str("message") == Some(message))
        .collect()
}

fn one<'a>(lines: &'a [Line], message: &str) -> &'a Line {
    let found = by_message(lines, message);
    assert_eq!(found.len(), 1, "one {message:?} line: {lines:#?}");
    found[0]
}

#[test]
fn key_values_are_fields_on_the_line() {
    let lines = run_child("child_kv", "info,quiet=warn");
    eprintln!("{} lines from the child", lines.len());
    assert_eq!(lines.len(), 11 + THREADS * PER_THREAD, "{lines:#?}");

    let placed = one(&lines, "placed");
    assert_eq!(placed.at("order_id"), &json!(7));
    assert_eq!(placed.at("user"), &json!("u1"));
    assert_eq!(placed.at("requestId"), &json!("req-kv"));
    assert_eq!(placed.at("level"), &json!("info"));
    assert_eq!(
        placed.at("target"),
        &json!("log_kv"),
        "the record's own target"
    );
    assert_eq!(
        placed.keys(),
        [
            "timestamp",
            "level",
            "message",
            "requestId",
            "target",
            "order_id",
            "user"
        ]
    );

    let types = one(&lines, "types");
    assert_eq!(types.at("level"), &json!("warn"));
    assert_eq!(types.at("negative"), &json!(-3));
    assert_eq!(types.at("big"), &json!(u64::MAX));
    // Written in full; serde_json reads a number past u64 as a float.
    assert_eq!(types.at("huge").as_f64(), Some(u128::MAX as f64));
    assert_eq!(types.at("ratio"), &json!(0.5));
    assert_eq!(types.at("ok"), &json!(true));
    assert_eq!(types.at("letter"), &json!("x"));
    assert_eq!(types.at("quoted"), &json!("a \"b\"\nc"));
    assert_eq!(types.at("debugged"), &json!("Order { id: 9 }"));
    assert_eq!(types.at("shown"), &json!("1.25"));
    assert!(types.get("missing").is_none(), "None leaves the key out");

    // Without key-values: as tracing-log writes it, with the context and no `log.*` fields.
    let plain = one(&lines, "no key-values");
    assert_eq!(plain.at("requestId"), &json!("req-kv"));
    assert_eq!(plain.at("target"), &json!("log_kv"));
    assert!(
        plain.keys().iter().all(|k| !k.starts_with("log.")),
        "{plain:?}"
    );

    // The filter sees the record's own target.
    assert!(by_message(&lines, "below the target's level").is_empty());
    assert_eq!(one(&lines, "at the target's level").at("shown"), &json!(2));

    // A key-value never overwrites the context or the message.
    let collides = one(&lines, "collides");
    assert_eq!(collides.at("requestId"), &json!("req-kv"));
    assert_eq!(collides.at("fields.requestId"), &json!("spoofed"));
    assert_eq!(collides.at("fields.message"), &json!("second"));

    let repeated = by_message(&lines, "repeated");
    assert_eq!(repeated.len(), 2);
    assert_eq!(
        (repeated[0].at("n"), repeated[1].at("n")),
        (&json!(0), &json!(1))
    );

    // More than 32 key-values: all of them, as text in the message.
    let many: Vec<&Line> = lines
        .iter()
        .filter(|l| l.str("message").is_some_and(|m| m.starts_with("many ")))
        .collect();
    assert_eq!(many.len(), 1, "{lines:#?}");
    let expected: String = (0..40).map(|i| format!(" k{i}={i}")).collect();
    assert_eq!(many[0].at("message"), &json!(format!("many{expected}")));
    assert_eq!(many[0].at("requestId"), &json!("req-kv"));

    // A source that panics: the line without its key-values, and the program goes on. The
    // panic hook `init()` installs reports the panic, in the request.
    assert_eq!(
        one(&lines, "panicking source").at("requestId"),
        &json!("req-kv")
    );
    let panic = one(&lines, "a key-value source that panics");
    assert_eq!(
        (panic.at("target"), panic.at("requestId")),
        (&json!("panic"), &json!("req-kv"))
    );

    let concurrent = by_message(&lines, "concurrent");
    assert_eq!(concurrent.len(), THREADS * PER_THREAD);
    for t in 0..THREADS {
        let id = json!(format!("req-thread-{t}"));
        let ns: Vec<&serde_json::Value> = concurrent
            .iter()
            .filter(|l| l.at("requestId") == &id)
            .map(|l| {
                assert_eq!(l.at("thread"), &json!(t), "{l:?}");
                l.at("n")
            })
            .collect();
        let expected: Vec<serde_json::Value> = (0..PER_THREAD).map(|n| json!(n)).collect();
        assert_eq!(ns, expected.iter().collect::<Vec<_>>(), "thread {t}");
    }

    let outside = one(&lines, "no context");
    assert_eq!(outside.at("outside"), &json!(true));
    assert!(outside.get("requestId").is_none());
}

#[test]
fn hostile_shapes_are_bounded_and_never_lost() {
    let lines = run_child("child_hostile", "info");
    assert_eq!(lines.len(), SHAPES, "every record is written");
    let mut as_field = 0;
    let mut as_text = 0;
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line.at("requestId"), &json!("req-hostile"));
        let key = format!("key{i}");
        let message = line.str("message").unwrap();
        if line.get(&key).is_some() {
            assert_eq!(line.at(&key), &json!(i));
            assert_eq!(message, format!("shape {i}"));
            assert_eq!(line.at("target"), &json!(format!("hostile::t{i}")));
            as_field += 1;
        } else {
            assert_eq!(message, format!("shape {i} {key}={i}"), "{line:?}");
            assert_eq!(line.at("target"), &json!(format!("hostile::t{i}")));
            as_text += 1;
        }
    }
    eprintln!("{as_field} records with fields, {as_text} with key-values as text");
    assert_eq!(
        as_field, 1024,
        "the first 1,024 shapes get callsites, no more"
    );
    assert_eq!(as_field + as_text, SHAPES);
    // Once the bound is reached, every later shape is text.
    let first_text = lines
        .iter()
        .position(|l| l.str("message").is_some_and(|m| m.contains('=')))
        .unwrap();
    assert_eq!(first_text, as_field);
}
