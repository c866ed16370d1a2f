//! A PostgreSQL cluster a benchmark makes for itself: Debian's server binaries, run as
//! the `postgres` user in a temporary directory on a loopback port, stopped and removed
//! on drop; or the server `TAPWIRE_BENCH_POSTGRES` names (a URL whose user may create
//! databases). Each run gets a new, empty database.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A PostgreSQL cluster the bench made (as the `postgres` user, in a temporary
/// directory); stopped and removed on drop.
pub struct Cluster {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    port: String,
}

impl Cluster {
    fn as_postgres(&self, program: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new("setpriv")
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(self.bin.join(program))
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Starts one, if this is root on a machine with Debian's PostgreSQL server.
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .max()?;
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user.
        if std::fs::metadata("/proc/self").ok()?.uid() != 0 || !bin.join("initdb").exists() {
            return None;
        }
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        let entry: Vec<&str> = passwd.lines().find(|l| l.starts_with("postgres:"))?.split(':').collect();
        let (uid, gid) = (entry[2].parse().ok()?, entry[3].parse().ok()?);
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
        let cluster = Cluster { bin, dir, port };
        let data = cluster.dir.path().join("data");
        let data = data.to_str().unwrap();
        assert!(
            cluster.as_postgres("initdb", &["-D", data, "-U", "tapwire", "-A", "trust", "--no-sync"]).status.success()
        );
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200",
            cluster.port,
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("log");
        let started =
            cluster.as_postgres("pg_ctl", &["-D", data, "-l", log.to_str().unwrap(), "-o", &options, "-w", "start"]);
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
        Some(cluster)
    }

    /// A new, empty database; its URL.
    fn database(&self) -> String {
        let name = next_name();
        let made = self.as_postgres(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port,
                "-U",
                "tapwire",
                "-d",
                "postgres",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ],
        );
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        format!("postgres://tapwire@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        self.as_postgres("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }
}

/// A database name not used yet in this run.
fn next_name() -> String {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    format!("tapwire_bench_{}_{}", std::process::id(), MADE.fetch_add(1, Ordering::Relaxed))
}

/// Where a benchmark's PostgreSQL databases come from.
pub enum Databases {
    /// `TAPWIRE_BENCH_POSTGRES`: a server reached with this URL.
    Given(String),
    /// A cluster of the bench's own.
    Own(Cluster),
}

impl Databases {
    /// The given database or a cluster of the bench's own; `None` (said why) when neither.
    pub fn find(bench: &str) -> Option<Self> {
        if let Ok(url) = std::env::var("TAPWIRE_BENCH_POSTGRES") {
            return Some(Self::Given(url));
        }
        let found = Cluster::start().map(Self::Own);
        if found.is_none() {
            println!(
                "{bench} PostgreSQL: not run (set TAPWIRE_BENCH_POSTGRES, or run as root with postgresql installed)"
            );
        }
        found
    }

    /// A new, empty database's URL.
    pub fn database(&self) -> String {
        match self {
            Self::Given(url) => {
                let name = next_name();
                let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
                client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
                let base = url.split('?').next().unwrap();
                format!("{}/{name}", &base[..base.rfind('/').unwrap()])
            }
            Self::Own(cluster) => cluster.database(),
        }
    }
}
