// Word-level tokenizer of the model folder contract: [bos, words..., pad...], fixed length.
import type { TokenizerSpec } from './manifest.ts';

const WORD = /[a-z0-9]+/g;

export class WordTokenizer {
  constructor(private readonly spec: TokenizerSpec) {}

  get maxLength(): number {
    return this.spec.maxLength;
  }

  encode(text: string): BigInt64Array {
    const { maxLength, padId, unkId, bosId, vocab, lowercase } = this.spec;
    const words = (lowercase ? text.toLowerCase() : text).match(WORD) ?? [];
    const ids = new BigInt64Array(maxLength).fill(BigInt(padId));
    ids[0] = BigInt(bosId);
    for (let i = 0; i < words.length && i + 1 < maxLength; i++) {
      const id = Object.hasOwn(vocab, words[i]) ? vocab[words[i]] : unkId;
      ids[i + 1] = BigInt(id);
    }
    return ids;
  }
}
