// The console's SSE parser against the framing rules the gateway's streams use.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SseParser } from "../src/sse.js";

function parse(...pieces) {
  const frames = [];
  const parser = new SseParser((frame) => frames.push(frame));
  for (const piece of pieces) parser.push(piece);
  return frames;
}

test("frames with ids, types and data", () => {
  const frames = parse('id: 1\nevent: execution_start\ndata: {"a":1}\n\nid: 2\nevent: content_chunk\ndata: {"delta":"Hi"}\n\n');
  assert.deepEqual(frames, [
    { id: "1", event: "execution_start", data: '{"a":1}' },
    { id: "2", event: "content_chunk", data: '{"delta":"Hi"}' },
  ]);
});

test("a frame split anywhere across reads, CRLF and CR line ends", () => {
  const text = "id: 7\r\nevent: usage_update\r\ndata: {\"x\": 1}\r\n\r\nid: 8\revent: error\rdata: {}\r\r";
  for (let cut = 1; cut < text.length; cut++) {
    assert.deepEqual(parse(text.slice(0, cut), text.slice(cut)), [
      { id: "7", event: "usage_update", data: '{"x": 1}' },
      { id: "8", event: "error", data: "{}" },
    ], `cut at ${cut}`);
  }
});

test("heartbeat comments and data-less frames are skipped; data lines join", () => {
  const frames = parse(": heartbeat\n\nevent: noop\n\ndata: one\ndata:two\n\n");
  assert.deepEqual(frames, [{ id: null, event: "message", data: "one\ntwo" }]);
});

test("an unfinished frame is not delivered", () => {
  assert.deepEqual(parse("id: 3\nevent: content_chunk\ndata: {}\n"), []);
});
