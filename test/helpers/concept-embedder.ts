// A deterministic stand-in for an embedding model, for tests and the recall benchmark: a text becomes the sum of
// one fixed random direction per concept it names, where a concept is a word or one of a few hand-made sets of
// words meaning the same ("cabin", "cottage"). It knows nothing of language beyond that table: what it measures is
// pincer's plumbing (storing, scoping, fusing), never the quality of a real embedding model.
import { createHash } from 'node:crypto';

export const CONCEPT_DIMENSIONS = 256;

/** Words that mean the same here; the first names the concept. */
const SAME_MEANING: string[][] = [
  ['wifi', 'internet', 'wlan'],
  ['password', 'code', 'pin', 'passcode'],
  ['cabin', 'cottage', 'hut', 'chalet'],
  ['plumber', 'pipes', 'pipe', 'fixes'],
  ['number', 'phone', 'telephone', 'call'],
  ['flight', 'plane', 'fly'],
  ['lisbon', 'portugal'],
  ['leaves', 'depart', 'departs', 'departure'],
  ['garage', 'shed'],
  ['dentist', 'tooth', 'teeth'],
  ['appointment', 'see', 'visit'],
  ['holiday', 'vacation', 'trip'],
  ['budget', 'spend', 'money'],
  ['landlord', 'owner'],
  ['email', 'write', 'mail'],
  ['grandma', 'granny', 'grandmother'],
  ['allergy', 'hay', 'fever'],
  ['medicine', 'pills', 'pill', 'medication'],
];
const CONCEPT = new Map(SAME_MEANING.flatMap((words) => words.map((w) => [w, words[0] as string])));
const STOP_WORDS = new Set(
  'a an and are at the to of for in on is it we our us i me my you your what when where who how do does did can be was were with from by this that which'.split(
    ' ',
  ),
);

/** A fixed direction for a concept: its hash seeds a small generator. */
function direction(concept: string): Float32Array {
  const seed = createHash('sha256').update(concept).digest();
  let state = seed.readUInt32LE(0) || 1;
  const v = new Float32Array(CONCEPT_DIMENSIONS);
  for (let i = 0; i < v.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    v[i] = ((state >>> 0) / 0xffffffff) * 2 - 1;
  }
  return v;
}

export function conceptEmbedding(text: string): number[] {
  const sum = new Float32Array(CONCEPT_DIMENSIONS);
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  for (const word of words) {
    if (STOP_WORDS.has(word)) continue;
    const d = direction(CONCEPT.get(word) ?? word);
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (d[i] as number);
  }
  return Array.from(sum);
}
