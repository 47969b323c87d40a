"""A stand-in for GitLab's ``docker:dind`` service in tests/grader/test_nonroot_kit.py:
forwards TCP port 2375 (the service's ``tcp://docker:2375``, TLS off) to the engine's
socket mounted at /engine.sock, byte for byte (the Docker API's upgraded exec and attach
streams included)."""

import asyncio
import sys

SOCKET = "/engine.sock"


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()


async def serve(client_reader, client_writer):
    try:
        engine_reader, engine_writer = await asyncio.open_unix_connection(SOCKET)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, engine_writer), pipe(engine_reader, client_writer))
    for w in (client_writer, engine_writer):
        w.close()


async def main():
    server = await asyncio.start_server(serve, "0.0.0.0", 2375)
    print("listening on 2375", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
