import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type { Settings } from "../lib/types";
import { $, $$, advance, click, flush, mockBackend, NOTES, renderApp, ROOT, type } from "./helpers";

async function openSettings(b: ReturnType<typeof mockBackend>) {
  await renderApp(b);
  click($("#nav-settings"));
  await flush();
}

describe("welcome / first run", () => {
  it("picks a folder, then shows progress while search already works", async () => {
    const b = mockBackend({ settings: { folders: [] }, notes: [], pickFolderResult: ROOT });
    await renderApp(b);
    expect($("#welcome").textContent).toContain("Sift");
    expect(document.querySelector("#search-input")).toBeNull();

    click($("#choose-folder"));
    await flush();
    expect(b.callsOf("pick_folder")).toHaveLength(1);
    expect(b.callsOf("add_folder")).toEqual([]); // the shell added what was picked
    expect(b.settings.folders).toEqual([ROOT]);
    expect(document.querySelector("#welcome")).toBeNull();
    expect($("#search-input")).toBeTruthy();

    b.emitProgress({
      phase: "indexing", files_done: 12, files_total: 300, chunks_done: 80, chunks_total: 2000,
      current: "a/b.md", elapsed_ms: 4000, eta_ms: 95_000,
    });
    await flush();
    const p = $("#progress");
    expect(p.textContent).toContain("12 of 300 files");
    expect(p.textContent).toContain("80 of 2,000 chunks");
    expect(p.textContent).toContain("2 min left");
    expect(p.textContent).not.toContain("chunks/s");

    b.emitProgress({
      phase: "embedding", files_done: 0, files_total: 0, chunks_done: 500, chunks_total: 2000,
      current: null, elapsed_ms: 30_000, eta_ms: 60_000, chunks_per_sec: 25,
    });
    await flush();
    expect($("#progress").textContent).toContain("25.0 chunks/s");
    expect($("#progress").textContent).toContain("1 min left");

    b.emitDone();
    await flush();
    expect(document.querySelector("#progress")).toBeNull();
  });

  it("drops a progress panel that outlived its run (a late report after the end)", async () => {
    vi.useFakeTimers();
    const b = mockBackend();
    await renderApp(b);
    b.indexing = true;
    b.emitProgress({
      phase: "embedding", files_done: 0, files_total: 0, chunks_done: 5, chunks_total: 20,
      current: null, elapsed_ms: 1000, eta_ms: 3000,
    });
    await flush();
    await advance(3500);
    expect($("#progress")).toBeTruthy(); // quiet, but the shell says it still runs
    b.indexing = false;
    await advance(3500);
    expect(document.querySelector("#progress")).toBeNull();
  });

  it("drops the panel when the run a done event said was waiting ends without a word", async () => {
    vi.useFakeTimers();
    const b = mockBackend();
    await renderApp(b);
    b.indexing = true; // a watcher run queued behind the one that just ended
    b.emitDone();
    await flush();
    expect($("#progress")).toBeTruthy();
    b.indexing = false; // it ended quickly and sent nothing
    await advance(3500);
    expect(document.querySelector("#progress")).toBeNull();
  });

  it("does nothing when the picker is cancelled, and adds a typed path once confirmed", async () => {
    const b = mockBackend({ settings: { folders: [] }, notes: [], pickFolderResult: null });
    await renderApp(b);
    click($("#choose-folder"));
    await flush();
    expect(b.callsOf("add_folder")).toHaveLength(0);
    expect($("#welcome")).toBeTruthy();

    type($("#welcome-path"), "/typed/notes");
    click($("#welcome-add"));
    await flush();
    expect(b.callsOf("add_folder")).toHaveLength(0); // asks first
    expect($("#welcome-confirm-box").textContent).toContain("/typed/notes");
    click($("#welcome-cancel"));
    await flush();
    expect(document.querySelector("#welcome-confirm-box")).toBeNull();
    click($("#welcome-add"));
    await flush();
    click($("#welcome-confirm"));
    await flush();
    expect(b.callsOf("add_folder")).toEqual([{ path: "/typed/notes", confirmed: true }]);
  });

  it("shows an indexing error with what to do and a retry", async () => {
    const b = mockBackend();
    await renderApp(b);
    b.emitError({ code: "provider_down", message: "OpenAI did not answer." });
    await flush();
    const banner = $("#index-error");
    expect(banner.textContent).toContain("OpenAI did not answer.");
    expect(banner.textContent).toContain("connection");
    click($("button", banner));
    await flush();
    expect(b.callsOf("reindex")).toHaveLength(1);
  });
});

