"""An incremental Server-Sent Events parser (the WHATWG rules this API needs)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SSEMessage:
    """One dispatched event: `event` (default "message"), `data`, and `id` if it had one."""

    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass
class SSEParser:
    """Feed it text as it arrives (`feed`); it returns the events completed so far.

    Lines may end in LF, CR LF or CR and may be split anywhere across chunks; comments
    (`: heartbeat`) are counted in `comments` (the heartbeat clock), never returned.
    """

    comments: int = 0
    _buffer: str = ""
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None
    _has_fields: bool = False

    def feed(self, text: str) -> list[SSEMessage]:
        """Parse `text` (any slice of the stream) and return the events it completed."""
        self._buffer += text
        out: list[SSEMessage] = []
        while True:
            cut = -1
            for i, ch in enumerate(self._buffer):
                if ch == "\n" or ch == "\r":
                    cut = i
                    break
            if cut < 0:
                return out
            if self._buffer[cut] == "\r":
                if cut + 1 >= len(self._buffer):
                    return out  # a CR at the end: wait to see whether an LF follows
                step = 2 if self._buffer[cut + 1] == "\n" else 1
            else:
                step = 1
            line, self._buffer = self._buffer[:cut], self._buffer[cut + step :]
            message = self._line(line)
            if message is not None:
                out.append(message)

    def _line(self, line: str) -> SSEMessage | None:
        if not line:
            if not self._has_fields:
                return None
            message = SSEMessage(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data, self._id, self._has_fields = "", [], None, False
            return message
        if line.startswith(":"):
            self.comments += 1
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id = value
        else:
            return None  # `retry` and unknown fields are ignored
        self._has_fields = True
        return None
