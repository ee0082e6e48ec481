//! A throwaway PostgreSQL server for the tests, and a fresh database per test.
//!
//! [`shared`] is one server for every test process of a run: nextest runs each test in
//! its own process, and starting a server (initdb, then the postmaster) costs seconds,
//! so the first process starts it under a lock file and later ones find it running.
//! It lives in `/tmp/botmaker-pg-<hash of the target dir>/` (short enough for a Unix
//! socket path), listens only on a Unix socket in that folder (`listen_addresses = ''`;
//! the folder is 0700, owned by `postgres`), and keeps PostgreSQL's defaults for
//! durability (`fsync`, `synchronous_commit` on). It stays running after the run, and
//! the next run in the same target dir reuses it (a stale `postmaster.pid` after a
//! reboot is PostgreSQL's to handle; a data folder that never finished initdb is made
//! again). The servers of checkouts whose target dir is gone (a CI machine's earlier
//! clones), and the [`PrivateServer`]s of test processes that died, are stopped and
//! removed by the next test process that starts. Test databases are dropped when their test ends; those of dead processes
//! (a killed run) are swept when the next database is made.
//!
//! `initdb` refuses to run as root, so when the tests run as root (CI does), initdb and
//! the server run as the `postgres` user (`Command::uid`).
//!
//! When `BOTMAKER_TEST_DATABASE_URL` is set, no server is started: the databases are
//! made on that server (its user must be allowed to `CREATE DATABASE`).
//!
//! [`PrivateServer`] is a server of one test's own, for what would disturb the others
//! (stopping and starting it).
//!
//! Where the server binaries are missing, the tests fail and say
//! `apt-get install postgresql`: they never skip.

// Every function here is test setup: it panics, like `assert!`, when it fails.
#![allow(clippy::missing_panics_doc)]

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::rng::Rng;

/// The variable that points the tests at an existing server instead.
pub const URL_VAR: &str = "BOTMAKER_TEST_DATABASE_URL";

