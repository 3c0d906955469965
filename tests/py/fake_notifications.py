#!/usr/bin/python3
"""A small org.freedesktop.Notifications server for tests, on the session
bus named by DBUS_SESSION_BUS_ADDRESS (a private bus the test started).

Run it with Debian's /usr/bin/python3 (python3-dbus, python3-gi):

    fake_notifications.py RECORD TRIGGER [--no-actions] [--markup]

- Every call is appended to RECORD as one JSON line: `{"method": "Notify",
  "id", "replaces_id", "app_name", "summary", "body", "actions", "hints",
  "expire_timeout"}`, `{"method": "CloseNotification", "id"}`,
  `{"method": "GetCapabilities"}`. The first line is `{"method": "ready"}`,
  written once the bus name is owned.
- A test asks for a signal by writing JSON lines to TRIGGER (polled every
  50 ms, consumed when read): `{"action": "approve", "id": 3}` emits
  `ActionInvoked(3, "approve")`; `{"dismiss": 3}` emits
  `NotificationClosed(3, 2)` as when the user dismisses it.
- `--no-actions` leaves "actions" out of the capabilities; `--markup`
  adds "body-markup".

CloseNotification emits `NotificationClosed(id, 3)` as the specification
says. The server exits on SIGTERM or when its bus goes away.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


class Server(dbus.service.Object):
    def __init__(self, bus: dbus.Bus, record: Path, actions: bool, markup: bool) -> None:
        super().__init__(bus, PATH)
        self.record = record
        self.caps = ["body"] + (["actions"] if actions else []) + (["body-markup"] if markup else [])
        self.next_id = 1

    def write(self, entry: dict) -> None:
        with self.record.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    @dbus.service.method(IFACE, in_signature="", out_signature="as")
    def GetCapabilities(self) -> list[str]:
        self.write({"method": "GetCapabilities"})
        return self.caps

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout):  # type: ignore[no-untyped-def]
        if replaces_id:
            nid = int(replaces_id)
        else:
            nid = self.next_id
            self.next_id += 1
        self.write(
            {
                "method": "Notify",
                "id": nid,
                "replaces_id": int(replaces_id),
                "app_name": str(app_name),
                "app_icon": str(app_icon),
                "summary": str(summary),
                "body": str(body),
                "actions": [str(a) for a in actions],
                "hints": {str(k): str(v) for k, v in hints.items()},
                "expire_timeout": int(expire_timeout),
            }
        )
        return dbus.UInt32(nid)

    @dbus.service.method(IFACE, in_signature="u", out_signature="")
    def CloseNotification(self, nid):  # type: ignore[no-untyped-def]
        self.write({"method": "CloseNotification", "id": int(nid)})
        self.NotificationClosed(dbus.UInt32(nid), dbus.UInt32(3))

    @dbus.service.method(IFACE, in_signature="", out_signature="ssss")
    def GetServerInformation(self):  # type: ignore[no-untyped-def]
        return ("latch-fake", "latch-tests", "1", "1.2")

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, nid, reason):  # type: ignore[no-untyped-def]
        pass

    @dbus.service.signal(IFACE, signature="us")
    def ActionInvoked(self, nid, action):  # type: ignore[no-untyped-def]
        pass


def main() -> int:
    record, trigger = Path(sys.argv[1]), Path(sys.argv[2])
    actions = "--no-actions" not in sys.argv[3:]
    markup = "--markup" in sys.argv[3:]
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    loop = GLib.MainLoop()
    server = Server(bus, record, actions, markup)
    name = dbus.service.BusName(IFACE, bus, do_not_queue=True)

    def poll() -> bool:
        if trigger.exists():
            text = trigger.read_text()
            trigger.unlink()
            for line in text.splitlines():
                if not line.strip():
                    continue
                ask = json.loads(line)
                if "action" in ask:
                    server.ActionInvoked(dbus.UInt32(ask["id"]), ask["action"])
                elif "dismiss" in ask:
                    server.NotificationClosed(dbus.UInt32(ask["dismiss"]), dbus.UInt32(2))
        return True

    GLib.timeout_add(50, poll)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    bus.call_on_disconnection(lambda _conn: loop.quit())
    server.write({"method": "ready", "name": str(name.get_name())})
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
