// pincer's local channel (its HTTP API and web page) on its own port in front of a test's own sink, so a
// test sees exactly what the API hands to ingest; groups and tasks go to the harness pincer's Control.
import { LocalChannel } from '../../src/channels/local/channel.js';
import type { InboundSink } from '../../src/channels/types.js';
import { createLogger } from '../../src/log.js';
import { Insight } from '../../src/service/insight.js';
import { HARNESS_TOKEN, type Harness } from './harness.js';

export async function startLocalChannel(h: Harness, sink: InboundSink): Promise<LocalChannel> {
  const store = h.pincer.store;
  const channel = new LocalChannel({
    store,
    host: '127.0.0.1',
    port: 0,
    token: HARNESS_TOKEN,
    control: h.pincer.control,
    insight: new Insight({
      store,
      timezone: 'UTC',
      channels: () => [],
      queue: () => ({ active: 0, waiting: 0 }),
      agentState: () => 'none',
      budgetReached: () => false,
      modelOf: () => "Claude Code's default model on anthropic",
    }),
    log: createLogger('silent'),
    assistantName: 'Andy',
    allowedHosts: [],
    tokenHint: 'the test',
  });
  await channel.start(sink);
  return channel;
}
