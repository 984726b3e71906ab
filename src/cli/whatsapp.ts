// `pincer whatsapp login`: links pincer as a device of the owner's WhatsApp account (QR code or pairing code),
// keeping the login in PINCER_HOME/whatsapp-auth (0700; never mounted into a sandbox). Exits once linked.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import qrcode from 'qrcode';
import {
  bareJid,
  errorCode,
  openWhatsAppSocket,
  prepareAuthDir,
  type WaConnectionUpdate,
  WhatsAppSetupError,
  type WhatsAppSocket,
} from '../channels/whatsapp.js';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../log.js';

/** What the login needs of a baileys socket. */
export type LoginSocket = Pick<WhatsAppSocket, 'ev' | 'user' | 'end'> & {
  requestPairingCode(phoneNumber: string): Promise<string>;
  saveCreds(): Promise<void>;
  /** The login in the folder was already complete when the socket was made. */
  registered: boolean;
};

export interface LoginOptions {
  /** Link by an 8-character code for this phone number instead of a QR code. */
  pairingCode?: string;
  /** PINCER_HOME; by default from the configuration. */
  home?: string;
  out?: (text: string) => void;
  /** Test seam: a socket on the login folder (default: a real baileys socket). */
  openSocket?: (authDir: string) => Promise<LoginSocket>;
  renderQr?: (qr: string) => Promise<string>;
  /** Pause before retrying a dropped connection. */
  retryDelayMs?: number;
}

const LOGGED_OUT = 401;
const TIMED_OUT = 408;
const RESTART_REQUIRED = 515;
const MAX_RETRIES = 5;

/** Digits only, with the country code: `+49 151 2345-678` → `491512345678`. */
export function pairingPhone(input: string): string | undefined {
  const digits = input.replace(/[\s()+.-]/g, '');
  return /^\d{7,15}$/.test(digits) ? digits : undefined;
}

type Outcome = { kind: 'open' } | { kind: 'close'; code: number | undefined; reason: string };

