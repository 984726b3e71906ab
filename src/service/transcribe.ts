// Voice notes to text: the host (never a sandbox) sends the audio to an OpenAI-compatible
// `/audio/transcriptions` endpoint. Every failure becomes a short reason the agent is told instead; the key
// never appears in one.
import { z } from 'zod';
import { readBounded } from '../channels/bounded-body.js';
import { oneLine, unreachableReason } from '../remote-reason.js';

export interface TranscriptionSettings {
  /** The API's base URL (`https://api.openai.com/v1`); the request goes to `<url>/audio/transcriptions`. */
  url: string;
  /** Sent as a bearer token; a local server (whisper.cpp's) may need none. */
  key: string | undefined;
  model: string;
  /** Default 60 s. */
  timeoutMs?: number;
  /** The largest answer read; default 1 MB. */
  maxAnswerBytes?: number;
}

export type Transcription = { ok: true; text: string } | { ok: false; reason: string };

/** Never throws: a failure is `{ ok: false, reason }`. */
export type Transcribe = (audio: Buffer, name: string, mime: string | undefined) => Promise<Transcription>;

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_ANSWER = 1024 * 1024;
/** A transcript longer than this is cut: the message text stays a reasonable size. */
export const MAX_TRANSCRIPT_CHARS = 20_000;

const answerSchema = z.object({ text: z.string() });
const errorSchema = z.object({ error: z.object({ message: z.string() }) });

/** `<base>/audio/transcriptions`; a URL that already ends so is taken as is. */
export function transcriptionEndpoint(base: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith('/audio/transcriptions') ? trimmed : `${trimmed}/audio/transcriptions`;
}

function statusReason(status: number, body: Buffer | undefined): string {
  if (status === 401 || status === 403) return `the transcription service answered ${status}: check PINCER_TRANSCRIBE_KEY`;
  let said = '';
  try {
    const parsed = errorSchema.safeParse(JSON.parse(body?.toString('utf8') ?? ''));
    if (parsed.success) said = `: ${oneLine(parsed.data.error.message)}`;
  } catch {
    // Not JSON: the status says enough.
  }
  const hint = status === 404 ? ' (check PINCER_TRANSCRIBE_URL)' : status === 413 ? ' (the file is too large for it)' : '';
  return `the transcription service answered ${status}${hint}${said}`;
}

/** A transcriber for these settings. */
export function transcriber(settings: TranscriptionSettings): Transcribe {
  const endpoint = transcriptionEndpoint(settings.url);
  const timeoutMs = settings.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxAnswer = settings.maxAnswerBytes ?? DEFAULT_MAX_ANSWER;
  const key = settings.key;
  // Whatever a service echoes back, a reason never carries the key.
  const scrub = (reason: string) => (key ? reason.split(key).join('<key>') : reason);

  const attempt = async (audio: Buffer, name: string, mime: string | undefined): Promise<Transcription> => {
    const form = new FormData();
    form.set('file', new Blob([audio], { type: mime ?? 'application/octet-stream' }), name);
    form.set('model', settings.model);
    form.set('response_format', 'json');
    // One signal bounds the whole exchange: connecting, waiting for the answer and reading it.
    const signal = AbortSignal.timeout(timeoutMs);
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers: { accept: 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: form,
        signal,
        redirect: 'error',
      });
    } catch (err) {
      return { ok: false, reason: unreachableReason('the transcription service', err, timeoutMs) };
    }
    let body: Buffer | undefined;
    try {
      body = await readBounded(res, res.ok ? maxAnswer : 64 * 1024);
    } catch (err) {
      return { ok: false, reason: unreachableReason('the transcription service', err, timeoutMs) };
    }
    if (!res.ok) return { ok: false, reason: statusReason(res.status, body) };
    if (body === undefined)
      return { ok: false, reason: `the transcription service's answer was larger than ${Math.round(maxAnswer / 1024)} KB` };
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return { ok: false, reason: 'the transcription service answered with something that is not JSON' };
    }
    const answer = answerSchema.safeParse(json);
    if (!answer.success) return { ok: false, reason: 'the transcription service answered without a "text" field' };
    return { ok: true, text: answer.data.text };
  };

  return async (audio, name, mime) => {
    try {
      const result = await attempt(audio, name, mime);
      return result.ok ? result : { ok: false, reason: scrub(result.reason) };
    } catch (err) {
      // Nothing above should throw; if something does, the message still arrives.
      return { ok: false, reason: scrub(`transcription failed: ${oneLine(err instanceof Error ? err.message : String(err))}`) };
    }
  };
}

/**
 * How long an Ogg Opus recording (the voice notes of Telegram, WhatsApp and Signal's Android app) lasts, from
 * the last page's granule position; undefined for anything else or anything implausible.
 */
export function oggOpusSeconds(data: Buffer): number | undefined {
  if (data.length < 64 || data.toString('latin1', 0, 4) !== 'OggS') return undefined;
  const head = data.indexOf('OpusHead', 0, 'latin1');
  if (head < 0 || head > 256 || head + 12 > data.length) return undefined;
  const preSkip = data.readUInt16LE(head + 10);
  // A page header is 27 bytes: its capture pattern, version, flags, then the 64-bit granule position.
  const last = data.lastIndexOf('OggS', data.length - 27, 'latin1');
  if (last <= head || data[last + 4] !== 0) return undefined;
  const granule = data.readBigInt64LE(last + 6);
  if (granule <= 0n) return undefined;
  const s = (Number(granule) - preSkip) / 48_000;
  return s >= 0 && s < 24 * 3600 ? s : undefined;
}

/** `0:07`, `12:30`, `1:02:03`. */
export function formatDuration(totalSeconds: number): string {
  const t = Math.round(totalSeconds);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const s = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/**
 * A transcript is hostile text: one line (newlines and control characters become spaces), bounded, then
 * quoted as a JSON string, so nothing in it can end the quote or pass for another bracketed line.
 */
export function quoteTranscript(text: string): string {
  const flat = text.replace(/[\p{Cc}\p{Zl}\p{Zp}\s]+/gu, ' ').trim();
  const bounded = flat.length > MAX_TRANSCRIPT_CHARS ? `${flat.slice(0, MAX_TRANSCRIPT_CHARS)}… (cut)` : flat;
  // Lone surrogates (from the answer, or the cut) have no UTF-8 form: each becomes U+FFFD.
  return JSON.stringify(bounded.replace(/\p{Cs}/gu, '\uFFFD'));
}

/** What the message text says of one audio file, transcribed or not. */
export function audioLine(file: { label: string; path: string; seconds: number | undefined }, outcome: Transcription): string {
  const head = `${file.label}${file.seconds === undefined ? '' : `, ${formatDuration(file.seconds)}`}`;
  if (outcome.ok)
    return `[${head}, ${file.path}] transcript: ${outcome.text.trim() ? quoteTranscript(outcome.text) : '(no speech recognised)'}`;
  return `[${head}: ${file.path} — not transcribed (${oneLine(outcome.reason, 300).replace(/[[\]]/g, '')}); the file is in your folder]`;
}
