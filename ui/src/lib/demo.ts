// Demo data for running the UI in a plain browser (`npm run dev`), without the shell.
import { MockBackend, type MockNote } from "./backend";

const day = 86400;
const now = Math.floor(Date.now() / 1000);

export function demoNotes(root: string): MockNote[] {
  return [
    {
      root,
      path: "projects/sift/pricing.md",
      tags: ["sift", "decision"],
      modified: now - 2 * day,
      body: `# Pricing decision

## Options
We compared a one-time licence with a subscription.

## Decision
We decided on a one-time price of $29 because people dislike subscriptions for small tools.
Revisit after the first 500 sales.`,
    },
    {
      root,
      path: "journal/2024-03-14.md",
      tags: ["journal"],
      modified: now - 40 * day,
      body: `# Thursday

Long walk by the river. Thought about how to explain semantic search to my parents:
it finds notes by what they mean, not the exact words you remember.`,
    },
    {
      root,
      path: "recipes/bread.md",
      tags: ["cooking"],
      modified: now - 120 * day,
      body: `# Sourdough bread

## Method
Mix flour and water, rest one hour, then add the starter and salt.
Bake at 250 °C with steam for 20 minutes, then 20 more without.`,
    },
    {
      root,
      path: "projects/sift/security.md",
      tags: ["sift", "security"],
      modified: now - 5 * day,
      body: `# Security notes

## Untrusted content
Notes are untrusted: a note may contain <script>alert(1)</script> or <img src=x onerror=alert(2)>
and the search window must show it as plain text.`,
    },
    {
      root,
      path: "meetings/2024-05-02 planning.txt",
      tags: ["meeting"],
      modified: now - 10 * day,
      body: `Planning meeting

We agreed to ship keyword search first and add meaning search once the local model is small enough.
Pricing will be discussed next week.`,
    },
    {
      root,
      path: "reading/books.org",
      tags: ["reading"],
      modified: now - 200 * day,
      body: `* Books
The Design of Everyday Things: affordances and signifiers; good defaults matter.
Thinking, Fast and Slow: people decide with two systems.`,
    },
  ];
}

/** `?model=missing` in the URL shows the no-model experience. */
export function demoBackend(): MockBackend {
  const params = new URLSearchParams(typeof location === "undefined" ? "" : location.search);
  return new MockBackend({
    latencyMs: 40,
    simulateIndexing: true,
    modelAvailable: params.get("model") !== "missing",
    notesForNewFolder: demoNotes,
    pickFolderResult: "/home/you/Notes",
    fileStates: [
      { root: "/home/you/Notes", path: "attachments/scan.pdf", state: "skipped", reason: "not a text file (pdf)" },
      { root: "/home/you/Notes", path: "huge-export.md", state: "skipped", reason: "larger than 5 MB" },
      { root: "/home/you/Notes", path: "broken.md", state: "failed", reason: "invalid UTF-8 at byte 1042" },
    ],
    cost: {
      this_month: [
        { provider: "openai", model: "text-embedding-3-small", requests: 12, tokens_sent: 182_000, dollars: 0.00364, cache_hits: 40, cache_hit_tokens: 51_000, dollars_saved: 0.00102 },
      ],
      all_time: [
        { provider: "openai", model: "text-embedding-3-small", requests: 31, tokens_sent: 640_000, dollars: 0.0128, cache_hits: 120, cache_hit_tokens: 210_000, dollars_saved: 0.0042 },
        { provider: "gemini", model: "gemini-embedding-001", requests: 4, tokens_sent: 90_000, dollars: 0.0135, cache_hits: 0, cache_hit_tokens: 0, dollars_saved: 0 },
      ],
    },
  });
}
