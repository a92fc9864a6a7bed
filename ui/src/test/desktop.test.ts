// The model download card (first launch without the local model) and the
// "Sift in the background" card, against the mock shell.
import { describe, expect, it } from "vitest";
import { $, click, flush, mockBackend, renderApp } from "./helpers";

describe("model download", () => {
  it("offers the download, shows progress, and goes once the model is in", async () => {
    const b = mockBackend({ modelAvailable: false });
    await renderApp(b);
    const card = $("#model-download");
    expect(card.textContent).toContain("90 MB");
    expect($("#model-download-start").textContent).toContain("Download the model");

    click($("#model-download-start"));
    await flush();
    expect(b.callsOf("model_download")).toHaveLength(1);

    b.emitModelProgress(45 * 1_048_576, 90 * 1_048_576);
    await flush();
    expect($("#model-progress-text").textContent).toContain("45.0 MB of 90.0 MB");
    expect($("#model-progress-text").textContent).toContain("(50%)");
    expect(($("#model-progress") as HTMLProgressElement).value).toBe(45 * 1_048_576);

    b.emitModelDone();
    await flush();
    expect(document.querySelector("#model-download")).toBeNull();
  });

  it("says a failed download continues where it stopped", async () => {
    const b = mockBackend({ modelAvailable: false });
    await renderApp(b);
    click($("#model-download-start"));
    await flush();
    b.emitModelProgress(30 * 1_048_576, 90 * 1_048_576);
    await flush();
    // The shell reports the bytes kept on disk once the download stopped.
    const state = b.mockModelState.bind(b);
    b.mockModelState = (over = {}) => state({ ...over, partial_bytes: 30 * 1_048_576 });
    b.emitModelError({ code: "provider_down", message: "download interrupted" });
    await flush();
    expect($("#model-error").textContent).toContain("download interrupted");
    expect($("#model-error").textContent).toContain("30.0 MB are already here");
    expect($("#model-download-start").textContent).toContain("Continue the download");

    click($("#model-download-start"));
    await flush();
    b.emitModelProgress(31 * 1_048_576, 90 * 1_048_576, 30 * 1_048_576);
    await flush();
    expect($("#model-resumed").textContent).toContain("continuing from 30.0 MB");
  });

  it("switches to a model that arrived while the app ran", async () => {
    const b = mockBackend({ modelAvailable: false });
    // `sift model fetch` put the model there; this engine still runs without it.
    b.mockModelState = (over = {}) => ({
      installed: true, dir: "/home/you/.cache/sift/models/all-MiniLM-L6-v2", dest: "/home/you/.cache/sift/models/all-MiniLM-L6-v2",
      downloading: false, progress: null, error: null, partial_bytes: 0, ...over,
    });
    await renderApp(b);
    expect($("#model-download").textContent).toContain("not using it yet");
    click($("#model-use"));
    await flush();
    expect(b.callsOf("model_download")).toHaveLength(1);
    expect($("#model-landed").textContent).toContain("meaning search turns on");
  });

  it("is not offered when the model is there", async () => {
    const b = mockBackend();
    await renderApp(b);
    expect(document.querySelector("#model-download")).toBeNull();
  });
});

describe("background", () => {
  it("pauses indexing and turns start at login on and off", async () => {
    const b = mockBackend();
    await renderApp(b);
    click($("#nav-settings"));
    await flush();
    expect($("#background-card").textContent).toContain("Closing the window keeps Sift in the tray");

    click($("#pause-indexing"));
    await flush();
    expect(b.callsOf("set_indexing_paused")).toEqual([{ paused: true }]);
    expect($("#pause-indexing").textContent).toBe("Resume indexing");
    expect($("#paused-note")).toBeTruthy();

    click($("#autostart"));
    await flush();
    expect(b.callsOf("set_autostart")).toEqual([{ enabled: true }]);
    expect(($("#autostart") as HTMLInputElement).checked).toBe(true);

    // The tray menu resumed: the card and the top bar follow.
    b.emitBackground({ paused: false });
    await flush();
    expect($("#pause-indexing").textContent).toBe("Pause indexing");
    expect(document.querySelector("#topbar-paused")).toBeNull();
    b.emitBackground({ paused: true });
    await flush();
    expect($("#topbar-paused").textContent).toBe("Indexing paused");
  });

  it("goes to the search box when the shell brings the window back", async () => {
    const b = mockBackend();
    await renderApp(b);
    click($("#nav-settings"));
    await flush();
    b.emitFocusSearch();
    await flush();
    expect($("#nav-search").getAttribute("aria-current")).toBe("page");
    expect(document.activeElement?.id).toBe("search-input");
  });
});
