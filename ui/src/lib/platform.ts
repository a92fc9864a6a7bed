/** True on macOS (and iPadOS), where shortcuts use ⌘ instead of Ctrl. */
export const isMac = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);

/** Prefix for a shortcut label: "⌘" or "Ctrl+". */
export const modLabel = isMac ? "⌘" : "Ctrl+";
