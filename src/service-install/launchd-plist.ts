// The text of pincer's launchd property list (launchd.plist(5)): an agent in the user's session, or a daemon.
import type { Installation } from './installation.js';

export const LAUNCHD_LABEL = 'dev.pincer';

/** XML 1.0 cannot carry most control characters at all, escaped or not. */
export function xmlEscape(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(value)) {
    throw new Error(`${JSON.stringify(value)} contains a control character, which a property list cannot carry`);
  }
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;');
}

const string = (value: string) => `<string>${xmlEscape(value)}</string>`;
const key = (name: string) => `<key>${xmlEscape(name)}</key>`;

/** Pure: the property list for this installation; stdout and stderr go to one file so that lines stay in order. */
export function launchdPlist(installation: Installation, logFile: string): string {
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- Written by `pincer service install`; remove it with `pincer service uninstall`. Secrets stay in .env. -->',
    '<plist version="1.0">',
    '<dict>',
    `  ${key('Label')}${string(LAUNCHD_LABEL)}`,
    `  ${key('ProgramArguments')}`,
    '  <array>',
    ...installation.argv.map((arg) => `    ${string(arg)}`),
    '  </array>',
    `  ${key('WorkingDirectory')}${string(installation.workingDirectory)}`,
    `  ${key('EnvironmentVariables')}`,
    '  <dict>',
    ...installation.environment.map(([name, value]) => `    ${key(name)}${string(value)}`),
    '  </dict>',
    `  ${key('RunAtLoad')}<true/>`,
    // Restart after a crash, not after pincer stopped on purpose (exit 0).
    `  ${key('KeepAlive')}`,
    '  <dict>',
    `    ${key('SuccessfulExit')}<false/>`,
    '  </dict>',
    // launchd waits 10 s between starts by default; 2 s matches the systemd unit's RestartSec.
    `  ${key('ThrottleInterval')}<integer>2</integer>`,
    // Seconds between SIGTERM and SIGKILL on stop: pincer stops its sandboxes in that time.
    `  ${key('ExitTimeOut')}<integer>30</integer>`,
    `  ${key('StandardOutPath')}${string(logFile)}`,
    `  ${key('StandardErrorPath')}${string(logFile)}`,
    '</dict>',
    '</plist>',
  ];
  return `${lines.join('\n')}\n`;
}
