//! `sql::tag` on a real Postgres (issue 12.1): tagged statements run as they would untagged,
//! the server's log and `pg_stat_activity` show the request that ran each one, and hostile
//! values in the context cannot end the comment.
//!
//! A throwaway cluster (see `pg_support`) is started for this binary and a real client,
//! tokio-postgres, talks to it over TCP. Expected comments are written out from the
//! sqlcommenter spec (keys sorted, values URL-encoded and single-quoted, `key='value'` pairs
//! separated by commas, `/*…*/` after the statement) and the W3C trace context spec
//! (`00-<trace id>-<span id>-<flags>`), not taken from `sql::tag`.
#![cfg(unix)]

mod common;
#[cfg(feature = "http")]
mod http_support;
mod pg_support;

use std::sync::Arc;

use pg_support::{parse_comment, Cluster, Logged};
use tokio_postgres::{NoTls, SimpleQueryMessage};
use tracing_ambient::sql::{self, Tagger};
use tracing_ambient::Context;

/// The W3C trace context spec's example trace and parent ids.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

/// A request id whose encoding the sqlcommenter spec spells out: `/param first` becomes
/// `%2Fparam%20first`.
const REQUEST_ID: &str = "/param first";

/// The comment for a request with [`REQUEST_ID`], [`TRACE`] and [`SPAN`]; a context made by
/// hand carries no flags, and the crate sends `sampled` (`01`) then.
const COMMENT: &str = "/*request_id='%2Fparam%20first',\
                       traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/";

fn request() -> Context {
    Context::new()
        .with_request_id(REQUEST_ID)
        .with_trace_id(TRACE)
        .with_span_id(SPAN)
}

/// The one statement of `kind` the server logged whose text starts with `start`.
#[track_caller]
fn logged_once(pg: &Cluster, kind: &str, start: &str) -> String {
    let found = pg.wait_logged(1, |l| l.kind == kind && l.text.starts_with(start));
    found[0].text.clone()
}

