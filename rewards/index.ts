export { SceneAlignmentReward, parsePrompt, scoreParsed, DEFAULT_REWARDS_DIR } from './scene-alignment.ts';
export type { SceneClassifierSpec, ParsedPrompt, PromptObject, ScoreMode, ClassifierOutput, SceneAlignmentOptions } from './scene-alignment.ts';
export { jpegCompressibility, jpegSizes } from './jpeg-compressibility.ts';
export { checkImages } from './images.ts';
export type { ImageBatch, ImageDims } from './images.ts';
