#!/usr/bin/env python3
"""A person on Matrix, driven over stdin/stdout JSON lines, using matrix-nio's
AsyncClient (a real client) for the Matrix skill's integration test.

Usage (with the Python of a venv that has `matrix-nio`, e.g.
$PINCER_TEST_MATRIX_PYTHON):

  python person.py URL USER_ID ACCESS_TOKEN DEVICE_ID

The session is *restored* from an access token (as printed by
`homeserver.py register`); no password login is done.

Reads one JSON command per line on stdin; writes exactly one JSON line per
command on stdout (flushed), in order. Anything else the process or its
libraries print goes to stderr. A failed command answers {"error": "..."}.
EOF on stdin (or {"op":"quit"}) stops the sync loop and exits 0.

Commands ("room" is a room id "!..."):
  {"op":"create_room","invite":["@pincer:localhost"],"direct":false,"name":"Family"}
      -> {"room_id":"!..."}   unencrypted; preset private_chat, or
         trusted_private_chat + is_direct invites when "direct" is true.
         Optional: "topic", "preset" ("private_chat"|"public_chat"|
         "trusted_private_chat") to override.
  {"op":"invite","room":R,"user":"@x:localhost"}     -> {"ok":true}
  {"op":"join","room":R}                              -> {"ok":true} (id or alias)
  {"op":"leave","room":R}                             -> {"ok":true}
  {"op":"send","room":R,"text":"hello"}               -> {"event_id":"$..."}
      Optional "msgtype" (default "m.text").
  {"op":"messages","room":R}
      -> {"messages":[{"sender","body","event_id","msgtype","content",
                       "origin_server_ts"}, ...]}
         every m.room.message event in the room, oldest first, fetched by
         paginating /messages forwards from the start of the room (not from
         what sync happened to see); includes this person's own messages.
  {"op":"wait_message","room":R,"sender":"@pincer:localhost","contains":"hi",
   "after":N,"timeout_ms":10000}
      -> {"message":{...}, "index":I}   the first message at index >= "after"
         (default 0) in the `messages` list matching sender/contains (both
         optional); polls every 100 ms; {"error":"timeout ..."} on timeout.
  {"op":"members","room":R}                           -> {"joined":["@...",...]} (sorted)
  {"op":"typing_seen","room":R}                        -> {"typing":["@pincer:localhost"]}
      Users other than this person ever seen typing in R (m.typing from the
      background sync loop) since this process started. Optional "wait_ms":
      wait up to that long for the list to be non-empty (answers anyway).
  {"op":"typing","room":R,"typing":true,"timeout_ms":30000} -> {"ok":true}
  {"op":"invites"}                 -> {"rooms":["!..."]} pending invites seen by sync
  {"op":"quit"}                    -> {"ok":true}, then exit
"""

import asyncio
import json
import os
import sys
import time
import traceback

# Keep the protocol channel clean: take a private copy of stdout for replies
# and point fd 1 (and sys.stdout) at stderr for everything else.
_REPLY = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

import aiohttp  # noqa: E402
from nio import (  # noqa: E402
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    MessageDirection,
    RoomPreset,
    RoomVisibility,
    TypingNoticeEvent,
)


def reply(obj):
    _REPLY.write(json.dumps(obj) + "\n")
    _REPLY.flush()


class CommandError(Exception):
    pass


def check(resp):
    """Raise CommandError on a nio error response, else return it."""
    if isinstance(resp, ErrorResponse):
        parts = [str(p) for p in (resp.status_code, resp.message) if p]
        raise CommandError(" ".join(parts) or repr(resp))
    return resp


def need(cmd, key):
    if key not in cmd:
        raise CommandError("missing %r" % key)
    return cmd[key]


