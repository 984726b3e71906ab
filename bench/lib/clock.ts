// One clock for every timestamp in the suite: Date.now()-comparable wall milliseconds.
//
// pincer's events table stores `Date.now()` (whole milliseconds), and so do the Telegram fake and the
// scheduler; the fake model and the suite's own readings use `performance.now()` (sub-millisecond, monotonic).
// Everything runs in this one process, so a performance reading becomes wall time by adding one offset,
// measured once at a tick of Date.now() (exact to well under a millisecond). Gaps between an event and a
// performance reading are therefore exact to the events' 1 ms resolution; gaps between two performance
// readings are exact. `drift()` tells whether the wall clock was adjusted during the run.

function calibrate(): number {
  const first = Date.now();
  let perf = performance.now();
  let now = Date.now();
  // Spin to the next millisecond edge (at most ~1 ms): there Date.now() has just become `now`.
  while (now === first) {
    perf = performance.now();
    now = Date.now();
  }
  return now - perf;
}

const offset = calibrate();

/** The wall time (Date.now() scale) of a performance.now() reading. */
export const wallOf = (perf: number): number => perf + offset;

/** Now, on the Date.now() scale, with performance.now()'s resolution. */
export const nowWall = (): number => wallOf(performance.now());

/** How far Date.now() moved away from the calibrated offset since the start (ms); about ±1 from rounding. */
export function drift(): number {
  return Date.now() - nowWall();
}
