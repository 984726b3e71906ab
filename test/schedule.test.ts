// Schedule arithmetic: DST across zones, once wall times (gap/overlap), interval anchoring, validation errors, descriptions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeSchedule, nextDueAfter, parseSchedule, type Schedule, type ScheduleType } from '../src/scheduler/schedule.js';

const at = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString();
const NOW = at('2026-01-01T00:00:00Z');

function schedule(type: ScheduleType, value: string, timezone = 'Europe/Berlin', anchorAt = NOW): Schedule {
  return { type, value, timezone, anchorAt };
}

/** Every due time in (from, to], by iterating nextDueAfter as the scheduler does. */
function runsBetween(s: Schedule, from: string, to: string): string[] {
  const runs: string[] = [];
  const end = at(to);
  let cursor = at(from);
  for (;;) {
    const next = nextDueAfter(s, cursor);
    if (next === null || next > end) return runs;
    assert.ok(next > cursor, 'nextDueAfter must move strictly forward');
    runs.push(iso(next));
    cursor = next;
  }
}

function localDay(isoInstant: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(isoInstant));
}

function runsPerLocalDay(runs: string[], timeZone: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const run of runs) {
    const day = localDay(run, timeZone);
    counts[day] = (counts[day] ?? 0) + 1;
  }
  return counts;
}

function expectError(type: ScheduleType, value: string, pattern: RegExp, timezone = 'Europe/Berlin'): void {
  const result = parseSchedule(type, value, timezone, NOW);
  assert.equal(result.ok, false, `${type} "${value}" should be rejected`);
  if (!result.ok) assert.match(result.error, pattern);
}

describe('cron across DST', () => {
  // Each window spans three local days, from local midnight to local midnight, with the transition day in the middle.
  const cases = [
    {
      name: 'Berlin spring forward: no 02:30 on 29 March, runs at 03:00 CEST',
      zone: 'Europe/Berlin',
      expr: '30 2 * * *',
      from: '2026-03-27T23:00:00Z',
      to: '2026-03-30T22:00:00Z',
      runs: ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z'],
    },
    {
      name: 'Berlin fall back: 02:30 twice on 25 October, runs once at the first (CEST)',
      zone: 'Europe/Berlin',
      expr: '30 2 * * *',
      from: '2026-10-23T22:00:00Z',
      to: '2026-10-26T23:00:00Z',
      runs: ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z'],
    },
    {
      name: 'New York spring forward: no 02:30 on 8 March, runs at 03:00 EDT',
      zone: 'America/New_York',
      expr: '30 2 * * *',
      from: '2026-03-07T05:00:00Z',
      to: '2026-03-10T04:00:00Z',
      runs: ['2026-03-07T07:30:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z'],
    },
    {
      name: 'New York fall back: 01:30 twice on 1 November, runs once at the first (EDT)',
      zone: 'America/New_York',
      expr: '30 1 * * *',
      from: '2026-10-31T04:00:00Z',
      to: '2026-11-03T05:00:00Z',
      runs: ['2026-10-31T05:30:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z'],
    },
    {
      name: 'Sydney spring forward (October): no 02:30 on 4 October, runs at 03:00 AEDT',
      zone: 'Australia/Sydney',
      expr: '30 2 * * *',
      from: '2026-10-02T14:00:00Z',
      to: '2026-10-05T13:00:00Z',
      runs: ['2026-10-02T16:30:00.000Z', '2026-10-03T16:00:00.000Z', '2026-10-04T15:30:00.000Z'],
    },
    {
      name: 'Sydney fall back (April): 02:30 twice on 5 April, runs once at the first (AEDT)',
      zone: 'Australia/Sydney',
      expr: '30 2 * * *',
      from: '2026-04-03T13:00:00Z',
      to: '2026-04-06T14:00:00Z',
      runs: ['2026-04-03T15:30:00.000Z', '2026-04-04T15:30:00.000Z', '2026-04-05T16:30:00.000Z'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = schedule('cron', c.expr, c.zone);
      const runs = runsBetween(s, c.from, c.to);
      assert.deepEqual(runs, c.runs);
      const counts = runsPerLocalDay(runs, c.zone);
      assert.equal(Object.keys(counts).length, 3);
      for (const [day, count] of Object.entries(counts)) assert.equal(count, 1, `${c.zone} ${day}`);
    });
  }

  it('a list of fixed times behaves like a single fixed time in the gap', () => {
    const runs = runsBetween(schedule('cron', '30 2,14 * * *'), '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z');
    assert.deepEqual(runs, ['2026-03-29T01:00:00.000Z', '2026-03-29T12:30:00.000Z']);
  });

  it('a step job follows real time: every 15 minutes gives 100 runs on the 25-hour fall-back day', () => {
    const runs = runsBetween(schedule('cron', '*/15 * * * *'), '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z');
    assert.equal(runs.length, 100);
    assert.deepEqual(runsPerLocalDay(runs, 'Europe/Berlin'), { '2026-10-25': 99, '2026-10-26': 1 });
  });
});

