// The computeLogProbs arguments of a rollout: everything needed is in its outputs and meta.
import { type RolloutData } from '../../core/public.ts';
import type { ScoreArgs } from './score-inputs.ts';

export function scoreArgsFromRollout(rollout: RolloutData): ScoreArgs {
  const { batch, nonTensorBatch, metaInfo } = rollout;
  const need = (key: string) => {
    if (!batch[key]) throw new Error(`scoreArgsFromRollout: the rollout has no ${key} (ask capture: { latents: true })`);
    return batch[key];
  };
  const meta = (key: string) => {
    if (!(key in metaInfo)) {
      throw new Error(`scoreArgsFromRollout: meta_info.${key} is missing${key in nonTensorBatch ? ' (it differs between samples: score each setting separately)' : ''}`);
    }
    return metaInfo[key];
  };
  const sdeType = meta('sde_type');
  if (sdeType !== 'sde' && sdeType !== 'cps') throw new Error(`scoreArgsFromRollout: sde_type '${String(sdeType)}' has no log-probs`);
  return {
    allLatents: need('all_latents'),
    allTimesteps: batch.all_timesteps,
    windowStarts: nonTensorBatch.sde_window_start as number[] | undefined,
    promptEmbeds: need('prompt_embeds'),
    pooledPromptEmbeds: need('pooled_prompt_embeds'),
    negativePromptEmbeds: batch.negative_prompt_embeds,
    negativePooledPromptEmbeds: batch.negative_pooled_prompt_embeds,
    guidanceScale: meta('guidance_scale') as number,
    sdeType,
    noiseLevel: meta('noise_level') as number,
    sigmas: meta('sigmas') as number[],
  };
}
