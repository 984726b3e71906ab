// Images that arrive in a chat reach the model as image blocks: the byte check, the block builder and the
// host-side reading first, then whole turns through a real pincer (real ingest, real Claude Code in bwrap)
// whose requests the fake model records.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import type { Channel, InboundAttachment, InboundSink } from '../src/channels/types.js';
import {
  imageBlock,
  MAX_IMAGE_BYTES,
  MAX_TURN_IMAGES,
  namedImageFiles,
  promptContent,
  sniffImage,
  turnImages,
} from '../src/service/turn-images.js';
import type { StoredMessage } from '../src/store/index.js';
import { isAgentTurn, lastUserText, type ModelRequest } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

// --- images made byte by byte -------------------------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid greyscale PNG; `seed` varies its pixels, `noise` makes them incompressible (for a big file). */
function png(width: number, height: number, seed = 0, noise = false): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 0, 0, 0, 0], 8);
  const rows = Buffer.alloc((width + 1) * height);
  let x = seed * 2654435761;
  for (let i = 0; i < rows.length; i++) {
    if (i % (width + 1) === 0) continue; // filter byte: none
    x = noise ? (Math.imul(x, 1103515245) + 12345) >>> 0 : x;
    rows[i] = noise ? x >>> 24 : (seed * 37 + i) & 0xff;
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(rows, { level: noise ? 0 : 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A JPEG's opening: SOI, an APP0 (JFIF) segment, then a baseline frame header of the given size. */
function jpegHead(width: number, height: number): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.alloc(40, 0x11)]);
}

function riff(chunk: string, payload: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(4 + 8 + payload.length, 4);
  head.write('WEBP', 8, 'latin1');
  const chunkHead = Buffer.alloc(8);
  chunkHead.write(chunk, 0, 'latin1');
  chunkHead.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, chunkHead, payload]);
}

const TEXT_AS_PNG = Buffer.from('this is plain text pretending to be a picture\n'.repeat(20));

const line = (name: string, kind = 'image', mime = 'image/png') => `[${kind} ${mime}, 1 KB: /workspace/group/inbox/${name}]`;
const inboxName = (i: number, base = 'photo.png') => `20250101-120000-a1b2c3-${i}-${base}`;

function stored(text: string, seq = 1): StoredMessage {
  return {
    seq,
    chatId: 'local:t',
    channel: 'local',
    platformId: `p${seq}`,
    senderId: 'u',
    senderName: 'U',
    text,
    sentAt: 0,
    fromAssistant: false,
    engages: true,
  };
}

// --- the pieces ----------------------------------------------------------------------------------------------