class Person:
    def __init__(self, url, user_id, token, device_id):
        config = AsyncClientConfig(
            encryption_enabled=False,
            store_sync_tokens=False,
            request_timeout=60,
            # nio retries connection errors forever by default; fail a command
            # after ~3 s instead when the homeserver is gone.
            max_timeouts=5,
            max_timeout_retry_wait_time=1,
        )
        self.client = AsyncClient(url, user_id, device_id=device_id, config=config)
        self.client.restore_login(user_id, device_id, token)
        self.client.add_ephemeral_callback(self._on_typing, TypingNoticeEvent)
        self.typing_seen = {}  # room_id -> set of user ids (never self)
        self.typing_event = asyncio.Event()
        self.sync_task = None
        self.sync_error = None
        self.quitting = False

    async def _on_typing(self, room, event):
        users = [u for u in event.users if u != self.client.user_id]
        if users:
            self.typing_seen.setdefault(room.room_id, set()).update(users)
            self.typing_event.set()

    async def sync_loop(self):
        while True:
            try:
                resp = await self.client.sync(timeout=10000)
                if isinstance(resp, ErrorResponse):
                    self.sync_error = "%s %s" % (resp.status_code, resp.message)
                    await asyncio.sleep(0.5)
                else:
                    self.sync_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep syncing
                self.sync_error = repr(exc)
                await asyncio.sleep(0.5)

    # ---- commands -------------------------------------------------------

    async def op_create_room(self, cmd):
        direct = bool(cmd.get("direct", False))
        preset_name = cmd.get("preset") or (
            "trusted_private_chat" if direct else "private_chat"
        )
        resp = check(
            await self.client.room_create(
                visibility=RoomVisibility.private,
                name=cmd.get("name"),
                topic=cmd.get("topic"),
                is_direct=direct,
                preset=RoomPreset(preset_name),
                invite=list(cmd.get("invite", [])),
            )
        )
        return {"room_id": resp.room_id}

    async def op_invite(self, cmd):
        check(await self.client.room_invite(need(cmd, "room"), need(cmd, "user")))
        return {"ok": True}

    async def op_join(self, cmd):
        check(await self.client.join(need(cmd, "room")))
        return {"ok": True}

    async def op_leave(self, cmd):
        check(await self.client.room_leave(need(cmd, "room")))
        return {"ok": True}

    async def op_send(self, cmd):
        content = {
            "msgtype": cmd.get("msgtype", "m.text"),
            "body": need(cmd, "text"),
        }
        resp = check(
            await self.client.room_send(need(cmd, "room"), "m.room.message", content)
        )
        return {"event_id": resp.event_id}

    async def all_messages(self, room):
        out = []
        token = None  # no `from` + dir=f: start at the beginning of the room
        for _ in range(10000):
            resp = check(
                await self.client.room_messages(
                    room, start=token, direction=MessageDirection.front, limit=100
                )
            )
            for ev in resp.chunk:
                src = getattr(ev, "source", None) or {}
                if src.get("type") != "m.room.message":
                    continue
                content = src.get("content") or {}
                out.append(
                    {
                        "sender": src.get("sender"),
                        "body": content.get("body"),
                        "event_id": src.get("event_id"),
                        "msgtype": content.get("msgtype"),
                        "origin_server_ts": src.get("origin_server_ts"),
                        "content": content,
                    }
                )
            if not resp.chunk or not resp.end or resp.end == token:
                break
            token = resp.end
        return out

    async def op_messages(self, cmd):
        return {"messages": await self.all_messages(need(cmd, "room"))}

    async def op_wait_message(self, cmd):
        room = need(cmd, "room")
        sender = cmd.get("sender")
        contains = cmd.get("contains")
        after = int(cmd.get("after", 0))
        timeout = cmd.get("timeout_ms", 10000) / 1000.0
        deadline = time.monotonic() + timeout
        while True:
            msgs = await self.all_messages(room)
            for i, m in enumerate(msgs):
                if i < after:
                    continue
                if sender is not None and m["sender"] != sender:
                    continue
                if contains is not None and contains not in (m["body"] or ""):
                    continue
                return {"message": m, "index": i}
            if time.monotonic() >= deadline:
                raise CommandError(
                    "timeout after %d ms: no matching message among %d"
                    % (timeout * 1000, len(msgs))
                )
            await asyncio.sleep(0.1)

    async def op_members(self, cmd):
        resp = check(await self.client.joined_members(need(cmd, "room")))
        return {"joined": sorted(m.user_id for m in resp.members)}

    async def op_typing_seen(self, cmd):
        room = need(cmd, "room")
        deadline = time.monotonic() + cmd.get("wait_ms", 0) / 1000.0
        while not self.typing_seen.get(room):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.typing_event.clear()
            try:
                await asyncio.wait_for(self.typing_event.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        return {"typing": sorted(self.typing_seen.get(room, ()))}

    async def op_typing(self, cmd):
        check(
            await self.client.room_typing(
                need(cmd, "room"),
                typing_state=bool(cmd.get("typing", True)),
                timeout=int(cmd.get("timeout_ms", 30000)),
            )
        )
        return {"ok": True}

    async def op_quit(self, cmd):
        self.quitting = True
        return {"ok": True}

    async def op_invites(self, cmd):
        return {"rooms": sorted(self.client.invited_rooms)}

    async def handle(self, line):
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise CommandError("command must be a JSON object")
        except ValueError as exc:
            return {"error": "bad json: %s" % exc}
        except CommandError as exc:
            return {"error": str(exc)}
        op = cmd.get("op")
        fn = getattr(self, "op_%s" % op, None) if isinstance(op, str) else None
        if fn is None:
            return {"error": "unknown op %r" % (op,)}
        try:
            return await fn(cmd)
        except CommandError as exc:
            return {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - never crash on a command
            if not isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError)):
                traceback.print_exc(file=sys.stderr)
            return {"error": "%s: %s" % (type(exc).__name__, exc)}

    async def run(self):
        self.sync_task = asyncio.create_task(self.sync_loop())
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    break
                line = line.strip()
                if not line:
                    continue
                reply(await self.handle(line))
                if self.quitting:
                    break
        finally:
            self.sync_task.cancel()
            try:
                await self.sync_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            await self.client.close()


def main(argv):
    try:
        if len(argv) != 5:
            sys.stderr.write(__doc__)
            return 2
        person = Person(*argv[1:5])
        try:
            asyncio.run(person.run())
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        _REPLY.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
