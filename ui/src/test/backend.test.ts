import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
const listeners = new Map<string, (e: { payload: unknown }) => void>();
const unlisten = vi.fn();
const open = vi.fn();

vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock("@tauri-apps/api/event", () => ({
  listen: async (name: string, cb: (e: { payload: unknown }) => void) => {
    listeners.set(name, cb);
    return unlisten;
  },
}));
vi.mock("@tauri-apps/plugin-dialog", () => ({ open: (...a: unknown[]) => open(...a) }));

const { TauriBackend, toIpcError, recordedSnippet, isTauri, MockBackend } = await import("../lib/backend");
const { approxDollars, dollars, duration, errorHint } = await import("../lib/format");


describe("TauriBackend speaks the docs/ipc.md contract", () => {
  beforeEach(() => {
    invoke.mockReset();
    invoke.mockResolvedValue(null);
    listeners.clear();
  });

  it("sends each command with the documented argument names", async () => {
    const b = new TauriBackend();
    const settings = { folders: ["/n"], provider: { provider: "local" as const }, budget_usd: null, shortcut: "Alt+S", keyword_weight: 0.5 };
    const query = { text: "x", mode: "hybrid" as const, limit: 30 };
    await b.getSettings();
    await b.saveSettings(settings);
    await b.addFolder("/n", true);
    await b.pickFolder();
    await b.removeFolder("/n");
    await b.status();
    await b.fileStates();
    await b.search(query);
    await b.related("a.md", "/n", 5);
    await b.openNote("/n/a.md", 7);
    await b.reindex();
    await b.keyStatus();
    await b.keySet("openai", "sk-1");
    await b.keySet("openai", "sk-2", "https://gw.example/v1");
    await b.keyDelete("openai");
    await b.costSummary();
    await b.estimate({ provider: "openai", model: "m" });
    await b.exportIndex("qdrant");
    await b.forgetPhrase();
    await b.forgetEverything("delete everything", true, false);
    expect(invoke.mock.calls).toEqual([
      ["get_settings", undefined],
      ["save_settings", { settings }],
      ["add_folder", { path: "/n", confirmed: true }],
      ["pick_folder", undefined],
      ["remove_folder", { path: "/n" }],
      ["status", undefined],
      ["file_states", undefined],
      ["search", { query }],
      ["related", { path: "a.md", root: "/n", limit: 5 }],
      ["open_note", { abs_path: "/n/a.md", line: 7 }],
      ["reindex", undefined],
      ["key_status", undefined],
      ["key_set", { provider: "openai", key: "sk-1", baseUrl: null }],
      ["key_set", { provider: "openai", key: "sk-2", baseUrl: "https://gw.example/v1" }],
      ["key_delete", { provider: "openai" }],
      ["cost_summary", undefined],
      ["estimate", { provider: { provider: "openai", model: "m" } }],
      ["export_index", { format: "qdrant" }],
      ["forget_phrase", undefined],
      ["forget_everything", { confirmation: "delete everything", model: true, keys: false }],
    ]);
  });

  it("rejects with { code, message }", async () => {
    invoke.mockRejectedValueOnce({ code: "bad_path", message: "No such folder." });
    await expect(new TauriBackend().addFolder("/x", true)).rejects.toEqual({ code: "bad_path", message: "No such folder." });
    invoke.mockRejectedValueOnce("plain failure");
    await expect(new TauriBackend().status()).rejects.toEqual({ code: "internal", message: "plain failure" });
  });

  it("subscribes to the documented events and unsubscribes", async () => {
    const b = new TauriBackend();
    const got: unknown[] = [];
    const offs = [
      b.onProgress((p) => got.push(["progress", p.files_done])),
      b.onIndexDone((s) => got.push(["done", s.notes])),
      b.onIndexError((e) => got.push(["error", e.code])),
      b.onNotesChanged((e) => got.push(["changed", e.paths])),
    ];
    await vi.waitFor(() => expect(listeners.size).toBe(4));
    expect([...listeners.keys()].sort()).toEqual(["index-done", "index-error", "index-progress", "notes-changed"]);
    listeners.get("index-progress")!({ payload: { files_done: 3 } });
    listeners.get("index-done")!({ payload: { notes: 9 } });
    listeners.get("index-error")!({ payload: { code: "io", message: "disk" } });
    listeners.get("notes-changed")!({ payload: { paths: ["a.md"] } });
    expect(got).toEqual([["progress", 3], ["done", 9], ["error", "io"], ["changed", ["a.md"]]]);
    offs.forEach((off) => off());
    expect(unlisten).toHaveBeenCalledTimes(4);
  });

  it("leaves the folder picker to the shell: the page passes no path", async () => {
    const settings = { folders: ["/picked"] };
    invoke.mockResolvedValueOnce(settings).mockResolvedValueOnce(null);
    const b = new TauriBackend();
    expect(await b.pickFolder()).toEqual(settings);
    expect(await b.pickFolder()).toBeNull();
    expect(invoke.mock.calls).toEqual([["pick_folder", undefined], ["pick_folder", undefined]]);
    expect(open).not.toHaveBeenCalled();
  });
});

