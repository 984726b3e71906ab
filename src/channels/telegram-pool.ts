// Sub-agents on Telegram post through a pool of extra bots (TELEGRAM_POOL_TOKENS): a sender keeps the bot it was
// given in a chat (kept in the store), and a bot is renamed to the sender's role with setMyName only when it is
// given a name it does not carry. A bot has one name everywhere, so a role takes the bot that already carries its
// name; a new name goes to the bot holding the fewest assignments. Telegram limits renames hard (a 429 with a long
// retry_after): until then, and for a bot that is not in the chat, the main bot posts with the name in front.
// Pool bots only send: they never ask for updates (the main bot receives everything).
import { Api, GrammyError } from 'grammy';
import type { Logger } from '../log.js';
import { describeError, retryAfterMs } from './telegram-errors.js';

/** Where each chat's senders' bots are kept (pincer's store). */
export interface PoolAssignments {
  botOf(chatId: string, sender: string): number | undefined;
  assignmentCounts(): Map<number, number>;
  assign(chatId: string, sender: string, botId: number): void;
}

export interface PoolBot {
  readonly id: number;
  readonly username: string;
  readonly api: Api;
  /** For cutting it out of error texts; never logged. */
  readonly token: string;
  /** The name it shows now (getMe's first name, then what pincer set). */
  name: string;
}

/** Telegram's bot names: 1–64 characters (setMyName). */
const MAX_NAME = 64;

export class TelegramPool {
  readonly #tokens: string[];
  readonly #apiRoot: string;
  readonly #store: PoolAssignments;
  readonly #log: Logger;
  readonly #bots = new Map<string, PoolBot>();
  /** Tokens Telegram refused (revoked, malformed): not asked again. */
  readonly #refused = new Set<string>();
  /** `chat/bot` pairs where the bot is not a member: the main bot posts there instead. */
  readonly #absent = new Set<string>();
  #renamesBlockedUntil = 0;

  constructor(tokens: string[], apiRoot: string, store: PoolAssignments, log: Logger) {
    this.#tokens = tokens;
    this.#apiRoot = apiRoot;
    this.#store = store;
    this.#log = log;
  }

  /** The pool bot that posts as `sender` in `chatId` (renamed first if need be), or undefined: the main bot posts. */
  async botFor(chatId: string, sender: string): Promise<PoolBot | undefined> {
    const name = sender.slice(0, MAX_NAME);
    const bots = await this.#known();
    if (bots.length === 0) return undefined;
    const assigned = this.#store.botOf(chatId, name);
    let bot = bots.find((b) => b.id === assigned && b.name === name) ?? bots.find((b) => b.name === name);
    if (!bot) {
      if (Date.now() < this.#renamesBlockedUntil) return undefined;
      const counts = this.#store.assignmentCounts();
      const [fewest] = [...bots].sort((a, b) => (counts.get(a.id) ?? 0) - (counts.get(b.id) ?? 0));
      if (!fewest || !(await this.#rename(fewest, name))) return undefined;
      bot = fewest;
    }
    if (assigned !== bot.id) this.#store.assign(chatId, name, bot.id);
    return this.#absent.has(`${chatId}/${bot.id}`) ? undefined : bot;
  }

  /** Telegram said the bot cannot post in the chat (not a member, removed): the main bot posts there from now on. */
  notInChat(chatId: string, bot: PoolBot, why: string): void {
    const key = `${chatId}/${bot.id}`;
    if (this.#absent.has(key)) return;
    this.#absent.add(key);
    this.#log.warn(
      { chatId, bot: bot.username, why },
      'telegram: a pool bot cannot post in this chat (add it to the group): its sub-agent posts through the main bot, with its name in front',
    );
  }

  async #rename(bot: PoolBot, name: string): Promise<boolean> {
    try {
      await bot.api.setMyName(name);
    } catch (err) {
      const wait = retryAfterMs(err);
      if (wait !== undefined) this.#renamesBlockedUntil = Date.now() + wait;
      this.#log.warn(
        { bot: bot.username, name, error: describeError(err, bot.token) },
        'telegram: could not rename a pool bot: this sub-agent posts through the main bot, with its name in front',
      );
      return false;
    }
    this.#log.info({ bot: bot.username, from: bot.name, to: name }, 'telegram: pool bot renamed for a sub-agent');
    bot.name = name;
    return true;
  }

  /** The pool bots Telegram knows, each asked getMe once (a network failure is asked again next time). */
  async #known(): Promise<PoolBot[]> {
    for (const token of this.#tokens) {
      if (this.#bots.has(token) || this.#refused.has(token)) continue;
      const api = new Api(token, { apiRoot: this.#apiRoot, timeoutSeconds: 30 });
      try {
        const me = await api.getMe();
        this.#bots.set(token, { id: me.id, username: me.username, api, token, name: me.first_name });
      } catch (err) {
        if (err instanceof GrammyError && (err.error_code === 401 || err.error_code === 404)) this.#refused.add(token);
        this.#log.warn({ error: describeError(err, token) }, 'telegram: a pool bot token did not work (getMe)');
      }
    }
    return [...this.#bots.values()];
  }
}