describe("navigation", () => {
  it("switches views and keeps the search query", async () => {
    const b = mockBackend();
    await renderApp(b);
    type($("#search-input"), "bread");
    click($("#nav-status"));
    await flush();
    expect($("#nav-status").getAttribute("aria-current")).toBe("page");
    click($("#nav-cost"));
    await flush();
    expect($("#cost-panel")).toBeTruthy();
    click($("#nav-search"));
    await flush();
    expect(($("#search-input") as HTMLInputElement).value).toBe("bread");
  });
});

describe("status view", () => {
  it("lists skipped and failed files with reasons", async () => {
    const b = mockBackend({
      fileStates: [
        { root: ROOT, path: "big.pdf", state: "skipped", reason: "not a text file" },
        { root: ROOT, path: "bad.md", state: "failed", reason: "invalid UTF-8" },
      ],
    });
    await renderApp(b);
    click($("#nav-status"));
    await flush();
    expect($("#stat-notes").textContent).toContain("3");
    const rows = $$(".file-state");
    expect(rows.map((r) => [r.dataset.state, r.dataset.path])).toEqual([
      ["failed", "bad.md"],
      ["skipped", "big.pdf"],
    ]);
    expect(rows[0]!.textContent).toContain("invalid UTF-8");

    const select = $("#file-filter") as HTMLSelectElement;
    select.value = "all";
    select.dispatchEvent(new Event("change", { bubbles: true }));
    await flush();
    expect($$(".file-state").filter((r) => r.dataset.state === "indexed")).toHaveLength(3);

    click($("#reindex"));
    await flush();
    expect(b.callsOf("reindex")).toHaveLength(1);
  });
});

