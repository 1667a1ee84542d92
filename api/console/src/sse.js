// Server-sent events from a fetch() body: the gateway's streams are POSTs with headers,
// which EventSource cannot send, so frames are parsed here (the WHATWG rules: `id`,
// `event`, `data` lines, comments ignored, a blank line ends a frame).

/** Feeds text chunks; calls `onEvent({id, event, data})` for each whole frame. */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.skipLF = false; // the last read ended in CR: a LF opening the next one is its pair
    this.frame = { id: null, event: "message", data: [] };
  }

  push(text) {
    if (this.skipLF && text.startsWith("\n")) text = text.slice(1);
    this.skipLF = false;
    this.buffer += text;
    let end;
    while ((end = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, end);
      let width = 1;
      if (this.buffer[end] === "\r") {
        if (this.buffer[end + 1] === "\n") width = 2;
        else if (end + 1 === this.buffer.length) this.skipLF = true;
      }
      this.buffer = this.buffer.slice(end + width);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      const { id, event, data } = this.frame;
      if (data.length) this.onEvent({ id, event, data: data.join("\n") });
      this.frame = { id: null, event: "message", data: [] };
      return;
    }
    if (line.startsWith(":")) return; // a heartbeat comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") this.frame.id = value;
    else if (field === "event") this.frame.event = value;
    else if (field === "data") this.frame.data.push(value);
  }
}

/** Reads a streamed response to its end, parsing frames; resolves when the body ends
 * (rejects when the connection breaks). */
export async function readEvents(response, onEvent) {
  const parser = new SseParser(onEvent);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parser.push(decoder.decode(value, { stream: true }));
  }
  parser.push(decoder.decode());
}
