import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Query, SearchResults } from "../lib/types";
import { $, $$, advance, click, flush, key, mockBackend, renderApp, ROOT, type } from "./helpers";

function searches(b: ReturnType<typeof mockBackend>): Query[] {
  return b.callsOf("search").map((a) => (a as { query: Query }).query);
}

beforeEach(() => {
  vi.useFakeTimers();
});

describe("search window", () => {
  it("focuses the search box at launch", async () => {
    await renderApp(mockBackend());
    expect(document.activeElement).toBe($("#search-input"));
  });

  it("runs one debounced search while typing and renders hits", async () => {
    const b = mockBackend();
    await renderApp(b);
    const input = $("#search-input");
    type(input, "p");
    await advance(50);
    type(input, "pri");
    await advance(50);
    type(input, "pricing");
    await advance(100);
    expect(searches(b)).toHaveLength(0); // still inside the 120 ms pause
    await advance(30);
    expect(searches(b)).toHaveLength(1);
    expect(searches(b)[0]).toMatchObject({ text: "pricing", mode: "hybrid" });

    const results = $$(".result");
    expect(results.map((r) => r.dataset.path)).toContain("projects/pricing.md");
    expect($$(".result mark").map((m) => m.textContent?.toLowerCase())).toContain("pricing");
    expect($(".result .result-title").textContent).toBeTruthy();
  });

  it("ignores stale responses that arrive after a newer one", async () => {
    const b = mockBackend();
    const pending: { q: Query; resolve: (r: SearchResults) => void }[] = [];
    vi.spyOn(b, "search").mockImplementation(
      (q: Query) => new Promise<SearchResults>((resolve) => pending.push({ q, resolve })),
    );
    await renderApp(b);
    const input = $("#search-input");
    type(input, "old");
    await advance(130);
    type(input, "new");
    await advance(130);
    expect(pending.map((p) => p.q.text)).toEqual(["old", "new"]);
    const hit = (path: string) => ({
      path, abs_path: `${ROOT}/${path}`, root: ROOT, title: path, heading_path: [], line: 1,
      snippet: [{ text: path, highlight: false }], score: 1, keyword_rank: 1, vector_similarity: null,
      tags: [], modified: 0, ext: "md", page: null,
    });
    pending[1]!.resolve({ hits: [hit("new.md")], took_ms: 1, mode: "hybrid", warning: null });
    await flush();
    pending[0]!.resolve({ hits: [hit("old.md")], took_ms: 1, mode: "hybrid", warning: null });
    await flush();
    expect($$(".result").map((r) => r.dataset.path)).toEqual(["new.md"]);
  });

  it("moves the selection with arrows and opens the selected note at its line on Enter", async () => {
    const b = mockBackend();
    await renderApp(b);
    const input = $("#search-input");
    type(input, "pricing");
    await advance(130);
    const rows = $$(".result");
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(rows[0]!.classList.contains("selected")).toBe(true);

    key(input, "ArrowDown");
    expect($$(".result")[1]!.classList.contains("selected")).toBe(true);
    key(input, "ArrowDown");
    key(input, "ArrowDown"); // clamps at the last hit
    key(input, "ArrowUp");
    key(input, "ArrowUp");
    key(input, "ArrowDown");
    const chosen = $$(".result")[1]!;
    expect(chosen.classList.contains("selected")).toBe(true);

    key(input, "Enter");
    await flush();
    const opened = b.callsOf("open_note");
    expect(opened).toHaveLength(1);
    expect(opened[0]).toEqual({ abs_path: `${ROOT}/${chosen.dataset.path}`, line: Number(chosen.dataset.line) });
    expect(Number(chosen.dataset.line)).toBeGreaterThan(1);
  });

  it("clears the query on Escape and shows the empty state", async () => {
    const b = mockBackend();
    await renderApp(b);
    const input = $("#search-input") as HTMLInputElement;
    type(input, "pricing");
    await advance(130);
    expect($$(".result").length).toBeGreaterThan(0);
    key(input, "Escape");
    await flush();
    expect(input.value).toBe("");
    expect($$(".result")).toHaveLength(0);
    expect($("#empty-state")).toBeTruthy();
  });

  it("renders note text as inert text, never as HTML", async () => {
    const b = mockBackend({
      notes: [
        {
          root: ROOT,
          path: "evil.md",
          // Tags in code spans are text a reader sees: the engine keeps them.
          body: '# <img src=x onerror="window.__pwned=1">\n\nhello `<script>alert(1)</script>` and `<img src=x onerror=alert(2)>` hello',
        },
      ],
    });
    await renderApp(b);
    const scriptsBefore = document.querySelectorAll("script").length;
    type($("#search-input"), "hello");
    await advance(130);
    const result = $(".result");
    expect(result.dataset.path).toBe("evil.md");
    expect(result.textContent).toContain("<script>alert(1)</script>");
    expect(result.textContent).toContain("<img src=x onerror=alert(2)>");
    expect($(".result-title", result).textContent).toBe('<img src=x onerror="window.__pwned=1">');
    expect(result.querySelectorAll("script, img, iframe, object")).toHaveLength(0);
    expect(document.querySelectorAll("script").length).toBe(scriptsBefore);
    expect(document.querySelectorAll("img").length).toBe(0);
    // Highlights are real <mark> elements holding text only.
    const marks = $$("mark", result);
    expect(marks.length).toBeGreaterThan(0);
    for (const m of marks) expect(m.children).toHaveLength(0);
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
  });

  it("passes mode, weight and filters into the query", async () => {
    const b = mockBackend();
    await renderApp(b);
    type($("#search-input"), "pricing");
    type($("#filter-folder"), "/projects/");
    type($("#filter-tag"), "#work, decision");
    type($("#filter-ext"), ".MD txt");
    type($("#filter-after"), "2024-01-01");
    type($("#filter-before"), "2024-12-31");
    type($("#weight"), "70"); // 70% meaning
    await advance(130);
    expect(searches(b)).toHaveLength(1);
    expect(searches(b)[0]).toEqual({
      text: "pricing",
      mode: "hybrid",
      limit: 30,
      keyword_weight: 0.3,
      folder: "projects/",
      tags: ["work", "decision"],
      exts: ["md", "txt"],
      after: "2024-01-01",
      before: "2024-12-31",
    });
    expect($$(".result").map((r) => r.dataset.path)).toEqual(["projects/pricing.md"]);

    click($("#mode-keyword"));
    await advance(130);
    const last = searches(b).at(-1)!;
    expect(last.mode).toBe("keyword");
    expect(last).not.toHaveProperty("keyword_weight");
    expect($("#mode-keyword").getAttribute("aria-checked")).toBe("true");
    expect(document.querySelector("#weight")).toBeNull(); // weight is for hybrid only

    click($("#mode-semantic"));
    await advance(130);
    expect(searches(b).at(-1)!.mode).toBe("semantic");

    click($("#filters-clear"));
    await advance(130);
    expect(searches(b).at(-1)).toEqual({ text: "pricing", mode: "semantic", limit: 30 });
  });

  it("uses the default keyword weight from settings", async () => {
    const b = mockBackend({ settings: { folders: [ROOT], keyword_weight: 0.8 } });
    await renderApp(b);
    type($("#search-input"), "bread");
    await advance(130);
    expect(searches(b)[0]!.keyword_weight).toBe(0.8);
    expect(($("#weight") as HTMLInputElement).value).toBe("20");
  });

  it("shows a no-results state", async () => {
    await renderApp(mockBackend());
    type($("#search-input"), "zzzqqq");
    await advance(130);
    expect($("#no-results").textContent).toContain("zzzqqq");
  });

  it("shows an error state with what to do", async () => {
    const b = mockBackend();
    b.failNext.set("search", { code: "database", message: "The index database is locked." });
    await renderApp(b);
    type($("#search-input"), "pricing");
    await advance(130);
    const err = $("#search-error");
    expect(err.textContent).toContain("The index database is locked.");
    expect(err.textContent).toContain("reindex");
    click($("button", err)); // Try again
    await flush();
    expect($$(".result").length).toBeGreaterThan(0);
  });

  it("re-runs the current query when notes change", async () => {
    const b = mockBackend();
    await renderApp(b);
    type($("#search-input"), "sourdough");
    await advance(130);
    expect($$(".result")).toHaveLength(1);
    b.notes.push({ root: ROOT, path: "new/sourdough-2.md", body: "# More sourdough\nA second sourdough note." });
    b.emitNotesChanged(["new/sourdough-2.md"]);
    await advance(130);
    expect($$(".result").map((r) => r.dataset.path)).toContain("new/sourdough-2.md");
  });

  it("explains a hit on demand and lists related notes", async () => {
    const b = mockBackend();
    await renderApp(b);
    type($("#search-input"), "pricing");
    await advance(130);
    const first = $$(".result")[0]!;
    expect(first.querySelector(".why")).toBeNull();
    click($(".why-toggle", first));
    expect($(".why-keyword", first).textContent).toMatch(/#\d/);
    expect($(".why-vector", first).textContent).toMatch(/0\.\d{3}/);
    expect($(".why-score", first).textContent).toMatch(/\d\.\d{4}/);

    click($(".related-toggle", first));
    await flush();
    expect(b.callsOf("related")[0]).toEqual({ path: first.dataset.path, root: ROOT, limit: 5 });
    const rel = $$(".related-hit", first);
    expect(rel.length).toBeGreaterThan(0);
    click($("button", rel[0]!));
    await flush();
    expect(b.callsOf("open_note")).toHaveLength(1);
  });

  it("shows aliases, lists notes linking here, and filters by a note's own date", async () => {
    const b = mockBackend();
    b.notes.push(
      { root: ROOT, path: "garden/Allotment.md", aliases: ["Veg patch"], modified: 1_717_000_000, note_date: 1_600_000_000, body: "# Allotment\nCompost heaps." },
      { root: ROOT, path: "daily/2024-03-02.md", modified: 1_717_000_000, body: "# Saturday\nDug the [[Allotment|plot]] all day." },
    );
    await renderApp(b);
    type($("#search-input"), "compost");
    await advance(130);
    const hit = $$(".result").find((r) => r.dataset.path === "garden/Allotment.md")!;
    expect($(".result-aliases", hit).textContent).toContain("Veg patch");
    click($(".links-toggle", hit));
    await flush();
    expect(b.callsOf("backlinks")[0]).toEqual({ path: "garden/Allotment.md", root: ROOT, limit: 20 });
    expect($$(".backlink-hit", hit).map((l) => l.dataset.path)).toEqual(["daily/2024-03-02.md"]);

    // 2020-09-13 is the note's front-matter date; the file was modified in 2024.
    type($("#filter-after"), "2020-09-01");
    type($("#filter-before"), "2020-09-30");
    await advance(130);
    expect($$(".result")).toHaveLength(0);
    type($("#filter-date-source"), "front_matter");
    await advance(130);
    const dated = $$(".result");
    expect(dated.map((r) => r.dataset.path)).toEqual(["garden/Allotment.md"]);
    expect($(".result-date", dated[0]!).dataset.dateSource).toBe("front_matter");
    expect(b.callsOf("search").at(-1)).toMatchObject({ query: { date: "front_matter", after: "2020-09-01" } });
  });

  it("shows open_note errors", async () => {
    const b = mockBackend();
    b.failNext.set("open_note", { code: "not_indexed", message: "Outside your folders." });
    await renderApp(b);
    type($("#search-input"), "bread");
    await advance(130);
    key($("#search-input"), "Enter");
    await flush();
    expect($("#open-error").textContent).toContain("Outside your folders.");
  });
});

describe("model missing", () => {
  it("keeps keyword search working in hybrid mode and says how to get the model", async () => {
    const b = mockBackend({ modelAvailable: false });
    await renderApp(b);
    type($("#search-input"), "pricing");
    await advance(130);
    expect($$(".result").length).toBeGreaterThan(0);
    const banner = $("#model-missing");
    expect(banner.textContent).toContain("keyword");
    expect(banner.textContent).toContain("sift model fetch");
  });

  it("falls back to keyword when hybrid search rejects with model_missing", async () => {
    const b = mockBackend({ modelAvailable: true });
    b.failNext.set("search", { code: "model_missing", message: "Model files not found." });
    await renderApp(b);
    type($("#search-input"), "pricing");
    await advance(130);
    const qs = searches(b);
    expect(qs.map((q) => q.mode)).toEqual(["hybrid", "keyword"]);
    expect($$(".result").length).toBeGreaterThan(0);
    expect($("#model-missing").textContent).toContain("sift model fetch");
  });

  it("shows the no-model state for meaning search and offers keyword search", async () => {
    const b = mockBackend({ modelAvailable: false });
    await renderApp(b);
    click($("#mode-semantic"));
    type($("#search-input"), "pricing");
    await advance(130);
    const state = $("#no-model");
    expect(state.textContent).toContain("Keyword search still works");
    expect(state.textContent).toContain("sift model fetch");
    click($("button", state));
    await advance(130);
    expect(searches(b).at(-1)!.mode).toBe("keyword");
    expect($$(".result").length).toBeGreaterThan(0);
  });
});
