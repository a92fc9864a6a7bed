/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";
import type { Plugin } from "vite";

// Svelte's runtime errors carry documentation links. They are never fetched, but the
// bundle must not contain remote URLs at all, so keep the error code and drop the scheme.
function stripDocLinks(): Plugin {
  return {
    name: "sift-strip-doc-links",
    apply: "build",
    generateBundle(_options, bundle) {
      for (const file of Object.values(bundle)) {
        if (file.type === "chunk") file.code = file.code.replaceAll("https://svelte.dev/e/", "svelte error ");
      }
    },
  };
}

// Tauri loads ui/dist from disk; relative base keeps asset URLs local.
export default defineConfig({
  base: "./",
  plugins: [svelte(), stripDocLinks()],
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // No inline <script>/<style>: everything is a file so a strict CSP works.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  resolve: process.env.VITEST ? { conditions: ["browser"] } : undefined,
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.ts"],
    restoreMocks: true,
  },
});
