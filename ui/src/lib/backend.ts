// The UI's only door to the shell. One method per command in docs/ipc.md,
// plus event subscriptions and the native folder picker.
import type {
  Background,
  CompareOptions,
  ComparePlan,
  CompareReport,
  CostRow,
  CostSummary,
  Estimate,
  ExportFormat,
  Exported,
  FileState,
  Forgotten,
  Hit,
  IpcError,
  KeyStatus,
  Mode,
  ModelState,
  NotesChanged,
  PatternPreview,
  Progress,
  Provider,
  Query,
  SearchResults,
  Settings,
  SnippetPart,
  Status,
  TypeCount,
} from "./types";
import recorded from "./recorded-snippets.json";

export type Unsubscribe = () => void;

export interface Backend {
  readonly kind: "tauri" | "mock";
  getSettings(): Promise<Settings>;
  saveSettings(settings: Settings): Promise<Settings>;
  /** A typed path, added only once the user confirmed it in the window. */
  addFolder(path: string, confirmed: boolean): Promise<Settings>;
  removeFolder(path: string): Promise<Settings>;
  status(): Promise<Status>;
  fileStates(): Promise<FileState[]>;
  fileTypeCounts(): Promise<TypeCount[]>;
  search(query: Query): Promise<SearchResults>;
  related(path: string, root: string, limit: number): Promise<Hit[]>;
  /** Notes each exclusion pattern matches, before saving (nothing changes). */
  previewExclusions(exclude: string[], include: string[]): Promise<PatternPreview>;
  /** Notes linking to this one (wikilinks, embeds, Markdown links). */
  backlinks(path: string, root: string, limit: number): Promise<Hit[]>;
  /** `page`: open a PDF at that page where the viewer supports it. */
  openNote(absPath: string, line: number, page?: number | null): Promise<void>;
  reindex(): Promise<void>;
  keyStatus(): Promise<KeyStatus[]>;
  /** `baseUrl`: send the key only there (the user confirmed it), else the provider's own API. */
  keySet(provider: string, key: string, baseUrl?: string | null): Promise<KeyStatus>;
  keyDelete(provider: string): Promise<KeyStatus>;
  costSummary(): Promise<CostSummary>;
  estimate(provider: Provider): Promise<Estimate>;
  /** What comparing with `provider` on a sample would cost; nothing is sent. */
  comparePlan(provider: Provider, options: CompareOptions): Promise<ComparePlan>;
  /** Runs the comparison the user confirmed; switches nothing. */
  compareRun(provider: Provider, options: CompareOptions): Promise<CompareReport>;
  /** The latest searches kept for comparisons (latest first). */
  searchHistory(): Promise<string[]>;
  clearSearchHistory(): Promise<number>;

  onProgress(cb: (p: Progress) => void): Unsubscribe;
  onIndexDone(cb: (s: Status) => void): Unsubscribe;
  onIndexError(cb: (e: IpcError) => void): Unsubscribe;
  onNotesChanged(cb: (e: NotesChanged) => void): Unsubscribe;

  /** Native folder picker in the shell, which adds the folder; null when the user cancels. */
  pickFolder(): Promise<Settings | null>;

  /** Native save dialog in the shell, then the export; null when the user cancels. */
  exportIndex(format: ExportFormat): Promise<Exported | null>;
  /** The words the user types to confirm forgetEverything. */
  forgetPhrase(): Promise<string>;
  /** Deletes everything of Sift's once `confirmation` is the phrase; the app closes after. */
  forgetEverything(confirmation: string, model: boolean, keys: boolean): Promise<Forgotten>;

  /** Whether the local model is there, and how a download goes. */
  modelState(): Promise<ModelState>;
  /** Starts downloading the local model in the shell; progress via onModelProgress. */
  modelDownload(): Promise<ModelState>;
  onModelProgress(cb: (m: ModelState) => void): Unsubscribe;
  onModelDone(cb: (m: ModelState) => void): Unsubscribe;
  onModelError(cb: (e: IpcError) => void): Unsubscribe;

  backgroundState(): Promise<Background>;
  setIndexingPaused(paused: boolean): Promise<Background>;
  setAutostart(enabled: boolean): Promise<Background>;
  onBackgroundChanged(cb: (b: Background) => void): Unsubscribe;
  /** The shell brought the window back (global shortcut, tray): show the search box. */
  onFocusSearch(cb: () => void): Unsubscribe;
  /** Restarts the app (settings applied at start, e.g. encryption at rest). */
  restartApp(): Promise<void>;
}

/** Normalises anything a command rejected with into `{ code, message }`. */
export function toIpcError(e: unknown): IpcError {
  if (e && typeof e === "object") {
    const o = e as Record<string, unknown>;
    if (typeof o.code === "string") {
      return { code: o.code, message: typeof o.message === "string" ? o.message : o.code };
    }
    if (e instanceof Error) return { code: "internal", message: e.message };
  }
  if (typeof e === "string") {
    // A shell that serialised the error as a JSON string.
    try {
      const parsed: unknown = JSON.parse(e);
      if (parsed && typeof parsed === "object" && "code" in parsed) return toIpcError(parsed);
    } catch {
      /* plain text */
    }
    return { code: "internal", message: e };
  }
  return { code: "internal", message: "Something went wrong." };
}