/** Returns the process exit code: 0 once linked. */
export async function runWhatsAppLogin(options: LoginOptions = {}): Promise<number> {
  const out = options.out ?? ((text: string) => process.stdout.write(text));
  const fail = (text: string, code = 1): number => {
    out(`${text}\n`);
    return code;
  };
  let home = options.home;
  if (!home) {
    try {
      home = loadConfig(process.env, process.cwd()).home;
    } catch (err) {
      if (err instanceof ConfigError) return fail(err.message, 2);
      throw err;
    }
  }
  const phone = options.pairingCode === undefined ? undefined : pairingPhone(options.pairingCode);
  if (options.pairingCode !== undefined && !phone) {
    return fail(
      `--pairing-code needs your phone number with its country code, digits only (e.g. 491512345678), not "${options.pairingCode}"`,
      2,
    );
  }
  const authDir = join(home, 'whatsapp-auth');
  const log = createLogger('silent');
  const openSocket = options.openSocket ?? ((dir: string) => openWhatsAppSocket({ authDir: dir, log, requireLogin: false }));
  const renderQr = options.renderQr ?? ((qr: string) => qrcode.toString(qr, { type: 'terminal', small: true }));

  let retries = 0;
  let clearedStale = false;
  let askedCode = false;
  let shown = false;
  for (let attempt = 0; ; attempt++) {
    let socket: LoginSocket;
    try {
      await prepareAuthDir(authDir);
      socket = await openSocket(authDir);
    } catch (err) {
      if (err instanceof WhatsAppSetupError) return fail(err.message);
      throw err;
    }
    if (socket.registered && attempt === 0) out('This pincer already has a WhatsApp login; checking that it still works…\n');
    const outcome = await new Promise<Outcome>((resolve) => {
      socket.ev.on('connection.update', (u: WaConnectionUpdate) => {
        if (u.connection === 'open') resolve({ kind: 'open' });
        else if (u.connection === 'close') {
          resolve({ kind: 'close', code: errorCode(u.lastDisconnect?.error), reason: u.lastDisconnect?.error?.message ?? 'closed' });
        } else if (u.qr) {
          shown = true;
          void showLogin(u.qr);
        }
      });
      const showLogin = async (qr: string) => {
        try {
          if (phone) {
            // One code per run: a new one would invalidate what the owner is typing.
            if (askedCode) return;
            askedCode = true;
            const code = await socket.requestPairingCode(phone);
            const grouped = code.length === 8 ? `${code.slice(0, 4)}-${code.slice(4)}` : code;
            out(
              `On your phone: WhatsApp → Settings → Linked devices → Link a device → "Link with phone number instead", and enter:\n\n    ${grouped}\n\n`,
            );
          } else {
            out(`Scan this with your phone: WhatsApp → Settings → Linked devices → Link a device.\n${await renderQr(qr)}\n`);
          }
        } catch (err) {
          out(`could not show the login: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      };
    });
    socket.ev.removeAllListeners('connection.update');

    if (outcome.kind === 'open') {
      await socket.saveCreds();
      const user = socket.user;
      const pn = user && [user.id, user.lid].find((id) => id?.endsWith('@s.whatsapp.net'));
      const me = pn ? bareJid(pn) : undefined;
      await Promise.resolve(socket.end(undefined)).catch(() => {});
      out(`Linked${user?.name ? ` as ${user.name}` : ''}${me ? ` (${me.split('@')[0]})` : ''}. The login is kept in ${authDir}.\n`);
      if (me) {
        out(
          `Your own chat ("Message yourself") is wa:${me}. To talk to the assistant there, make it the main chat:\n` +
            `    PINCER_MAIN_CHAT=wa:${me}\n`,
        );
      }
      out('Start pincer with WHATSAPP_ENABLED=true (restart it if it runs).\n');
      return 0;
    }

    await Promise.resolve(socket.end(undefined)).catch(() => {});
    // The next socket reads the login from disk: the link just made must be written first.
    await socket.saveCreds().catch(() => {});
    if (outcome.code === RESTART_REQUIRED) {
      // WhatsApp asks for a fresh connection right after the phone accepted the link: expected.
      continue;
    }
    if (outcome.code === LOGGED_OUT) {
      if (socket.registered && !clearedStale) {
        clearedStale = true;
        out('The login kept here was removed on the phone; starting a new one.\n');
        await clearDir(authDir);
        continue;
      }
      return fail(
        `WhatsApp refused the link (${outcome.reason}). Try again; if it keeps failing, try the other way (QR code or --pairing-code).`,
      );
    }
    // 408 is also a failed connect: only after a QR code or pairing code was shown does it mean "too late".
    if (outcome.code === TIMED_OUT && shown && !socket.registered) {
      return fail('The login was not completed in time. Run `pincer whatsapp login` again when your phone is at hand.');
    }
    if (++retries > MAX_RETRIES)
      return fail(`The connection to WhatsApp keeps failing (${outcome.reason}); check the network and try again.`);
    out(`Connection closed (${outcome.reason}); trying again…\n`);
    await new Promise((r) => setTimeout(r, options.retryDelayMs ?? 2_000));
  }
}

/** Empties the login folder (keeping the folder and its mode). */
async function clearDir(dir: string): Promise<void> {
  for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
}

export function whatsappCommand(): Command {
  const command = new Command('whatsapp').description('WhatsApp (unofficial, through baileys): link this pincer to your account');
  command
    .command('login')
    .description('link pincer as a device of your WhatsApp account (QR code in the terminal, or a pairing code)')
    .option('--pairing-code <phone>', 'link with a code typed on the phone instead of a QR code; your number with country code')
    .action(async (opts: { pairingCode?: string }) => {
      const code = await runWhatsAppLogin(opts.pairingCode === undefined ? {} : { pairingCode: opts.pairingCode });
      // baileys may keep timers (caches, keep-alive) after closing: the command is done once linked.
      process.exit(code);
    });
  return command;
}
