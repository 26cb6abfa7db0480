// The --out folder of `omni-worker generate`, checked (and created) before the model loads, so a
// bad folder costs no rollout: it must be a writable directory on a real filesystem, and it must
// not hold an earlier run's outputs unless --overwrite says to replace them.
import { constants } from 'node:fs';
import { mkdir, open, readdir, rm, stat, statfs, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/** Kernel pseudo-filesystems (statfs f_type): files there are kernel interfaces, not storage. */
const PSEUDO_FS: Record<number, string> = {
  0x9fa0: 'proc', 0x62656572: 'sysfs', 0x1cd1: 'devpts', 0x27e0eb: 'cgroup', 0x63677270: 'cgroup2',
  0x64626720: 'debugfs', 0x74726163: 'tracefs', 0x73636673: 'securityfs', 0x62656570: 'configfs',
  0x6165676c: 'pstore', 0xcafe4a11: 'bpf', 0xde5e81e4: 'efivarfs', 0x65735543: 'fusectl',
  0x19800202: 'mqueue', 0x42494e4d: 'binfmt_misc', 0xf97cff8c: 'selinuxfs',
};

/** Names this command writes: image-NNN-seedK.png, grid.png, rollout.safetensors. */
const OUTPUT_NAME = /^(image-\d{3,}-seed\d+\.png|grid\.png|rollout\.safetensors)$/;

export interface OutDir {
  path: string;
  /** An earlier run's outputs in the folder, removed by clearStale() (only with --overwrite). */
  stale: string[];
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** The nearest existing folder at or above `path` (where a new folder would be made). */
async function nearestExisting(path: string): Promise<string> {
  for (let p = path; ; p = dirname(p)) {
    try {
      await stat(p);
      return p;
    } catch (e) {
      if (errno(e) !== 'ENOENT' || dirname(p) === p) throw new Error(`--out ${path}: cannot use the path (${errno(e) ?? (e as Error).message})`);
    }
  }
}

async function refusePseudoFs(path: string, out: string): Promise<void> {
  const fs = PSEUDO_FS[Number((await statfs(path)).type)];
  if (fs) throw new Error(`--out ${out} is on the kernel's ${fs} filesystem, not storage; choose a folder on a disk`);
}

/** Checks the folder, creates it when absent, and proves it writable with a probe file. */
export async function prepareOutDir(out: string, overwrite: boolean): Promise<OutDir> {
  if (out.trim() === '') throw new Error('--out must name a folder (got an empty string)');
  const path = resolve(out);
  const existing = await nearestExisting(path);
  if (existing === path && !(await stat(path)).isDirectory()) throw new Error(`--out ${out} exists and is not a folder`);
  await refusePseudoFs(existing, out);
  if (existing !== path) {
    try {
      await mkdir(path, { recursive: true });
    } catch (e) {
      throw new Error(`--out ${out}: cannot create the folder (${errno(e) ?? (e as Error).message})`);
    }
  }
  const probe = join(path, `.omni-worker-probe-${process.pid}`);
  try {
    await (await open(probe, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY)).close();
    await unlink(probe);
  } catch (e) {
    throw new Error(`--out ${out} is not writable (${errno(e) ?? (e as Error).message})`);
  }
  const ours = (await readdir(path, { withFileTypes: true })).filter((d) => OUTPUT_NAME.test(d.name));
  const blocking = ours.find((d) => !d.isFile());
  if (blocking) throw new Error(`--out ${out}: ${blocking.name} is in the way and is not a file (an output of this name cannot be written)`);
  const stale = ours.map((d) => d.name).sort();
  if (stale.length && !overwrite) {
    const shown = stale.slice(0, 4).join(', ') + (stale.length > 4 ? `, ... (${stale.length} files)` : '');
    throw new Error(`--out ${out} holds an earlier run's outputs (${shown}); pass --overwrite to replace them, or choose another folder`);
  }
  return { path, stale };
}

/** Removes the earlier run's outputs, so the folder holds this run's alone (called once the rollout succeeded). */
export async function clearStale(dir: OutDir): Promise<void> {
  for (const name of dir.stale) await rm(join(dir.path, name), { force: true });
}