export function isTauri(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

// ---------------------------------------------------------------- Tauri

// Loaded lazily so the plain-browser build never touches Tauri globals; one import each.
let coreApi: Promise<typeof import("@tauri-apps/api/core")> | null = null;
let eventApi: Promise<typeof import("@tauri-apps/api/event")> | null = null;

export class TauriBackend implements Backend {
  readonly kind = "tauri" as const;

  private async call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
    const { invoke } = await (coreApi ??= import("@tauri-apps/api/core"));
    try {
      return await invoke<T>(cmd, args);
    } catch (e) {
      throw toIpcError(e);
    }
  }

  private listen<T>(event: string, cb: (payload: T) => void): Unsubscribe {
    let unlisten: (() => void) | null = null;
    let dead = false;
    (eventApi ??= import("@tauri-apps/api/event"))
      .then(({ listen }) => listen<T>(event, (e) => cb(e.payload)))
      .then((u) => {
        if (dead) u();
        else unlisten = u;
      })
      .catch((e: unknown) => console.error(`Sift: cannot listen to ${event}`, e));
    return () => {
      dead = true;
      unlisten?.();
    };
  }

  getSettings() { return this.call<Settings>("get_settings"); }
  saveSettings(settings: Settings) { return this.call<Settings>("save_settings", { settings }); }
  addFolder(path: string, confirmed: boolean) { return this.call<Settings>("add_folder", { path, confirmed }); }
  removeFolder(path: string) { return this.call<Settings>("remove_folder", { path }); }
  status() { return this.call<Status>("status"); }
  fileStates() { return this.call<FileState[]>("file_states"); }
  fileTypeCounts() { return this.call<TypeCount[]>("file_type_counts"); }
  search(query: Query) { return this.call<SearchResults>("search", { query }); }
  related(path: string, root: string, limit: number) {
    return this.call<Hit[]>("related", { path, root, limit });
  }
  backlinks(path: string, root: string, limit: number) {
    return this.call<Hit[]>("backlinks", { path, root, limit });
  }
  previewExclusions(exclude: string[], include: string[]) {
    return this.call<PatternPreview>("preview_exclusions", { exclude, include });
  }
  async openNote(absPath: string, line: number, page: number | null = null) {
    await this.call<null>("open_note", page ? { abs_path: absPath, line, page } : { abs_path: absPath, line });
  }
  async reindex() { await this.call<null>("reindex"); }
  keyStatus() { return this.call<KeyStatus[]>("key_status"); }
  keySet(provider: string, key: string, baseUrl?: string | null) {
    return this.call<KeyStatus>("key_set", { provider, key, baseUrl: baseUrl ?? null });
  }
  keyDelete(provider: string) { return this.call<KeyStatus>("key_delete", { provider }); }
  costSummary() { return this.call<CostSummary>("cost_summary"); }
  estimate(provider: Provider) { return this.call<Estimate>("estimate", { provider }); }
  comparePlan(provider: Provider, options: CompareOptions) {
    return this.call<ComparePlan>("compare_plan", { provider, options });
  }
  compareRun(provider: Provider, options: CompareOptions) {
    return this.call<CompareReport>("compare_run", { provider, options });
  }
  searchHistory() { return this.call<string[]>("search_history"); }
  clearSearchHistory() { return this.call<number>("clear_search_history"); }

  onProgress(cb: (p: Progress) => void) { return this.listen("index-progress", cb); }
  onIndexDone(cb: (s: Status) => void) { return this.listen("index-done", cb); }
  onIndexError(cb: (e: IpcError) => void) {
    return this.listen<unknown>("index-error", (p) => cb(toIpcError(p)));
  }
  onNotesChanged(cb: (e: NotesChanged) => void) { return this.listen("notes-changed", cb); }

  pickFolder() { return this.call<Settings | null>("pick_folder"); }

  exportIndex(format: ExportFormat) { return this.call<Exported | null>("export_index", { format }); }
  forgetPhrase() { return this.call<string>("forget_phrase"); }
  forgetEverything(confirmation: string, model: boolean, keys: boolean) {
    return this.call<Forgotten>("forget_everything", { confirmation, model, keys });
  }

  modelState() { return this.call<ModelState>("model_state"); }
  modelDownload() { return this.call<ModelState>("model_download"); }
  onModelProgress(cb: (m: ModelState) => void) { return this.listen("model-progress", cb); }
  onModelDone(cb: (m: ModelState) => void) { return this.listen("model-done", cb); }
  onModelError(cb: (e: IpcError) => void) {
    return this.listen<unknown>("model-error", (p) => cb(toIpcError(p)));
  }

  backgroundState() { return this.call<Background>("background_state"); }
  setIndexingPaused(paused: boolean) { return this.call<Background>("set_indexing_paused", { paused }); }
  setAutostart(enabled: boolean) { return this.call<Background>("set_autostart", { enabled }); }
  onBackgroundChanged(cb: (b: Background) => void) { return this.listen("background-changed", cb); }
  onFocusSearch(cb: () => void) { return this.listen<unknown>("focus-search", () => cb()); }
  restartApp() { return this.call<void>("restart_app"); }
}

