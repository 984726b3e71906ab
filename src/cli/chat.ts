// `pincer chat [name]`: a terminal conversation in local:<name> with the running assistant.
import { createInterface } from 'node:readline/promises';
import { loadConfig } from '../config.js';
import { ApiClient, type ApiMessage } from './api-client.js';

/** At most one typing hint this often: one starts the chat's agent, which then stays up for a while anyway. */
export const TYPING_HINT_MS = 10_000;

/** What readline reports of a key (node:readline's keypress event). */
export interface Keypress {
  name?: string;
  ctrl?: boolean;
  meta?: boolean;
}

/** A character someone types, not a control key (Backspace, Escape and the sequences that start with it). */
function printable(str: string | undefined): boolean {
  const code = str?.codePointAt(0);
  return code !== undefined && code >= 0x20 && code !== 0x7f;
}

/**
 * A keypress handler that calls `hint` when the first character of a line is typed, at most once per
 * TYPING_HINT_MS: Enter ends the line, control keys (arrows, Ctrl+…) are not typing.
 */
export function typingHinter(hint: () => void, now: () => number = Date.now): (str: string | undefined, key: Keypress | undefined) => void {
  let lineStarted = false;
  let last = Number.NEGATIVE_INFINITY;
  return (str, key) => {
    if (key?.name === 'return' || key?.name === 'enter') {
      lineStarted = false;
      return;
    }
    if (lineStarted || key?.ctrl || key?.meta || !printable(str)) return;
    lineStarted = true;
    if (now() - last < TYPING_HINT_MS) return;
    last = now();
    hint();
  };
}

export async function runChat(name: string): Promise<number> {
  const config = loadConfig(process.env, process.cwd());
  const chat = `local:${name}`;
  let client: ApiClient;
  try {
    client = new ApiClient(config);
  } catch {
    process.stderr.write(`No API token found in ${config.home}/token: start pincer first (npm start).\n`);
    return 1;
  }
  let cursor: string;
  try {
    cursor = (await client.poll(chat, '0', 0, false)).cursor;
  } catch (err) {
    process.stderr.write(`Cannot reach pincer at ${client.base}: ${(err as Error).message}. Is it running (npm start)?\n`);
    return 1;
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: `${name}> ` });
  const show = (line: string) => {
    process.stdout.write(`\r\x1b[K${line}\n`);
    rl.prompt(true);
  };
  const render = (m: ApiMessage) => (m.fromAssistant ? `${m.sender}: ${m.text}` : `${m.sender} (${m.time.slice(11, 16)}): ${m.text}`);

  // On a terminal readline emits keypress events on stdin: the first key of a line tells pincer someone types,
  // so the chat's agent can start before the line is sent. A pipe has no keys and sends no hints.
  if (process.stdin.isTTY) {
    const onKeypress = typingHinter(() => void client.typing(chat).catch(() => undefined));
    process.stdin.on('keypress', onKeypress);
    rl.once('close', () => process.stdin.off('keypress', onKeypress));
  }

  let open = true;
  let typing = false;
  const follow = async () => {
    while (open) {
      try {
        const page = await client.poll(chat, cursor, 25, typing);
        cursor = page.cursor;
        for (const m of page.messages) if (m.fromAssistant) show(render(m));
        if (page.typing !== typing) {
          typing = page.typing;
          if (typing) show(`${config.assistantName} is typing…`);
        }
      } catch (err) {
        if (!open) return;
        show(`(connection lost: ${(err as Error).message}; retrying)`);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  };
  void follow();
  rl.prompt();
  for await (const line of rl) {
    const text = line.trim();
    if (text === '/quit' || text === '/exit') break;
    if (text) {
      try {
        await client.send(chat, text);
      } catch (err) {
        show(`(not sent: ${(err as Error).message})`);
      }
    }
    rl.prompt();
  }
  open = false;
  rl.close();
  return 0;
}
