"""Records every VXLAN datagram a sensor interface receives, one JSON line each.

Run inside the sensor namespace: `python3 sniff.py IFACE[,IFACE…] OUTFILE`. For each received IPv4
UDP datagram to port 4789 (and each IPv4 fragment, which must never appear) it writes
{"t": arrival time, "src", "sport", "len" (IP total length), "df", "frag" (MF or offset set),
"vni", "inner": hex of the inner frame}. Writes "ready" to stdout once listening.
"""
import json
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main():
    ifaces, path = sys.argv[1].split(","), sys.argv[2]
    sockets = []
    for iface in ifaces:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        s.bind((iface, 0))
        sockets.append(s)
    print("ready", flush=True)
    with open(path, "w", buffering=1) as out:
        while True:
            ready, _, _ = select.select(sockets, [], [])
            for s in ready:
                record(s, out)


def record(s, out):
    frame, addr = s.recvfrom(65535)
    now = time.time()
    if addr[2] == PACKET_OUTGOING or len(frame) < 34:
        return
    if struct.unpack("!H", frame[12:14])[0] != 0x0800:
        return
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    flags_off = struct.unpack("!H", ip[6:8])[0]
    frag = bool(flags_off & 0x2000) or (flags_off & 0x1FFF) != 0
    if ip[9] != 17:
        return
    rec = {"t": now, "src": socket.inet_ntoa(ip[12:16]), "len": total, "df": bool(flags_off & 0x4000),
           "frag": frag}
    if (flags_off & 0x1FFF) == 0:
        udp = ip[ihl:]
        sport, dport = struct.unpack("!HH", udp[:4])
        if dport != 4789 and not frag:
            return
        rec["sport"] = sport
        if not frag and len(udp) >= 16:
            rec["vni"] = int.from_bytes(udp[12:15], "big")
            rec["inner"] = udp[16:total - ihl].hex()
    out.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