describe('what counts as an image', () => {
  test('PNG, JPEG, GIF and the three WebP kinds are known by their bytes, with their size in pixels', () => {
    assert.deepEqual(sniffImage(png(3, 2)), { mediaType: 'image/png', width: 3, height: 2 });
    assert.deepEqual(sniffImage(jpegHead(640, 480)), { mediaType: 'image/jpeg', width: 640, height: 480 });
    const gif = Buffer.concat([Buffer.from('GIF89a', 'latin1'), Buffer.from([0x20, 0x01, 0x10, 0x00]), Buffer.alloc(20)]);
    assert.deepEqual(sniffImage(gif), { mediaType: 'image/gif', width: 288, height: 16 });
    const vp8 = Buffer.concat([Buffer.from([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x90, 0x01, 0x2c, 0x01]), Buffer.alloc(10)]);
    assert.deepEqual(sniffImage(riff('VP8 ', vp8)), { mediaType: 'image/webp', width: 400, height: 300 });
    const bits = (400 - 1) | ((300 - 1) << 14);
    const vp8l = Buffer.concat([Buffer.from([0x2f]), Buffer.from([bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff, bits >>> 24])]);
    assert.deepEqual(sniffImage(riff('VP8L', Buffer.concat([vp8l, Buffer.alloc(10)]))), {
      mediaType: 'image/webp',
      width: 400,
      height: 300,
    });
    const vp8x = Buffer.from([0x10, 0, 0, 0, 0x8f, 0x01, 0x00, 0x2b, 0x01, 0x00]);
    assert.deepEqual(sniffImage(riff('VP8X', vp8x)), { mediaType: 'image/webp', width: 400, height: 300 });
  });

  test('text, an empty file, a bare signature and a truncated header are not images, whatever they are called', () => {
    assert.equal(sniffImage(TEXT_AS_PNG), undefined, 'text named .png');
    assert.equal(sniffImage(Buffer.alloc(0)), undefined, 'empty');
    assert.equal(sniffImage(png(3, 2).subarray(0, 8)), undefined, 'a PNG signature alone');
    assert.equal(sniffImage(png(3, 2).subarray(0, 20)), undefined, 'a PNG cut inside its header');
    assert.equal(sniffImage(Buffer.from([0xff, 0xd8, 0xff, 0xd9])), undefined, 'a JPEG that ends before any frame');
    assert.equal(sniffImage(jpegHead(10, 10).subarray(0, 24)), undefined, 'a JPEG cut inside its frame header');
    assert.equal(sniffImage(Buffer.from('RIFF\0\0\0\0WAVEfmt ', 'latin1')), undefined, 'a WAV is RIFF but not WebP');
    assert.equal(sniffImage(Buffer.from('GIF89', 'latin1')), undefined, 'a GIF signature cut short');
  });
});

describe('the image blocks', () => {
  test('an image becomes a base64 block of exactly its bytes, its media type taken from the bytes', () => {
    const bytes = png(5, 4, 7);
    const made = imageBlock(bytes);
    assert.ok('block' in made, `a PNG is shown: ${JSON.stringify(made)}`);
    assert.equal(made.block.type, 'image');
    assert.equal(made.block.source.type, 'base64');
    assert.equal(made.block.source.media_type, 'image/png');
    assert.ok(Buffer.from(made.block.source.data, 'base64').equals(bytes), 'the base64 decodes to the very bytes');
    const jpeg = imageBlock(jpegHead(20, 10));
    assert.equal('block' in jpeg && jpeg.block.source.media_type, 'image/jpeg');
  });

  test('bytes the API would refuse give a note instead: not an image, over 5 MB as base64, over 8000 pixels', () => {
    assert.deepEqual(imageBlock(TEXT_AS_PNG), { note: '(not shown: not a JPEG, PNG, GIF or WebP image)' });
    const big = Buffer.concat([png(2, 2), Buffer.alloc(MAX_IMAGE_BYTES)]);
    assert.deepEqual(imageBlock(big), { note: `(too large to show, ${(big.length / 1024 / 1024).toFixed(1)} MB)` });
    assert.ok(
      'block' in imageBlock(Buffer.concat([png(2, 2), Buffer.alloc(MAX_IMAGE_BYTES - png(2, 2).length)])),
      'the limit itself is fine',
    );
    assert.ok(Buffer.alloc(MAX_IMAGE_BYTES).toString('base64').length <= 5 * 1024 * 1024, 'the largest image is within 5 MB as base64');
    assert.match(JSON.stringify(imageBlock(png(8001, 1))), /8001×1 pixels/);
    assert.match(JSON.stringify(imageBlock(png(0, 5))), /0×5 pixels/);
  });

  test('a turn is its text alone without images, else the text block first and one block per image', () => {
    assert.equal(promptContent('<messages/>', []), '<messages/>');
    const made = imageBlock(png(1, 1));
    assert.ok('block' in made, 'a 1×1 PNG is shown');
    assert.deepEqual(promptContent('<messages/>', [made.block, made.block]), [
      { type: 'text', text: '<messages/>' },
      made.block,
      made.block,
    ]);
  });

  test('only whole lines ingest writes name a file, under inbox/ with a name ingest makes, each once', () => {
    const ok = inboxName(1);
    const text = [
      'look at this',
      line(ok),
      line(ok),
      line(inboxName(2, 'scan.png'), 'document', 'image/png'),
      line(inboxName(3, 'report.pdf'), 'document', 'application/pdf'),
      line(inboxName(4, 'note.ogg'), 'audio', 'audio/ogg'),
      `see ${line(inboxName(5))}`,
      line('../../../etc/passwd'),
      line(`${inboxName(6)}/../../x`),
      '[image image/png, 1 KB: /workspace/group/other/20250101-120000-a1b2c3-7-x.png]',
      line('photo.png'),
      '[image, 12 B: /workspace/group/inbox/20250101-120000-a1b2c3-8-nomime.jpg]',
    ].join('\n');
    assert.deepEqual(namedImageFiles(text), [ok, inboxName(2, 'scan.png'), '20250101-120000-a1b2c3-8-nomime.jpg']);
  });
});