describe("settings", () => {
  it("is busy until the cards above the provider have loaded, so nothing moves under a click", async () => {
    const b = mockBackend();
    const real = b.fileTypeCounts.bind(b);
    let release: () => void = () => {};
    vi.spyOn(b, "fileTypeCounts").mockImplementation(
      () => new Promise((resolve) => (release = () => resolve(real()))),
    );
    await openSettings(b);
    expect($("#settings-view").getAttribute("aria-busy")).toBe("true");
    release();
    await flush();
    expect($("#settings-view").getAttribute("aria-busy")).toBe("false");
  });

  it("turns encryption at rest on: saved at once, applied by the restart it offers", async () => {
    const b = mockBackend();
    await openSettings(b);
    const box = $("#encrypt-at-rest") as HTMLInputElement;
    expect(box.checked).toBe(false);
    expect($("#encryption-state").textContent).toContain("not encrypted");
    expect(document.querySelector("#restart-app")).toBeNull();

    click(box);
    await flush();
    const saved = b.callsOf("save_settings") as { settings: Settings }[];
    expect(saved.at(-1)!.settings.encrypt_at_rest).toBe(true);
    expect($("#encryption-state").textContent).toContain("encrypts it when it starts again");
    expect(b.callsOf("restart_app")).toHaveLength(0);

    click($("#restart-app"));
    await flush();
    expect(b.callsOf("restart_app")).toHaveLength(1);
    expect($("#encryption-state").textContent).toContain("The index is encrypted.");
    expect(document.querySelector("#restart-app")).toBeNull();
  });

  it("asks for confirmation with an estimate before switching provider", async () => {
    const b = mockBackend({ keys: { openai: "sk-test-1234567890" } });
    await openSettings(b);
    expect(document.querySelector("#provider-apply")).toBeNull(); // nothing changed yet

    click($("#provider-openai"));
    expect(($("#provider-model") as HTMLInputElement).value).toBe("text-embedding-3-small");
    click($("#provider-apply"));
    await flush();
    expect(b.callsOf("estimate")).toEqual([{ provider: { provider: "openai", model: "text-embedding-3-small" } }]);
    const confirm = $("#provider-confirm");
    expect($("#estimate-chunks", confirm).textContent).toMatch(/\d+ chunks/);
    expect($("#estimate-tokens", confirm).textContent).toMatch(/[\d,]+ tokens/);
    expect($("#estimate-dollars", confirm).textContent).toMatch(/\$/);
    expect(confirm.textContent).toContain("sent to OpenAI");
    expect(b.callsOf("save_settings")).toHaveLength(0);

    click($("#provider-confirm-no"));
    await flush();
    expect(document.querySelector("#provider-confirm")).toBeNull();
    expect(b.callsOf("save_settings")).toHaveLength(0);

    click($("#provider-apply"));
    await flush();
    click($("#provider-confirm-yes"));
    await flush();
    const saved = b.callsOf("save_settings") as { settings: Settings }[];
    expect(saved).toHaveLength(1);
    expect(saved[0]!.settings.provider).toEqual({ provider: "openai", model: "text-embedding-3-small" });
    expect(saved[0]!.settings.folders).toEqual([ROOT]);
    expect(b.settings.provider.provider).toBe("openai");
  });

  it("validates an OpenAI-compatible provider and needs no key for it", async () => {
    const b = mockBackend();
    await openSettings(b);
    click($("#provider-compatible"));
    click($("#provider-apply"));
    await flush();
    expect($("#provider-error").textContent).toContain("base URL");
    expect(b.callsOf("estimate")).toHaveLength(0);
    type($("#provider-base-url"), "http://localhost:11434/v1");
    type($("#provider-model"), "nomic-embed-text");
    click($("#provider-apply"));
    await flush();
    expect(b.callsOf("estimate")).toEqual([
      { provider: { provider: "compatible", base_url: "http://localhost:11434/v1", model: "nomic-embed-text" } },
    ]);
    expect(($("#provider-confirm-yes") as HTMLButtonElement).disabled).toBe(false);
  });

  it("blocks switching to a paid provider without a key", async () => {
    const b = mockBackend();
    await openSettings(b);
    click($("#provider-gemini"));
    click($("#provider-apply"));
    await flush();
    expect($("#provider-confirm").textContent).toContain("API key");
    expect(($("#provider-confirm-yes") as HTMLButtonElement).disabled).toBe(true);
  });

  it("saves an API key to the keychain without keeping it, then deletes it", async () => {
    const b = mockBackend();
    const keySet = vi.spyOn(b, "keySet");
    await openSettings(b);
    expect(document.querySelector("#key-input")).toBeNull(); // local provider needs no key
    click($("#provider-openai"));
    const input = $("#key-input") as HTMLInputElement;
    expect(input.type).toBe("password");
    expect($("#key-status").dataset.present).toBe("false");

    const secret = "fake-live-SECRET-abcdef987654";
    input.value = secret;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    click($("#key-save"));
    expect(input.value).toBe(""); // cleared synchronously, before the shell answers
    await flush();
    expect(keySet).toHaveBeenCalledWith("openai", secret, null);
    expect(input.value).toBe("");
    expect(document.body.innerHTML).not.toContain(secret);
    expect(document.body.innerHTML).not.toContain("SECRET");
    const status = $("#key-status");
    expect(status.dataset.present).toBe("true");
    expect(status.textContent).toContain("fak…7654");

    click($("#key-delete"));
    await flush();
    expect(b.callsOf("key_delete")).toEqual([{ provider: "openai" }]);
    expect($("#key-status").dataset.present).toBe("false");
  });

  it("sends a key to a custom base URL only when saved for it", async () => {
    const b = mockBackend({ keys: { openai: "fake-key-for-openai-itself" } });
    const keySet = vi.spyOn(b, "keySet");
    await openSettings(b);
    click($("#provider-openai"));
    await flush();
    expect($("#key-saved-for").textContent).toContain("OpenAI's own API");
    type($("#provider-base-url"), "https://gw.example/v1");
    await flush();
    expect($("#key-elsewhere").textContent).toContain("https://gw.example/v1");
    click($("#provider-apply"));
    await flush();
    expect(($("#provider-confirm-yes") as HTMLButtonElement).disabled).toBe(true); // the key would not be sent there
    click($("#provider-confirm-no"));
    await flush();

    const input = $("#key-input") as HTMLInputElement;
    input.value = "fake-key-for-the-gateway-123";
    click($("#key-for-url"));
    click($("#key-save"));
    await flush();
    expect(keySet).toHaveBeenCalledWith("openai", "fake-key-for-the-gateway-123", "https://gw.example/v1");
    expect($("#key-saved-for").textContent).toBe("https://gw.example/v1");
    expect(document.querySelector("#key-elsewhere")).toBeNull();
    click($("#provider-apply"));
    await flush();
    expect(($("#provider-confirm-yes") as HTMLButtonElement).disabled).toBe(false);
  });

  it("shows key errors by code", async () => {
    const b = mockBackend();
    b.failNext.set("key_set", { code: "keychain_unavailable", message: "No keychain." });
    await openSettings(b);
    click($("#provider-gemini"));
    const input = $("#key-input") as HTMLInputElement;
    input.value = "AIza-something-long";
    click($("#key-save"));
    await flush();
    expect($("#key-error").textContent).toContain("keychain");
    expect(input.value).toBe("");
  });

  it("saves budget, shortcut, default weight and the indexing CPU share", async () => {
    const b = mockBackend();
    await openSettings(b);
    type($("#budget"), "5");
    type($("#shortcut"), "Alt+Space");
    type($("#default-weight"), "25");
    const cpu = $("#indexing-cpu") as HTMLSelectElement;
    expect(cpu.value).toBe("all");
    cpu.value = "half";
    cpu.dispatchEvent(new Event("change", { bubbles: true }));
    click($("#settings-save"));
    await flush();
    const saved = (b.callsOf("save_settings") as { settings: Settings }[])[0]!.settings;
    expect(saved).toMatchObject({ budget_usd: 5, shortcut: "Alt+Space", keyword_weight: 0.75, indexing_cpu: "half", provider: { provider: "local" } });

    type($("#budget"), "-3");
    click($("#settings-save"));
    await flush();
    expect($("#settings-error").textContent).toContain("budget");
    expect(b.callsOf("save_settings")).toHaveLength(1);

    type($("#budget"), "");
    click($("#settings-save"));
    await flush();
    expect((b.callsOf("save_settings") as { settings: Settings }[])[1]!.settings.budget_usd).toBeNull();
  });

  it("offers opening in Obsidian only when a folder is a vault, and saves the choice", async () => {
    const plain = mockBackend();
    await openSettings(plain);
    expect(document.querySelector("#open-in-obsidian")).toBeNull();
    document.body.innerHTML = "";

    const b = mockBackend();
    b.statusOverrides = { obsidian_vaults: [ROOT] };
    await openSettings(b);
    const box = $("#open-in-obsidian") as HTMLInputElement;
    expect(box.checked).toBe(false);
    click(box);
    click($("#settings-save"));
    await flush();
    const saved = (b.callsOf("save_settings") as { settings: Settings }[])[0]!.settings;
    expect(saved.open_in_obsidian).toBe(true);
  });

  it("counts the notes each exclusion pattern matches as it is typed, then saves the patterns", async () => {
    vi.useFakeTimers();
    const b = mockBackend();
    await openSettings(b);
    // Before the first count lands its line is already there: the provider
    // cards below do not move under the pointer when it does.
    expect($("#exclusion-total-pending").textContent).toContain("Counting");
    expect(document.querySelector("#exclusion-total")).toBeNull();
    type($("#exclude-patterns"), "projects/\n*.txt\n[bad");
    await advance(300);
    const counts = () => $$(".pattern-count").map((li) => [li.dataset.pattern, li.dataset.files]);
    expect(counts()).toEqual([
      ["projects/", "2"],
      ["*.txt", "1"],
      ["[bad", "0"],
    ]);
    expect($$(".pattern-count")[2]!.textContent).toContain("not a valid pattern");
    expect(($("#exclusions-save") as HTMLButtonElement).disabled).toBe(true);

    type($("#exclude-patterns"), "projects/\n*.txt");
    type($("#include-patterns"), "projects/pricing.md");
    await advance(300);
    expect($("#exclusion-total").dataset.excluded).toBe("2");
    expect(document.querySelector("#exclusion-total-pending")).toBeNull();
    expect(b.callsOf("save_settings")).toHaveLength(0);
    click($("#exclusions-save"));
    await flush();
    const saved = (b.callsOf("save_settings") as { settings: Settings }[])[0]!.settings;
    expect(saved.scan).toMatchObject({ exclude: ["projects/", "*.txt"], include: ["projects/pricing.md"] });
  });

  it("adds and removes folders", async () => {
    const b = mockBackend();
    await openSettings(b);
    click($("#add-folder"));
    await flush();
    expect(b.callsOf("pick_folder")).toHaveLength(1);
    expect(b.callsOf("add_folder")).toEqual([]);
    expect($$(".folder").map((f) => f.dataset.path)).toEqual([ROOT, "/home/you/Notes"]);

    const remove = $(".folder[data-path='/home/you/Notes'] .remove-folder");
    click(remove);
    expect(b.callsOf("remove_folder")).toHaveLength(0); // first click asks
    click(remove);
    await flush();
    expect(b.callsOf("remove_folder")).toEqual([{ path: "/home/you/Notes" }]);
    expect($$(".folder").map((f) => f.dataset.path)).toEqual([ROOT]);
  });
});

