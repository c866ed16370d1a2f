//! The store an installation runs on (`--store`), and `tapwire store migrate`, which
//! moves one into another: every document (each read and checked) and the whole audit
//! trail, in one commit, into a store that holds nothing yet.

use std::path::Path;

use anyhow::Context;
use tapwire_control::State;
use tapwire_control::audit;
use tapwire_model::identity::AuditRecord;
use tapwire_store::{RecordQuery, SqliteStore, Store};

/// Arguments of `tapwire store`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Copy an installation's store into an empty one (stop the servers first), e.g.
    /// `--from sqlite:./tapwire-data --to postgres://tapwire@db/tapwire`.
    Migrate {
        /// The store to read: `sqlite:DIR` or `postgres://…`.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty store to write: `sqlite:DIR` or `postgres://…`.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// The part of a store URL that may be shown: a PostgreSQL URL's password is not.
fn shown(url: &str) -> String {
    match url.split_once("://").zip(url.rsplit_once('@')) {
        Some(((scheme, _), (_, host))) => format!("{scheme}://…@{host}"),
        None => url.to_owned(),
    }
}

/// Opens the store `url` names (`sqlite:DIR`, `postgres://…`), or the SQLite store in
/// `data_dir` when it names none.
pub fn open(url: Option<&str>, data_dir: &Path) -> anyhow::Result<Box<dyn Store>> {
    match url {
        None => Ok(Box::new(
            SqliteStore::open_dir(data_dir).with_context(|| format!("opening the store in {}", data_dir.display()))?,
        )),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(Box::new(
            tapwire_store::PostgresStore::connect(url)
                .with_context(|| format!("opening the store at {}", shown(url)))?,
        )),
        Some(url) => {
            let dir = url.strip_prefix("sqlite:").context("a store is sqlite:DIR or postgres://USER@HOST/DATABASE")?;
            let store = SqliteStore::open_dir(Path::new(dir)).with_context(|| format!("opening the store in {dir}"))?;
            Ok(Box::new(store))
        }
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Command::Migrate { from, to } = args.command;
    let (source, target) = (open(Some(&from), Path::new("."))?, open(Some(&to), Path::new("."))?);
    let existing = target.revision()?;
    anyhow::ensure!(
        existing == 0 && target.load()?.documents.is_empty(),
        "{} already holds a store (revision {existing}): migrate into an empty one",
        shown(&to)
    );
    let snapshot = source.load()?;
    let mut commit = State::commit_of_snapshot(&snapshot).context("reading the source's documents")?;
    // The audit trail, read newest first a page at a time, written oldest first.
    let mut before = None;
    loop {
        let page =
            source.records(&RecordQuery { kind: audit::KIND, before, limit: 10_000, ..RecordQuery::default() })?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for r in &page {
            let record: AuditRecord = serde_json::from_str(&r.body).context("reading an audit record")?;
            commit.records.push(audit::to_record(&record));
        }
    }
    commit.records.reverse();
    let (documents, records) = (commit.puts.len(), commit.records.len());
    let revision = target.commit(&commit)?;
    println!(
        "moved {documents} documents and {records} audit records from {} (revision {}) to {} (now revision {revision}); \
         start the servers on it (--store) with the same --master-key",
        shown(&from),
        snapshot.revision,
        shown(&to)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_database_password_is_never_shown() {
        assert_eq!(
            shown("postgres://tapwire:s3cret@db.example.net:5432/tapwire"),
            "postgres://…@db.example.net:5432/tapwire"
        );
        assert_eq!(shown("sqlite:./tapwire-data"), "sqlite:./tapwire-data");
    }
}