/// What to install when the binaries are missing.
pub const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found \
    at `pg_config --bindir` nor in /usr/lib/postgresql/*/bin: apt-get install postgresql \
    (or set BOTMAKER_TEST_DATABASE_URL to a server where the user may CREATE DATABASE)";

/// The folder holding `initdb`, `pg_ctl` and `postgres`.
///
/// # Panics
///
/// With [`INSTALL_HINT`] when they are nowhere.
pub fn bindir() -> PathBuf {
    find_bindir("pg_config".as_ref(), Path::new("/usr/lib/postgresql"))
        .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

/// The bindir `pg_config` names, else the newest `<root>/<major>/bin`, if it holds the
/// three binaries.
fn find_bindir(pg_config: &std::ffi::OsStr, root: &Path) -> Option<PathBuf> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Ok(out) = Command::new(pg_config).arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_all(&dir) {
            return Some(dir);
        }
    }
    let mut found: Vec<PathBuf> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has_all(d))
        .collect();
    // The newest major version (folders are named by it).
    found.sort_by_key(|d| {
        d.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

/// The uid and gid the server runs as: `postgres`'s when we are root (initdb refuses
/// root), else our own (`None`: no change).
fn server_user() -> Option<(u32, u32)> {
    let me = fs::metadata("/proc/self").map_or(0, |m| m.uid());
    if me != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"postgres") && f.len() > 3);
    let Some(f) = entry else {
        panic!(
            "running as root, and there is no `postgres` user to run initdb and the server \
             as: apt-get install postgresql (which creates it)"
        );
    };
    Some((f[2].parse().unwrap(), f[3].parse().unwrap()))
}

/// Runs a server binary as the server's user; panics with its output on failure.
fn run_server_tool(bin: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    if let Some((uid, gid)) = server_user() {
        cmd.uid(uid).gid(gid);
    }
    // The server's working directory must be readable by its user.
    cmd.current_dir("/");
    cmd.output()
        .unwrap_or_else(|e| panic!("running {}: {e}; {INSTALL_HINT}", bin.display()))
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `dir` (0700, owned by the server's user).
fn make_owned_dir(dir: &Path) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    if let Some((uid, gid)) = server_user() {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", dir.display()));
    }
}

/// A PostgreSQL cluster in a folder of ours: `data/`, `sock/` (the Unix socket), `log`.
#[derive(Debug)]
struct Cluster {
    bin: PathBuf,
    root: PathBuf,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn sock(&self) -> PathBuf {
        self.root.join("sock")
    }

    /// Runs initdb unless a complete cluster is there.
    fn init(&self) {
        make_owned_dir(&self.root);
        let data = self.data();
        if data.join("PG_VERSION").is_file() && data.join("postgresql.conf").is_file() {
            return;
        }
        // A folder left by an interrupted initdb: ours, throwaway, made again.
        let _ = fs::remove_dir_all(&data);
        make_owned_dir(&data);
        make_owned_dir(&self.sock());
        let out = run_server_tool(
            &self.bin.join("initdb"),
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                // initdb's own fsyncs of the new cluster only; the server keeps its
                // durability defaults (fsync, synchronous_commit on).
                "--no-sync".as_ref(),
            ],
        );
        check(&out, "initdb");
        let mut conf = OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        writeln!(
            conf,
            "\n# botmaker tests: a Unix socket only, in a folder of ours\n\
             listen_addresses = ''\n\
             unix_socket_directories = '{}'\n\
             max_connections = 400\n",
            self.sock().display()
        )
        .unwrap();
        if let Some((uid, gid)) = server_user() {
            std::os::unix::fs::chown(data.join("postgresql.conf"), Some(uid), Some(gid)).unwrap();
        }
    }

    fn running(&self) -> bool {
        run_server_tool(
            &self.bin.join("pg_ctl"),
            &["status".as_ref(), "-D".as_ref(), self.data().as_os_str()],
        )
        .status
        .success()
    }

    fn start(&self) {
        let log = self.root.join("log");
        let out = run_server_tool(
            &self.bin.join("pg_ctl"),
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "120".as_ref(),
                "-D".as_ref(),
                self.data().as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
            ],
        );
        if !out.status.success() {
            let log = fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "pg_ctl start failed: {}\n{}\nserver log:\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn stop(&self, mode: &str) {
        let out = run_server_tool(
            &self.bin.join("pg_ctl"),
            &[
                "stop".as_ref(),
                "-w".as_ref(),
                "-m".as_ref(),
                mode.as_ref(),
                "-D".as_ref(),
                self.data().as_os_str(),
            ],
        );
        check(&out, "pg_ctl stop");
    }

    /// The key=value connection string of the `postgres` superuser on `dbname`.
    fn url(&self, dbname: &str) -> String {
        format!(
            "host={} user=postgres dbname={dbname}",
            self.sock().display()
        )
    }
}

/// The server every test process of this run shares.
#[derive(Debug)]
pub struct Server {
    /// Where databases are made: the shared cluster, or `BOTMAKER_TEST_DATABASE_URL`.
    admin_url: String,
    local: bool,
}

/// The shared server: started by the first test process that needs it (under a lock
/// file), found running by the others.
///
/// # Panics
///
/// When the server binaries are missing ([`INSTALL_HINT`]) or the server cannot start.
pub fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var(URL_VAR)
            && !url.trim().is_empty()
        {
            return Server {
                admin_url: url,
                local: false,
            };
        }
        let cluster = Cluster {
            bin: bindir(),
            root: std::env::temp_dir().join(format!("botmaker-pg-{:016x}", fnv(&target_dir()))),
        };
        let lock_path = cluster.root.with_extension("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", lock_path.display()));
        lock.lock().unwrap();
        stop_orphans(&cluster.root);
        cluster.init();
        // Which checkout this server is for: `stop_orphans` of a later run stops it
        // once that folder is gone.
        fs::write(cluster.root.join("target"), target_dir()).unwrap();
        if !cluster.running() {
            cluster.start();
        }
        drop(lock);
        Server {
            admin_url: cluster.url("postgres"),
            local: true,
        }
    })
}

/// Stops and removes the shared servers of other checkouts whose target dir no longer
/// exists (a CI machine's earlier clones), and the private servers of test processes
/// that died: a server is never left behind for good.
fn stop_orphans(ours: &Path) {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let root = entry.path();
        let Some(name) = root.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if root == ours || root.extension().is_some() {
            continue;
        }
        if let Some(rest) = name.strip_prefix("botmaker-pgp-") {
            // A private server (`botmaker-pgp-<label>-<pid>-<random>`) whose test
            // process is gone (killed before its drop stopped it).
            let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let cluster = Cluster {
                    bin: bindir(),
                    root: root.clone(),
                };
                if cluster.running() {
                    cluster.stop("immediate");
                }
                let _ = fs::remove_dir_all(&root);
            }
            continue;
        }
        if !name.starts_with("botmaker-pg-") {
            continue;
        }
        let Ok(target) = fs::read(root.join("target")) else {
            continue;
        };
        let target = PathBuf::from(std::ffi::OsString::from_vec(target));
        if target.exists() {
            continue;
        }
        // Its lock, so that no test process of that (gone) checkout is starting it.
        let Ok(lock) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.with_extension("lock"))
        else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue;
        }
        let cluster = Cluster {
            bin: bindir(),
            root: root.clone(),
        };
        if cluster.running() {
            cluster.stop("immediate");
        }
        let _ = fs::remove_dir_all(&root);
        let _ = fs::remove_file(root.with_extension("lock"));
    }
}

/// The `target` folder of this build, so each checkout has its own server: the test
/// binary is `<target>/<profile>/deps/<name>-<hash>`, and the hash changes with the
/// dependencies, so the folder above the profile is the key (the binary's own folder
/// when it is not in a `deps` folder, as in a nextest archive).
fn target_dir() -> Vec<u8> {
    let exe = std::env::current_exe().unwrap_or_default();
    let parent = exe.parent().unwrap_or(&exe);
    let dir = if parent.file_name().is_some_and(|n| n == "deps") {
        parent.parent().and_then(Path::parent).unwrap_or(parent)
    } else {
        parent
    };
    dir.as_os_str().as_encoded_bytes().to_vec()
}

/// FNV-1a, stable across Rust versions (the folder name must be).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `url` with its database replaced by `dbname` (both connection string forms).
pub fn with_dbname(url: &str, dbname: &str) -> String {
    let url = url.trim();
    if let Some((scheme, rest)) = url.split_once("://") {
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let authority = before_query
            .split_once('/')
            .map_or(before_query, |(a, _)| a);
        let mut out = format!("{scheme}://{authority}/{dbname}");
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    } else {
        // key=value: a later key wins.
        format!("{url} dbname={dbname}")
    }
}

impl Server {
    fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to the test server: {e}"))
    }

    /// A new, empty database of this test's own (dropped when the returned value is,
    /// unless the test failed).
    pub fn database(&self, label: &str) -> TestDatabase {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let mut admin = self.admin();
        if self.local {
            sweep(&mut admin);
        }
        let label: String = label
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect::<String>()
            .to_ascii_lowercase();
        let name = format!(
            "bm_{}_{}_{:04x}_{label}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Rng::fresh_seed() & 0xffff
        );
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDatabase {
            url: with_dbname(&self.admin_url, &name),
            admin_url: self.admin_url.clone(),
            name,
        }
    }
}

/// Drops the test databases of processes that no longer run.
fn sweep(admin: &mut postgres::Client) {
    let Ok(rows) = admin.query(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'bm\\_%'",
        &[],
    ) else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ =
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }
    }
}

/// A database of one test's own.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Its connection string.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A plain client on it, for tests that look behind the store.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("test database kept: {} ({})", self.name, self.url);
            }
            return;
        }
        if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A server of one test's own, that it may stop and start; stopped and removed on
/// drop. Always local (it needs the binaries, even with `BOTMAKER_TEST_DATABASE_URL`).
#[derive(Debug)]
pub struct PrivateServer {
    cluster: Cluster,
}

impl PrivateServer {
    /// Runs initdb in a new folder and starts the server.
    pub fn start(label: &str) -> Self {
        let root = std::env::temp_dir().join(format!(
            "botmaker-pgp-{label}-{}-{:06x}",
            std::process::id(),
            Rng::fresh_seed() & 0xff_ffff
        ));
        let cluster = Cluster {
            bin: bindir(),
            root,
        };
        cluster.init();
        cluster.start();
        Self { cluster }
    }

    /// The connection string of `dbname` on it (the superuser `postgres`).
    pub fn url(&self, dbname: &str) -> String {
        self.cluster.url(dbname)
    }

    /// Makes a database.
    pub fn create_database(&self, name: &str) {
        let mut admin = postgres::Client::connect(&self.url("postgres"), postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended).
    pub fn stop(&self) {
        self.cluster.stop("fast");
    }

    /// Starts it again.
    pub fn restart(&self) {
        self.cluster.start();
    }

    /// Whether it runs.
    pub fn running(&self) -> bool {
        self.cluster.running()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if self.cluster.running() {
            let _ = run_server_tool(
                &self.cluster.bin.join("pg_ctl"),
                &[
                    "stop".as_ref(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-D".as_ref(),
                    self.cluster.data().as_os_str(),
                ],
            );
        }
        let _ = fs::remove_dir_all(&self.cluster.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_are_not_found_and_the_hint_names_the_package() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            find_bindir("/nonexistent/pg_config".as_ref(), empty.path()),
            None
        );
        assert!(INSTALL_HINT.contains("apt-get install postgresql"));
        // A version folder without the binaries does not count.
        std::fs::create_dir_all(empty.path().join("15/bin")).unwrap();
        assert_eq!(
            find_bindir("/nonexistent/pg_config".as_ref(), empty.path()),
            None
        );
    }

    #[test]
    fn dbname_is_replaced_in_both_forms() {
        assert_eq!(
            with_dbname("postgres://u:p@h:5/db?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_dbname("postgresql://h", "x"), "postgresql://h/x");
        assert_eq!(
            with_dbname("host=/tmp/s dbname=a", "x"),
            "host=/tmp/s dbname=a dbname=x"
        );
    }
}
