//! `sift key set|status|delete`: API keys in the OS keychain.
//!
//! A key is read from a hidden prompt, or from standard input when that is not a
//! terminal (`printf %s "$KEY" | sift key set openai`); never from the command
//! line, where other users and shell history could see it.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use sift::keys::{KeyStore, PROVIDERS};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Store the API key of a provider (prompted, or read from stdin).
    Set(SetArgs),
    /// Which providers have a key (masked).
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete the API key of a provider.
    Delete(ProviderArg),
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// openai, gemini or compatible.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(PROVIDERS))]
    pub provider: String,
    /// Send this key only to this address (a gateway, a proxy, an
    /// OpenAI-compatible server) instead of the provider's own API. Sift never
    /// sends a key to an address it was not saved for.
    #[arg(long)]
    pub base_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProviderArg {
    /// openai, gemini or compatible.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(PROVIDERS))]
    pub provider: String,
}

pub fn run(command: KeyCommand) -> Result<ExitCode> {
    let store = KeyStore::os();
    match command {
        KeyCommand::Set(SetArgs { provider, base_url }) => {
            let key = read_key(&provider)?;
            store.set_for_url(&provider, &key, base_url.as_deref())?;
            let masked = store
                .get(&provider)?
                .map(|k| k.masked())
                .unwrap_or_default();
            let host = base_url.as_deref().unwrap_or("its own API");
            out!("stored the {provider} key in the OS keychain: {masked} (sent only to {host})")?;
        }
        KeyCommand::Status { json } => {
            let status = store.status()?;
            if json {
                out!("{}", serde_json::to_string_pretty(&status)?)?;
            } else {
                for s in status {
                    let state = s.masked.unwrap_or_else(|| "not set".to_string());
                    match s.saved_for {
                        Some(url) => out!("{:<11} {state}, for {url}", s.provider)?,
                        None => out!("{:<11} {state}", s.provider)?,
                    }
                }
            }
        }
        KeyCommand::Delete(ProviderArg { provider }) => {
            if store.delete(&provider)? {
                out!("deleted the {provider} key from the OS keychain")?;
            } else {
                out!("no {provider} key was stored")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_key(provider: &str) -> Result<String> {
    let key = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("API key for {provider} (input hidden): "))
            .context("could not read the key from the terminal")?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .context("could not read the key from standard input")?;
        text
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        anyhow::bail!("no key given: type or pipe the {provider} API key");
    }
    Ok(key)
}
