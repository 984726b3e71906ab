// A turn that runs a team: the lead agent delegates to two named sub-agents (Claude Code's `Agent` tool), each
// posts into the chat under its own name (send_message with `sender`) and reports back, and the lead sums up.
// Real pincer, real Claude Code in bubblewrap. The scripted model answers with several content blocks per reply
// (text plus two parallel tool calls).
//
// What Claude Code 0.3.331 (CLI 2.1.331) does, as the scripted model sees it:
// - the tool is `Agent` ({description, prompt, subagent_type?, run_in_background?, …}); sub-agents run in the
//   background unless `run_in_background: false`, and a background one finishes after the turn's result (the CLI
//   then starts a turn of its own), so the lead here always waits for its team;
// - a sub-agent's requests say `cc_is_subagent=true` in the system prompt; a project agent's definition
//   (`.claude/agents/<name>.md` in the group folder) is its system prompt, the lead's brief its first user message;
// - sub-agents get pincer's MCP tools (listed in the definition's `tools`, or deferred behind ToolSearch).
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ContentBlock, contentText, type FakeModel, isRecord, type ModelRequest, startFakeModel } from './helpers/fake-model.js';
import { type ApiMessage, type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();

// ---- reading a request ----

type Message = { role: string; content: unknown };

function systemText(req: ModelRequest): string {
  return contentText(req.body.system);
}

/** The tool calls of the request's assistant turns, oldest first. */
function toolCalls(messages: Message[]): Array<{ name: string; input: Record<string, unknown> }> {
  return messages
    .filter((m) => m.role === 'assistant' && Array.isArray(m.content))
    .flatMap((m) => (m.content as unknown[]).filter((b): b is Record<string, unknown> => isRecord(b) && b.type === 'tool_use'))
    .map((b) => ({ name: String(b.name), input: isRecord(b.input) ? b.input : {} }));
}

/** The lead's messages since the user's newest chat message (the prompt pincer pushed), that message first. */
function sinceAsk(req: ModelRequest): Message[] {
  const messages = (req.body.messages ?? []) as Message[];
  const at = messages.findLastIndex((m) => m.role === 'user' && contentText(m.content).includes('<messages timezone='));
  return at < 0 ? [] : messages.slice(at);
}

/** What a sub-agent reported, as the lead received it (from the Agent tool's result). */
const FINDING = /FINDING\[(\w+)\]: ([^\n]*)/g;

function findings(messages: Message[]): string[] {
  return messages.filter((m) => m.role === 'user').flatMap((m) => [...contentText(m.content).matchAll(FINDING)].map((x) => x[0]));
}

// ---- the team ----

const ROLE_MARK = { Researcher: 'TEAM-ROLE-RESEARCHER', Writer: 'TEAM-ROLE-WRITER' } as const;
type Member = keyof typeof ROLE_MARK;
const FACT = 'otters hold hands while they sleep';

/** Who sent a request: the lead, one of the team, or a side request (no tools: titles and the like). */
function whoAsks(req: ModelRequest): 'side' | 'lead' | Member | 'stranger' {
  if ((req.body.tools?.length ?? 0) === 0) return 'side';
  const system = systemText(req);
  if (!system.includes('cc_is_subagent=true')) return 'lead';
  // A project agent's definition is its system prompt; a general-purpose one learns its role from the lead's brief.
  const brief = `${system}\n${contentText(req.body.messages?.[0]?.content)}`;
  if (brief.includes(ROLE_MARK.Researcher)) return 'Researcher';
  if (brief.includes(ROLE_MARK.Writer)) return 'Writer';
  return 'stranger';
}

/** A team member posts once under its own name, then reports (the writer builds on what it was given). */
function member(name: Member, req: ModelRequest): ContentBlock[] {
  const messages = (req.body.messages ?? []) as Message[];
  if (!toolCalls(messages).some((c) => c.name === 'mcp__pincer__send_message')) {
    const text = name === 'Researcher' ? 'reading up on otters' : 'drafting the answer';
    return [{ toolUse: { name: 'mcp__pincer__send_message', input: { text, sender: name } } }];
  }
  if (name === 'Researcher') return [{ text: `FINDING[Researcher]: ${FACT}` }];
  const brief = contentText(messages[0]?.content);
  const given = /Fact: ([^\n]*)/.exec(brief)?.[1] ?? 'nothing given';
  return [{ text: `FINDING[Writer]: "${given}" makes a good first line` }];
}

function agentCall(input: Record<string, unknown>): ContentBlock {
  // Waits for the sub-agent: a background one would report after this turn's result.
  return { toolUse: { name: 'Agent', input: { ...input, run_in_background: false } } };
}

/** The lead: "assemble a team" runs both at once; "one after the other" hands the researcher's fact to the writer. */
function lead(req: ModelRequest): ContentBlock[] {
  const turn = sinceAsk(req);
  const ask = contentText(turn[0]?.content);
  const calls = toolCalls(turn).filter((c) => c.name === 'Agent').length;
  // Reports come back in the order the sub-agents finished: the summary lists them by name.
  const summary = (): ContentBlock[] => [{ text: `Team summary: ${findings(turn).sort().join(' | ')}` }];
  if (ask.includes('assemble a team')) {
    if (calls > 0) return summary();
    return [
      { text: 'Asking the researcher and the writer.' },
      agentCall({ description: 'research the topic', subagent_type: 'researcher', prompt: 'Find the key fact about otters.' }),
      agentCall({ description: 'draft the answer', subagent_type: 'writer', prompt: 'Draft a one-line answer about otters.' }),
    ];
  }
  if (ask.includes('one after the other')) {
    const brief = (role: Member, task: string) => `${ROLE_MARK[role]}: you are the ${role}. Post with sender "${role}". ${task}`;
    if (calls === 0)
      return [agentCall({ description: 'find the fact', subagent_type: 'general-purpose', prompt: brief('Researcher', 'Find the fact.') })];
    if (calls === 1) {
      const fact = /FINDING\[Researcher\]: ([^\n]*)/.exec(findings(turn).join('\n'))?.[1] ?? 'missing';
      return [
        agentCall({ description: 'write it up', subagent_type: 'general-purpose', prompt: brief('Writer', `Write it up.\nFact: ${fact}`) }),
      ];
    }
    return summary();
  }
  return [{ text: 'no team needed' }];
}

function script(req: ModelRequest): ContentBlock[] {
  const who = whoAsks(req);
  if (who === 'side') return [{ text: 'side' }];
  if (who === 'lead') return lead(req);
  if (who === 'stranger') return [{ text: 'a sub-agent without a role' }];
  return member(who, req);
}

/** The team as project agents in the group's folder (`.claude/agents`), owned like the folder (the sandbox's user). */
function defineTeam(groupDir: string): void {
  const { uid, gid } = statSync(groupDir);
  const claudeDir = join(groupDir, '.claude');
  const agentsDir = join(claudeDir, 'agents');
  mkdirSync(agentsDir, { recursive: true });
  const files = [claudeDir, agentsDir];
  for (const name of ['Researcher', 'Writer'] as const) {
    const file = join(agentsDir, `${name.toLowerCase()}.md`);
    writeFileSync(
      file,
      [
        '---',
        `name: ${name.toLowerCase()}`,
        `description: The team's ${name.toLowerCase()}.`,
        'tools: Read, mcp__pincer__send_message',
        '---',
        `${ROLE_MARK[name]}: you are the ${name}. Tell the chat what you are doing with send_message, sender "${name}".`,
        '',
      ].join('\n'),
    );
    files.push(file);
  }
  for (const f of files) chownSync(f, uid, gid);
}

/** The next `count` assistant messages in the chat after `after`, in order. */
async function nextReplies(h: Harness, after: string, count: number): Promise<ApiMessage[]> {
  const out: ApiMessage[] = [];
  let cursor = after;
  while (out.length < count) {
    const m = await h.reply('local:main', cursor, 20_000);
    out.push(m);
    cursor = m.id;
  }
  return out;
}

async function toolStages(h: Harness, id: string): Promise<Array<{ stage: string; detail: string | null }>> {
  const res = await h.request('GET', `/api/v1/messages/${id}/trace`);
  assert.equal(res.status, 200, `trace of ${id}: ${JSON.stringify(res.body)}`);
  return res.body.stages as Array<{ stage: string; detail: string | null }>;
}

describe('a turn runs a team of named sub-agents that post into the chat', { skip }, () => {
  let h: Harness;
  let fake: FakeModel;
  before(async () => {
    fake = await startFakeModel((req) => ({ content: script(req) }));
    h = await startHarness({ fake });
    defineTeam(join(h.home, 'groups', 'main'));
  });
  after(async () => {
    await h?.stop();
    await fake?.close();
  });

  test('the lead delegates to two sub-agents at once; both post under their names, then the lead sums up', async () => {
    const id = await h.send('local:main', 'please assemble a team for the otter question');
    const [a, b, summary] = await nextReplies(h, id, 3);
    assert.ok(a && b && summary, 'three messages reached the chat');
    assert.deepEqual(
      [a.text, b.text].sort(),
      ['Researcher: reading up on otters', 'Writer: drafting the answer'],
      'each sub-agent posted once, its name shown as the sender prefix',
    );
    assert.equal(summary.text, `Team summary: FINDING[Researcher]: ${FACT} | FINDING[Writer]: "nothing given" makes a good first line`);
    for (const m of [a, b, summary]) assert.equal(m.fromAssistant, true, `"${m.text}" comes from the assistant's side of the chat`);
    const later = (await h.messages('local:main', summary.id)).filter((m) => m.fromAssistant);
    assert.deepEqual(later, [], 'nothing more is posted after the summary');

    // The lead asked for both in one reply; Claude Code ran them and handed both reports back together.
    const leadRequests = fake.requests.filter(
      (r) => whoAsks(r) === 'lead' && contentText(sinceAsk(r)[0]?.content).includes('assemble a team'),
    );
    assert.equal(leadRequests.length, 2, 'the lead asked the model twice: to delegate, then to sum up');
    const handBack = sinceAsk(leadRequests[1] as ModelRequest).at(-1);
    assert.equal(findings(handBack ? [handBack] : []).length, 2, 'both reports came back as the results of the one delegating reply');
    for (const name of ['Researcher', 'Writer'] as const) {
      const own = fake.requests.filter((r) => whoAsks(r) === name && systemText(r).includes(ROLE_MARK[name]));
      assert.equal(own.length, 2, `the ${name} ran on its own definition (post, then report): ${own.length} request(s)`);
      const offered = own[0]?.body.tools?.map((t) => t.name) ?? [];
      assert.ok(offered.includes('mcp__pincer__send_message'), `the ${name} is offered pincer's send_message: ${offered.join(',')}`);
    }

    const stages = await toolStages(h, id);
    const tools = stages.filter((s) => s.stage === 'tool').map((s) => s.detail ?? '');
    for (const expected of [
      'Agent: research the topic',
      'Agent: draft the answer',
      'send_message: reading up on otters',
      'send_message: drafting the answer',
    ])
      assert.ok(tools.includes(expected), `the trace shows "${expected}": ${tools.join(' / ')}`);
    const replied = stages.findIndex((s) => s.stage === 'replied');
    const lastTool = stages.findLastIndex((s) => s.stage === 'tool');
    assert.ok(
      replied > lastTool && lastTool >= 0,
      `the sub-agents' tool stages come before the reply: ${stages.map((s) => s.stage).join(',')}`,
    );
    const turns = h.pincer.store.turns.recent('local:main', 1);
    assert.equal(turns[0]?.status, 'success', 'the whole team ran in one successful turn');
  });

  test('sub-agents work one after the other: the writer builds on the researcher, the lead sums up', async () => {
    const id = await h.send('local:main', 'now one after the other, please');
    const replies = await nextReplies(h, id, 3);
    assert.deepEqual(
      replies.map((m) => m.text),
      [
        'Researcher: reading up on otters',
        'Writer: drafting the answer',
        `Team summary: FINDING[Researcher]: ${FACT} | FINDING[Writer]: "${FACT}" makes a good first line`,
      ],
      'the researcher posts, then the writer, then the summary with both results',
    );
    const writer = fake.requests.find((r) => whoAsks(r) === 'Writer' && !systemText(r).includes(ROLE_MARK.Writer));
    assert.ok(writer, 'the general-purpose writer made a request of its own');
    assert.ok(
      contentText(writer.body.messages?.[0]?.content).includes(`Fact: ${FACT}`),
      "the writer's brief carries the researcher's fact",
    );
    const tools = (await toolStages(h, id)).filter((s) => s.stage === 'tool').map((s) => s.detail ?? '');
    assert.equal(tools.filter((t) => t.startsWith('Agent: ')).length, 2, `two sub-agent calls in the trace: ${tools.join(' / ')}`);
    assert.equal(tools.filter((t) => t.startsWith('send_message: ')).length, 2, `two posts in the trace: ${tools.join(' / ')}`);
  });
});
