"""What the call line costs per call and per stream chunk, both ends on one CPU.

The actor's end (`actors.call_line.serve_calls`, an echo method and streams of `--chunks`
chunks, one per turn of its loop) runs in a child process; this process is the replica's end
(`CallLine`), sending `--concurrency` calls at a time, then claiming as many streams at a time.
Both are pinned to CPU 0, as the gateway is in `bench_execute.py`; printed: calls (streams) a
second and the CPU of both processes per call (per chunk).

    python bench/bench_call_line.py [--concurrency 32] [--seconds 5] [--chunks 20]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.call_line import CALL, CallLine, Piping, serve_calls

SECRET = "bench-secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _actor_end(port: Any, chunks: int) -> None:
    """The child: a call line server with an echo method and streams of `chunks` chunks."""
    os.sched_setaffinity(0, {0})

    async def echo(value: int) -> dict[str, Any]:
        return {"value": value}

    def claim(token: str) -> Piping:
        async def piping(writer: asyncio.StreamWriter, framing: Callable[[bytes], bytes]) -> None:
            for i in range(chunks):
                await asyncio.sleep(0)  # chunks come from the provider one turn at a time
                writer.write(framing(b'event: content_chunk\ndata: {"delta": "%d"}\n\n' % i))
                await writer.drain()
            writer.write(framing(b""))

        return piping

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        if line == CALL + SECRET.encode() + b"\n":
            await serve_calls(reader, writer, {"echo": echo}, claim)

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port.value = server.sockets[0].getsockname()[1]
        await asyncio.Event().wait()

    asyncio.run(main())


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def _load(line: CallLine, concurrency: int, seconds: float, streams: bool) -> int:
    done = 0
    stop = time.monotonic() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        while time.monotonic() < stop:
            if streams:
                source = line.claim(f"token-{n}")
                while await source.read(None):
                    pass
            else:
                await line.call("echo", [n])
            done += 1

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return done


async def bench(args: argparse.Namespace, child: multiprocessing.Process, port: int) -> None:
    line = await CallLine.open("127.0.0.1", port, SECRET)
    await _load(line, args.concurrency, 0.5, False)  # warm up
    for streams in (False, True):
        before = _cpu_s(os.getpid()) + _cpu_s(child.pid or 0)
        t0 = time.monotonic()
        done = await _load(line, args.concurrency, args.seconds, streams)
        wall = time.monotonic() - t0
        cpu = _cpu_s(os.getpid()) + _cpu_s(child.pid or 0) - before
        if streams:
            print(
                f"streams C={args.concurrency}: {done / wall:8.1f} streams/s, "
                f"{cpu * 1e6 / (done * args.chunks):6.1f} µs of CPU per chunk (both ends)"
            )
        else:
            print(
                f"calls   C={args.concurrency}: {done / wall:8.1f} calls/s,   "
                f"{cpu * 1e6 / done:6.1f} µs of CPU per call (both ends)"
            )
    line.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--chunks", type=int, default=20)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {0})
    spawn = multiprocessing.get_context("spawn")
    port = spawn.Value("i", 0)
    child = spawn.Process(target=_actor_end, args=(port, args.chunks), daemon=True)
    child.start()
    while not port.value:
        time.sleep(0.05)
    try:
        asyncio.run(bench(args, child, port.value))
    finally:
        child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
