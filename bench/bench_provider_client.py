"""What the provider call's HTTP client costs per call: `actors.lean_http` (the path
`post_json` takes) beside an aiohttp session (the path before it), in one run.

The provider emulator runs in a child process pinned to CPU 1; this process, pinned to CPU 0,
makes `--concurrency` calls at a time for `--seconds`, whole and streamed, each client in
turn for `--rounds` rounds. Printed: calls a second and this process's CPU per call (the
client's cost: request, response, body; not the emulator's).

    python bench/bench_provider_client.py [--concurrency 1,32] [--seconds 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.http_client import provider_ssl_context  # noqa: E402
from actors.lean_http import LeanPool  # noqa: E402

HEADERS = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def _body(stream: bool) -> bytes:
    message = {"role": "user", "content": "hello"}
    return json.dumps({"model": "gpt-4o-mini", "messages": [message], "stream": stream}).encode()


Call = Callable[[bool], Awaitable[int]]  # one call, whole or streamed: the bytes read


def _lean(url: str) -> Call:
    pool = LeanPool(provider_ssl_context())

    async def call(stream: bool) -> int:
        reply = await pool.post(url, _body(stream), HEADERS, TIMEOUT)
        try:
            if stream:
                return sum([len(block) async for block in reply.aiter_bytes()])
            return len(await reply.aread())
        finally:
            await reply.aclose()

    return call


def _aiohttp(url: str, session: aiohttp.ClientSession) -> Call:
    async def call(stream: bool) -> int:
        async with session.post(url, data=_body(stream), headers=HEADERS) as reply:
            if stream:
                return sum([len(block) async for block in reply.content.iter_any()])
            return len(await reply.read())

    return call


async def _measure(
    call: Call, stream: bool, concurrency: int, seconds: float
) -> tuple[float, float]:
    """Calls a second and CPU µs per call over `seconds` of `concurrency` callers."""
    for _ in range(50):
        await call(stream)  # warm: connections open, code paths hot
    done = 0
    end = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal done
        while time.monotonic() < end:
            await call(stream)
            done += 1

    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return done / wall, cpu / done * 1e6


async def _run(url: str, args: argparse.Namespace) -> None:
    session = aiohttp.ClientSession()
    clients = {"lean_http": _lean(url), "aiohttp": _aiohttp(url, session)}
    print(f"{'client':<10} {'mode':<6} {'C':>3} {'calls/s':>9} {'CPU µs/call':>12}")
    for concurrency in args.concurrency:
        for stream in (False, True):
            for _ in range(args.rounds):
                for name, call in clients.items():
                    rate, cpu = await _measure(call, stream, concurrency, args.seconds)
                    mode = "stream" if stream else "whole"
                    print(f"{name:<10} {mode:<6} {concurrency:>3} {rate:>9.0f} {cpu:>12.1f}")
    await session.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--concurrency", default="1,32", type=lambda v: [int(c) for c in v.split(",")]
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    port = _free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {1}),
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        os.sched_setaffinity(0, {0})
        uvloop.run(_run(f"http://127.0.0.1:{port}/v1/chat/completions", args))  # as the actors
    finally:
        emulator.terminate()
        emulator.wait()


if __name__ == "__main__":
    main()