describe("several processes, the cap, missing folders", () => {
  it("shows another writer, a paused budget, an unavailable folder and data warnings", async () => {
    const b = mockBackend({ settings: { folders: [ROOT], budget_usd: 1 } });
    b.statusOverrides = {
      other_writer: "indexing is running in another Sift process (pid 4242)",
      budget_reached: true,
      month_spent_usd: 0.99,
      budget_usd: 1,
      unavailable_folders: ["/mnt/usb/notes"],
      warnings: ["settings.json was set aside"],
    };
    await renderApp(b);
    click($("#nav-status"));
    await flush();
    expect($("#status-other-writer").textContent).toContain("pid 4242");
    expect($("#status-budget").textContent).toContain("$0.99");
    expect($("#status-budget").textContent).toContain("$1.00");
    expect($$(".unavailable-folder")[0]!.textContent).toContain("/mnt/usb/notes");
    expect($$(".data-warning")[0]!.textContent).toContain("set aside");
  });

  it("says when indexing waits for another process", async () => {
    const b = mockBackend();
    await renderApp(b);
    b.emitProgress({
      phase: "waiting", files_done: 0, files_total: 0, chunks_done: 0, chunks_total: 0,
      current: "indexing is running in another Sift process (pid 77); waiting", elapsed_ms: 10, eta_ms: null,
    });
    await flush();
    expect($("#progress").textContent).toContain("Waiting for another Sift process");
    expect($("#progress").textContent).toContain("pid 77");
  });
});

