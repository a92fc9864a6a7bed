//! Command-line parsing and dispatch. Each subcommand lives in its own file and
//! calls one or two engine methods.

/// `println!` that returns the write's error instead of panicking, so output
/// into a pipe closed early (`sift search ... | head -1`) ends the command
/// quietly (see [`is_broken_pipe`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}

mod archive;
mod compare;
mod cost;
mod encrypt;
mod forget;
mod index;
mod key;
mod mcp;
mod model;
mod progress_lines;
mod search;
mod status;
mod test_embedder;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::{Parser, Subcommand};
use sift::embed::Embedder;
use sift::{Engine, ErrorKind, Settings};

/// Search a folder of notes by meaning and by keywords.
#[derive(Debug, Parser)]
#[command(name = "sift", version, about)]
pub struct Cli {
    /// Data folder (index, settings); default: the per-user data folder or SIFT_DATA_DIR.
    #[arg(long, global = true, env = "SIFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Index a notes folder (added to the indexed folders), or all of them.
    Index(index::IndexArgs),
    /// Search the indexed notes.
    Search(search::SearchArgs),
    /// Notes related in meaning to a note.
    Related(search::RelatedArgs),
    /// Notes linking to a note (wikilinks, embeds, Markdown links).
    Backlinks(search::RelatedArgs),
    /// What is indexed.
    Status(status::StatusArgs),
    /// Watch a notes folder (or all indexed folders) and index every change live.
    Watch(watch::WatchArgs),
    /// Manage the local embedding model.
    Model {
        #[command(subcommand)]
        command: model::ModelCommand,
    },
    /// API keys of remote providers, kept in the OS keychain.
    Key {
        #[command(subcommand)]
        command: key::KeyCommand,
    },
    /// Serve the Model Context Protocol on stdin/stdout, for AI assistants
    /// (tools: search, related, get_note, status).
    Mcp(mcp::McpArgs),
    /// What remote embedding cost (this month, all time) and the price table.
    Cost(cost::CostArgs),
    /// Write the index to one file: a Sift archive to import elsewhere, or
    /// points for Qdrant or Chroma.
    Export(archive::ExportArgs),
    /// Read a Sift archive into a new data folder: search works at once,
    /// nothing is embedded again.
    Import(archive::ImportArgs),
    /// Compare the embedder in use with another provider on a sample of
    /// your notes and your latest searches (shows the cost first; --yes runs it).
    Compare(compare::CompareArgs),
    /// The latest searches Sift keeps for comparisons (--clear forgets them).
    History(compare::HistoryArgs),
    /// Remove one folder from the index, or delete everything of Sift's
    /// (--all: data folder, and on request the model and the API keys).
    Forget(forget::ForgetArgs),
    /// Encryption at rest: the database and vector files encrypted, the key
    /// in the OS keychain.
    Encrypt {
        #[command(subcommand)]
        command: encrypt::EncryptCommand,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = cli.data_dir.unwrap_or_else(sift::config::default_data_dir);
    match cli.command {
        Command::Index(args) => index::run(&data_dir, args),
        Command::Search(args) => search::run_search(&data_dir, args),
        Command::Related(args) => search::run_related(&data_dir, args),
        Command::Backlinks(args) => search::run_backlinks(&data_dir, args),
        Command::Status(args) => status::run(&data_dir, args),
        Command::Watch(args) => watch::run(&data_dir, args),
        Command::Model { command } => model::run(command),
        Command::Key { command } => key::run(command),
        Command::Cost(args) => cost::run(&data_dir, args),
        Command::Mcp(args) => mcp::run(&data_dir, args),
        Command::Export(args) => archive::run_export(&data_dir, args),
        Command::Import(args) => archive::run_import(&data_dir, args),
        Command::Forget(args) => forget::run(&data_dir, args),
        Command::Compare(args) => compare::run(&data_dir, args),
        Command::History(args) => compare::run_history(&data_dir, args),
        Command::Encrypt { command } => encrypt::run(&data_dir, command),
    }
}

/// Whether `err` comes from writing into a pipe whose reader has gone: the
/// reader has all it wanted, so the command ends quietly and successfully,
/// as `grep` or `rg` do.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Opens the engine with the configured embedder; without one (no model, no
/// key) it opens keyword-only and says why on stderr, once.
pub fn open_engine(data_dir: &Path, need_embedder: bool) -> Result<Engine> {
    sift::data_dir::ensure(data_dir)?;
    let settings = Settings::load(data_dir)?;
    let embedder = if need_embedder {
        test_embedder::from_env().or_else(|| load_embedder(&settings))
    } else {
        None
    };
    Ok(Engine::open_with(data_dir, settings, embedder)?)
}

fn load_embedder(settings: &Settings) -> Option<Arc<dyn Embedder>> {
    match sift::embed::build_embedder(&settings.provider, &sift::keys::KeyStore::os()) {
        Ok(embedder) => Some(embedder),
        Err(err) => {
            if err.kind() == ErrorKind::ModelMissing {
                eprintln!("note: {err}");
            } else {
                eprintln!("note: meaning search is off: {err}");
            }
            None
        }
    }
}
