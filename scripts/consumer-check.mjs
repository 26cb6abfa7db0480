#!/usr/bin/env node
// Consumer check: what a user of the published package gets. Packs the package (prepack builds
// dist/), checks the tarball holds only what a user needs, installs it into a fresh project (the
// npm registry is the only network used), and there
//   (a) imports it from plain Node ESM and generates on the embedded model, and require()s it
//       from CommonJS (Node's require of ES modules, 20.19 and later),
//   (b) type-checks a typed consumer file with strict + module nodenext,
//   (c) runs `npx omni-worker generate` from a folder below the project.
// Usage: node scripts/consumer-check.mjs [--node 22,24]   (--node: (a) again on those Node
// lines, from the npm `node` package). Prints the tarball's size; exits non-zero on any failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const here = fileURLToPath(new URL('./consumer/', import.meta.url));
const nodeLines = (process.argv.find((a) => a.startsWith('--node='))?.slice(7) ??
  (process.argv.includes('--node') ? process.argv[process.argv.indexOf('--node') + 1] : '')).split(',').filter(Boolean);

// onnxruntime-node's postinstall downloads CUDA files on linux-x64 (npm before 11 runs it).
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_update_notifier: 'false' };
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
const step = (what) => console.log(`consumer-check: ${what}`);

const work = mkdtempSync(join(tmpdir(), 'omni-consumer-'));
try {
  step('npm pack');
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], root).replace(/^[^[]*/s, ''));
  const stray = packed.files.map((f) => f.path).filter((p) => /^(test|examples|bench|python|scripts|core|plugins|cli|rewards\/.*\.ts$)|\.test\.|fixtures|results/.test(p));
  if (stray.length) throw new Error(`the tarball carries files a user does not need: ${stray.join(', ')}`);
  step(`tarball ${packed.filename}: ${(packed.size / 1e6).toFixed(1)} MB packed, ${(packed.unpackedSize / 1e6).toFixed(1)} MB unpacked, ${packed.entryCount} files`);

  const project = join(work, 'project');
  mkdirSync(project);
  for (const f of readdirSync(here)) copyFileSync(join(here, f), join(project, f));
  // Recent npm runs no dependency install script unless allowed: deny the two (README), so that
  // install has nothing to warn about.
  writeFileSync(join(project, 'package.json'), JSON.stringify({
    name: 'omni-worker-consumer', private: true, type: 'module', allowScripts: { 'onnxruntime-node': false, protobufjs: false },
  }, null, 2));
  const typesNode = JSON.parse(readFileSync(join(root, 'node_modules/@types/node/package.json'), 'utf8')).version;
  step(`npm install the tarball (+ @types/node@${typesNode} for the typed consumer)`);
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', join(work, packed.filename), `@types/node@${typesNode}`], { cwd: project, env, encoding: 'utf8' });
  const warnings = `${install.stdout}${install.stderr}`.split('\n').filter((l) => /\bwarn|ERR!/i.test(l));
  if (install.status !== 0 || warnings.length) throw new Error(`npm install of the tarball: exit ${install.status}\n${warnings.join('\n') || install.stderr}`);

  step('(a) plain Node ESM');
  process.stdout.write(run(process.execPath, ['generate.mjs'], project));
  step('(a) require() from CommonJS');
  process.stdout.write(run(process.execPath, ['require.cjs'], project));
  for (const line of nodeLines) {
    step(`(a) on Node ${line} (npm package node@${line})`);
    process.stdout.write(run('npx', ['--yes', '-p', `node@${line}`, '--', 'node', 'generate.mjs'], project));
  }

  step('(b) tsc --noEmit, strict, module nodenext');
  run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);

  step('(c) npx omni-worker generate, from a folder below the project');
  const elsewhere = join(project, 'runs', 'today');
  mkdirSync(elsewhere, { recursive: true });
  process.stdout.write(run('npx', ['--no-install', 'omni-worker', 'generate', '--prompt', 'a green triangle', '--num-images', '2', '--steps', '2', '--out', 'out'], elsewhere));
  const written = readdirSync(join(elsewhere, 'out')).sort();
  if (!written.includes('grid.png') || !written.includes('rollout.safetensors')) throw new Error(`npx omni-worker generate wrote ${written.join(', ')}`);
  step('passed');
} finally {
  rmSync(work, { recursive: true, force: true });
}
