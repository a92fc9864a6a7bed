//! `sift encrypt on|off|status`: encryption at rest of the data folder.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use sift::config::Settings;
use sift::encryption::Reconciled;

#[derive(Debug, Subcommand)]
pub enum EncryptCommand {
    /// Encrypt the database and vector files (key in the OS keychain).
    On,
    /// Decrypt them and delete the key from the keychain.
    Off,
    /// Whether the data folder is encrypted, and whether that is the setting.
    Status,
}

pub fn run(data_dir: &Path, command: EncryptCommand) -> Result<ExitCode> {
    let want = match command {
        EncryptCommand::On => true,
        EncryptCommand::Off => false,
        EncryptCommand::Status => {
            let on = sift::encryption::is_on(data_dir);
            let setting = Settings::load(data_dir)?.encrypt_at_rest;
            out!(
                "encryption at rest: {}{}",
                if on { "on" } else { "off" },
                if setting != on {
                    format!(
                        " (turning {} once no other Sift process has {} open)",
                        if setting { "on" } else { "off" },
                        data_dir.display()
                    )
                } else {
                    String::new()
                }
            )?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    sift::data_dir::ensure(data_dir)?;
    // The setting first: if this stops half way, the next open finishes it.
    Settings::update(data_dir, None, |s| {
        s.encrypt_at_rest = want;
        Ok(())
    })?;
    match sift::encryption::set_encrypted(data_dir, want)? {
        Reconciled::Encrypted => out!("encrypted {} (key in the OS keychain)", data_dir.display())?,
        Reconciled::Decrypted => out!(
            "decrypted {} and deleted its key from the keychain",
            data_dir.display()
        )?,
        Reconciled::Unchanged | Reconciled::Waiting => out!(
            "encryption at rest is already {}",
            if want { "on" } else { "off" }
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