/// The rows of a simple-protocol reply, each as its text columns, and how many statements
/// completed.
fn simple_rows(messages: &[SimpleQueryMessage]) -> (Vec<Vec<Option<String>>>, usize) {
    let mut rows = Vec::new();
    let mut completed = 0;
    for message in messages {
        match message {
            SimpleQueryMessage::Row(row) => rows.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            SimpleQueryMessage::CommandComplete(_) => completed += 1,
            _ => {}
        }
    }
    (rows, completed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_statements_run_unchanged_and_the_log_names_their_request() {
    let Some(pg) = pg_support::cluster() else {
        return;
    };
    let db = pg.connect().await;
    db.batch_execute("CREATE TABLE tag_orders (id int PRIMARY KEY, item text NOT NULL)")
        .await
        .unwrap();

    request()
        .scope(async {
            let insert = "INSERT INTO tag_orders VALUES ($1, $2) RETURNING id, item AS a";
            let rows = db.query(&*sql::tag(insert), &[&1, &"apple"]).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!((rows[0].get::<_, i32>(0), rows[0].get(1)), (1, "apple"));

            // A trailing `;`, and whitespace after it.
            let insert = "INSERT INTO tag_orders VALUES ($1, $2) RETURNING id, item AS b; \n";
            let rows = db.query(&*sql::tag(insert), &[&2, &"pear"]).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!((rows[0].get::<_, i32>(0), rows[0].get(1)), (2, "pear"));

            let select = "SELECT id, item FROM tag_orders WHERE id = $1";
            let rows = db.query(&*sql::tag(select), &[&2]).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!((rows[0].get::<_, i32>(0), rows[0].get(1)), (2, "pear"));

            let select = "SELECT item FROM tag_orders ORDER BY id;";
            let rows = db.query(&*sql::tag(select), &[]).await.unwrap();
            let items: Vec<&str> = rows.iter().map(|r| r.get(0)).collect();
            assert_eq!(items, ["apple", "pear"]);

            let multi_line = "SELECT count(*) AS multi\n  FROM tag_orders\n WHERE item <> $1\n";
            let rows = db.query(&*sql::tag(multi_line), &[&"apple"]).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].get::<_, i64>(0), 1);

            // Statements that have a comment of their own are sent as they are.
            let dash = "SELECT item AS dash FROM tag_orders WHERE id = 1 -- the first";
            let rows = db.query(&*sql::tag(dash), &[]).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].get::<_, &str>(0), "apple");
            let block = "/* mine */ SELECT item AS block FROM tag_orders WHERE id = 2";
            let rows = db.query(&*sql::tag(block), &[]).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].get::<_, &str>(0), "pear");

            // The simple protocol, where the server would run a second statement.
            let simple = "SELECT item AS simple FROM tag_orders WHERE id = 1;";
            let reply = db.simple_query(&sql::tag(simple)).await.unwrap();
            assert_eq!(
                simple_rows(&reply),
                (vec![vec![Some("apple".to_owned())]], 1)
            );
        })
        .await;
    let count: i64 = db
        .query_one("SELECT count(*) FROM tag_orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2, "each INSERT inserted one row");

    // Each statement as the server logged it: the spec's format, the request's values.
    let cases = [
        (
            "execute",
            "INSERT INTO tag_orders VALUES ($1, $2) RETURNING id, item AS a",
            format!("INSERT INTO tag_orders VALUES ($1, $2) RETURNING id, item AS a {COMMENT}"),
        ),
        (
            "execute",
            "INSERT INTO tag_orders VALUES ($1, $2) RETURNING id, item AS b",
            format!("INSERT INTO tag_orders VALUES ($1, $2) RETURNING id, item AS b {COMMENT};"),
        ),
        (
            "execute",
            "SELECT id, item FROM tag_orders WHERE id = $1",
            format!("SELECT id, item FROM tag_orders WHERE id = $1 {COMMENT}"),
        ),
        (
            "execute",
            "SELECT item FROM tag_orders ORDER BY id",
            format!("SELECT item FROM tag_orders ORDER BY id {COMMENT};"),
        ),
        (
            "execute",
            "SELECT count(*) AS multi",
            format!("SELECT count(*) AS multi\n  FROM tag_orders\n WHERE item <> $1 {COMMENT}"),
        ),
        (
            "execute",
            "SELECT item AS dash",
            "SELECT item AS dash FROM tag_orders WHERE id = 1 -- the first".to_owned(),
        ),
        (
            "execute",
            "/* mine */",
            "/* mine */ SELECT item AS block FROM tag_orders WHERE id = 2".to_owned(),
        ),
        (
            "statement",
            "SELECT item AS simple",
            format!("SELECT item AS simple FROM tag_orders WHERE id = 1 {COMMENT};"),
        ),
    ];
    for (kind, start, expected) in cases {
        assert_eq!(logged_once(&pg, kind, start), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_tag_their_own_statements() {
    const REQUESTS: usize = 8;
    const STATEMENTS: usize = 3;
    let Some(pg) = pg_support::cluster() else {
        return;
    };
    // Two connections shared by all requests, so that statements of different requests
    // are in flight on one connection at once.
    let clients = [Arc::new(pg.connect().await), Arc::new(pg.connect().await)];
    let ids = |i: usize| {
        (
            format!("req-{i}"),
            format!("{:032x}", 0x5eed_0000 + i),
            format!("{:016x}", 0xa000 + i),
        )
    };
    let mut tasks = Vec::new();
    for i in 0..REQUESTS {
        let (request_id, trace_id, span_id) = ids(i);
        let ctx = Context::new()
            .with_request_id(request_id)
            .with_trace_id(trace_id)
            .with_span_id(span_id);
        let db = Arc::clone(&clients[i % 2]);
        tasks.push(tokio::spawn(ctx.scope(async move {
            for j in 0..STATEMENTS {
                let statement = format!("SELECT $1::int AS conc_{i}_{j}");
                let row = db.query_one(&*sql::tag(&statement), &[&(i as i32)]).await;
                assert_eq!(row.unwrap().get::<_, i32>(0), i as i32);
                tokio::task::yield_now().await;
            }
        })));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let logged = pg.wait_logged(REQUESTS * STATEMENTS, |l| {
        l.kind == "execute" && l.text.starts_with("SELECT $1::int AS conc_")
    });
    assert_eq!(logged.len(), REQUESTS * STATEMENTS);
    let mut seen = Vec::new();
    for Logged { text, .. } in &logged {
        // `SELECT $1::int AS conc_<i>_<j> /*<comment>*/`: the request is the one named in
        // the statement, the comment must name the same.
        let (statement, comment) = text.split_once(" /*").unwrap();
        let comment = comment.strip_suffix("*/").unwrap();
        let (i, j) = statement["SELECT $1::int AS conc_".len()..]
            .split_once('_')
            .unwrap();
        let i: usize = i.parse().unwrap();
        let (request_id, trace_id, span_id) = ids(i);
        assert_eq!(
            parse_comment(comment).unwrap(),
            [
                ("request_id".to_owned(), request_id),
                (
                    "traceparent".to_owned(),
                    format!("00-{trace_id}-{span_id}-01")
                ),
            ],
            "{text}"
        );
        seen.push((i, j.parse::<usize>().unwrap()));
    }
    seen.sort_unstable();
    let all: Vec<(usize, usize)> = (0..REQUESTS)
        .flat_map(|i| (0..STATEMENTS).map(move |j| (i, j)))
        .collect();
    assert_eq!(seen, all, "each statement logged once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_stat_activity_shows_the_request_of_a_running_statement() {
    let Some(pg) = pg_support::cluster() else {
        return;
    };
    let sleeper = Arc::new(pg.connect().await);
    let watcher = pg.connect().await;
    let pid: i32 = sleeper
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);

    let running = {
        let sleeper = Arc::clone(&sleeper);
        tokio::spawn(request().scope(async move {
            // Long enough never to end by itself while the test looks; cancelled below.
            let statement = sql::tag("SELECT pg_sleep(60) AS activity");
            sleeper.query(&*statement, &[]).await.map(|_| ())
        }))
    };
    let expected = format!("SELECT pg_sleep(60) AS activity {COMMENT}");
    let start = std::time::Instant::now();
    let query = loop {
        let row = watcher
            .query_one(
                "SELECT state, query FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap();
        let (state, query): (Option<String>, Option<String>) = (row.get(0), row.get(1));
        if state.as_deref() == Some("active") {
            break query;
        }
        assert!(
            !running.is_finished(),
            "the sleeping statement ended early: {:?}",
            running.await
        );
        assert!(
            start.elapsed() < pg_support::PROMPTLY,
            "the statement never showed as active; last {state:?} {query:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(query.as_deref(), Some(expected.as_str()));

    sleeper.cancel_token().cancel_query(NoTls).await.unwrap();
    let error = running
        .await
        .unwrap()
        .expect_err("the statement was cancelled");
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{error}"
    );
}

/// Values that would end the comment, the quoted value or the statement if written raw.
const HOSTILE: &[&str] = &[
    "*/ DROP TABLE hostile_victim; --",
    "'; DROP TABLE hostile_victim; --",
    "*/; DROP TABLE hostile_victim; /*",
    "*/; DROP TABLE hostile_victim; --",
    "\\*/ DROP TABLE hostile_victim; --",
    "a\\'b\\",
    "\"double\" 'single'",
    "line\n*/ DROP TABLE hostile_victim;\n--",
    "cr\r\nlf\ttab",
    "/* opens a nested comment",
    "*/*/*/",
    "-- dash",
    "$$ dollar $$ E'\\x00'",
    "caf\u{e9} \u{2603} \u{1f980} \u{202e}",
    "nul\0*/ DROP TABLE hostile_victim; --",
    "%2A%2F already encoded",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_cannot_end_the_comment_or_inject_sql() {
    const TENANT: Tagger = Tagger::new().context_keys(&["tenant_id"]);
    let Some(pg) = pg_support::cluster() else {
        return;
    };
    let db = pg.connect().await;
    db.batch_execute(
        "CREATE TABLE hostile_victim (v int);
         INSERT INTO hostile_victim VALUES (1);
         CREATE TABLE hostile_rows (k int)",
    )
    .await
    .unwrap();

    // Each hostile value once as the request id and once as an extra key; the last case
    // has hostile trace ids, which are not valid and so left out.
    let mut cases: Vec<(Context, Vec<(&str, String)>)> = (0..HOSTILE.len())
        .map(|k| {
            let (id, tenant) = (HOSTILE[k], HOSTILE[(k + 1) % HOSTILE.len()]);
            let ctx = request().with_request_id(id).with("tenant_id", tenant);
            let expected = vec![
                ("request_id", id.to_owned()),
                ("tenant_id", tenant.to_owned()),
                ("traceparent", format!("00-{TRACE}-{SPAN}-01")),
            ];
            (ctx, expected)
        })
        .collect();
    cases.push((
        Context::new()
            .with_request_id("hostile-trace")
            .with_trace_id("*/ DROP TABLE hostile_victim; --")
            .with_span_id("'*/"),
        vec![("request_id", "hostile-trace".to_owned())],
    ));

    for (k, (ctx, _)) in cases.iter().enumerate() {
        ctx.clone()
            .scope(async {
                let extended = format!("SELECT 'known'::text AS hostile_{k}");
                let rows = db.query(&*TENANT.tag(&extended), &[]).await.unwrap();
                assert_eq!(rows.len(), 1, "case {k}");
                assert_eq!(rows[0].get::<_, &str>(0), "known", "case {k}");

                // The simple protocol runs every statement in the text: an escape would run.
                let simple = format!("SELECT 'known' AS hostile_simple_{k};");
                let reply = db.simple_query(&TENANT.tag(&simple)).await.unwrap();
                assert_eq!(
                    simple_rows(&reply),
                    (vec![vec![Some("known".to_owned())]], 1),
                    "case {k}"
                );
                let insert = format!("INSERT INTO hostile_rows VALUES ({k})");
                let reply = db.simple_query(&TENANT.tag(&insert)).await.unwrap();
                assert_eq!(simple_rows(&reply), (vec![], 1), "case {k}");
            })
            .await;
    }

    let rows: i64 = db
        .query_one("SELECT count(*) FROM hostile_rows", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, cases.len() as i64, "one row per INSERT");
    let victim: i64 = db
        .query_one("SELECT count(*) FROM hostile_victim", &[])
        .await
        .expect("hostile_victim still exists")
        .get(0);
    assert_eq!(victim, 1);

    // The server saw every value whole, inside the comment, where the spec puts it.
    for (k, (_, expected)) in cases.iter().enumerate() {
        let statements = [
            (
                "execute",
                format!("SELECT 'known'::text AS hostile_{k}"),
                "",
            ),
            (
                "statement",
                format!("SELECT 'known' AS hostile_simple_{k}"),
                ";",
            ),
            (
                "statement",
                format!("INSERT INTO hostile_rows VALUES ({k})"),
                "",
            ),
        ];
        for (kind, statement, end) in statements {
            let text = logged_once(&pg, kind, &format!("{statement} /*"));
            let comment = text
                .strip_prefix(&format!("{statement} /*"))
                .and_then(|rest| rest.strip_suffix(&format!("*/{end}")))
                .unwrap_or_else(|| panic!("case {k}: {text:?}"));
            let pairs = parse_comment(comment).unwrap_or_else(|| panic!("case {k}: {text:?}"));
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect();
            assert_eq!(pairs, expected, "case {k}: {text:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_tag_keeps_one_text_across_requests() {
    const BY_ROUTE: Tagger = Tagger::empty().context_keys(&["route"]);
    const RUNS: usize = 3;
    let Some(pg) = pg_support::cluster() else {
        return;
    };
    let db = pg.connect().await;
    for i in 0..RUNS {
        let ctx = request()
            .with_request_id(format!("route-{i}"))
            .with("route", "/orders/{id}");
        ctx.scope(async {
            let by_route = BY_ROUTE.tag("SELECT $1::int AS by_route");
            let row = db.query_one(&*by_route, &[&7]).await.unwrap();
            assert_eq!(row.get::<_, i32>(0), 7);
            // Another type, so that pg_stat_statements does not count it with the one above
            // (it ignores column names too).
            let by_request = sql::tag("SELECT $1::bigint AS by_request");
            let row = db.query_one(&*by_request, &[&7i64]).await.unwrap();
            assert_eq!(row.get::<_, i64>(0), 7);
        })
        .await;
    }

    let by_route = pg.wait_logged(RUNS, |l| {
        l.kind == "execute" && l.text.starts_with("SELECT $1::int AS by_route")
    });
    assert_eq!(by_route.len(), RUNS);
    for logged in &by_route {
        assert_eq!(
            logged.text,
            "SELECT $1::int AS by_route /*route='%2Forders%2F%7Bid%7D'*/"
        );
    }
    let by_request = pg.wait_logged(RUNS, |l| {
        l.kind == "execute" && l.text.starts_with("SELECT $1::bigint AS by_request")
    });
    let texts: Vec<&str> = by_request.iter().map(|l| l.text.as_str()).collect();
    let expected: Vec<String> = (0..RUNS)
        .map(|i| {
            format!(
                "SELECT $1::bigint AS by_request /*request_id='route-{i}',\
                 traceparent='00-{TRACE}-{SPAN}-01'*/"
            )
        })
        .collect();
    assert_eq!(texts, expected, "one text per request");

    // What the `sql` docs say of pg_stat_statements: one entry for the runs of a statement
    // whatever their comments, shown with the first run's text.
    if !pg.stat_statements {
        eprintln!("pg_stat_statements is not installed; its part of this test is skipped");
        return;
    }
    db.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .unwrap();
    let rows = db
        .query(
            "SELECT calls, query FROM pg_stat_statements WHERE query LIKE $1",
            &[&"SELECT $1::bigint AS by_request%"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one entry for every request's text");
    assert_eq!(rows[0].get::<_, i64>(0), RUNS as i64);
    assert_eq!(rows[0].get::<_, &str>(1), expected[0]);
}

/// Through the real middleware: the request id and trace context come from the request's
/// headers, and the statement the handler runs names them.
#[cfg(feature = "http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_the_middleware_tags_its_statements() {
    use axum::extract::State;
    use axum::routing::get;
    use axum::Router;
    use http_support::{capture, client, get as send, lines_until, of};
    use tokio_postgres::Client;
    use tracing_ambient::http::RequestContextLayer;

    let Some(pg) = pg_support::cluster() else {
        return;
    };
    let capture = capture();
    let db = Arc::new(pg.connect().await);
    let app = Router::new()
        .route(
            "/echo",
            get(|State(db): State<Arc<Client>>| async move {
                let statement = sql::tag("SELECT $1::text AS through_middleware");
                let row = db.query_one(&*statement, &[&"echo"]).await.unwrap();
                row.get::<_, String>(0)
            }),
        )
        .with_state(db)
        .layer(RequestContextLayer::new());
    let addr = http_support::serve(app).await;
    let client = client();
    // The sqlcommenter spec's own example tracestate, which it encodes as
    // `congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7`.
    let traceparent = format!("00-{TRACE}-{SPAN}-01");
    let headers: [(&str, &[u8]); 3] = [
        ("x-request-id", b"mw-1"),
        ("traceparent", traceparent.as_bytes()),
        ("tracestate", b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
    ];
    let reply = send(&client, addr, "/echo", &headers).await;
    assert_eq!(reply.body, "echo");

    // The request's own span id, as its access line carries it: the middleware starts a
    // span of its own under the caller's.
    let lines = lines_until(&capture, |lines| {
        of(lines, "mw-1")
            .iter()
            .any(|l| l.str("target") == Some("access"))
    })
    .await;
    let access: Vec<_> = of(&lines, "mw-1")
        .into_iter()
        .filter(|l| l.str("target") == Some("access"))
        .collect();
    assert_eq!(access.len(), 1);
    assert_eq!(access[0].str("traceId"), Some(TRACE));
    let span = access[0].str("spanId").unwrap();
    assert_ne!(span, SPAN);

    let text = logged_once(&pg, "execute", "SELECT $1::text AS through_middleware");
    assert_eq!(
        text,
        format!(
            "SELECT $1::text AS through_middleware /*request_id='mw-1',\
             traceparent='00-{TRACE}-{span}-01',\
             tracestate='congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7'*/"
        )
    );
}
