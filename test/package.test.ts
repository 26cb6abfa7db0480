// The published package as npm packs it (without building: dist/ is the consumer check's job),
// and the helper threads' boot files choosing compiled code when it sits beside them.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EMBEDDED_MODEL_DIR } from '../index.ts';
import { DEFAULT_REWARDS_DIR } from '../rewards/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('the package', () => {
  const packed = (): string[] => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return (JSON.parse(out.replace(/^[^[]*/s, '')) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
  };

  it('ships the files the code finds at run time, and no tests, sources, fixtures, Python or bench results', () => {
    const files = packed();
    const needed = [
      ...readdirSync(EMBEDDED_MODEL_DIR).map((f) => relative(root, join(EMBEDDED_MODEL_DIR, f))),
      ...['scene-classifier.onnx', 'scene-classifier.json'].map((f) => relative(root, join(DEFAULT_REWARDS_DIR, f))),
      'bin/omni-worker.js', 'LICENSE', 'README.md', 'package.json',
    ];
    expect(needed.filter((f) => !files.includes(f))).toEqual([]);
    const stray = files.filter((f) => !f.startsWith('dist/') && !needed.includes(f) && !/^(docs|rewards)\/[\w-]+\.md$|^models\/shapes-dit\//.test(f));
    expect(stray).toEqual([]);
  });
});

// Each helper thread's boot file, with the compiled entry it must choose when one sits beside it.
const BOOTS = [['the inference thread', 'core/executor/thread-boot.mjs', 'thread-entry.js'], ['the weights assembler thread', 'server/assembler-boot.mjs', 'assembler-entry.js']];

describe.each(BOOTS)('%s boot file', (_, boot, entry) => {
  it(`runs the compiled ${entry} beside it, without tsx`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omni-boot-'));
    try {
      // The package's layout: the boot file and the shared loader it imports.
      for (const f of [boot, 'core/executor/boot-entry.mjs']) {
        mkdirSync(dirname(join(dir, f)), { recursive: true });
        copyFileSync(fileURLToPath(new URL(`../${f}`, import.meta.url)), join(dir, f));
      }
      writeFileSync(join(dir, dirname(boot), entry), "import { parentPort } from 'node:worker_threads';\nparentPort.postMessage('compiled entry');\n");
      const thread = new Worker(join(dir, boot));
      const message = await new Promise((resolve, reject) => { thread.once('message', resolve); thread.once('error', reject); });
      await thread.terminate();
      expect(message).toBe('compiled entry');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
