// How one message of a chat looks in the terminal: a header (sender, time, and the message's id for
// `pincer trace`, quiet), then the text: an assistant's Markdown laid out, what a person typed as typed.
import { styleText } from 'node:util';
import type { ApiMessage } from '../api-client.js';
import { terminalText } from '../terminal-text.js';

export interface MessageViewOptions {
  colors: boolean;
  /** Markdown to terminal text. */
  markdown: (text: string) => string;
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const dayKey = new Intl.DateTimeFormat('sv-SE', { year: 'numeric', month: '2-digit', day: '2-digit' });

export class MessageView {
  readonly #options: MessageViewOptions;

  constructor(options: MessageViewOptions) {
    this.#options = options;
  }

  /** A styled piece of text, plain without colours. */
  style(format: Parameters<typeof styleText>[0], text: string): string {
    return this.#options.colors ? styleText(format, text) : text;
  }

  /** The message as a block of lines; `sentBy` names this terminal's own messages ("you"). */
  render(m: ApiMessage, sentBy?: string): string {
    // The text and the sender's name are the chat's (or a sandbox's): never control sequences on this terminal.
    const sender = this.style(['bold', m.fromAssistant ? 'cyan' : 'green'], terminalText(sentBy ?? m.sender));
    const header = `${sender}  ${this.style('dim', `${this.#time(m.time)}  #${m.id}`)}`;
    const text = terminalText(m.text);
    const body = m.fromAssistant ? this.#options.markdown(text) : text;
    return `\n${header}\n${body}`;
  }

  /** `14:02` today, `Dec 5 14:02` before. */
  #time(iso: string): string {
    const at = new Date(iso);
    return dayKey.format(at) === dayKey.format(new Date()) ? clock.format(at) : `${day.format(at)} ${clock.format(at)}`;
  }
}
