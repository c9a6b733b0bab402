//! A throwaway Postgres cluster for the SQL end-to-end tests: `initdb` and `pg_ctl` in a
//! temporary directory, listening on 127.0.0.1 on a free port, every statement logged to a
//! file the tests read, and stopped and removed when the last test holding it is done, also
//! when a test fails.
//!
//! The server binaries are looked for in `$PG_BIN` if set (and only there), else on `PATH`,
//! else in Debian's `/usr/lib/postgresql/<version>/bin`. Without them a local run skips with a
//! printed reason; under CI (`CI` set and not `false`/`0`) it fails, since CI installs them.
//! Postgres refuses to run as root: as root, the cluster runs as the `postgres` user (or
//! `nobody`), which owns the temporary directory.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

/// Settings appended to `postgresql.conf`. The port is given on the command line, since a
/// free port is picked anew on each try.
const SETTINGS: &str = "
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_destination = 'stderr'
log_min_duration_statement = 0
log_line_prefix = 'pg-log|'
lc_messages = 'C'
";

/// Starts every record of the server log; lines that do not start with it continue the
/// record before (Postgres starts them with a tab).
const PREFIX: &str = "pg-log|";

/// How long a helper waits for the server before failing. Everything it waits for happens
/// within milliseconds; this only bounds how long a failing test takes to say so.
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// A running throwaway cluster; dropping the last handle stops it and removes its files.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    /// The (uid, gid) the server runs as, when the tests run as root.
    user: Option<(u32, u32)>,
    pub port: u16,
    /// Whether `pg_stat_statements` is loaded (the library ships with Debian's server).
    pub stat_statements: bool,
}

/// Returns the cluster shared by the tests of this binary, starting one if none is running,
/// or `None` (after printing why) when the Postgres binaries are missing outside CI.
///
/// # Panics
///
/// If the binaries are missing under CI, or the cluster cannot be started.
pub fn cluster() -> Option<Arc<Cluster>> {
    static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = shared.upgrade() {
        return Some(cluster);
    }
    let Some(bin) = find_bin() else {
        let reason = "no Postgres server binaries (initdb) in $PG_BIN, on PATH or in \
                      /usr/lib/postgresql/*/bin; install Debian's `postgresql` package";
        assert!(!in_ci(), "CI must run the Postgres tests: {reason}");
        eprintln!("skipping the Postgres test: {reason}");
        return None;
    };
    let cluster = Arc::new(Cluster::start(bin));
    *shared = Arc::downgrade(&cluster);
    Some(cluster)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("initdb"))
        .find(|initdb| initdb.is_file())
        // `/usr/local/bin/initdb` may be a link into the version's own directory, where
        // `pg_ctl` and the libraries are.
        .and_then(|initdb| fs::canonicalize(initdb).ok()?.parent().map(Path::to_owned));
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

/// The (uid, gid) of `postgres`, else `nobody`, when this process is root; `None` otherwise.
fn server_user() -> Option<(u32, u32)> {
    let uid = Command::new("id").arg("-u").output().expect("run `id -u`");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let find = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == name)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
    };
    let user = find("postgres").or_else(|| find("nobody"));
    Some(
        user.expect(
            "running as root, and neither `postgres` nor `nobody` exists to run Postgres as",
        ),
    )
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

// === impl Cluster ===