describe('cron', () => {
  it('weekdays at 09:00 in Berlin skip the weekend', () => {
    const runs = runsBetween(schedule('cron', '0 9 * * 1-5'), '2026-01-09T00:00:00Z', '2026-01-13T23:00:00Z');
    // Friday, then Monday and Tuesday; CET is UTC+1 in January.
    assert.deepEqual(runs, ['2026-01-09T08:00:00.000Z', '2026-01-12T08:00:00.000Z', '2026-01-13T08:00:00.000Z']);
    // In summer the same wall time is 07:00Z.
    assert.equal(iso(nextDueAfter(schedule('cron', '0 9 * * MON-FRI'), at('2026-07-04T12:00:00Z')) ?? 0), '2026-07-06T07:00:00.000Z');
  });

  it('every 15 minutes', () => {
    const runs = runsBetween(schedule('cron', '*/15 * * * *'), '2026-01-01T10:07:00Z', '2026-01-01T11:00:00Z');
    assert.deepEqual(runs, [
      '2026-01-01T10:15:00.000Z',
      '2026-01-01T10:30:00.000Z',
      '2026-01-01T10:45:00.000Z',
      '2026-01-01T11:00:00.000Z',
    ]);
  });

  it('is strictly after: a due time exactly at `after` is not returned again', () => {
    const s = schedule('cron', '0 9 * * *', 'UTC');
    assert.equal(iso(nextDueAfter(s, at('2026-01-01T09:00:00Z')) ?? 0), '2026-01-02T09:00:00.000Z');
    assert.equal(iso(nextDueAfter(s, at('2026-01-01T08:59:59.999Z')) ?? 0), '2026-01-01T09:00:00.000Z');
  });

  it('normalizes whitespace and nicknames, and returns the first due time', () => {
    const result = parseSchedule('cron', '  0   9 * *  1-5 ', 'Europe/Berlin', NOW);
    assert.deepEqual(result, { ok: true, value: '0 9 * * 1-5', firstDueAt: at('2026-01-01T08:00:00Z') });
    const daily = parseSchedule('cron', '@DAILY', 'Europe/Berlin', NOW);
    assert.deepEqual(daily, { ok: true, value: '@daily', firstDueAt: at('2026-01-01T23:00:00Z') });
    for (const nickname of ['@hourly', '@weekly', '@monthly', '@yearly'])
      assert.equal(parseSchedule('cron', nickname, 'UTC', NOW).ok, true);
  });
});

