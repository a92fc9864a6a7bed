//! `sift mcp`: a Model Context Protocol server over stdio, so AI assistants can
//! search the indexed notes. Each tool calls one engine method; stdout carries
//! only the protocol (notes for people go to stderr).
//!
//! Arguments that do not fit a tool's schema (a string where a number goes, a
//! missing query) are refused by the SDK as invalid parameters; arguments the
//! engine refuses (a bad date, a note outside the indexed folders) come back as
//! a tool error whose text says why and carries the error's kind, so the
//! assistant can correct itself. Neither ends the session.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use sift::search::DateSource;
use sift::{Engine, Mode, Query};

#[derive(Debug, Args)]
pub struct McpArgs {}

/// How a search ranks notes.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
enum SearchMode {
    /// Keywords and meaning, fused (the default).
    #[default]
    Hybrid,
    /// Keywords only (BM25).
    Keyword,
    /// Meaning only (vector similarity).
    Semantic,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    /// What to look for: words, "quoted phrases", or a question.
    query: String,
    /// hybrid (default), keyword or semantic.
    #[serde(default)]
    mode: SearchMode,
    /// Most notes to return (default 10, at most 1000).
    limit: Option<usize>,
    /// Keyword share of hybrid ranking, 0 to 1 (default: the user's setting).
    keyword_weight: Option<f32>,
    /// Only notes under this folder, relative to the indexed folder.
    folder: Option<String>,
    /// Only notes carrying every one of these tags.
    #[serde(default)]
    tags: Vec<String>,
    /// Only these file types (extensions without the dot), e.g. ["md", "pdf"].
    #[serde(default)]
    exts: Vec<String>,
    /// Only notes dated on or after this day (YYYY-MM-DD).
    after: Option<String>,
    /// Only notes dated on or before this day (YYYY-MM-DD).
    before: Option<String>,
    /// Which date after/before look at: "modified" (the file's, default) or
    /// "front_matter" (the note's own `date:`/`created:`, else modified). Each
    /// hit says which it used in `date_source`.
    #[serde(default)]
    date: DateField,
}

/// Which date of a note the date filter looks at.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
enum DateField {
    /// The file's modification time.
    #[default]
    Modified,
    /// The note's front-matter date, else its modification time.
    FrontMatter,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RelatedParams {
    /// A note: its absolute path, or its path relative to its indexed folder.
    path: String,
    /// Most notes to return (default 10, at most 1000).
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoteParams {
    /// A note: its absolute path, or its path relative to its indexed folder.
    path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StatusParams {}

/// The server: one engine shared by the tool calls.
#[derive(Clone)]
struct SiftTools {
    engine: Arc<Engine>,
    #[allow(dead_code)] // read by the code #[tool_handler] generates
    tool_router: ToolRouter<SiftTools>,
}

#[tool_router]
impl SiftTools {
    #[tool(
        description = "Search the user's notes by meaning and keywords. Returns the best notes with their path, title, headings, line, a snippet and why they ranked. Filters: folder, tags, file types, dates."
    )]
    async fn search(&self, Parameters(p): Parameters<SearchParams>) -> CallToolResult {
        let query = Query {
            text: p.query,
            mode: match p.mode {
                SearchMode::Hybrid => Mode::Hybrid,
                SearchMode::Keyword => Mode::Keyword,
                SearchMode::Semantic => Mode::Semantic,
            },
            limit: p.limit.unwrap_or(10),
            keyword_weight: p.keyword_weight,
            folder: p.folder,
            tags: p.tags,
            exts: p.exts,
            after: p.after,
            before: p.before,
            date: match p.date {
                DateField::Modified => DateSource::Modified,
                DateField::FrontMatter => DateSource::FrontMatter,
            },
        };
        self.call(move |engine| {
            let results = engine.search(&query)?;
            let hits: Vec<_> = results.hits.iter().map(super::search::hit_json).collect();
            Ok(json!({
                "mode": results.mode,
                "warning": results.warning,
                "hits": hits,
            }))
        })
        .await
    }

    #[tool(
        description = "Notes closest in meaning to a given note (its absolute path, or its path relative to its indexed folder)."
    )]
    async fn related(&self, Parameters(p): Parameters<RelatedParams>) -> CallToolResult {
        self.call(move |engine| {
            let path = engine.resolve_note_path(Path::new(&p.path));
            let hits = engine.related(&path, p.limit.unwrap_or(10))?;
            let hits: Vec<_> = hits.iter().map(super::search::hit_json).collect();
            Ok(json!({ "hits": hits }))
        })
        .await
    }

    #[tool(
        description = "The full text of one indexed note, with its title, tags, aliases and dates. Only notes inside the indexed folders can be read."
    )]
    async fn get_note(&self, Parameters(p): Parameters<NoteParams>) -> CallToolResult {
        self.call(move |engine| Ok(serde_json::to_value(engine.note(Path::new(&p.path))?)?))
            .await
    }

    #[tool(
        description = "What is indexed: folders, note and chunk counts, pending work, whether meaning search is available."
    )]
    async fn status(&self, Parameters(_): Parameters<StatusParams>) -> CallToolResult {
        self.call(|engine| Ok(serde_json::to_value(engine.status()?)?))
            .await
    }
}

impl SiftTools {
    /// Runs a blocking engine call off the protocol's tasks; an error becomes
    /// a tool error the assistant can read.
    async fn call(
        &self,
        f: impl FnOnce(&Engine) -> anyhow::Result<serde_json::Value> + Send + 'static,
    ) -> CallToolResult {
        let engine = self.engine.clone();
        let done = tokio::task::spawn_blocking(move || f(&engine)).await;
        match done {
            Ok(Ok(value)) => CallToolResult::structured(value),
            Ok(Err(err)) => tool_error(&err),
            Err(join) => {
                CallToolResult::error(vec![ContentBlock::text(format!("internal error: {join}"))])
            }
        }
    }
}

#[tool_handler]
impl ServerHandler for SiftTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("sift", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Sift searches the user's own notes (Markdown, text, PDF, ...) by meaning and \
                 by keywords. Use `search` to find notes, `get_note` to read one whole, \
                 `related` for notes on the same subject, `status` for what is indexed.",
            )
    }
}

/// A tool error: the message and, for engine errors, the kind's code.
fn tool_error(err: &anyhow::Error) -> CallToolResult {
    let kind = err
        .downcast_ref::<sift::Error>()
        .map(|e| e.kind().code())
        .unwrap_or("internal");
    CallToolResult::structured_error(json!({ "error": kind, "message": err.to_string() }))
}

pub fn run(data_dir: &Path, _args: McpArgs) -> Result<ExitCode> {
    let engine = Arc::new(super::open_engine(data_dir, true)?);
    // The server answers searches for as long as its client runs.
    engine.warm_up();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let tools = SiftTools {
            engine,
            tool_router: SiftTools::tool_router(),
        };
        let service = tools
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| anyhow::anyhow!("could not start the MCP session: {e}"))?;
        service.waiting().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
