import { describe, expect, it } from "vitest";
import { $, $$, click, flush, mockBackend, renderApp } from "./helpers";

describe("settings: compare providers", () => {
  it("shows the cost first, runs only once confirmed, shows both lists as text and switches nothing", async () => {
    const b = mockBackend({ keys: { openai: "sk-test-1234567890" } });
    b.history = ["sleep better", "garden"];
    b.notes[0]!.body = "<img src=x onerror=alert(1)> <b>bold</b> sleep notes";
    await renderApp(b);
    click($("#nav-settings"));
    await flush();
    expect(document.querySelector("#compare")).toBeNull(); // the local model is in use and chosen

    click($("#provider-openai"));
    await flush();
    expect($("#compare-kept").textContent).toContain("2 searches");
    click($("#compare-estimate"));
    await flush();
    expect(b.callsOf("compare_plan")).toEqual([
      {
        provider: { provider: "openai", model: "text-embedding-3-small" },
        options: { sample_chunks: 200, queries: [], recent_searches: 20, k: 10 },
      },
    ]);
    expect(b.callsOf("compare_run")).toHaveLength(0);
    const confirm = $("#compare-confirm");
    expect($("#compare-queries", confirm).textContent).toBe("2 searches");
    expect($("#compare-cost-tokens", confirm).textContent).toMatch(/[\d,]+ tokens/);
    expect($("#compare-cost-dollars", confirm).textContent).toMatch(/\$|less than/);

    click($("#compare-run"));
    await flush();
    expect(b.callsOf("compare_run")).toHaveLength(1);
    expect(document.querySelector("#compare-confirm")).toBeNull();
    const results = $("#compare-results");
    expect($("#compare-mean", results).textContent).toBe("100%");
    const rows = $$(".compare-query", results);
    expect(rows.map((r) => r.querySelector("h4")!.firstChild!.textContent!.trim())).toEqual(["sleep better", "garden"]);
    expect(rows[0]!.querySelectorAll(".compare-current li").length).toBeGreaterThan(0);
    expect(results.querySelector("img, b")).toBeNull();
    expect(b.callsOf("save_settings")).toHaveLength(0);
    expect(b.settings.provider.provider).toBe("local");

    click($("#compare-clear-history"));
    await flush();
    expect(b.callsOf("clear_search_history")).toHaveLength(1);
    expect($("#compare-kept").textContent).toContain("0 searches");
  });

  it("says why when no searches are kept", async () => {
    const b = mockBackend({ keys: { openai: "sk-test-1234567890" } });
    await renderApp(b);
    click($("#nav-settings"));
    await flush();
    click($("#provider-openai"));
    await flush();
    click($("#compare-estimate"));
    await flush();
    expect($("#compare-error").textContent).toContain("no searches");
    expect(document.querySelector("#compare-confirm")).toBeNull();
  });
});