describe("file types", () => {
  const withDocs = () =>
    mockBackend({
      settings: { folders: [ROOT], scan: { extensions: ["md", "txt", "pdf"], max_file_bytes: 1000 } },
      notes: [
        ...NOTES.map((n) => ({ ...n })),
        { root: ROOT, path: "papers/tracing.pdf", body: "Tracing\nSampling keeps some traces.", page: 3 },
        { root: ROOT, path: "papers/old.pdf", body: "Old paper" },
        { root: ROOT, path: "letters/offer.docx", body: "Offer letter" },
      ],
    });

  it("offers a checkbox per type with its count, and saves the chosen types in scan settings", async () => {
    const b = withDocs();
    await openSettings(b);
    const label = (ext: string) => $(`#type-${ext}`).closest("label")!.textContent!.replace(/\s+/g, " ").trim();
    expect(label("pdf")).toBe(".pdf 2 files");
    expect(label("docx")).toBe(".docx 1 file");
    expect(($("#type-pdf") as HTMLInputElement).checked).toBe(true);
    expect(($("#type-docx") as HTMLInputElement).checked).toBe(false);
    expect(($("#types-save") as HTMLButtonElement).disabled).toBe(true);

    click($("#type-docx"));
    click($("#type-txt"));
    await flush();
    click($("#types-save"));
    await flush();
    const saved = b.callsOf("save_settings").at(-1) as { settings: Settings };
    expect(saved.settings.scan?.extensions).toEqual(["md", "pdf", "docx"]);
    // Other scan rules are passed back untouched.
    expect(saved.settings.scan?.max_file_bytes).toBe(1000);
  });

  it("shows a PDF hit's page and opens the PDF at it; the type filter offers the types present", async () => {
    vi.useFakeTimers();
    const b = withDocs();
    await renderApp(b);
    type($("#search-input"), "sampling traces");
    await vi.advanceTimersByTimeAsync(400);
    await flush();
    const hit = $('.result[data-path="papers/tracing.pdf"]');
    expect(hit.querySelector(".result-page")!.textContent).toBe("p. 3");
    expect(hit.querySelector(".result-open")!.getAttribute("title")).toBe("Open at page 3");
    click(hit.querySelector(".result-open")!);
    await flush();
    expect(b.callsOf("open_note").at(-1)).toMatchObject({ abs_path: `${ROOT}/papers/tracing.pdf`, page: 3 });
    const offered = [...document.querySelectorAll("#ext-options option")].map((o) => o.getAttribute("value"));
    expect(offered).toEqual(["md", "txt", "pdf"]);
  });

  it("shows the status's language hint", async () => {
    const b = mockBackend();
    const status = b.status.bind(b);
    b.status = async () => ({ ...(await status()), language_hint: "80% of your notes are not in English" });
    await renderApp(b);
    click($("#nav-status"));
    await flush();
    expect($("#language-hint").textContent).toContain("not in English");
  });
});

