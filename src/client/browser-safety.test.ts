// The client must bundle for browsers as it is: every module it loads at
// run time (type-only imports vanish) is a relative .ts file of this
// repository, none is a node: built-in or a package, and none touches
// Node-only globals.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// Static imports and re-exports (`… from '…'`, `import '…'`) and dynamic `import('…')`.
const SPECIFIER = /^\s*(?:(?:import|export)\b[^;]*?\bfrom|import)\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/gm;
const NODE_GLOBALS = /\b(?:process|Buffer|require|__dirname|__filename|setImmediate)\b/;

/** Every module `entry` loads at run time, with the specifiers each one uses. */
function runtimeGraph(entry: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (graph.has(file)) continue;
    const specifiers = specifiersOf(readFileSync(file, 'utf8'));
    graph.set(file, specifiers);
    for (const specifier of specifiers) if (specifier.startsWith('.')) pending.push(resolve(dirname(file), specifier));
  }
  return graph;
}

describe('the client in a browser', () => {
  const graph = runtimeGraph(resolve(repoRoot, 'src/client/index.ts'));

  it('loads only relative .ts modules: no node: built-in, no package', () => {
    const outside = [...graph].flatMap(([file, specifiers]) =>
      specifiers.filter((specifier) => !specifier.startsWith('.') || !specifier.endsWith('.ts')).map((specifier) => `${relative(repoRoot, file)} imports ${specifier}`),
    );
    assert.deepEqual(outside, []);
    assert.ok(graph.size >= 5, `walked the graph (${graph.size} modules)`);
  });

  it('uses no Node-only global (process, Buffer, require…) in any module it loads', () => {
    const offenders = [...graph.keys()]
      .filter((file) => NODE_GLOBALS.test(stripComments(stripTypeScriptTypes(readFileSync(file, 'utf8')))))
      .map((file) => relative(repoRoot, file));
    assert.deepEqual(offenders, []);
  });

  it('would notice a node: import, since the check reads real specifiers', () => {
    const source = "import type { X } from 'node:fs';\nimport {\n  y,\n} from 'node:crypto';\n// import { w } from 'node:os';\nconst z = await import('./z.ts');\nconst s = '\"from\" must be \\'end\\'';";
    assert.deepEqual(specifiersOf(source), ['node:crypto', './z.ts']);
  });
});

/** The modules a TypeScript file loads at run time: type-only imports are stripped first, comments ignored. */
function specifiersOf(source: string): string[] {
  return [...stripComments(stripTypeScriptTypes(source)).matchAll(SPECIFIER)].map((match) => (match[1] ?? match[2])!);
}

function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}