describe('once', () => {
  const cases: { name: string; value: string; zone: string; expected: string }[] = [
    { name: 'local winter time', value: '2026-12-01T09:00', zone: 'Europe/Berlin', expected: '2026-12-01T08:00:00.000Z' },
    { name: 'local summer time with seconds', value: '2026-07-01T09:00:30', zone: 'Europe/Berlin', expected: '2026-07-01T07:00:30.000Z' },
    { name: 'space instead of T', value: '2026-12-01 09:00', zone: 'America/New_York', expected: '2026-12-01T14:00:00.000Z' },
    { name: 'half-hour zone', value: '2026-12-01T09:00', zone: 'Asia/Kolkata', expected: '2026-12-01T03:30:00.000Z' },
    { name: 'Berlin gap 02:30 → 03:00 CEST', value: '2026-03-29T02:30', zone: 'Europe/Berlin', expected: '2026-03-29T01:00:00.000Z' },
    { name: 'New York gap 02:30 → 03:00 EDT', value: '2026-03-08T02:30', zone: 'America/New_York', expected: '2026-03-08T07:00:00.000Z' },
    { name: 'Sydney gap 02:30 → 03:00 AEDT', value: '2026-10-04T02:30', zone: 'Australia/Sydney', expected: '2026-10-03T16:00:00.000Z' },
    {
      name: 'Lord Howe half-hour gap 02:15 → 02:30',
      value: '2026-10-04T02:15',
      zone: 'Australia/Lord_Howe',
      expected: '2026-10-03T15:30:00.000Z',
    },
    { name: 'Berlin overlap 02:30 → first (CEST)', value: '2026-10-25T02:30', zone: 'Europe/Berlin', expected: '2026-10-25T00:30:00.000Z' },
    {
      name: 'New York overlap 01:30 → first (EDT)',
      value: '2026-11-01T01:30',
      zone: 'America/New_York',
      expected: '2026-11-01T05:30:00.000Z',
    },
    {
      name: 'Sydney overlap 02:30 → first (AEDT)',
      value: '2026-04-05T02:30',
      zone: 'Australia/Sydney',
      expected: '2026-04-04T15:30:00.000Z',
    },
    {
      name: 'Lord Howe overlap 01:45 → first',
      value: '2026-04-05T01:45',
      zone: 'Australia/Lord_Howe',
      expected: '2026-04-04T14:45:00.000Z',
    },
    {
      name: 'instant with Z ignores the zone',
      value: '2026-12-01T08:00:00Z',
      zone: 'America/New_York',
      expected: '2026-12-01T08:00:00.000Z',
    },
    { name: 'instant with fraction', value: '2026-12-01T08:00:00.250Z', zone: 'UTC', expected: '2026-12-01T08:00:00.250Z' },
    { name: 'instant with + offset', value: '2026-12-01T09:00:00+01:00', zone: 'America/New_York', expected: '2026-12-01T08:00:00.000Z' },
    { name: 'instant with - offset', value: '2026-12-01T03:00-05:00', zone: 'Europe/Berlin', expected: '2026-12-01T08:00:00.000Z' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = parseSchedule('once', c.value, c.zone, NOW);
      assert.deepEqual(result, { ok: true, value: c.expected, firstDueAt: at(c.expected) });
    });
  }

  it('the normalized value round-trips through nextDueAfter', () => {
    const s = schedule('once', '2026-12-01T08:00:00.000Z');
    assert.equal(nextDueAfter(s, NOW), at('2026-12-01T08:00:00Z'));
    assert.equal(nextDueAfter(s, at('2026-12-01T07:59:59.999Z')), at('2026-12-01T08:00:00Z'));
    assert.equal(nextDueAfter(s, at('2026-12-01T08:00:00Z')), null);
    assert.equal(nextDueAfter(s, at('2027-01-01T00:00:00Z')), null);
    // An unnormalized local value is still read in the task's zone.
    assert.equal(nextDueAfter(schedule('once', '2026-12-01T09:00'), NOW), at('2026-12-01T08:00:00Z'));
  });

  it('rejects a time in the past', () => {
    expectError('once', '2025-12-31T09:00', /"2025-12-31T09:00" \(2025-12-31T08:00:00\.000Z\) is in the past/);
    expectError('once', '2026-01-01T00:00:00Z', /is in the past/);
  });
});

