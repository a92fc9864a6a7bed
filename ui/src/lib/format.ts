import type { IpcError, Provider, ProviderKind } from "./types";

const nf = new Intl.NumberFormat();

export function num(n: number): string {
  return nf.format(n);
}

export function dollars(n: number): string {
  if (n === 0) return "$0";
  if (Math.abs(n) < 0.0001) return "<$0.0001";
  if (Math.abs(n) < 0.01) return `$${n.toFixed(4)}`;
  return `$${n.toFixed(2)}`;
}

/** A cost said in words: "nothing", "less than $0.0001", "about $0.42". */
export function approxDollars(n: number | null): string {
  if (n === null) return "an unknown amount (no price is known for this model)";
  if (n === 0) return "nothing";
  if (n < 0.0001) return "less than $0.0001";
  return `about ${dollars(n)}`;
}

/** Time left, said in words: "a few seconds", "about 40 s", "about 3 min", "about 1 h 5 min". */
export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "estimating…";
  const s = Math.round(ms / 1000);
  if (s < 5) return "a few seconds";
  if (s < 60) return `about ${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `about ${m} min`;
  const h = Math.floor(m / 60);
  return `about ${h} h ${m % 60} min`;
}

export function providerName(kind: string): string {
  return (PROVIDER_LABEL as Record<string, string>)[kind] ?? kind;
}

export function ago(unixSeconds: number | null, now = Date.now()): string {
  if (unixSeconds === null) return "never";
  const s = Math.max(0, Math.round(now / 1000 - unixSeconds));
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.floor(s / 86400)} d ago`;
  return date(unixSeconds);
}

export function date(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toLocaleDateString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
  });
}

/** "projects/sift/pricing.md" -> "projects/sift" ("" at the root). */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** Last segment of a folder path, for both / and \ separators. */
export function basename(path: string): string {
  const parts = path.split(/[\\/]+/).filter(Boolean);
  return parts[parts.length - 1] ?? path;
}

export const PROVIDER_LABEL: Record<ProviderKind, string> = {
  local: "On this computer",
  openai: "OpenAI",
  gemini: "Google Gemini",
  compatible: "OpenAI-compatible",
};

export function providerLabel(p: Provider): string {
  if (p.provider === "local") return "the local model";
  return `${PROVIDER_LABEL[p.provider]} (${p.model})`;
}

/**
 * Same provider, model, base URL and dimensions: the fields the UI edits. Other
 * fields the shell sends (remote options, a local model_dir) do not count.
 */
export function sameProvider(a: Provider, b: Provider): boolean {
  const key = (p: Provider) =>
    JSON.stringify([
      p.provider,
      "model" in p ? p.model : null,
      "base_url" in p ? (p.base_url ?? null) : null,
      "dimensions" in p ? (p.dimensions ?? null) : null,
    ]);
  return key(a) === key(b);
}

export const DEFAULT_MODEL: Record<Exclude<ProviderKind, "local">, string> = {
  openai: "text-embedding-3-small",
  gemini: "gemini-embedding-001",
  compatible: "",
};

export const MODEL_HINT =
  "To search by meaning on this computer, download the model (about 90 MB) with “Download the model” on the Search screen, or with `sift model fetch` in a terminal — or choose a cloud provider in Settings.";

/** What the user can do about an error, by code (never by message text). */
export function errorHint(code: string): string {
  switch (code) {
    case "model_missing":
      return `Keyword search still works. ${MODEL_HINT}`;
    case "model_invalid":
      return "The local model files look damaged. Download them again with `sift model fetch`.";
    case "invalid_key":
      return "Check the API key in Settings, or paste a new one.";
    case "quota_exhausted":
      return "Your provider account is out of credit. Add credit with the provider or switch provider in Settings.";
    case "model_not_found":
      return "The provider does not know this model. Check the model name in Settings.";
    case "budget_exceeded":
      return "This would go over your budget cap. Raise the cap in Settings, or use the local model.";
    case "keychain_unavailable":
      return "No system keychain is available to store the key. Unlock or install your OS keychain and try again.";
    case "provider_down":
      return "The provider cannot be reached right now. Check your connection and try again in a minute.";
    case "bad_path":
      return "Choose a folder that exists and that you can read.";
    case "not_indexed":
      return "That file is not inside one of your notes folders. Add its folder in Settings.";
    case "invalid_input":
      return "Check the search text and filters (dates are YYYY-MM-DD).";
    case "index_corrupt":
      return "The index needs rebuilding. Open Status and choose Reindex.";
    case "cancelled":
      return "The operation was cancelled.";
    default:
      return "Try again. If it keeps happening, reindex from the Status view.";
  }
}

export function errorText(e: IpcError): string {
  return e.message || e.code;
}
