// What travels on the fleet's subjects: parts as JSON, rollouts as safetensors (the house format,
// readable from Python), control calls and answers as V8 serialization (typed arrays intact).
// A payload over maxMessageBytes goes to the object store; the message carries its name.
import { deserialize, serialize } from 'node:v8';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { Fleet } from './connection.ts';
import { H } from './names.ts';

export interface Packed {
  body: Uint8Array;
  headers: MsgHdrs;
}

/** `bytes` as a message body, or in the object store under `name` when larger than `max`. */
export async function pack(fleet: Fleet, name: string, bytes: Uint8Array, max: number, headers: MsgHdrs = natsHeaders()): Promise<Packed> {
  if (bytes.byteLength <= max) return { body: bytes, headers };
  await fleet.putObject(name, bytes);
  headers.set(H.object, name);
  return { body: new Uint8Array(0), headers };
}

/** A message's payload, read from the object store when it names an object (deleted after). */
export async function unpack(fleet: Fleet, data: Uint8Array, headers: MsgHdrs | undefined, keep = false): Promise<Uint8Array> {
  const name = headers?.get(H.object);
  if (!name) return data;
  const bytes = await fleet.blobs.getBlob(name);
  if (!bytes) throw new Error(`fleet: object ${name} named by a message is missing from the object store`);
  if (!keep) await fleet.blobs.delete(name).catch(() => undefined);
  return bytes;
}

export const encodeValue = (v: unknown): Uint8Array => new Uint8Array(serialize(v));
export const decodeValue = <T = unknown>(b: Uint8Array): T => deserialize(b) as T;

/** A call for workers (control subject or one worker's subject). */
export interface ControlCall {
  method: string;
  args: unknown[];
}

/** One worker's answer to a control call. */
export type ControlAnswer =
  | { worker: string; ok: true; value: unknown; weightsVersion: number }
  | { worker: string; ok: false; error: string };
