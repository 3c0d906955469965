"""Another program on the session bus that emits `ActionInvoked` for a
Latch notification, as any process of the user's can. Run by test_desktop.py.

    /usr/bin/python3 spoof_action.py BUS_ADDRESS NOTIFICATION_ID ACTION
"""

from __future__ import annotations

import sys

import dbus
import dbus.lowlevel


def main() -> int:
    address, nid, action = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    bus = dbus.bus.BusConnection(address)
    msg = dbus.lowlevel.SignalMessage(
        "/org/freedesktop/Notifications", "org.freedesktop.Notifications", "ActionInvoked"
    )
    msg.append(dbus.UInt32(nid), action, signature="us")
    bus.send_message(msg)
    bus.flush()
    print(bus.get_unique_name(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
