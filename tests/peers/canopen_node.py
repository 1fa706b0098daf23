#!/usr/bin/env python3
"""An independent CANopen device for takt's tests: python-canopen's LocalNode on SocketCAN.

It answers SDO (expedited and segmented, python-canopen's own server), follows NMT commands,
sends a boot-up message and heartbeats, and prints one line per event on stdout so a test
can check what takt did to it:

    READY node=5
    NMT state=OPERATIONAL
    WRITE 0x6040:00 0600

Runs until --duration seconds pass (or it is killed).
"""
import argparse
import struct
import sys
import time

import canopen
from canopen import objectdictionary as od


def var(name, index, sub, data_type, value, access="rw"):
    v = od.ODVariable(name, index, sub)
    v.data_type = data_type
    v.access_type = access
    v.default = value
    v.value = value
    return v


def dictionary(node_id, heartbeat_ms):
    d = od.ObjectDictionary()
    d.node_id = node_id
    # 0x1000 device type: CiA 402 drive (profile 402 = 0x0192), servo (0x0002 in the high word).
    d.add_object(var("Device type", 0x1000, 0, od.UNSIGNED32, 0x00020192, "ro"))
    d.add_object(var("Error register", 0x1001, 0, od.UNSIGNED8, 0, "ro"))
    # 0x1008 is longer than 4 bytes, so reading it takes a segmented upload.
    d.add_object(var("Manufacturer device name", 0x1008, 0, od.VISIBLE_STRING, f"takt peer drive {node_id}", "const"))
    d.add_object(var("Producer heartbeat time", 0x1017, 0, od.UNSIGNED16, heartbeat_ms))
    identity = od.ODRecord("Identity object", 0x1018)
    identity.add_member(var("Number of entries", 0x1018, 0, od.UNSIGNED8, 4, "const"))
    identity.add_member(var("Vendor-ID", 0x1018, 1, od.UNSIGNED32, 0x0000_0A5E, "ro"))
    identity.add_member(var("Product code", 0x1018, 2, od.UNSIGNED32, 402, "ro"))
    identity.add_member(var("Revision number", 0x1018, 3, od.UNSIGNED32, 0x0001_0002, "ro"))
    identity.add_member(var("Serial number", 0x1018, 4, od.UNSIGNED32, 1000 + node_id, "ro"))
    d.add_object(identity)
    d.add_object(var("Controlword", 0x6040, 0, od.UNSIGNED16, 0))
    d.add_object(var("Statusword", 0x6041, 0, od.UNSIGNED16, 0x0250, "ro"))
    d.add_object(var("Target position", 0x607A, 0, od.INTEGER32, 0))
    # A long writable string, so writing it takes a segmented download.
    d.add_object(var("Test string", 0x2000, 0, od.VISIBLE_STRING, ""))
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iface", default="vcan0")
    ap.add_argument("--node", type=int, default=5)
    ap.add_argument("--heartbeat-ms", type=int, default=100)
    ap.add_argument("--duration", type=float, default=30.0)
    args = ap.parse_args()

    def say(line):
        print(line, flush=True)

    network = canopen.Network()
    network.connect(interface="socketcan", channel=args.iface)
    node = canopen.LocalNode(args.node, dictionary(args.node, args.heartbeat_ms))
    network.add_node(node)

    def on_write(index, subindex, od, data):
        say(f"WRITE 0x{index:04X}:{subindex:02X} {bytes(data).hex()}")

    node.add_write_callback(on_write)

    def boot():
        # Initialisation: boot-up message, then pre-operational with heartbeats (CiA 301).
        node.nmt.send_command(0x81)
        node.nmt.send_command(0x80)

    def on_nmt(can_id, data, timestamp):
        if len(data) != 2:
            return
        cmd, target = struct.unpack_from("BB", data)
        if target not in (0, args.node):
            return
        if cmd in (0x81, 0x82):
            boot()
        say(f"NMT state={node.nmt.state}")

    # Subscribed after the LocalNode's own handler, so the state is already updated.
    network.subscribe(0, on_nmt)
    boot()
    say(f"READY node={args.node}")
    time.sleep(args.duration)
    network.disconnect()


if __name__ == "__main__":
    sys.exit(main())
