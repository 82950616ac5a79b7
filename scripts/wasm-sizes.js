// The browser bundle each page downloads on a first visit, gzipped: the main WASM and its JS,
// plus, for each lazy island on the page, the split files `__wasm_split_manifest.json` lists
// for it (each file once). Prints a line per page; exits 1 when one is over the budget.
// Usage: node scripts/wasm-sizes.js <pkg dir> <budget bytes>
const fs = require("fs");
const path = require("path");
const zlib = require("zlib");

const [pkg, budget] = [process.argv[2], Number(process.argv[3])];
const gz = (f) => zlib.gzipSync(fs.readFileSync(path.join(pkg, f)), { level: 9 }).length;
const main = ["herald.wasm", "herald.js"].filter((f) => fs.existsSync(path.join(pkg, f)));
const manifestFile = path.join(pkg, "__wasm_split_manifest.json");
const manifest = fs.existsSync(manifestFile) ? JSON.parse(fs.readFileSync(manifestFile)) : {};
const splitJs = fs.readdirSync(pkg).filter((f) => f.startsWith("__wasm_split") && f.endsWith(".js"));

// Which lazy islands each page shows (the list's live status is in the main bundle).
const pages = {
  "broadcast list (/)": [],
  "wizard, step 1": ["message_editor", "attachment_picker"],
  "wizard, step 2": ["audience_editor"],
  "results": ["live_results"],
  "chat": ["live_chat"],
};

const filesOf = (island) => {
  const key = Object.keys(manifest).find((k) => k.startsWith(island + "_loader_"));
  if (!key) return [];
  return [...manifest[key].map((c) => c + ".wasm"), ...splitJs];
};

let over = false;
for (const [page, islands] of Object.entries(pages)) {
  const files = new Set(main);
  for (const island of islands) for (const f of filesOf(island)) files.add(f);
  const total = [...files].filter((f) => fs.existsSync(path.join(pkg, f))).reduce((n, f) => n + gz(f), 0);
  const flag = total > budget ? "  OVER BUDGET" : "";
  console.log(`  ${page.padEnd(20)} ${(total / 1024).toFixed(0).padStart(4)} KB gzipped${flag}`);
  over ||= total > budget;
}
process.exit(over ? 1 : 0);
