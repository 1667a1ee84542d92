/** A Server-Sent Events parser over a web `ReadableStream` (browsers and Node alike). */

export interface SSEMessage {
  id: string | null;
  event: string;
  data: string;
}

/** The messages of an SSE body; `onActivity` is called on every chunk received (comments,
 * i.e. heartbeats, included), so a caller can time the silence; `signal` stops reading. */
export async function* parseSSE(
  body: ReadableStream<Uint8Array>,
  onActivity: () => void = () => {},
  signal?: AbortSignal,
): AsyncGenerator<SSEMessage> {
  const reader = body.getReader();
  const stop = () => reader.cancel(signal?.reason).catch(() => {});
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", stop, { once: true });
  const decoder = new TextDecoder();
  let buffer = "";
  let id: string | null = null;
  let event = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onActivity();
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) !== -1) {
        if (newline === buffer.length - 1 && buffer.endsWith("\r")) break; // a CRLF may be split
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data.length || event) yield { id, event: event || "message", data: data.join("\n") };
          id = null;
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "id") id = value;
        else if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    reader.cancel().catch(() => {});
  }
}
