// JPEG compressibility reward, Flow-GRPO's: minus the JPEG size in kB (1 kB = 1000 bytes) divided
// by 500, of each image saved by PIL at quality 95. PIL's defaults are libjpeg's baseline with
// 4:2:0 chroma and standard Huffman tables; sharp (libvips on libjpeg-turbo's API) writes the same
// entropy-coded bytes when told not to optimise the tables, and leaves out the 18-byte JFIF APP0
// segment PIL writes, so PIL's size is sharp's + 18 (test/fixtures/jpeg-pil.safetensors holds PIL's
// byte counts; python/omni_ref/jpeg_sizes.py makes it).
import sharp from 'sharp';
import { checkImages, type ImageBatch } from './images.ts';

/** The JFIF APP0 segment (marker, length 16, "JFIF\0", version, density) PIL writes and libvips does not. */
const JFIF_APP0_BYTES = 18;
/** Flow-GRPO's scale: kilobytes / 500. */
const KB_PER_UNIT = 500;

/** Byte count of each image of a uint8 [B, 3, H, W] batch as PIL saves it (`format="JPEG", quality`). */
export async function jpegSizes(images: ImageBatch, quality = 95): Promise<Float64Array> {
  const { batch, height, width } = checkImages(images, 'jpegCompressibility');
  if (!(Number.isInteger(quality) && quality >= 1 && quality <= 100)) {
    throw new RangeError(`jpegCompressibility: quality must be an integer in [1, 100], got ${quality}`);
  }
  const plane = height * width;
  const encode = (b: number) => {
    const base = b * 3 * plane;
    const hwc = Buffer.allocUnsafe(plane * 3);
    for (let p = 0; p < plane; p++) {
      hwc[3 * p] = images.data[base + p]!;
      hwc[3 * p + 1] = images.data[base + plane + p]!;
      hwc[3 * p + 2] = images.data[base + 2 * plane + p]!;
    }
    return sharp(hwc, { raw: { width, height, channels: 3 } })
      .jpeg({ quality, chromaSubsampling: '4:2:0', optimiseCoding: false, progressive: false, mozjpeg: false })
      .toBuffer();
  };
  // sharp encodes on libuv's thread pool: the images of a batch run in parallel.
  const encoded = await Promise.all(Array.from({ length: batch }, (_, b) => encode(b)));
  return Float64Array.from(encoded, (buf) => buf.length + JFIF_APP0_BYTES);
}

/** Reward per image: -(JPEG size in kB) / 500, as Flow-GRPO's `jpeg_compressibility`. Flatter images score higher. */
export async function jpegCompressibility(images: ImageBatch, quality = 95): Promise<Float32Array> {
  const sizes = await jpegSizes(images, quality);
  return Float32Array.from(sizes, (bytes) => -(bytes / 1000) / KB_PER_UNIT);
}
