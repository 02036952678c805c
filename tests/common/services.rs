//! Servers a fault test owns, so it can crash, stop and pause them without touching anything shared: a
//! private PostgreSQL cluster (Debian's binaries) and a Kafka-protocol broker that keeps its data across
//! restarts (noida, fetched by infra/fetch-assets.sh; the shared tansu broker keeps nothing).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, repo_path, send_signal};

/// Runs a command as the `postgres` user when the test runs as root (PostgreSQL refuses to run as root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid(2) reads the process's user id and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn postgres_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("MURMUR_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql (infra/postgres.sh), or MURMUR_PG_BIN")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} not ready after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// A PostgreSQL cluster in a temporary folder, on its own port, trust auth.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let status = Command::new("chown").arg("postgres:postgres").arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown the cluster's folder to postgres");
        }
        let bin = postgres_bin();
        let output = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(dir.path().join("data"))
            .output()
            .expect("initdb runs");
        assert!(output.status.success(), "initdb: {}", String::from_utf8_lossy(&output.stderr));
        let cluster = Self { dir, bin, port: free_port() };
        cluster.start_server();
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .output()
            .expect("pg_ctl runs")
    }

    pub fn start_server(&self) {
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -k {}", self.port, self.dir.path().display());
        let log = self.dir.path().join("server.log").display().to_string();
        let output = self.pg_ctl(&["-o", &options, "-l", &log, "-w", "start"]);
        assert!(output.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&output.stderr));
        wait_until("private Postgres", Duration::from_secs(30), || listening(self.port));
    }

    /// Stops as a crash would (`immediate`: no checkpoint, connections cut); the next start replays the WAL.
    pub fn stop_immediately(&self) {
        let output = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        assert!(output.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Every process of the cluster: the postmaster and its children (none when it is not running).
    fn pids(&self) -> Vec<u32> {
        let pidfile = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).unwrap_or_default();
        let Some(postmaster) = pidfile.lines().next().and_then(|l| l.trim().parse::<u32>().ok()) else {
            return Vec::new();
        };
        let mut pids = children_of(postmaster);
        pids.push(postmaster);
        pids
    }

    /// Freezes every process of the cluster (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&self) {
        for pid in self.pids() {
            send_signal(pid, "STOP"); // a backend that just exited needs no stopping
        }
    }

    pub fn resume(&self) {
        for pid in self.pids() {
            send_signal(pid, "CONT");
        }
    }
}

/// The processes whose parent is `parent`, from `/proc/<pid>/stat` (field 4, after the parenthesised name).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after_name.split_whitespace().nth(1).and_then(|ppid| ppid.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.resume();
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }
}

/// The noida broker in a temporary data folder, on its own port.
pub struct PersistentBroker {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl PersistentBroker {
    pub fn start() -> Self {
        let mut broker = Self { dir: tempfile::tempdir().expect("tempdir"), port: free_port(), child: None };
        broker.launch();
        broker
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let binary = repo_path(".cache/bin/noida-db");
        assert!(binary.exists(), "{} missing: run infra/fetch-assets.sh", binary.display());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .expect("broker log");
        let child = Command::new(binary)
            .args(["start", "--only", "kafka", "--kafka-port", &self.port.to_string(), "--data-dir"])
            .arg(self.dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("noida starts");
        self.child = Some(child);
        wait_until("noida broker", Duration::from_secs(30), || listening(self.port));
    }

    /// Stops the broker (SIGTERM: it saves its data and exits), then starts the same broker on the same data
    /// after `down`. (noida writes to disk behind its acknowledgements, so a `kill -9` can lose messages it
    /// acknowledged: that is a crash of storage, which Kafka answers with replication, not a restart.)
    pub fn restart(&mut self, down: Duration) {
        if let Some(mut child) = self.child.take() {
            assert!(send_signal(child.id(), "TERM"), "SIGTERM the broker");
            let _ = child.wait();
        }
        std::thread::sleep(down);
        self.launch();
    }
}

impl Drop for PersistentBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