describe("cost panel", () => {
  it("shows spend per provider and model, cache savings, estimate and budget", async () => {
    const b = mockBackend({
      settings: { folders: [ROOT], budget_usd: 2 },
      cost: {
        this_month: [
          { provider: "openai", model: "text-embedding-3-small", requests: 3, tokens_sent: 1000, dollars: 0.5, cache_hits: 2, cache_hit_tokens: 300, dollars_saved: 0.1 },
        ],
        all_time: [
          { provider: "openai", model: "text-embedding-3-small", requests: 9, tokens_sent: 5000, dollars: 1.25, cache_hits: 4, cache_hit_tokens: 900, dollars_saved: 0.3 },
          { provider: "gemini", model: "gemini-embedding-001", requests: 1, tokens_sent: 100, dollars: 0.25, cache_hits: 0, cache_hit_tokens: 0, dollars_saved: 0 },
        ],
      },
    });
    await renderApp(b);
    click($("#nav-cost"));
    await flush();
    const panel = $("#cost-panel");
    expect($("#cost-month", panel).textContent).toContain("$0.50");
    expect($("#cost-total", panel).textContent).toContain("$1.50");
    expect($("#cost-saved", panel).textContent).toContain("$0.30");
    expect($("#cost-budget", panel).textContent).toContain("$2.00");
    expect($$("#cost-all-time .cost-row", panel).map((r) => r.dataset.model)).toEqual([
      "text-embedding-3-small",
      "gemini-embedding-001",
    ]);
    expect(b.callsOf("estimate")).toEqual([{ provider: { provider: "local" } }]);
    expect($("#cost-estimate", panel).textContent).toContain("free");
  });
});

describe("source hygiene", () => {
  it("never renders raw HTML", () => {
    const dir = join(process.cwd(), "src");
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) {
          if (e.name !== "test") walk(p);
        } else if (/\.(svelte|ts)$/.test(e.name)) files.push(p);
      }
    };
    walk(dir);
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const src = readFileSync(f, "utf8");
      expect(src, f).not.toMatch(/\{@html|innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    }
  });
});

describe("settings: your data", () => {
  it("exports through the shell's save dialog and says what was written", async () => {
    const b = mockBackend();
    await openSettings(b);
    click($("#export-sift"));
    await flush();
    expect(b.callsOf("export_index")).toEqual([{ format: "sift" }]);
    expect($("#export-done").textContent).toContain("/home/you/sift-index.jsonl.gz");
    expect($("#export-done").textContent).toContain("chunks");

    b.exportPath = null; // the user cancels the dialog
    click($("#export-chroma"));
    await flush();
    expect(b.callsOf("export_index")).toEqual([{ format: "sift" }, { format: "chroma" }]);
    expect(document.querySelector("#export-done")).toBeNull();

    b.failNext.set("export_index", { code: "bad_path", message: "cannot write /ro/x: read-only" });
    click($("#export-qdrant"));
    await flush();
    expect($("#export-error").textContent).toContain("read-only");
  });

  it("deletes everything only after the phrase is typed, and clears recent searches", async () => {
    const b = mockBackend({ keys: { openai: "placeholder-not-a-key" } });
    localStorage.setItem("sift.recent", JSON.stringify(["pricing"]));
    await openSettings(b);
    click($("#forget-start"));
    await flush();
    const go = $("#forget-go") as HTMLButtonElement;
    expect(go.disabled).toBe(true);
    type($("#forget-confirm"), "delete");
    await flush();
    expect(go.disabled).toBe(true);
    expect(b.callsOf("forget_everything")).toHaveLength(0);

    click($("#forget-keys"));
    type($("#forget-confirm"), "delete everything");
    await flush();
    expect(go.disabled).toBe(false);
    click(go);
    await flush();
    expect(b.callsOf("forget_everything")).toEqual([
      { confirmation: "delete everything", model: false, keys: true },
    ]);
    expect(b.forgotten).toBe(true);
    expect(localStorage.getItem("sift.recent")).toBeNull();
    expect($("#forget-done").textContent).toContain("openai");
  });

  it("cancelling the confirmation deletes nothing", async () => {
    const b = mockBackend();
    await openSettings(b);
    click($("#forget-start"));
    await flush();
    type($("#forget-confirm"), "delete everything");
    click($("#forget-cancel"));
    await flush();
    expect(document.querySelector("#forget-confirm")).toBeNull();
    expect(b.callsOf("forget_everything")).toHaveLength(0);
    expect(b.forgotten).toBe(false);
  });
});
