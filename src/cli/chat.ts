// `pincer chat [name]`: a terminal conversation in local:<name> with the running assistant. It opens with the
// chat's recent history, shows every message of the chat as it comes (from the web page and other terminals
// too) with its id, the assistant's Markdown laid out, and one status line while the assistant works.
import { createInterface } from 'node:readline';
import { loadConfig } from '../config.js';
import { ApiClient, type ApiMessage, type MessagePage } from './api-client.js';
import { helpText, parseLine } from './chat/commands.js';
import { ChatConnection } from './chat/connection.js';
import { markdownRenderer } from './chat/markdown.js';
import { MessageView } from './chat/message-view.js';
import { Outbox } from './chat/outbox.js';
import { Screen } from './chat/screen.js';
import { StatusLine } from './chat/status-line.js';
import { traceText } from './chat/trace-view.js';
import { typingHinter } from './chat/typing-hint.js';

/** Messages shown when the chat opens. */
export const HISTORY = 10;
/** Replies wider than this read badly even on a wide terminal. */
const MAX_TEXT_WIDTH = 100;

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
  let history: MessagePage;
  try {
    history = await client.latest(chat, HISTORY);
  } catch (err) {
    process.stderr.write(`Cannot open ${chat}: ${(err as Error).message}. Is pincer running (npm start)?\n`);
    return 1;
  }

  const out = process.stdout;
  // A pipe gets the text as written; a terminal gets Markdown laid out, in colour unless NO_COLOR or TERM=dumb.
  const interactive = out.isTTY === true && process.env.TERM !== 'dumb';
  const colors = interactive && !process.env.NO_COLOR;
  const keyboard = process.stdin.isTTY === true;
  const view = new MessageView({
    colors,
    markdown: out.isTTY ? await markdownRenderer({ width: Math.min(out.columns || 80, MAX_TEXT_WIDTH), colors }) : (text) => text,
  });
  // Line editing wherever there is a keyboard and a terminal; the status line and redraws need more than TERM=dumb.
  const rl = createInterface({ input: process.stdin, output: out, prompt: `${name}> `, terminal: keyboard && out.isTTY === true });
  const screen = new Screen(rl, out, interactive && keyboard, (text) => view.style('dim', text));
  let assistant = config.assistantName;
  const status = new StatusLine(assistant, (text) => screen.status(text));
  /** What `/trace` without an id shows: the last message someone (not the assistant) wrote here. */
  let lastQuestion: string | null = null;

  const show = (m: ApiMessage, sentBy?: string) => {
    screen.print(view.render(m, sentBy));
    if (m.fromAssistant) status.replied();
    else lastQuestion = m.id;
  };

  screen.print(
    `${view.style('bold', name)}${view.style('dim', ` · ${chat} with ${assistant} · last ${HISTORY} messages · /help for commands`)}`,
  );
  if (history.messages.length === 0) screen.print(view.style('dim', 'No messages yet.'));
  for (const m of history.messages) show(m);

  let outbox: Outbox | undefined;
  const connection = new ChatConnection(client, chat, history.cursor, {
    messages: (batch) => {
      for (const m of batch) if (!outbox?.sentIds.has(m.id)) show(m);
    },
    typing: (working) => status.typing(working),
    activity: (stage, detail) => status.activity(stage, detail),
    assistantName: (named) => {
      assistant = named;
      status.assistant = named;
    },
    lost: (reason) => {
      // Whether the assistant still works is unknown until the connection is back (which re-reads it).
      status.typing(false);
      screen.print(view.style('yellow', `connection lost (${reason}), retrying…`));
    },
    back: () => {
      screen.print(view.style('green', 'reconnected'));
      void outbox?.flush();
    },
  });
  outbox = new Outbox(client, chat, connection, {
    sent: (text, id) => show({ id, chat, sender: 'You', text, time: new Date().toISOString(), fromAssistant: false }, 'You'),
    held: (text) =>
      screen.print(
        `${view.style(['bold', 'yellow'], 'not sent yet')} ${view.style('dim', '(pincer is unreachable; sent when the connection is back):')} ${text}`,
      ),
    refused: (text, reason) => screen.print(`${view.style(['bold', 'red'], 'not sent')} ${view.style('dim', `(${reason}):`)} ${text}`),
  });
  connection.start();

  // On a terminal readline emits keypress events on stdin: the first key of a line tells pincer someone types,
  // so the chat's agent can start before the line is sent. A pipe has no keys and sends no hints.
  if (keyboard) {
    const onKeypress = typingHinter(() => void client.typing(chat).catch(() => undefined));
    process.stdin.on('keypress', onKeypress);
    rl.once('close', () => process.stdin.off('keypress', onKeypress));
  }
  // Ctrl-C clears a half-typed line, and leaves on an empty one.
  rl.on('SIGINT', () => {
    if (rl.line === '') rl.close();
    else {
      rl.write(null, { ctrl: true, name: 'e' });
      rl.write(null, { ctrl: true, name: 'u' });
    }
  });

  /** Sends still in flight when input ends (a pipe) finish before the process exits. */
  const sending = new Set<Promise<void>>();
  rl.on('line', (line) => {
    screen.dropEcho(line);
    const command = parseLine(line);
    if (command?.kind === 'quit') {
      rl.close();
      return;
    }
    if (command?.kind === 'help') screen.print(helpText(assistant));
    else if (command?.kind === 'trace') {
      const id = command.id ?? lastQuestion;
      if (id === null) screen.print('Nothing to trace yet: send a message first, or name one (/trace 12).');
      else void traceText(client, id).then(screen.print.bind(screen), (err: Error) => screen.print(`trace of #${id}: ${err.message}`));
    } else if (command?.kind === 'message') {
      const send = (outbox as Outbox).send(command.text).finally(() => sending.delete(send));
      sending.add(send);
    }
    if (keyboard) rl.prompt();
  });

  if (keyboard) screen.open();
  await new Promise<void>((resolve) => rl.once('close', resolve));
  await Promise.all(sending);
  screen.status(null);
  connection.stop();
  if (keyboard) out.write('\n');
  const unsent = outbox.waiting;
  if (unsent.length === 0) return 0;
  process.stderr.write(`${unsent.length} message(s) not sent, pincer was unreachable:\n${unsent.map((t) => `  ${t}`).join('\n')}\n`);
  return 1;
}