impl Cluster {
    fn start(bin: PathBuf) -> Cluster {
        let begun = Instant::now();
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tracing-ambient-pg-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        // A directory left by a killed run with this pid is stale.
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("create the cluster's directory");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod 700");
        let user = server_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the directory");
        }
        // From here on, dropping `cluster` (a panic below included) stops and removes it.
        let mut cluster = Cluster {
            dir,
            bin,
            user,
            port: 0,
            stat_statements: false,
        };
        let data = cluster.data();
        let init = cluster.run("initdb", |c| {
            c.arg("-D").arg(&data);
            c.args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "--no-locale",
                "-E",
                "UTF8",
            ]);
        });
        assert!(init.status.success(), "initdb failed: {}", show(&init));
        // `pg_stat_statements` backs what the `sql` docs say of it; load it where it exists.
        cluster.stat_statements = cluster
            .bin
            .parent()
            .is_some_and(|version| version.join("lib/pg_stat_statements.so").is_file());
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        conf.write_all(SETTINGS.as_bytes())
            .expect("write postgresql.conf");
        if cluster.stat_statements {
            conf.write_all(b"shared_preload_libraries = 'pg_stat_statements'\n")
                .expect("write postgresql.conf");
        }
        // Another process may take the free port before the server binds it: try again.
        for attempt in 1..=3 {
            let port = free_port();
            let log = cluster.log_path();
            let started = cluster.run("pg_ctl", |c| {
                c.arg("-D").arg(&data).arg("-l").arg(&log);
                c.args(["-w", "-t", "60", "-o", &format!("-p {port}"), "start"]);
            });
            if started.status.success() {
                cluster.port = port;
                eprintln!(
                    "started a Postgres cluster on 127.0.0.1:{port} in {:?} ({})",
                    begun.elapsed(),
                    cluster.bin.display()
                );
                return cluster;
            }
            assert!(
                attempt < 3,
                "pg_ctl start failed: {}\nserver log:\n{}",
                show(&started),
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        unreachable!()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Runs one of the server's programs, as the server's user when we are root.
    fn run(&self, program: &str, args: impl FnOnce(&mut Command)) -> Output {
        let mut command = Command::new(self.bin.join(program));
        // The server's user may not be allowed into the directory the tests run in.
        command.current_dir(&self.dir);
        if let Some((uid, gid)) = self.user {
            // std clears the supplementary groups when root sets a uid.
            command.uid(uid).gid(gid);
        }
        args(&mut command);
        command
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    }

    /// Opens a connection as the superuser; the connection runs on the current runtime.
    pub async fn connect(&self) -> Client {
        let config = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=10",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&config, NoTls)
            .await
            .expect("connect to the test cluster");
        tokio::spawn(async move {
            // Ends when the client is dropped; an error here shows up as the client's.
            let _ = connection.await;
        });
        client
    }

    /// Every statement the server has logged so far.
    pub fn logged(&self) -> Vec<Logged> {
        let bytes = fs::read(self.log_path()).expect("read the server log");
        parse_log(&String::from_utf8_lossy(&bytes))
    }

    /// Waits until the server has logged `count` statements that `matches` accepts, and
    /// returns them.
    ///
    /// # Panics
    ///
    /// If they are not logged within [`PROMPTLY`], or more than `count` are.
    #[track_caller]
    pub fn wait_logged(&self, count: usize, matches: impl Fn(&Logged) -> bool) -> Vec<Logged> {
        let start = Instant::now();
        loop {
            let all = self.logged();
            let found: Vec<Logged> = all.iter().filter(|l| matches(l)).cloned().collect();
            assert!(
                found.len() <= count,
                "expected {count} logged statements, found {}: {found:#?}",
                found.len()
            );
            if found.len() == count {
                return found;
            }
            if start.elapsed() > PROMPTLY {
                let last = &all[all.len().saturating_sub(10)..];
                panic!(
                    "timed out after {PROMPTLY:?} waiting for {count} logged statements; \
                     found {}; the log's last {} statements: {last:#?}",
                    found.len(),
                    last.len()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.port != 0 {
            let data = self.data();
            let _ = self.run("pg_ctl", |c| {
                c.arg("-D").arg(&data);
                c.args(["-m", "immediate", "-w", "-t", "30", "stop"]);
            });
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn show(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One statement from the server log: `kind` is `statement` (simple protocol) or `parse`,
/// `bind` or `execute` (extended protocol), `text` the statement as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub kind: String,
    pub text: String,
}

/// Parses the `log_min_duration_statement` records of a server log written with
/// `log_line_prefix = 'pg-log|'`: `pg-log|LOG:  duration: 0.1 ms  execute s0: SELECT …`,
/// a multi-line statement going on in lines that start with a tab.
pub fn parse_log(log: &str) -> Vec<Logged> {
    let mut records: Vec<String> = Vec::new();
    for line in log.lines() {
        match (line.strip_prefix(PREFIX), records.last_mut()) {
            (Some(record), _) => records.push(record.to_owned()),
            (None, Some(record)) => {
                record.push('\n');
                record.push_str(line.strip_prefix('\t').unwrap_or(line));
            }
            (None, None) => {}
        }
    }
    records
        .iter()
        .filter_map(|record| {
            let rest = record.strip_prefix("LOG:  duration: ")?;
            let (_ms, rest) = rest.split_once(" ms  ")?;
            let (head, text) = rest.split_once(": ")?;
            let kind = head.split(' ').next()?.to_owned();
            Some(Logged {
                kind,
                text: text.to_owned(),
            })
        })
        .collect()
}

/// Parses a sqlcommenter comment as the spec defines it: `key='value'` pairs separated by
/// commas, `\'` for a quote, keys and values URL-encoded. Returns the decoded pairs in
/// their order, or `None` if the text does not follow the grammar.
pub fn parse_comment(comment: &str) -> Option<Vec<(String, String)>> {
    comment
        .split(',')
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
            Some((url_decode(key)?, url_decode(value)?))
        })
        .collect()
}

/// Undoes the spec's escaping: `\'` to `'`, then `%XX` to its byte. `None` on a stray `%`,
/// an unescaped quote or bytes that are not UTF-8.
fn url_decode(text: &str) -> Option<String> {
    let text = text.replace("\\'", "'");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'\'' => return None,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
