//! Engine integration tests, one binary (linking a test binary per file cost
//! minutes of CI). Each module is one area; `common` and `loopback` are shared
//! helpers (fixture folders and engines; a local HTTP server that speaks the
//! providers' wire formats and injects faults).
//!
//! Run one area with `cargo test --test engine <module>::`, e.g.
//! `cargo test --test engine crash_kill::`.

mod common;
mod loopback;

mod archive_peers;
mod archive_roundtrip;
mod bad_files;
mod bad_input;
mod boilerplate;
mod cli_bad_input;
mod cli_progress;
mod compare_providers;
mod cost_engine;
mod cost_ledger;
mod crash_kill;
mod degraded;
mod embed_local;
mod encryption;
mod exclusions;
mod file_types;
mod forget_all;
mod hybrid_quality;
mod index_incremental;
mod integrity;
mod internal_errors;
mod key_hosts;
mod keychain;
mod keyword_index;
mod mcp_server;
mod messy_text;
mod model_fetch;
mod multiprocess;
mod newest_first;
mod obsidian;
mod page_cache;
mod providers_compatible;
mod providers_gemini;
mod providers_openai;
mod prune_caches;
mod real_notes;
mod search_quality;
mod symlinks;
mod text_properties;
mod translations;
mod ui_snippets;
mod vector_rebuild;
mod watch_concurrency;
mod watch_events;
