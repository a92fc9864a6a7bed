import { flushSync, mount, unmount } from "svelte";
import { afterEach, vi } from "vitest";
import App from "../App.svelte";
import { MockBackend, type MockNote, type MockOptions } from "../lib/backend";

export const ROOT = "/home/me/Notes";

export const NOTES: MockNote[] = [
  {
    root: ROOT,
    path: "projects/pricing.md",
    tags: ["work", "decision"],
    modified: 1_717_000_000,
    body: "# Pricing\n\n## Decision\nWe chose a one-time price for the app.\nPricing again next year.",
  },
  {
    root: ROOT,
    path: "projects/roadmap.md",
    tags: ["work"],
    modified: 1_716_000_000,
    body: "# Roadmap\n\nShip keyword search, then the price page and pricing experiments.",
  },
  {
    root: ROOT,
    path: "home/bread.txt",
    tags: ["cooking"],
    modified: 1_600_000_000,
    body: "Sourdough bread\nBake with steam for a crisp crust.",
  },
];

let mounted: Record<string, unknown>[] = [];

afterEach(() => {
  for (const c of mounted) unmount(c);
  mounted = [];
  document.body.innerHTML = "";
  localStorage.clear();
  vi.useRealTimers();
});

/** Lets pending promises and Svelte effects run. */
export async function flush(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await Promise.resolve();
    flushSync();
  }
}

/** Advances fake timers (debounce) and settles everything after. */
export async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  await flush();
}

export function mockBackend(opts: MockOptions = {}): MockBackend {
  return new MockBackend({
    notes: NOTES.map((n) => ({ ...n })),
    settings: { folders: [ROOT] },
    ...opts,
  });
}

export async function renderApp(backend: MockBackend): Promise<HTMLElement> {
  const target = document.createElement("div");
  document.body.appendChild(target);
  mounted.push(mount(App, { target, props: { backend } }));
  await flush();
  return target;
}

export function $(sel: string, root: ParentNode = document): HTMLElement {
  const el = root.querySelector<HTMLElement>(sel);
  if (!el) throw new Error(`no element matches ${sel}`);
  return el;
}

export function $$(sel: string, root: ParentNode = document): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(sel)];
}

export function type(el: HTMLElement, value: string): void {
  const input = el as HTMLInputElement;
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
  input.dispatchEvent(new Event("change", { bubbles: true }));
  flushSync();
}

export function key(el: HTMLElement, k: string, init: KeyboardEventInit = {}): void {
  el.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...init }));
  flushSync();
}

export function click(el: HTMLElement): void {
  el.click();
  flushSync();
}
