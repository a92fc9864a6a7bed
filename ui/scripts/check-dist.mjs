// Fails the build if ui/dist references anything remote: the app runs under a strict
// CSP and must load nothing from the network. XML namespace identifiers are allowed
// (they are compared as strings, never fetched), as are loopback examples.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const ALLOWED = [
  /^http:\/\/www\.w3\.org\/(1999\/xhtml|2000\/svg|1998\/Math\/MathML|1999\/xlink|XML\/1998\/namespace|2000\/xmlns\/)/,
  /^https?:\/\/(localhost|127\.0\.0\.1)[:/]/,
];
const URL_RE = /(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'`)<>]*/gi;

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else yield p;
  }
}

const bad = [];
for (const file of walk("dist")) {
  if (!/\.(html|js|css|json|svg)$/.test(file)) continue;
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(URL_RE)) {
    const url = m[0];
    if (!/^https?:/i.test(url)) {
      // Protocol-relative "//host.tld" is remote too; skip things that are clearly not URLs.
      const before = text.slice(Math.max(0, (m.index ?? 0) - 1), m.index ?? 0);
      if (before === ":" || /[\w$]/.test(before)) continue;
      if (!/^\/\/[a-z0-9-]+\.[a-z0-9.-]+\//i.test(url)) continue;
    }
    if (ALLOWED.some((re) => re.test(url))) continue;
    bad.push(`${file}: ${url}`);
  }
  if (/<script(?![^>]*\bsrc=)[^>]*>/i.test(text) && file.endsWith(".html")) bad.push(`${file}: inline <script>`);
  if (/<style[\s>]/i.test(text) && file.endsWith(".html")) bad.push(`${file}: inline <style>`);
}
if (bad.length) {
  console.error("dist must not reference remote resources or inline code:\n  " + bad.join("\n  "));
  process.exit(1);
}
console.log("dist: no remote URLs, no inline scripts or styles");