describe('reading the images a turn names', () => {
  let dir: string;
  let outside: string;
  before(() => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), 'pincer-images-')));
    dir = join(base, 'group');
    outside = join(base, 'outside');
    mkdirSync(join(dir, 'inbox'), { recursive: true });
    mkdirSync(outside);
  });
  after(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

  test('each file is shown or noted, in order; links, text, big files, missing files and the excess are not shown', async () => {
    const real = png(4, 4, 1);
    writeFileSync(join(dir, 'inbox', inboxName(1)), real);
    writeFileSync(join(dir, 'inbox', inboxName(2)), TEXT_AS_PNG);
    const big = png(2000, 2000, 2, true);
    assert.ok(big.length > MAX_IMAGE_BYTES, 'the big PNG is over the limit');
    writeFileSync(join(dir, 'inbox', inboxName(3)), big);
    writeFileSync(join(outside, 'real.png'), png(4, 4, 9));
    symlinkSync(join(outside, 'real.png'), join(dir, 'inbox', inboxName(4)));
    symlinkSync('/etc/passwd', join(dir, 'inbox', inboxName(5)));
    const messages = [
      stored(`first\n${[1, 2, 3].map((i) => line(inboxName(i))).join('\n')}`, 1),
      stored([4, 5, 6, 1].map((i) => line(inboxName(i))).join('\n'), 2),
    ];
    const got = await turnImages(dir, messages);
    assert.equal(got.images.length, 1, 'only the real image inside inbox/');
    assert.ok(Buffer.from(got.images[0]?.source.data ?? '', 'base64').equals(real), 'its bytes');
    assert.equal(got.notShown, 5);
    const text = got.messages.map((m) => m.text).join('\n');
    assert.ok(text.includes(`${line(inboxName(1))} (shown to you as image 1)`), text);
    assert.ok(text.includes(`${line(inboxName(2))} (not shown: not a JPEG, PNG, GIF or WebP image)`), text);
    assert.ok(text.includes(`${line(inboxName(3))} (too large to show, ${(big.length / 1024 / 1024).toFixed(1)} MB)`), text);
    assert.ok(text.includes(`${line(inboxName(4))} (not shown: it is a symbolic link)`), text);
    assert.ok(text.includes(`${line(inboxName(5))} (not shown: it is a symbolic link)`), text);
    assert.ok(text.includes(`${line(inboxName(6))} (not shown: the file is not there)`), text);
    assert.ok(text.startsWith('first\n'), 'the rest of the text is unchanged');
    assert.equal(messages[0]?.text.includes('shown'), false, 'the stored messages are not changed');
  });

  test(`at most ${MAX_TURN_IMAGES} images go into one turn; the rest are named as not shown`, async () => {
    const names = Array.from({ length: 12 }, (_, i) => inboxName(100 + i));
    const images = names.map((n, i) => {
      const bytes = png(6, 6, 20 + i);
      writeFileSync(join(dir, 'inbox', n), bytes);
      return bytes;
    });
    const got = await turnImages(dir, [stored(names.map((n) => line(n)).join('\n'))]);
    assert.equal(got.images.length, MAX_TURN_IMAGES);
    got.images.forEach((b, i) => {
      assert.ok(Buffer.from(b.source.data, 'base64').equals(images[i] ?? Buffer.alloc(0)), `image ${i + 1} is the ${i + 1}th file`);
    });
    assert.equal(got.notShown, 12 - MAX_TURN_IMAGES);
    assert.equal(got.messages[0]?.text.match(/not shown: more than 8 images in one turn/g)?.length, 4);
  });

  test('a group folder that is not there gives no images and keeps the text', async () => {
    const got = await turnImages(join(dir, 'gone'), [stored(line(inboxName(1)))]);
    assert.equal(got.images.length, 0);
    assert.match(got.messages[0]?.text ?? '', /\(not shown: the file is not there\)$/);
  });
});

