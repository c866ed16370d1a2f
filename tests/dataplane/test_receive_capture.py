"""`tapwire receive --capture IFACE` reads the copies from capture rings on the sensor's
interface instead of a socket, and writes the same file: the same interfaces (outer
source, VNI) and the same frames in the same order as the socket path, for datagrams of
every size and both outer families. An outer fragment, which a capture cannot put back
together, is counted and skipped; nothing answers the sender with ICMP."""
import struct

from lab import BIN, PYTHON, sh, wait_for
from test_dedup import summary

# VXLAN datagrams of a fixed content, sent from the peer to the sensor: inner frames of
# several lengths on two VNIs, then one datagram too big for the link (fragmented).
SEND = r"""
import socket, struct, sys
dst, family = sys.argv[1], socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 40000))
def vxlan(vni, inner):
    return struct.pack("!II", 0x08000000, vni << 8) + inner
if sys.argv[2] == "big":
    s.sendto(vxlan(9, bytes(14) + bytes(range(256)) * 12), (dst, 4789))
for i in range(60):
    inner = bytes([2, 0, 0, 0, 0, i % 256, 2, 0, 0, 0, 1, 0, 8, 0]) + bytes((i + j) % 256 for j in range(40 + 23 * i))
    s.sendto(vxlan(42 + i % 2, inner), (dst, 4789))
print(61 if sys.argv[2] == "big" else 60)
"""


def pcapng(path):
    """(interface descriptions by ID, [(interface ID, frame bytes)]) of a pcapng file."""
    data = path.read_bytes()
    interfaces, frames, at = [], [], 0
    while at + 12 <= len(data):
        kind, length = struct.unpack_from("<II", data, at)
        body = data[at + 8:at + length - 4]
        if kind == 1:  # interface description: its options, name and description
            options, o = {}, 8
            while o + 4 <= len(body):
                code, size = struct.unpack_from("<HH", body, o)
                if code == 0:
                    break
                options[code] = body[o + 4:o + 4 + size]
                o += 4 + (size + 3) // 4 * 4
            interfaces.append((options.get(2), options.get(3)))
        elif kind == 6:  # enhanced packet: interface, timestamps, lengths, data
            interface, _, _, captured, _ = struct.unpack_from("<IIIII", body, 0)
            frames.append((interface, body[20:20 + captured]))
        at += length
    return interfaces, frames


def receive(env, name, *extra, count, listen="0.0.0.0:4789"):
    out = env.tmp / f"{name}.pcapng"
    log = env.tmp / f"{name}.log"
    proc = env.lab.spawn("sens", BIN, "receive", "--listen", listen, "--write", str(out),
                         "--count", str(count), *extra, stderr=open(log, "w"))
    wait_for(lambda: "listening on" in log.read_text(), what=f"{name} ready")
    return proc, out, log


def icmp_unreachable_sent(env):
    snmp = env.lab.run("sens", "cat", "/proc/net/snmp").splitlines()
    names, values = [l.split() for l in snmp if l.startswith("Icmp:")][:2]
    return int(dict(zip(names, values))["OutDestUnreachs"])


def test_capture_writes_what_the_socket_path_writes(mirror_env):
    env = mirror_env
    sens = env.lab.ip["sens"]
    proc, socket_file, _ = receive(env, "socket", count=61)
    env.lab.run("peer", PYTHON, "-c", SEND, sens, "big")
    wait_for(lambda: proc.poll() is not None, timeout=15, what="the socket receiver to write 61 frames")

    icmp_before = icmp_unreachable_sent(env)
    proc, capture_file, log = receive(env, "capture", "--capture", "eth0", "--workers", "2", count=60)
    env.lab.run("peer", PYTHON, "-c", SEND, sens, "big")
    wait_for(lambda: proc.poll() is not None, timeout=15, what="the capture receiver to write 60 frames")
    assert proc.returncode == 0, log.read_text()

    by_socket, by_capture = pcapng(socket_file), pcapng(capture_file)
    # The socket path got the big datagram reassembled: the capture skipped it.
    assert len(by_socket[1]) == 61 and len(by_capture[1]) == 60
    # Interfaces carry their description (source and VNI), which the comparison covers.
    assert by_socket[0][by_socket[1][0][0]][1] is not None
    skipped_big = [(by_socket[0][i], f) for i, f in by_socket[1][1:]]
    assert [(by_capture[0][i], f) for i, f in by_capture[1]] == skipped_big
    s = summary(log)
    assert s["fragmented"] == 1 and s["written"] == 60 and s["ring_drops"] == 0, s
    # The port was held: the sensor answered none of the datagrams with ICMP.
    assert icmp_unreachable_sent(env) == icmp_before


def test_capture_reads_ipv6_copies(mirror_env):
    env = mirror_env
    # The lab gives the peer an IPv6 address; the sensor gets one beside it.
    sensor_v6 = f"2001:db8:{env.lab.n:x}::3"
    sh("ip", "-n", env.lab.ns["sens"], "addr", "add", f"{sensor_v6}/64", "dev", "eth0", "nodad")
    proc, out, log = receive(env, "capture6", "--capture", "eth0", count=60, listen="[::]:4789")
    env.lab.run("peer", PYTHON, "-c", SEND, sensor_v6, "small")
    wait_for(lambda: proc.poll() is not None, timeout=15, what="the capture receiver to write 60 frames")
    interfaces, frames = pcapng(out)
    assert len(frames) == 60 and proc.returncode == 0, log.read_text()
    # Each interface is named after its outer source, the peer's IPv6 address.
    peer = env.lab.ip6["peer"].encode()
    assert all(peer in b"".join(x or b"" for x in interfaces[i]) for i, _ in frames), interfaces
    assert summary(log)["fragmented"] == 0


def test_capture_for_one_address_skips_the_port_on_the_others(mirror_env):
    env = mirror_env
    sens = env.lab.ip["sens"]
    other = f"198.18.{env.lab.n}.30"  # a second address of the sensor, same port
    sh("ip", "-n", env.lab.ns["sens"], "addr", "add", f"{other}/24", "dev", "eth0")
    proc, out, log = receive(env, "one-address", "--capture", "eth0", count=60, listen=f"{sens}:4789")
    env.lab.run("peer", PYTHON, "-c", SEND, other, "small")
    env.lab.run("peer", PYTHON, "-c", SEND, sens, "small")
    wait_for(lambda: proc.poll() is not None, timeout=15, what="the capture receiver to write 60 frames")
    assert proc.returncode == 0, log.read_text()
    s = summary(log)
    # What a socket bound to the address would never get is counted, not written.
    assert (s["written"], s["received"], s["other_destination"]) == (60, 60, 60), s
    _, frames = pcapng(out)
    assert [f[1][5] for f in frames] == list(range(60))