// ---------------------------------------------------------------- Mock

export interface MockNote {
  /** Relative to root, e.g. "projects/sift.md". */
  path: string;
  root: string;
  body: string;
  tags?: string[];
  /** Unix seconds. */
  modified?: number;
  /** Page of its hits (a PDF). */
  page?: number;
  aliases?: string[];
  /** Front-matter date, Unix seconds. */
  note_date?: number;
}

export interface MockOptions {
  notes?: MockNote[];
  settings?: Partial<Settings>;
  modelAvailable?: boolean;
  fileStates?: FileState[];
  cost?: CostSummary;
  keys?: Record<string, string>;
  /** Artificial delay of every command, ms. */
  latencyMs?: number;
  /** Notes that appear once a folder is added (demo mode). */
  notesForNewFolder?: (root: string) => MockNote[];
  /** Emit fake progress events after add_folder/reindex (demo mode). */
  simulateIndexing?: boolean;
  pickFolderResult?: string | null;
}

type Listener<T> = (v: T) => void;

const DEFAULT_SETTINGS: Settings = {
  folders: [],
  provider: { provider: "local" },
  budget_usd: null,
  shortcut: "CmdOrCtrl+Shift+Space",
  keyword_weight: 0.4,
};

function words(s: string): string[] {
  return s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** A snippet the engine returned for a note and a query (recorded-snippets.json). */
interface RecordedSnippet {
  path: string;
  body: string;
  query: string;
  snippet: SnippetPart[];
  line: number;
}

/**
 * The mock never decides which words match: that rule belongs to the engine.
 * Snippets with highlights come from the engine's own output, recorded in
 * recorded-snippets.json and checked against the engine by a Rust test
 * (tests/engine/ui_snippets.rs); other notes show their text unhighlighted.
 */
export function recordedSnippet(note: MockNote, query: string): RecordedSnippet | undefined {
  return (recorded as RecordedSnippet[]).find(
    (r) => r.path === note.path && r.body === note.body && r.query === query.trim(),
  );
}

/**
 * In-memory stand-in for the shell: used by unit tests and when the UI runs in
 * a plain browser (`npm run dev`). Search is naive word matching; "semantic"
 * similarity is word-prefix overlap. Every call is recorded in `calls`.
 */
export class MockBackend implements Backend {
  readonly kind = "mock" as const;
  notes: MockNote[];
  settings: Settings;
  modelAvailable: boolean;
  states: FileState[];
  cost: CostSummary;
  /** Fields of `status` a test sets (another writer, unavailable folders...). */
  statusOverrides: Partial<Status> = {};
  keys: Map<string, string>;
  /** Base URLs keys were saved for (absent: the provider's own API). */
  keyUrls = new Map<string, string>();
  latencyMs: number;
  calls: { cmd: string; args?: unknown }[] = [];
  indexing = false;
  lastIndexed: number | null;
  pickFolderResult: string | null;
  private opts: MockOptions;
  private progressL = new Set<Listener<Progress>>();
  private doneL = new Set<Listener<Status>>();
  private errorL = new Set<Listener<IpcError>>();
  private changedL = new Set<Listener<NotesChanged>>();
  /** Set to make the next call of that command reject. */
  failNext = new Map<string, IpcError>();
  background: Background = { paused: false, autostart: false, tray: true };
  /** Bytes a mock model download is made of; progress is driven by tests (emitModel*). */
  modelDownloading = false;
  private modelL = new Set<Listener<ModelState>>();
  private modelDoneL = new Set<Listener<ModelState>>();
  private modelErrorL = new Set<Listener<IpcError>>();
  private backgroundL = new Set<Listener<Background>>();
  private focusL = new Set<Listener<void>>();

  constructor(opts: MockOptions = {}) {
    this.opts = opts;
    this.notes = opts.notes ?? [];
    this.settings = { ...DEFAULT_SETTINGS, ...opts.settings };
    this.modelAvailable = opts.modelAvailable ?? true;
    this.states = opts.fileStates ?? [];
    this.cost = opts.cost ?? { this_month: [], all_time: [] };
    this.keys = new Map(Object.entries(opts.keys ?? {}));
    this.latencyMs = opts.latencyMs ?? 0;
    this.lastIndexed = this.notes.length ? Math.floor(Date.now() / 1000) - 3600 : null;
    this.pickFolderResult = opts.pickFolderResult === undefined ? "/home/you/Notes" : opts.pickFolderResult;
  }

  private async run<T>(cmd: string, args: unknown, f: () => T): Promise<T> {
    this.calls.push(args === undefined ? { cmd } : { cmd, args });
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    else await Promise.resolve();
    const fail = this.failNext.get(cmd);
    if (fail) {
      this.failNext.delete(cmd);
      throw fail;
    }
    // JSON round trip: like the real IPC, and safe for Svelte state proxies.
    const out = f();
    return out === undefined ? out : (JSON.parse(JSON.stringify(out)) as T);
  }

  callsOf(cmd: string): unknown[] {
    return this.calls.filter((c) => c.cmd === cmd).map((c) => c.args);
  }

  // ----- event helpers for tests and demo
  emitProgress(p: Progress) { this.progressL.forEach((l) => l(p)); }
  emitDone() { this.doneL.forEach((l) => l(this.currentStatus())); }
  emitError(e: IpcError) { this.errorL.forEach((l) => l(e)); }
  emitNotesChanged(paths: string[]) { this.changedL.forEach((l) => l({ paths })); }

  private currentStatus(): Status {
    const problems = (k: FileState["state"]) => this.states.filter((s) => s.state === k).length;
    const chunks = this.notes.reduce((n, note) => n + Math.max(1, Math.ceil(note.body.length / 400)), 0);
    return {
      folders: [...this.settings.folders],
      notes: this.notes.length,
      chunks,
      vectors: this.modelAvailable ? chunks : 0,
      pending: problems("pending"),
      skipped: problems("skipped"),
      failed: problems("failed"),
      embedder_id: this.modelAvailable ? "local:bge-small-en-v1.5:384" : null,
      model_available: this.modelAvailable,
      last_indexed: this.lastIndexed,
      indexing: this.indexing,
      other_writer: null,
      unavailable_folders: [],
      warnings: [],
      budget_usd: this.settings.budget_usd,
      month_spent_usd: sumRows(this.cost.this_month).dollars,
      budget_reached: false,
      vector_rebuilds: 0,
      // The mock applies the setting at once, as a restart would.
      encrypted: this.restarted ? (this.settings.encrypt_at_rest ?? false) : this.encryptedAtStart,
      ...this.statusOverrides,
      language_hint: null,
    };
  }

  getSettings() { return this.run("get_settings", undefined, () => this.settings); }
  saveSettings(settings: Settings) {
    return this.run("save_settings", { settings }, () => {
      this.settings = JSON.parse(JSON.stringify(settings)) as Settings;
      return this.settings;
    });
  }
  addFolder(path: string, confirmed: boolean) {
    return this.run("add_folder", { path, confirmed }, () => {
      if (!confirmed) throw { code: "invalid_input", message: "a typed folder is added only once you confirm it" };
      if (!path.trim()) throw { code: "bad_path", message: "Choose a folder that exists." };
      if (!this.settings.folders.includes(path)) this.settings.folders.push(path);
      const extra = this.opts.notesForNewFolder?.(path) ?? [];
      this.notes.push(...extra);
      this.startIndexing(extra.length);
      return this.settings;
    });
  }
  removeFolder(path: string) {
    return this.run("remove_folder", { path }, () => {
      this.settings.folders = this.settings.folders.filter((f) => f !== path);
      this.notes = this.notes.filter((n) => n.root !== path);
      return this.settings;
    });
  }
  status() { return this.run("status", undefined, () => this.currentStatus()); }
  fileStates() {
    return this.run("file_states", undefined, () => [
      ...this.notes.map<FileState>((n) => ({ path: n.path, root: n.root, state: "indexed", reason: null })),
      ...this.states,
    ]);
  }
  fileTypeCounts() {
    return this.run("file_type_counts", undefined, () => {
      const enabled = this.settings.scan?.extensions ?? ["md", "markdown", "txt", "pdf", "docx", "odt", "html", "htm"];
      const all = [...new Set(["md", "markdown", "txt", "pdf", "docx", "odt", "html", "htm", ...enabled])];
      return all.map<TypeCount>((ext) => ({
        ext,
        files: this.notes.filter((n) => this.noteInfo(n).ext === ext).length,
        enabled: enabled.includes(ext),
      }));
    });
  }
  reindex() {
    return this.run("reindex", undefined, () => {
      this.startIndexing(this.notes.length);
      return undefined;
    });
  }

  private startIndexing(files: number) {
    if (!this.opts.simulateIndexing) {
      this.lastIndexed = Math.floor(Date.now() / 1000);
      return;
    }
    this.indexing = true;
    const total = Math.max(files, 1) * 40; // pretend the folder is bigger
    const chunksTotal = total * 6;
    let done = 0;
    const started = Date.now();
    const tick = () => {
      done = Math.min(total, done + Math.ceil(total / 25));
      const elapsed = Date.now() - started;
      const finished = done >= total;
      this.emitProgress({
        phase: finished ? "done" : done < total / 10 ? "scanning" : "indexing",
        files_done: done,
        files_total: total,
        chunks_done: done * 6,
        chunks_total: chunksTotal,
        current: finished ? null : (this.notes[done % Math.max(this.notes.length, 1)]?.path ?? null),
        elapsed_ms: elapsed,
        eta_ms: finished ? 0 : Math.round((elapsed / done) * (total - done)),
      });
      if (finished) {
        this.indexing = false;
        this.lastIndexed = Math.floor(Date.now() / 1000);
        this.emitDone();
      } else setTimeout(tick, 200);
    };
    setTimeout(tick, 150);
  }

  search(query: Query) {
    return this.run("search", { query }, () => this.doSearch(query));
  }

  private noteInfo(note: MockNote) {
    const lines = note.body.split("\n");
    const h1 = lines.find((l) => /^#\s/.test(l));
    const title = h1 ? h1.replace(/^#\s+/, "").trim() : (note.path.split("/").pop() ?? note.path).replace(/\.[^.]+$/, "");
    const ext = (note.path.match(/\.([^./]+)$/)?.[1] ?? "").toLowerCase();
    return { lines, title, ext };
  }

  private filterOk(note: MockNote, q: Query): boolean {
    const { ext } = this.noteInfo(note);
    if (q.folder && !note.path.startsWith(q.folder.replace(/^\/+/, ""))) return false;
    if (q.tags?.length && !q.tags.every((t) => (note.tags ?? []).includes(t))) return false;
    if (q.exts?.length && !q.exts.includes(ext)) return false;
    const mod = q.date === "front_matter" && note.note_date !== undefined ? note.note_date : (note.modified ?? 0);
    if (q.after && mod < Date.parse(q.after) / 1000) return false;
    if (q.before && mod >= Date.parse(q.before) / 1000 + 86400) return false;
    return true;
  }

  private toHit(note: MockNote, query: string, terms: string[], score: number, krank: number | null, vsim: number | null): Hit {
    const { lines, title, ext } = this.noteInfo(note);
    let best = 0;
    let bestCount = -1;
    lines.forEach((l, i) => {
      if (/^#/.test(l)) return;
      const lw = words(l);
      const c = lw.filter((w) => terms.some((t) => w.startsWith(t))).length;
      if (c > bestCount && l.trim()) {
        best = i;
        bestCount = c;
      }
    });
    const headings: string[] = [];
    for (let i = 0; i <= best; i++) {
      const m = lines[i]?.match(/^(#+)\s+(.*)$/);
      if (m && m[1] && m[2] !== undefined) {
        headings.length = m[1].length - 1;
        headings.push(m[2].trim());
      }
    }
    const text = (lines[best] ?? "").trim().slice(0, 240);
    const engine = recordedSnippet(note, query);
    return {
      path: note.path,
      abs_path: `${note.root.replace(/\/+$/, "")}/${note.path}`,
      root: note.root,
      title,
      heading_path: headings.filter((h) => h !== title),
      line: engine?.line ?? best + 1,
      page: note.page ?? null,
      snippet: engine?.snippet ?? [{ text, highlight: false }],
      score,
      keyword_rank: krank,
      vector_similarity: vsim,
      tags: note.tags ?? [],
      aliases: note.aliases ?? [],
      modified: note.modified ?? 0,
      note_date: note.note_date ?? null,
      date_source: "modified",
      ext,
    };
  }

  private doSearch(q: Query): SearchResults {
    const started = performance.now();
    const terms = words(q.text);
    let mode: Mode = q.mode;
    let warning: string | null = null;
    if (!this.modelAvailable && q.mode !== "keyword") {
      if (q.mode === "semantic") {
        throw {
          code: "model_missing",
          message: "The local embedding model is not installed. Run `sift model fetch`.",
        } satisfies IpcError;
      }
      mode = "keyword";
      warning = "The local model is missing, so these are keyword results only.";
    }
    const candidates = this.notes.filter((n) => this.filterOk(n, q));
    const kw = candidates
      .map((n) => {
        const body = words(n.body);
        const count = terms.reduce((c, t) => c + body.filter((w) => w.startsWith(t)).length, 0);
        const all = terms.every((t) => body.some((w) => w.startsWith(t)));
        return { n, s: all ? count : 0 };
      })
      .filter((x) => x.s > 0)
      .sort((a, b) => b.s - a.s);
    const krank = new Map(kw.map((x, i) => [x.n, i + 1]));
    const vsim = new Map<MockNote, number>();
    if (mode !== "keyword" && terms.length) {
      for (const n of candidates) {
        const body = new Set(words(n.body));
        const near = terms.filter((t) => [...body].some((w) => w.slice(0, 4) === t.slice(0, 4))).length;
        const sim = near / terms.length;
        if (sim > 0) vsim.set(n, Math.round((0.35 + 0.55 * sim) * 1000) / 1000);
      }
    }
    const w = q.keyword_weight ?? this.settings.keyword_weight;
    const pool = mode === "keyword" ? [...krank.keys()] : mode === "semantic" ? [...vsim.keys()] : [...new Set([...krank.keys(), ...vsim.keys()])];
    const scored = pool.map((n) => {
      const r = krank.get(n);
      const k = r ? 1 / (r + 1) : 0;
      const v = vsim.get(n) ?? 0;
      const score = mode === "keyword" ? k : mode === "semantic" ? v : w * k + (1 - w) * v;
      return this.toHit(n, q.text, terms, Math.round(score * 1000) / 1000, r ?? null, vsim.get(n) ?? null);
    });
    scored.sort((a, b) => b.score - a.score);
    if (q.date === "front_matter") for (const h of scored) if (h.note_date != null) h.date_source = "front_matter";
    return {
      hits: scored.slice(0, q.limit),
      took_ms: Math.max(1, Math.round(performance.now() - started)),
      mode,
      warning,
    };
  }

  related(path: string, root: string, limit: number) {
    return this.run("related", { path, root, limit }, () => {
      const me = this.notes.find((n) => n.path === path && n.root === root);
      if (!me) throw { code: "not_indexed", message: "That note is not indexed." } satisfies IpcError;
      const mine = new Set(words(me.body).filter((w) => w.length > 4));
      return this.notes
        .filter((n) => n !== me)
        .map((n) => {
          const shared = new Set(words(n.body).filter((w) => mine.has(w))).size;
          const tags = (n.tags ?? []).filter((t) => (me.tags ?? []).includes(t)).length;
          return { n, s: shared + 3 * tags };
        })
        .filter((x) => x.s > 0)
        .sort((a, b) => b.s - a.s)
        .slice(0, limit)
        .map((x, i) => this.toHit(x.n, "", [], Math.round((0.9 - i * 0.05) * 1000) / 1000, null, Math.round((0.9 - i * 0.05) * 1000) / 1000));
    });
  }

  previewExclusions(exclude: string[], include: string[]) {
    return this.run("preview_exclusions", { exclude, include }, () => {
      // A stand-in for the engine's .gitignore matching: `dir/` a folder, `*` any name part.
      const compile = (p: string): RegExp | string => {
        if (/[[\]]/.test(p)) return `'${p}' is not a valid pattern`;
        const body = p.replace(/\/$/, "/**").replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*\*/g, "\u0000").replace(/\*/g, "[^/]*").replace(/\u0000/g, ".*");
        return new RegExp(p.includes("/") && !p.endsWith("/") ? `^${body}$` : `(^|/)${body}(/|$)`);
      };
      const count = (p: string) => {
        const re = compile(p);
        return typeof re === "string"
          ? { pattern: p, files: 0, error: re }
          : { pattern: p, files: this.notes.filter((n) => re.test(n.path)).length, error: null };
      };
      const ex = exclude.map(compile);
      const inc = include.map(compile);
      const ok = [...ex, ...inc].every((r) => typeof r !== "string");
      const hit = (rs: (RegExp | string)[], path: string) => rs.some((r) => typeof r !== "string" && r.test(path));
      return {
        exclude: exclude.map(count),
        include: include.map(count),
        notes_total: this.notes.length,
        notes_excluded: ok ? this.notes.filter((n) => hit(ex, n.path) && !hit(inc, n.path)).length : 0,
      };
    });
  }

  backlinks(path: string, root: string, limit: number) {
    return this.run("backlinks", { path, root, limit }, () => {
      const me = this.notes.find((n) => n.path === path && n.root === root);
      if (!me) throw { code: "not_indexed", message: "That note is not indexed." } satisfies IpcError;
      const name = (me.path.split("/").pop() ?? me.path).replace(/\.md$/i, "").toLowerCase();
      return this.notes
        .filter((n) => n !== me && n.root === root)
        .filter((n) => [...n.body.matchAll(/\[\[([^\]|#]+)/g)].some((m) => (m[1] ?? "").trim().toLowerCase().split("/").pop() === name))
        .slice(0, limit)
        .map((n) => this.toHit(n, "", [], 1, null, null));
    });
  }

  openNote(absPath: string, line: number, page: number | null = null) {
    return this.run("open_note", page ? { abs_path: absPath, line, page } : { abs_path: absPath, line }, () => {
      const ok = this.notes.some((n) => `${n.root.replace(/\/+$/, "")}/${n.path}` === absPath);
      if (!ok) throw { code: "not_indexed", message: "That file is not inside an indexed folder." } satisfies IpcError;
      return undefined;
    });
  }

  keyStatus() {
    return this.run("key_status", undefined, () =>
      (["openai", "gemini", "compatible"] as const).map((p) => this.keyOf(p)),
    );
  }
  private keyOf(provider: string): KeyStatus {
    const k = this.keys.get(provider);
    return {
      provider,
      present: !!k,
      masked: k ? `${k.slice(0, 3)}…${k.slice(-4)}` : null,
      saved_for: k ? (this.keyUrls.get(provider) ?? null) : null,
    };
  }
  keySet(provider: string, key: string, baseUrl?: string | null) {
    // The recorded call never contains the key itself.
    return this.run("key_set", { provider, key: "<redacted>", baseUrl: baseUrl ?? null }, () => {
      if (key.trim().length < 8) throw { code: "invalid_key", message: "That key looks too short." } satisfies IpcError;
      this.keys.set(provider, key.trim());
      if (baseUrl) this.keyUrls.set(provider, baseUrl);
      else this.keyUrls.delete(provider);
      return this.keyOf(provider);
    });
  }
  keyDelete(provider: string) {
    return this.run("key_delete", { provider }, () => {
      this.keys.delete(provider);
      return this.keyOf(provider);
    });
  }
  costSummary() { return this.run("cost_summary", undefined, () => this.cost); }
  estimate(provider: Provider) {
    return this.run("estimate", { provider }, () => {
      const chunks = this.currentStatus().chunks;
      const tokens = chunks * 320;
      const price: Record<string, number> = { local: 0, openai: 0.02, gemini: 0.15, compatible: 0.02 };
      const dollars = (tokens / 1_000_000) * (price[provider.provider] ?? 0);
      const cap = this.settings.budget_usd;
      return { chunks, tokens, dollars, budget_usd: cap, month_spent_usd: 0, stopped_by_cap: cap !== null && dollars > cap };
    });
  }

  /** Searches kept for comparisons (the mock keeps what `search` was asked). */
  history: string[] = [];
  comparePlan(provider: Provider, options: CompareOptions) {
    return this.run("compare_plan", { provider, options }, () => {
      const queries = options.queries.length ? options.queries : this.history.slice(0, options.recent_searches);
      if (!queries.length) throw { code: "invalid_input", message: "no searches to compare with" } satisfies IpcError;
      const chunks = Math.min(options.sample_chunks, this.currentStatus().chunks);
      const estimate = { chunks: chunks + queries.length, tokens: chunks * 320, dollars: (chunks * 320 * 0.02) / 1e6 };
      return {
        current_id: "local/all-MiniLM-L6-v2",
        other_id: `${provider.provider}/${"model" in provider ? provider.model : ""}`,
        chunk_ids: Array.from({ length: chunks }, (_, i) => i + 1),
        queries,
        k: options.k,
        estimate,
        switch_estimate: this.currentEstimate(),
      };
    });
  }
  compareRun(provider: Provider, options: CompareOptions) {
    return this.run("compare_run", { provider, options }, () => {
      const queries = options.queries.length ? options.queries : this.history.slice(0, options.recent_searches);
      const notes = this.notes.slice(0, options.k).map((n, i) => ({ path: n.path, title: n.path, line: 1, snippet: n.body.slice(0, 200), score: 0.9 - i / 20 }));
      const rows = queries.map((query) => ({ query, current: notes, other: [...notes].reverse(), shared: notes.length, overlap: 1 }));
      return {
        current_id: "local/all-MiniLM-L6-v2",
        other_id: provider.provider,
        chunks: Math.min(options.sample_chunks, this.currentStatus().chunks),
        k: options.k,
        queries: rows,
        mean_overlap: rows.length ? 1 : 0,
        spent: { requests: 1, tokens_sent: 1000, dollars: 0.00002 },
        from_cache: 0,
        switch_estimate: this.currentEstimate(),
      };
    });
  }
  private currentEstimate(): Estimate {
    const chunks = this.currentStatus().chunks;
    return { chunks, tokens: chunks * 320, dollars: (chunks * 320 * 0.02) / 1e6 };
  }
  searchHistory() { return this.run("search_history", undefined, () => [...this.history]); }
  clearSearchHistory() {
    return this.run("clear_search_history", undefined, () => {
      const n = this.history.length;
      this.history = [];
      return n;
    });
  }

  private sub<T>(set: Set<Listener<T>>, cb: Listener<T>): Unsubscribe {
    set.add(cb);
    return () => set.delete(cb);
  }
  onProgress(cb: Listener<Progress>) { return this.sub(this.progressL, cb); }
  onIndexDone(cb: Listener<Status>) { return this.sub(this.doneL, cb); }
  onIndexError(cb: Listener<IpcError>) { return this.sub(this.errorL, cb); }
  onNotesChanged(cb: Listener<NotesChanged>) { return this.sub(this.changedL, cb); }

  pickFolder() {
    return this.run("pick_folder", undefined, () => {
      const path = this.pickFolderResult;
      if (!path) return null;
      if (!this.settings.folders.includes(path)) this.settings.folders.push(path);
      const extra = this.opts.notesForNewFolder?.(path) ?? [];
      this.notes.push(...extra);
      this.startIndexing(extra.length);
      return this.settings;
    });
  }

  /** What the save dialog answers (null: cancelled). */
  exportPath: string | null = "/home/you/sift-index.jsonl.gz";
  forgotten = false;
  /** Whether the data folder was encrypted when the app started. */
  encryptedAtStart = false;
  restarted = false;

  restartApp() {
    return this.run("restart_app", undefined, () => {
      this.restarted = true;
    });
  }

  exportIndex(format: ExportFormat) {
    return this.run("export_index", { format }, () => {
      if (!this.exportPath) return null;
      const chunks = this.currentStatus().chunks;
      return {
        path: this.exportPath,
        report: {
          counts: { roots: this.settings.folders.length, notes: this.notes.length, chunks, vectors: chunks, ledger: 0 },
          embedders: [{ id: "local/all-MiniLM-L6-v2", dimensions: 384, vectors: chunks }],
          bytes: chunks * 3000,
        },
      };
    });
  }
  forgetPhrase() { return this.run("forget_phrase", undefined, () => MOCK_FORGET_PHRASE); }

  mockModelState(over: Partial<ModelState> = {}): ModelState {
    return {
      installed: this.modelAvailable,
      dir: this.modelAvailable ? "/home/you/.cache/sift/models/all-MiniLM-L6-v2" : null,
      dest: "/home/you/.cache/sift/models/all-MiniLM-L6-v2",
      downloading: this.modelDownloading,
      progress: null,
      error: null,
      partial_bytes: 0,
      ...over,
    };
  }
  modelState() { return this.run("model_state", undefined, () => this.mockModelState()); }
  modelDownload() {
    return this.run("model_download", undefined, () => {
      if (!this.modelAvailable) this.modelDownloading = true;
      return this.mockModelState();
    });
  }
  /** Test helpers: a download's progress, its end (the model lands) or its failure. */
  emitModelProgress(done: number, total: number, resumedFrom = 0) {
    const m = this.mockModelState({
      progress: { source: "hugging_face", file: "model.safetensors", done, total, resumed_from: resumedFrom },
    });
    this.modelL.forEach((l) => l(m));
  }
  emitModelDone() {
    this.modelDownloading = false;
    this.modelAvailable = true;
    const m = this.mockModelState();
    this.modelDoneL.forEach((l) => l(m));
  }
  emitModelError(e: IpcError) {
    this.modelDownloading = false;
    this.modelErrorL.forEach((l) => l(e));
  }
  onModelProgress(cb: Listener<ModelState>) { return this.sub(this.modelL, cb); }
  onModelDone(cb: Listener<ModelState>) { return this.sub(this.modelDoneL, cb); }
  onModelError(cb: Listener<IpcError>) { return this.sub(this.modelErrorL, cb); }

  backgroundState() { return this.run("background_state", undefined, () => this.background); }
  setIndexingPaused(paused: boolean) {
    return this.run("set_indexing_paused", { paused }, () => {
      this.background = { ...this.background, paused };
      return this.background;
    });
  }
  setAutostart(enabled: boolean) {
    return this.run("set_autostart", { enabled }, () => {
      this.background = { ...this.background, autostart: enabled };
      return this.background;
    });
  }
  emitBackground(b: Partial<Background>) {
    this.background = { ...this.background, ...b };
    this.backgroundL.forEach((l) => l(this.background));
  }
  emitFocusSearch() { this.focusL.forEach((l) => l()); }
  onBackgroundChanged(cb: Listener<Background>) { return this.sub(this.backgroundL, cb); }
  onFocusSearch(cb: () => void) { return this.sub(this.focusL, cb); }
  forgetEverything(confirmation: string, model: boolean, keys: boolean) {
    return this.run("forget_everything", { confirmation, model, keys }, () => {
      if (confirmation.trim() !== MOCK_FORGET_PHRASE) {
        throw { code: "invalid_input", message: `type "${MOCK_FORGET_PHRASE}" to confirm; nothing was deleted` };
      }
      this.forgotten = true;
      const keysDeleted = keys ? [...this.keys.keys()] : [];
      if (keys) this.keys.clear();
      this.notes = [];
      this.settings = { ...DEFAULT_SETTINGS, folders: [] };
      return { removed: ["/home/you/.local/share/sift"], keys_deleted: keysDeleted, left: [], keychain_note: null };
    });
  }
}

/** The phrase the shell asks for (sift::forget::CONFIRM_PHRASE). */
const MOCK_FORGET_PHRASE = "delete everything";

export function sumRows(rows: CostRow[]): CostRow {
  return rows.reduce<CostRow>(
    (a, r) => ({
      provider: "all",
      model: "",
      requests: a.requests + r.requests,
      tokens_sent: a.tokens_sent + r.tokens_sent,
      dollars: a.dollars + r.dollars,
      cache_hits: a.cache_hits + r.cache_hits,
      cache_hit_tokens: a.cache_hit_tokens + r.cache_hit_tokens,
      dollars_saved: a.dollars_saved + r.dollars_saved,
    }),
    { provider: "all", model: "", requests: 0, tokens_sent: 0, dollars: 0, cache_hits: 0, cache_hit_tokens: 0, dollars_saved: 0 },
  );
}

/** Picks the real shell inside Tauri, the demo mock in a plain browser. */
export async function createBackend(): Promise<Backend> {
  if (isTauri()) return new TauriBackend();
  const { demoBackend } = await import("./demo");
  return demoBackend();
}