describe("helpers", () => {
  it("normalises errors", () => {
    expect(toIpcError({ code: "io", message: "m" })).toEqual({ code: "io", message: "m" });
    expect(toIpcError(JSON.stringify({ code: "io", message: "m" }))).toEqual({ code: "io", message: "m" });
    expect(toIpcError(new Error("boom"))).toEqual({ code: "internal", message: "boom" });
    expect(toIpcError(undefined).code).toBe("internal");
  });

  it("detects Tauri by __TAURI_INTERNALS__", () => {
    expect(isTauri()).toBe(false);
    (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__ = {};
    expect(isTauri()).toBe(true);
    delete (window as unknown as Record<string, unknown>).__TAURI_INTERNALS__;
  });

  it("takes highlights from the engine's recorded snippets, never its own rule", () => {
    const note = { root: "/r", path: "projects/pricing.md", body: "# Pricing\n\n## Decision\nWe chose a one-time price for the app.\nPricing again next year." };
    const rec = recordedSnippet(note, " pricing ");
    expect(rec?.snippet.some((p) => p.highlight)).toBe(true);
    expect(recordedSnippet({ ...note, body: "changed" }, "pricing")).toBeUndefined();
  });

  it("formats money and time in words", () => {
    expect(dollars(0)).toBe("$0");
    expect(dollars(0.00364)).toBe("$0.0036");
    expect(dollars(1.5)).toBe("$1.50");
    expect(approxDollars(0)).toBe("nothing");
    expect(approxDollars(0.00001)).toBe("less than $0.0001");
    expect(approxDollars(0.42)).toBe("about $0.42");
    expect(duration(null)).toBe("estimating…");
    expect(duration(2000)).toBe("a few seconds");
    expect(duration(95_000)).toBe("about 2 min");
    expect(duration(3_900_000)).toBe("about 1 h 5 min");
    expect(errorHint("model_missing")).toContain("sift model fetch");
    expect(errorHint("something_new")).toContain("Try again");
  });

  it("mock search filters and modes behave like the contract says", async () => {
    const m = new MockBackend({
      notes: [{ root: "/r", path: "a/x.md", body: "# X\nhello world", tags: ["t"], modified: 1_700_000_000 }],
      modelAvailable: false,
    });
    const hybrid = await m.search({ text: "hello", mode: "hybrid", limit: 5 });
    expect(hybrid.mode).toBe("keyword");
    expect(hybrid.warning).toBeTruthy();
    await expect(m.search({ text: "hello", mode: "semantic", limit: 5 })).rejects.toMatchObject({ code: "model_missing" });
    expect((await m.search({ text: "hello", mode: "keyword", limit: 5, folder: "b/" })).hits).toHaveLength(0);
    expect((await m.search({ text: "hello", mode: "keyword", limit: 5, tags: ["t"], exts: ["md"] })).hits).toHaveLength(1);
    expect((await m.search({ text: "hello", mode: "keyword", limit: 5, after: "2024-01-01" })).hits).toHaveLength(0);
    const hit = (await m.search({ text: "hello", mode: "keyword", limit: 5 })).hits[0]!;
    expect(hit).toMatchObject({ path: "a/x.md", abs_path: "/r/a/x.md", title: "X", line: 2, keyword_rank: 1, vector_similarity: null });
  });
});
