"""A TCP relay: ``python -m chorus.relay LISTEN_HOST PORT TARGET_HOST TARGET_PORT``.

``weed mini`` binds all its ports to one address. The stack keeps that address
loopback, so the master, volume and filer never face the network, and carries
only the S3 gateway to a listen address through this relay. Bytes pass
unchanged: S3 signatures, which cover the Host header the client sent, still
verify.
"""

from __future__ import annotations

import asyncio
import sys

CHUNK = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, other: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a half-close reaches the other side as one
    except OSError:
        # One side broke: end both, or the other half would wait forever.
        writer.close()
        other.close()


async def _connection(target: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
    except OSError:
        writer.close()
        return
    try:
        await asyncio.gather(_pipe(reader, upstream_writer, writer), _pipe(upstream_reader, writer, upstream_writer))
    finally:
        writer.close()
        upstream_writer.close()


async def relay(listen: tuple[str, int], target: tuple[str, int]) -> None:
    server = await asyncio.start_server(lambda r, w: _connection(target, r, w), *listen)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    listen_host, listen_port, target_host, target_port = argv
    try:
        asyncio.run(relay((listen_host, int(listen_port)), (target_host, int(target_port))))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
