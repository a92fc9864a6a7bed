//! `sift forget <folder>` and `sift forget --all [--model] [--keys]`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use sift::forget::{ForgetOptions, CONFIRM_PHRASE};
use sift::keys::KeyStore;

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// An indexed folder to remove from Sift: its notes' rows, chunks,
    /// vectors, keyword entries and the cached vectors no other note uses.
    /// The notes themselves are not touched.
    #[arg(required_unless_present = "all")]
    pub folder: Option<PathBuf>,
    /// Delete the whole data folder (index, vectors, settings, cost ledger)
    /// and the desktop app's stored searches. Your notes are not touched.
    #[arg(long, conflicts_with = "folder")]
    pub all: bool,
    /// With --all: also delete the downloaded local model.
    #[arg(long, requires = "all")]
    pub model: bool,
    /// With --all: also delete every provider's API key from the keychain.
    #[arg(long, requires = "all")]
    pub keys: bool,
    /// Do not ask to confirm --all.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(data_dir: &Path, args: ForgetArgs) -> Result<ExitCode> {
    if let Some(folder) = args.folder {
        return forget_folder(data_dir, &folder);
    }
    if !args.yes {
        confirm(data_dir, &args)?;
    }
    let options = ForgetOptions {
        model: args.model,
        keys: args.keys,
    };
    let done = sift::forget::forget_all(data_dir, options, &KeyStore::os())?;
    for path in &done.removed {
        out!("deleted {}", path.display())?;
    }
    for provider in &done.keys_deleted {
        out!("deleted the {provider} API key from the keychain")?;
    }
    if done.keychain_note.is_some() {
        out!("no OS keychain here, so no API key of Sift's to delete")?;
    }
    if !done.left.is_empty() {
        out!(
            "left in {} (not Sift's): {}",
            data_dir.display(),
            done.left
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    if done.removed.is_empty() && done.keys_deleted.is_empty() {
        out!("nothing of Sift's was found")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn forget_folder(data_dir: &Path, folder: &Path) -> Result<ExitCode> {
    let engine = super::open_engine(data_dir, true)?;
    let wanted = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    let folders = engine.settings().folders;
    if !folders.contains(&wanted) {
        bail!(
            "{} is not an indexed folder (indexed: {})",
            folder.display(),
            folders
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    engine.forget_folder(&wanted)?;
    out!(
        "removed {} from the index with its cached vectors (the notes themselves are untouched)",
        wanted.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn confirm(data_dir: &Path, args: &ForgetArgs) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("add --yes to confirm deleting everything of Sift's (nothing was deleted)");
    }
    let mut what = vec![format!("the data folder {}", data_dir.display())];
    if args.model {
        what.push("the downloaded model".into());
    }
    if args.keys {
        what.push("every API key in the keychain".into());
    }
    eprint!(
        "This deletes {}. Your notes stay.\nType `{CONFIRM_PHRASE}` to confirm: ",
        what.join(", ")
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != CONFIRM_PHRASE {
        bail!("not confirmed: nothing was deleted");
    }
    Ok(())
}
