"""ASGI middleware of the produce API."""
from __future__ import annotations

from fastapi.responses import JSONResponse

from pinpipe.poster.deps import Stats


class BodySizeLimit:
    """ASGI middleware: answer 413 as soon as a request body is larger than the limit."""

    def __init__(self, app, limit: int, stats: Stats):
        self.app, self.limit, self.stats = app, limit, stats

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(scope, receive, send)
        if declared is None:
            # A chunked body has no length to check up front: read it here, up to the limit, and hand it on.
            # (Raised from inside the app's own body parsing, the limit would come out as a 400.)
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.limit:
                    return await self._reject(scope, receive, send)
                if not message.get("more_body", False):
                    break
            replayed = False

            async def replay():
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

            return await self.app(scope, replay, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope, receive, send):
        self.stats.errors["too_large"] += 1
        response = JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, status_code=413)
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
