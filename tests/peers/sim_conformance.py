#!/usr/bin/env python3
"""Conformance of a simulated takt drive, checked by an independent CANopen implementation:
python-canopen's RemoteNode (SDO client, NMT) over python-can's SocketCAN backend.

Against `takt sim serve ... --iface vcan0`, for one drive node it:
  - sends NMT enter pre-operational;
  - reads 0x1000 device type, 0x1018 identity, 0x1008 name (segmented), 0x6041;
  - checks an SDO abort for a missing object (0x06020000);
  - writes 0x6060 = 1 and the controlword shutdown / switch on / enable operation
    (0x06, 0x07, 0x0F), checking the statusword after each (0x21, 0x23, 0x27 under 0x6F);
  - runs a profile-position move through SDO (0x607A target, controlword new set-point bit 4,
    set-point acknowledge bit 12, target reached bit 10) and checks 0x6064 near the target.

Prints one "PASS ..." line per check and exits 0, or prints "FAIL ..." and exits 1.
"""
import argparse
import struct
import sys
import time

import canopen


def fail(message):
    print("FAIL " + message, flush=True)
    sys.exit(1)


def u32(data):
    return struct.unpack("<I", data.ljust(4, b"\0")[:4])[0]


def i32(data):
    return struct.unpack("<i", data[:4])[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--iface", default="vcan0")
    p.add_argument("--node", type=int, default=1)
    p.add_argument("--target", type=int, default=20000)
    args = p.parse_args()

    network = canopen.Network()
    network.connect(interface="socketcan", channel=args.iface)
    try:
        node = canopen.RemoteNode(args.node, canopen.ObjectDictionary())
        network.add_node(node)
        # A TCG-emulated guest is slow: give the server time to answer.
        node.sdo.RESPONSE_TIMEOUT = 2.0

        node.nmt.state = "PRE-OPERATIONAL"
        time.sleep(0.1)
        print("PASS nmt pre-operational sent", flush=True)

        device_type = u32(node.sdo.upload(0x1000, 0))
        if device_type != 0x00020192:
            fail("0x1000 = 0x%08X, expected 0x00020192 (CiA 402 servo drive)" % device_type)
        print("PASS 0x1000 device type 0x%08X" % device_type, flush=True)

        count = node.sdo.upload(0x1018, 0)[0]
        identity = [u32(node.sdo.upload(0x1018, k)) for k in range(1, count + 1)]
        if count != 4 or identity[0] != 0x0074616B:
            fail("0x1018 identity %r" % identity)
        print("PASS 0x1018 identity " + " ".join("0x%08X" % v for v in identity), flush=True)

        name = node.sdo.upload(0x1008, 0).decode()
        if name != "takt simulated servo drive":
            fail("0x1008 name %r" % name)
        print("PASS 0x1008 segmented upload %r" % name, flush=True)

        try:
            node.sdo.upload(0x2FFF, 0)
            fail("reading 0x2FFF did not abort")
        except canopen.SdoAbortedError as e:
            if e.code != 0x06020000:
                fail("0x2FFF aborted with 0x%08X, expected 0x06020000" % e.code)
        print("PASS abort 0x06020000 for a missing object", flush=True)

        def statusword():
            return struct.unpack("<H", node.sdo.upload(0x6041, 0)[:2])[0]

        def wait_status(mask, value, seconds):
            deadline = time.monotonic() + seconds
            sw = statusword()
            while sw & mask != value:
                if time.monotonic() > deadline:
                    fail("statusword 0x%04X never matched 0x%04X/0x%04X" % (sw, mask, value))
                time.sleep(0.01)
                sw = statusword()
            return sw

        sw = statusword()
        if sw & 0x4F != 0x40:
            fail("statusword 0x%04X after boot, expected switch on disabled" % sw)
        print("PASS 0x6041 switch on disabled 0x%04X" % sw, flush=True)

        node.sdo.download(0x6060, 0, struct.pack("<b", 1))
        for cw, expected, state in ((0x06, 0x21, "ready to switch on"),
                                    (0x07, 0x23, "switched on"),
                                    (0x0F, 0x27, "operation enabled")):
            node.sdo.download(0x6040, 0, struct.pack("<H", cw))
            sw = wait_status(0x6F, expected, 2.0)
            print("PASS controlword 0x%02X -> %s (0x%04X)" % (cw, state, sw), flush=True)

        node.sdo.download(0x607A, 0, struct.pack("<i", args.target))
        node.sdo.download(0x6040, 0, struct.pack("<H", 0x1F))
        wait_status(0x1000, 0x1000, 2.0)
        node.sdo.download(0x6040, 0, struct.pack("<H", 0x0F))
        print("PASS new set-point acknowledged", flush=True)
        sw = wait_status(0x0400, 0x0400, 10.0)
        position = i32(node.sdo.upload(0x6064, 0))
        # Target reached means within the position window 0x6067 (0.1 mm = 100 counts).
        if abs(position - args.target) > 100:
            fail("0x6064 = %d after the move, expected %d" % (position, args.target))
        print("PASS target reached 0x%04X, 0x6064 = %d" % (sw, position), flush=True)
    finally:
        network.disconnect()
    print("ALL PASSED", flush=True)


if __name__ == "__main__":
    main()
