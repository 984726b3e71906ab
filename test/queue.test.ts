// GroupQueue with fake lanes: the cap, FIFO order, fairness between groups, waking live lanes, freeing idle
// slots, requeueing, drain.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { GroupQueue, type Lane, type QueuePolicy } from '../src/queue/group-queue.js';

/** A lane that the test ends by hand; busy or idle as the test says. Closing an idle lane ends it. */
class FakeLane implements Lane {
  readonly done: Promise<void>;
  wakes = 0;
  closeRequests = 0;
  idle = false;
  ended = false;
  readonly #finish: () => void;

  constructor(
    readonly key: string,
    readonly notifyIdle: () => void,
  ) {
    let finish!: () => void;
    this.done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    this.#finish = finish;
  }

  wake(): void {
    this.wakes++;
  }

  isIdle(): boolean {
    return this.idle && !this.ended;
  }

  closeIfIdle(): void {
    this.closeRequests++;
    if (this.isIdle()) this.finish();
  }

  /** Turns the lane idle and tells the queue, as a real lane does after a turn. */
  becomeIdle(): void {
    this.idle = true;
    this.notifyIdle();
  }

  finish(): void {
    this.ended = true;
    this.#finish();
  }
}

/** Lets `done.finally` handlers (and the pumps they trigger) run. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await tick();
};

function makeQueue(max: number, hasWork: (key: string) => boolean = () => false, policy?: QueuePolicy<string>) {
  const opened: string[] = [];
  const lanes = new Map<string, FakeLane>();
  let maxSeen = 0;
  let live = 0;
  const queue = new GroupQueue<string>(
    max,
    (key, notifyIdle) => {
      const lane = new FakeLane(key, notifyIdle);
      opened.push(key);
      lanes.set(key, lane);
      live++;
      maxSeen = Math.max(maxSeen, live);
      void lane.done.then(() => {
        live--;
      });
      return lane;
    },
    hasWork,
    policy,
  );
  const lane = (key: string): FakeLane => {
    const l = lanes.get(key);
    assert.ok(l, `lane ${key} was opened`);
    return l;
  };
  return { queue, opened, lane, maxSeen: () => maxSeen };
}

describe('GroupQueue', () => {
  test('a first wake starts a lane and wakes it once', () => {
    const { queue, opened, lane } = makeQueue(2);
    assert.equal(queue.wake('a'), 'started');
    assert.deepEqual(opened, ['a']);
    assert.equal(lane('a').wakes, 1);
    assert.equal(queue.isActive('a'), true);
    assert.equal(queue.activeCount, 1);
  });

  test('the cap is never exceeded, however many groups wake', async () => {
    const { queue, opened, lane, maxSeen } = makeQueue(3);
    const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const results = keys.map((k) => queue.wake(k));
    assert.deepEqual(results, ['started', 'started', 'started', 'queued', 'queued', 'queued', 'queued']);
    assert.equal(queue.activeCount, 3);
    assert.equal(queue.waitingCount, 4);
    // End lanes one at a time; each freed slot goes to exactly one waiting group.
    for (let i = 0; i < keys.length; i++) {
      const key = opened[i];
      assert.ok(key);
      lane(key).finish();
      await settle();
      assert.ok(queue.activeCount <= 3, `active ${queue.activeCount} after ending ${key}`);
    }
    assert.equal(maxSeen(), 3);
    assert.equal(opened.length, keys.length, 'every group got a lane in the end');
    assert.equal(queue.activeCount, 0);
    assert.equal(queue.waitingCount, 0);
  });

  test('waiting groups get slots in FIFO order, and a repeated wake does not queue a group twice', async () => {
    const { queue, opened, lane } = makeQueue(1);
    queue.wake('a');
    assert.equal(queue.wake('c'), 'queued');
    assert.equal(queue.wake('b'), 'queued');
    assert.equal(queue.wake('d'), 'queued');
    assert.equal(queue.wake('c'), 'queued');
    assert.equal(queue.waitingCount, 3, 'c waits once');
    for (const key of ['a', 'c', 'b']) {
      lane(key).finish();
      await settle();
    }
    assert.deepEqual(opened, ['a', 'c', 'b', 'd']);
  });

  describe('fairness', () => {
    // Keys `group/run`: a group's scheduled runs count against the group; `main` is the main group's lane.
    const policy: QueuePolicy<string> = { groupOf: (key) => key.split('/')[0] ?? key, isFirst: (key) => key === 'main' };

    test('a group holding a slot gets no second one while a group holding none waits, whoever came first', async () => {
      const { queue, opened, lane } = makeQueue(2, undefined, policy);
      queue.wake('hostile/1');
      queue.wake('hostile/2');
      assert.equal(queue.activeCount, 2, 'with no one else waiting, one group may use every slot');
      queue.wake('hostile/3');
      queue.wake('hostile/4');
      queue.wake('team');
      lane('hostile/1').finish();
      await settle();
      assert.deepEqual(opened.slice(2), ['team']);
      lane('hostile/2').finish();
      await settle();
      assert.deepEqual(opened.slice(2), ['team', 'hostile/3'], 'among equals, the longest waiting');
    });

    test("the main group's messages get the next free slot, ahead of everyone who waited longer", async () => {
      const { queue, opened, lane } = makeQueue(1, undefined, policy);
      queue.wake('hostile/1');
      for (const key of ['hostile/2', 'team', 'hostile/3', 'main']) assert.equal(queue.wake(key), 'queued');
      lane('hostile/1').finish();
      await settle();
      assert.deepEqual(opened, ['hostile/1', 'main']);
      lane('main').finish();
      await settle();
      assert.deepEqual(opened, ['hostile/1', 'main', 'team'], 'then the group holding nothing, before the second hostile run');
    });

    test('however many runs a group queues, another group waits for one lane at most', async () => {
      const { queue, opened, lane } = makeQueue(1, undefined, policy);
      queue.wake('hostile/0');
      for (let i = 1; i <= 20; i++) queue.wake(`hostile/${i}`);
      queue.wake('team');
      lane('hostile/0').finish();
      await settle();
      assert.equal(opened.at(-1), 'team');
    });
  });

  test('a wake of a live group wakes its lane and returns live, without opening another', () => {
    const { queue, opened, lane } = makeQueue(2);
    queue.wake('a');
    assert.equal(queue.wake('a'), 'live');
    assert.equal(queue.wake('a'), 'live');
    assert.equal(lane('a').wakes, 3);
    assert.deepEqual(opened, ['a']);
    assert.equal(queue.waitingCount, 0);
  });

  test('when all slots are held and a group waits, an idle lane is asked to close and a busy one is not', async () => {
    const { queue, opened, lane } = makeQueue(2);
    queue.wake('busy');
    queue.wake('idle');
    lane('idle').idle = true; // idle without telling the queue yet: no one waits, nothing to free
    assert.equal(lane('idle').closeRequests, 0);
    assert.equal(queue.wake('c'), 'queued');
    assert.equal(lane('idle').closeRequests, 1);
    assert.equal(lane('busy').closeRequests, 0);
    await settle();
    assert.deepEqual(opened, ['busy', 'idle', 'c'], 'the freed slot went to the waiting group');
    assert.equal(queue.isActive('idle'), false);
    assert.equal(queue.isActive('busy'), true);
  });

  test('an idle lane is not closed while no group waits', () => {
    const { queue, lane } = makeQueue(1);
    queue.wake('a');
    lane('a').becomeIdle();
    assert.equal(lane('a').closeRequests, 0);
    assert.equal(queue.isActive('a'), true);
  });

  test('a lane that turns idle while a group waits gives up its slot', async () => {
    const { queue, opened, lane } = makeQueue(1);
    queue.wake('a');
    queue.wake('b');
    assert.equal(lane('a').closeRequests, 0, 'a is busy');
    lane('a').becomeIdle();
    assert.equal(lane('a').closeRequests, 1);
    await settle();
    assert.deepEqual(opened, ['a', 'b']);
  });

  test('only as many idle lanes are closed as groups wait', () => {
    const { queue, lane } = makeQueue(3);
    for (const k of ['a', 'b', 'c']) {
      queue.wake(k);
      lane(k).idle = true;
    }
    queue.wake('d');
    const closed = ['a', 'b', 'c'].filter((k) => lane(k).closeRequests > 0);
    assert.equal(closed.length, 1);
  });

  test('a lane that ends while its group still has work is queued again (behind those already waiting)', async () => {
    const work = new Set(['a']);
    const { queue, opened, lane } = makeQueue(1, (k) => work.has(k));
    queue.wake('a');
    queue.wake('b');
    lane('a').finish();
    await settle();
    assert.deepEqual(opened, ['a', 'b']);
    assert.equal(queue.waitingCount, 1, 'a waits again');
    lane('b').finish();
    await settle();
    assert.deepEqual(opened, ['a', 'b', 'a']);
  });

  test('a lane that ends with no work left is not reopened', async () => {
    const { queue, opened, lane } = makeQueue(2);
    queue.wake('a');
    lane('a').finish();
    await settle();
    assert.deepEqual(opened, ['a']);
    assert.equal(queue.activeCount, 0);
    assert.equal(queue.isActive('a'), false);
    assert.equal(queue.wake('a'), 'started', 'a later wake opens a fresh lane');
    assert.deepEqual(opened, ['a', 'a']);
  });

  test('drain() resolves only after every live lane has ended, and drops the waiting groups', async () => {
    const { queue, opened, lane } = makeQueue(2);
    queue.wake('a');
    queue.wake('b');
    queue.wake('c');
    let drained = false;
    const draining = queue.drain().then(() => {
      drained = true;
    });
    assert.equal(queue.waitingCount, 0);
    await settle();
    assert.equal(drained, false);
    lane('a').finish();
    await settle();
    assert.equal(drained, false, 'b is still live');
    lane('b').finish();
    await draining;
    assert.equal(drained, true);
    assert.deepEqual(opened, ['a', 'b'], 'c, which was only waiting, never started');
    assert.equal(queue.activeCount, 0);
  });

  // Known bug (src/queue/group-queue.ts, drain/#pump): a lane that ends during drain() while its group still
  // has work is queued again and a fresh lane is opened. Dispatcher.stop() shuts lanes down with their turn
  // uncommitted (hasWork stays true), so stopping pincer starts a new agent session that is never shut down.
  test('drain() opens no new lane for a group that still has work', async () => {
    const { queue, opened, lane } = makeQueue(1, () => true);
    queue.wake('a');
    const draining = queue.drain();
    lane('a').finish();
    await draining;
    await settle();
    assert.deepEqual(opened, ['a']);
    assert.equal(queue.activeCount, 0);
  });

  test('drain() with no live lanes resolves at once', async () => {
    const { queue } = makeQueue(1);
    await queue.drain();
    assert.equal(queue.activeCount, 0);
  });
});
