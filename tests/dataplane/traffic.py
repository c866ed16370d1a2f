"""Traffic for the data-plane tests, run inside a lab namespace.

    traffic.py udp DST PORT COUNT SIZE [INTERVAL]   COUNT datagrams of SIZE payload bytes
    traffic.py udp-forever DST PORT SIZE INTERVAL   until killed
    traffic.py tcp-sink PORT                        accept TCP connections, discard data
    traffic.py tcp-send DST PORT BYTES              one connection carrying BYTES
    traffic.py udp-flows DST PORT FLOWS PER [GAP]   PER datagrams on each of FLOWS flows
                                                    (source ports 20000 + i), GAP s apart
    traffic.py udp-replies DST BASE FLOWS SPORT     one datagram from SPORT to each of DST's
                                                    ports BASE + i (the other way of udp-flows)
    traffic.py udp-rate DST PORT RATE SECONDS [FLOWS]  RATE datagrams a second for SECONDS,
                                                    in bursts every 10 ms, round FLOWS
                                                    flows (source ports 21000 + i; default 1)
    traffic.py udp-seq DST PORT FLOWS PER           PER datagrams on each of FLOWS flows
                                                    (source ports 22000 + i), taking the flows
                                                    in turn; each payload is b"seq", the flow
                                                    (2 bytes) and its sequence number (4)
DST may be IPv4 or IPv6. Prints the number of datagrams or bytes sent.
"""
import socket
import sys
import time


def family(dst):
    return socket.AF_INET6 if ":" in dst else socket.AF_INET


def flow_sockets(dst, base, flows):
    """One UDP socket per flow, bound to source ports base + i."""
    out = []
    for i in range(flows):
        s = socket.socket(family(dst), socket.SOCK_DGRAM)
        s.bind(("", base + i))
        out.append(s)
    return out


def main():
    mode = sys.argv[1]
    if mode in ("udp", "udp-forever"):
        dst, port = sys.argv[2], int(sys.argv[3])
        if mode == "udp":
            count, size = int(sys.argv[4]), int(sys.argv[5])
            interval = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
        else:
            count, size, interval = None, int(sys.argv[4]), float(sys.argv[5])
        s = socket.socket(family(dst), socket.SOCK_DGRAM)
        payload = bytes(range(256)) * (size // 256 + 1)
        sent = 0
        while count is None or sent < count:
            s.sendto(payload[:size], (dst, port))
            sent += 1
            if interval:
                time.sleep(interval)
        print(sent)
    elif mode == "udp-flows":
        dst, port, flows, per = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        gap = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
        sent = 0
        for i in range(flows):
            s = socket.socket(family(dst), socket.SOCK_DGRAM)
            s.bind(("", 20000 + i))
            for _ in range(per):
                s.sendto(b"flow", (dst, port))
                sent += 1
            s.close()
            if gap:
                time.sleep(gap)
        print(sent)
    elif mode == "udp-replies":
        dst, base, flows, sport = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        s = socket.socket(family(dst), socket.SOCK_DGRAM)
        s.bind(("", sport))
        for i in range(flows):
            s.sendto(b"reply", (dst, base + i))
        print(flows)
    elif mode == "udp-rate":
        dst, port, rate, seconds = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        flows = int(sys.argv[6]) if len(sys.argv) > 6 else 1
        sockets = flow_sockets(dst, 21000, flows) if flows > 1 else [socket.socket(family(dst), socket.SOCK_DGRAM)]
        start, sent = time.monotonic(), 0
        while (elapsed := time.monotonic() - start) < seconds:
            while sent < rate * elapsed:
                sockets[sent % len(sockets)].sendto(b"burst", (dst, port))
                sent += 1
            time.sleep(0.01)
        print(sent)
    elif mode == "udp-seq":
        dst, port, flows, per = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        sockets = flow_sockets(dst, 22000, flows)
        for seq in range(per):
            for flow, s in enumerate(sockets):
                s.sendto(b"seq" + flow.to_bytes(2, "big") + seq.to_bytes(4, "big"), (dst, port))
        print(flows * per)
    elif mode == "tcp-sink":
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", int(sys.argv[2])))
        srv.listen(8)
        print("ready", flush=True)
        while True:
            conn, _ = srv.accept()
            while conn.recv(1 << 20):
                pass
            conn.close()
    elif mode == "tcp-send":
        dst, port, total = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        s = socket.create_connection((dst, port), timeout=10)
        chunk = b"x" * 65536
        left = total
        while left > 0:
            left -= s.send(chunk[: min(left, len(chunk))])
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        s.close()
        print(total)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
