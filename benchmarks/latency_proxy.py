"""A TCP proxy on 127.0.0.1 that holds back everything the server sends for a fixed delay.

S3 itself answers a small request in tens of milliseconds; SeaweedFS on loopback answers in
well under one. Between the store and SeaweedFS, this proxy gives every answer the wait of a
request to S3, so that what a wait per request costs a publish, and what requests in flight
win back, can be measured here. Bytes towards the server pass at once; bytes back reach the
client ``delay`` after the proxy read them, in order, so every request waits one delay per
answer (two for a PUT that asks ``Expect: 100-continue``).

Run as ``python -m benchmarks.latency_proxy <listen port> <server port> <delay ms>``; it
prints ``ready`` once it listens. :func:`delayed` starts one for a benchmark.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from databaker_tests.s3_server import free_ports

CHUNK = 1 << 16


@contextmanager
def delayed(server_port: int, delay_ms: float) -> Iterator[int]:
    """A proxy in a process of its own (so that its work does not hold the benchmark's
    interpreter lock) in front of ``server_port``; yields the port to use instead."""
    port = free_ports(1)[0]
    command = [sys.executable, "-m", "benchmarks.latency_proxy", str(port), str(server_port)]
    proxy = subprocess.Popen([*command, str(delay_ms)], stdout=subprocess.PIPE, text=True)
    try:
        if proxy.stdout is None or proxy.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the latency proxy did not start: {' '.join(command)}")
        yield port
    finally:
        # Killed, not asked to end: it keeps nothing, and a process started with SIGTERM
        # ignored (as some launchers start theirs) would never act on the request.
        proxy.kill()
        proxy.wait()
        if proxy.stdout is not None:
            proxy.stdout.close()


async def _towards_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _back_after(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """What the server sends, each piece ``delay`` after it came, in order."""
    due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            at, data = await due.get()
            if not data:
                break
            if (wait := at - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sending = asyncio.create_task(send())
    try:
        while data := await reader.read(CHUNK):
            due.put_nowait((time.monotonic() + delay, data))
    except ConnectionError:
        pass
    due.put_nowait((0.0, b""))
    await asyncio.gather(sending, return_exceptions=True)


async def _serve(listen_port: int, server_port: int, delay: float) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", server_port)
        await asyncio.gather(
            _towards_server(reader, server_writer),
            _back_after(server_reader, writer, delay),
            return_exceptions=True,
        )

    proxy = await asyncio.start_server(connection, "127.0.0.1", listen_port)
    print("ready", flush=True)
    await proxy.serve_forever()


def main(argv: list[str] | None = None) -> None:
    listen_port, server_port, delay_ms = (argv or sys.argv[1:])[:3]
    asyncio.run(_serve(int(listen_port), int(server_port), float(delay_ms) / 1000))


if __name__ == "__main__":
    main()
