// The weight lifecycle benchmark (issue 5): loadWeights throughput against a plain copy, adapter
// switch time, sleep/wake times and memory freed, on the embedded model and a synthetic ~1 GB one.
//   node bin/run-ts.js bench/weights.ts [--device cpu|cuda] [--reps 3] [--layers 10] [--no-thread]
import { parseArgs } from 'node:util';
import { writeResults } from './support.ts';
import { benchModels, type BenchOptions } from './weights-common.ts';
import { benchLoad } from './weights-load.ts';
import { benchLora } from './weights-lora.ts';
import { benchSleep } from './weights-sleep.ts';

const { values: args } = parseArgs({
  strict: false,
  options: { device: { type: 'string', default: 'cpu' }, reps: { type: 'string', default: '3' }, layers: { type: 'string', default: '10' }, 'no-thread': { type: 'boolean', default: false } },
});
const o: BenchOptions = { device: args.device as 'cpu' | 'cuda', reps: Number(args.reps), layers: Number(args.layers) };
const thread = !args['no-thread'];
const { embedded, synthetic } = benchModels(o);
const log = (what: string, r: unknown) => console.log(`\n## ${what}\n${JSON.stringify(r, null, 2)}`);

const results: Record<string, unknown> = { device: o.device };
results.loadEmbedded = await benchLoad(o, embedded, thread);
log('loadWeights, embedded', results.loadEmbedded);
results.loadSynthetic = await benchLoad(o, synthetic, thread);
log('loadWeights, synthetic', results.loadSynthetic);
results.lora = await benchLora(o, embedded);
log('adapter switch, embedded', results.lora);
results.sleepEmbedded = await benchSleep(o, embedded);
log('sleep/wake, embedded', results.sleepEmbedded);
results.sleepSynthetic = await benchSleep(o, synthetic, 1);
log('sleep/wake, synthetic', results.sleepSynthetic);
console.log(`\nwrote ${writeResults(`weights-${o.device}`, results)}`);