// --- whole turns through pincer -----------------------------------------------------------------------------

const skip = await sandboxUnavailable();

/** A channel that only hands pincer's own ingest to the test: messages go in as an adapter would send them. */
class CaptureChannel implements Channel {
  readonly name = 'capture';
  readonly maxTextLength = 4000;
  sink: InboundSink | undefined;
  owns(): boolean {
    return false;
  }
  async start(sink: InboundSink): Promise<void> {
    this.sink = sink;
  }
  async send(): Promise<{ platformId: string }> {
    throw new Error('the capture channel sends nothing');
  }
  async stop(): Promise<void> {}
}

/** The image blocks of the newest user turn of a request. */
function imagesOf(req: ModelRequest): Array<{ type: string; media_type: string; data: string }> {
  const last = [...(req.body.messages ?? [])].reverse().find((m) => m.role === 'user');
  if (!Array.isArray(last?.content)) return [];
  return last.content.flatMap((b: { type?: string; source?: { type: string; media_type: string; data: string } }) =>
    b.type === 'image' && b.source ? [b.source] : [],
  );
}

describe('images reach the model through a real turn', { skip }, () => {
  let h: Harness;
  const channel = new CaptureChannel();
  let n = 0;

  before(async () => {
    h = await startHarness({
      channels: [channel],
      script: (req) => (isAgentTurn(req) ? { text: `looked at ${imagesOf(req).length} image(s)` } : { text: 'side' }),
    });
  });
  after(async () => h?.stop());

  /** Sends a message with attachments into the main chat through pincer's ingest; its reply and the request that answered. */
  async function turn(text: string, attachments: InboundAttachment[]): Promise<{ req: ModelRequest; reply: string; seq: number }> {
    const sink = channel.sink;
    assert.ok(sink, 'pincer started the capture channel');
    n += 1;
    const marker = `turn-${n}`;
    const result = await sink.ingest({
      chatId: 'local:main',
      channel: 'local',
      platformId: `images-${n}`,
      senderId: 'local-user',
      senderName: 'Olive',
      text: `${marker}: ${text}`,
      sentAt: Date.now(),
      isGroup: false,
      attachments,
    });
    assert.equal(result.engaged, true, 'the message engages the main group');
    const reply = await h.reply('local:main', String(result.seq), 60_000);
    const req = h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes(marker)).at(0);
    assert.ok(req, `the model was asked about ${marker}`);
    return { req, reply: reply.text, seq: result.seq };
  }

  const prompted = (seq: number) =>
    h.pincer.store.events
      .trace(seq)
      .filter((e) => e.stage === 'prompted')
      .map((e) => e.detail)
      .join(' | ');

  test('an image sent in the chat is in the model request, byte for byte, and still named in the text', async () => {
    const photo = png(32, 24, 3);
    const { req, reply, seq } = await turn('what is in this picture', [{ kind: 'image', mime: 'image/png', name: 'cat.png', data: photo }]);
    const images = imagesOf(req);
    assert.equal(images.length, 1, 'one image block');
    assert.equal(images[0]?.type, 'base64');
    assert.equal(images[0]?.media_type, 'image/png');
    assert.ok(Buffer.from(images[0]?.data ?? '', 'base64').equals(photo), 'the image block decodes to the exact bytes sent');
    const text = lastUserText(req);
    assert.match(text, /\[image image\/png, \d+ B: \/workspace\/group\/inbox\/[\w.-]+-cat\.png\] \(shown to you as image 1\)/);
    assert.equal(reply, 'looked at 1 image(s)');
    assert.match(prompted(seq), /1 image\(s\) attached/);
  });

  test('a file named .png that is really text is named, not attached', async () => {
    const { req, seq } = await turn('and this one', [{ kind: 'image', mime: 'image/png', name: 'fake.png', data: TEXT_AS_PNG }]);
    assert.equal(imagesOf(req).length, 0, 'no image block');
    assert.match(lastUserText(req), /-fake\.png\] \(not shown: not a JPEG, PNG, GIF or WebP image\)/);
    assert.match(prompted(seq), /0 image\(s\) attached \(1 named but not shown\)/);
  });

  test('an image over the API limit is named as too large, not attached', async () => {
    const big = png(2000, 2000, 4, true);
    const { req } = await turn('a big one', [{ kind: 'image', mime: 'image/png', name: 'big.png', data: big }]);
    assert.equal(imagesOf(req).length, 0, 'no image block');
    assert.match(lastUserText(req), new RegExp(`-big\\.png\\] \\(too large to show, ${(big.length / 1024 / 1024).toFixed(1)} MB\\)`));
  });

  test('a link planted in inbox/ is not followed, neither to /etc/passwd nor to a real image outside', async () => {
    const inbox = join(h.home, 'groups', 'main', 'inbox');
    mkdirSync(inbox, { recursive: true });
    const outsideImage = join(h.home, 'outside.png');
    writeFileSync(outsideImage, png(8, 8, 5));
    symlinkSync('/etc/passwd', join(inbox, inboxName(1, 'passwd.png')));
    symlinkSync(outsideImage, join(inbox, inboxName(2, 'outside.png')));
    const text = ['these were left in the inbox', line(inboxName(1, 'passwd.png')), line(inboxName(2, 'outside.png'))].join('\n');
    const { req } = await turn(text, []);
    assert.equal(imagesOf(req).length, 0, 'nothing attached through a link');
    assert.doesNotMatch(JSON.stringify(req.body.messages), /root:x:0:0/, 'passwd is not in the request');
    assert.equal(lastUserText(req).match(/\(not shown: it is a symbolic link\)/g)?.length, 2);
  });

  test(`a turn with 12 images attaches ${MAX_TURN_IMAGES}, the first ones, and names the rest`, async () => {
    const photos = Array.from({ length: 12 }, (_, i) => png(10, 10, 40 + i));
    const attachments = photos.map((data, i): InboundAttachment => ({ kind: 'image', mime: 'image/png', name: `p${i + 1}.png`, data }));
    const { req, reply, seq } = await turn('an album', attachments);
    const images = imagesOf(req);
    assert.equal(images.length, MAX_TURN_IMAGES);
    images.forEach((img, i) => {
      assert.ok(Buffer.from(img.data, 'base64').equals(photos[i] ?? Buffer.alloc(0)), `image ${i + 1} is p${i + 1}.png`);
    });
    const text = lastUserText(req);
    assert.equal(text.match(/\(not shown: more than 8 images in one turn\)/g)?.length, 4, text);
    assert.match(text, /-p12\.png\] \(not shown: more than 8 images/);
    assert.equal(reply, `looked at ${MAX_TURN_IMAGES} image(s)`);
    assert.match(prompted(seq), new RegExp(`${MAX_TURN_IMAGES} image\\(s\\) attached \\(4 named but not shown\\)`));
  });
});