describe('interval', () => {
  const durations: [string, number][] = [
    ['3600000', 3_600_000],
    ['60000', 60_000],
    ['60s', 60_000],
    ['15m', 900_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1H 30M', 5_400_000],
    ['1d12h', 129_600_000],
    ['366d', 366 * 86_400_000],
  ];
  for (const [value, ms] of durations) {
    it(`"${value}" is ${ms} ms`, () => {
      assert.deepEqual(parseSchedule('interval', value, 'UTC', NOW), { ok: true, value: String(ms), firstDueAt: NOW + ms });
    });
  }

  it('is anchored: late runs do not shift later ones', () => {
    const T = at('2026-01-01T10:00:00Z');
    const i = 3_600_000;
    const s = schedule('interval', String(i), 'UTC', T);
    const cases: [number, number][] = [
      [T + 2.5 * i, T + 3 * i],
      [T + 3 * i, T + 4 * i],
      [T + 3 * i - 1, T + 3 * i],
      [T, T + i],
      [T - 10 * i, T + i],
    ];
    for (const [after, expected] of cases) assert.equal(nextDueAfter(s, after), expected, `after ${iso(after)}`);
    assert.equal(nextDueAfter(schedule('interval', '1h30m', 'UTC', T), T + 2.5 * i), T + 3 * i);
  });
});

describe('invalid input', () => {
  const cases: [ScheduleType, string, RegExp, string?][] = [
    ['cron', '61 * * * *', /^invalid cron "61 \* \* \* \*": .*minute.*61/],
    ['cron', '0 0 9 * * *', /^invalid cron "0 0 9 \* \* \*": 6 fields given, .*no seconds or years/],
    ['cron', '0 0 9 * * * 2027', /^invalid cron .*7 fields given/],
    ['cron', 'abc', /^invalid cron "abc": expected 5 fields/],
    ['cron', '', /^invalid cron "": expected 5 fields.*got 0/],
    ['cron', '0 9 * * FUNDAY', /^invalid cron "0 9 \* \* FUNDAY": /],
    ['cron', '@reboot', /^invalid cron "@reboot": /],
    ['cron', '0 9 31 2 *', /^cron "0 9 31 2 \*" never runs/],
    ['interval', '0s', /^interval "0s" is too short: the minimum is 60s/],
    ['interval', '10s', /^interval "10s" is too short/],
    ['interval', '59999', /too short/],
    ['interval', '367d', /^interval "367d" is too long: the maximum is 366d/],
    ['interval', '99999999999999999999', /too long/],
    ['interval', 'abc', /^invalid interval "abc": use milliseconds/],
    ['interval', '', /^invalid interval "": /],
    ['interval', '1.5h', /^invalid interval/],
    ['interval', '-5m', /^invalid interval/],
    ['interval', '30m1h', /^invalid interval/],
    ['once', 'tomorrow at 9', /^invalid once time "tomorrow at 9": not a date-time; use a local time/],
    ['once', '2026-12-01', /^invalid once time "2026-12-01"/],
    ['once', '2026-13-01T09:00', /month 13 does not exist/],
    ['once', '2026-02-29T09:00', /day 29 does not exist in 2026-02/],
    ['once', '2026-12-01T24:00', /time out of range/],
    ['once', '2026-12-01T09:00+25:00', /offset \+25:00 out of range/],
    ['cron', '0 9 * * *', /^unknown timezone "Mars\/Base": use an IANA name/, 'Mars/Base'],
    ['interval', '1h', /^unknown timezone "": /, ''],
    ['once', '2026-12-01T09:00', /^unknown timezone "\+01:00"/, '+01:00'],
  ];
  for (const [type, value, pattern, zone] of cases) {
    it(`${type} "${value}"${zone === undefined ? '' : ` in "${zone}"`}`, () => expectError(type, value, pattern, zone));
  }

  it('never throws, and nextDueAfter returns null for values parseSchedule would reject', () => {
    assert.equal(parseSchedule('weekly' as ScheduleType, 'x', 'UTC', NOW).ok, false);
    assert.equal(nextDueAfter(schedule('cron', '61 * * * *'), NOW), null);
    assert.equal(nextDueAfter(schedule('cron', '0 9 * * *', 'Mars/Base'), NOW), null);
    assert.equal(nextDueAfter(schedule('interval', 'abc'), NOW), null);
    assert.equal(nextDueAfter(schedule('once', 'soon'), NOW), null);
  });
});

describe('describeSchedule', () => {
  const cases: [ScheduleType, string, string][] = [
    ['cron', '0 9 * * 1-5', 'every weekday at 09:00 (Europe/Berlin)'],
    ['cron', '0 9 * * mon-fri', 'every weekday at 09:00 (Europe/Berlin)'],
    ['cron', '30 2 * * *', 'every day at 02:30 (Europe/Berlin)'],
    ['cron', '@daily', 'every day at 00:00 (Europe/Berlin)'],
    ['cron', '0 18 * * 5', 'every Friday at 18:00 (Europe/Berlin)'],
    ['cron', '0 10 * * 0', 'every Sunday at 10:00 (Europe/Berlin)'],
    ['cron', '0 10 * * 7', 'every Sunday at 10:00 (Europe/Berlin)'],
    ['cron', '0 8 * * 1,3,5', 'every Monday, Wednesday and Friday at 08:00 (Europe/Berlin)'],
    ['cron', '0 11 * * SAT,SUN', 'every Saturday and Sunday at 11:00 (Europe/Berlin)'],
    ['cron', '0 9 1 * *', 'on day 1 of every month at 09:00 (Europe/Berlin)'],
    ['cron', '0 9 L * *', 'on the last day of every month at 09:00 (Europe/Berlin)'],
    ['cron', '*/15 * * * *', 'every 15 minutes'],
    ['cron', '* * * * *', 'every minute'],
    ['cron', '@hourly', 'every hour'],
    ['cron', '5 * * * *', 'every hour at :05'],
    ['cron', '0 */2 * * *', 'every 2 hours'],
    ['cron', '30 */6 * * *', 'every 6 hours at :30'],
    ['cron', '0 */5 * * *', 'cron "0 */5 * * *" (Europe/Berlin)'],
    ['cron', '0 9 * * 1#2', 'cron "0 9 * * 1#2" (Europe/Berlin)'],
    ['cron', '0,30 9 * * *', 'cron "0,30 9 * * *" (Europe/Berlin)'],
    ['interval', '7200000', 'every 2 hours'],
    ['interval', '5400000', 'every 90 minutes'],
    ['interval', '86400000', 'every day'],
    ['interval', '90000', 'every 90 seconds'],
    ['interval', '2h', 'every 2 hours'],
    ['once', '2026-12-01T08:00:00.000Z', 'once on 2026-12-01 09:00 (Europe/Berlin)'],
    ['once', '2026-07-01T07:00:30.000Z', 'once on 2026-07-01 09:00:30 (Europe/Berlin)'],
  ];
  for (const [type, value, expected] of cases) {
    it(`${type} "${value}"`, () => assert.equal(describeSchedule(schedule(type, value)), expected));
  }
});
