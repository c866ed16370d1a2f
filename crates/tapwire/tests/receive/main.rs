//! `tapwire receive` end to end: the real binary listens on loopback, the test sends
//! VXLAN datagrams carrying hand-built Ethernet/IPv4/UDP frames (198.18.0.0/15
//! addresses inside, 127.0.0.0/8 outside), stops it with SIGTERM or `--count`, and
//! tshark judges the files. tshark missing is a failure, never a skip.

// Test code: helpers outside #[test] fns panic on purpose with unwrap.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use support::*;

#[test]
fn writes_exact_frames_in_order_with_one_interface_per_source_and_vni() {
    let dir = temp_dir("exact");
    let file = dir.join("mirror.pcapng");
    let before = epoch_secs();
    let rx = start(&["--listen", "127.0.0.1:0", "--write", file.to_str().unwrap()], Stdio::null());
    let tx = sender("127.0.0.1:0", rx.addr);
    let sizes = [60usize, 64, 100, 1514, 61, 9000, 128, 1000];
    let mut sent = Vec::new();
    for i in 0..40u16 {
        let vni = if i % 3 == 0 { 7 } else { 42 };
        let frame = inner_frame(i, sizes[usize::from(i) % sizes.len()]);
        tx.send(&vxlan_datagram(vni, &frame)).unwrap();
        sent.push((vni, frame));
        if i == 10 {
            tx.send(&[0x08, 0, 0, 0, 0]).unwrap(); // shorter than a VXLAN header
        }
        if i == 20 {
            let mut d = vxlan_datagram(42, &inner_frame(999, 80));
            d[0] = 0; // no I flag
            tx.send(&d).unwrap();
        }
    }
    rx.sigterm();
    let (ok, lines) = rx.wait();
    let after = epoch_secs();
    assert!(ok, "exit status not 0: {lines:?}");
    let s = summary(&lines);
    assert_eq!(s["received"], 42, "{lines:?}");
    assert_eq!(s["written"], 40);
    assert_eq!(s["malformed"], 2);
    assert_eq!(s["short"], 1);
    assert_eq!(s["no_i_flag"], 1);

    let got = frames(&file);
    let want: Vec<Vec<u8>> = sent.iter().map(|(_, f)| f.clone()).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "frames differ from what was sent");

    let rows = fields(
        &file,
        &["frame.len", "frame.interface_name", "frame.interface_description", "ip.id", "ip.src", "frame.time_epoch"],
    );
    let mut last = 0.0;
    let mut last_ns = 0u128;
    assert_eq!(rows.len(), sent.len());
    for (i, ((vni, frame), row)) in sent.iter().zip(&rows).enumerate() {
        assert_eq!(row[0], frame.len().to_string());
        assert_eq!(row[1], format!("vni{vni}-127.0.0.1"));
        assert_eq!(row[2], format!("vxlan vni={vni} src=127.0.0.1"));
        assert_eq!(row[3], format!("0x{:04x}", i));
        assert_eq!(row[4], format!("198.18.{}.1", i % 256));
        // Receive time, nanosecond resolution, never going back.
        let t: f64 = row[5].parse().unwrap();
        assert!(t >= before && t <= after && t >= last, "timestamp {t} not in [{before}, {after}]");
        last = t;
        // Each datagram's own kernel receive time: distinct even within one recvmmsg batch
        // (compared in whole nanoseconds; an f64 cannot tell them apart).
        let (secs, frac) = row[5].split_once('.').unwrap();
        let ns = secs.parse::<u128>().unwrap() * 1_000_000_000 + format!("{frac:0<9}")[..9].parse::<u128>().unwrap();
        assert!(ns > last_ns, "frame {i}: {} is not after the previous frame", row[5]);
        last_ns = ns;
    }
    let capinfos = check(Command::new("capinfos").arg("-I").arg(&file).output().unwrap(), "capinfos");
    assert!(capinfos.contains("Number of interfaces in file: 2"), "{capinfos}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn splits_by_source_and_by_vni() {
    for (split, names) in
        [("source", ["src-127.0.0.1.pcapng", "src-127.0.0.2.pcapng"]), ("vni", ["vni-1.pcapng", "vni-2.pcapng"])]
    {
        let dir = temp_dir(&format!("split-{split}"));
        let rx = start(
            &["--listen", "127.0.0.1:0", "--write-dir", dir.to_str().unwrap(), "--split-by", split],
            Stdio::null(),
        );
        let senders = [sender("127.0.0.1:0", rx.addr), sender("127.0.0.2:0", rx.addr)];
        // (source, vni, frame) in send order.
        let mut sent: Vec<(&str, u32, Vec<u8>)> = Vec::new();
        for i in 0..24u16 {
            let s = usize::from(i % 2);
            let vni = 1 + u32::from(i / 2 % 2);
            let frame = inner_frame(i, 60 + usize::from(i) * 10);
            senders[s].send(&vxlan_datagram(vni, &frame)).unwrap();
            sent.push((["127.0.0.1", "127.0.0.2"][s], vni, frame));
        }
        rx.sigterm();
        let (ok, lines) = rx.wait();
        assert!(ok, "{lines:?}");
        assert_eq!(summary(&lines)["written"], 24, "{lines:?}");

        let mut listed: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        listed.sort();
        assert_eq!(listed, names);

        for name in names {
            let file = dir.join(name);
            let belongs = |src: &str, vni: u32| match split {
                "source" => name == format!("src-{src}.pcapng"),
                _ => name == format!("vni-{vni}.pcapng"),
            };
            let want: Vec<&(&str, u32, Vec<u8>)> = sent.iter().filter(|(s, v, _)| belongs(s, *v)).collect();
            // Within one file, frames of one sender keep their order; across the two
            // senders the interleaving is the kernel's, so compare per interface.
            let rows = fields(&file, &["frame.interface_description", "ip.id"]);
            let got_frames = frames(&file);
            assert_eq!(rows.len(), want.len(), "{name}");
            let mut descriptions: Vec<&String> = rows.iter().map(|r| &r[0]).collect();
            descriptions.sort();
            descriptions.dedup();
            let mut want_desc: Vec<String> = want.iter().map(|(s, v, _)| format!("vxlan vni={v} src={s}")).collect();
            want_desc.sort();
            want_desc.dedup();
            assert_eq!(descriptions, want_desc.iter().collect::<Vec<_>>(), "{name}");
            for desc in &want_desc {
                let want_frames: Vec<&Vec<u8>> = want
                    .iter()
                    .filter(|(s, v, _)| &format!("vxlan vni={v} src={s}") == desc)
                    .map(|(_, _, f)| f)
                    .collect();
                let got: Vec<&Vec<u8>> =
                    rows.iter().zip(&got_frames).filter(|(r, _)| &r[0] == desc).map(|(_, f)| f).collect();
                assert!(got == want_frames, "{name}: frames of {desc} differ");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Keys from the network are bounded: past `--split-limit` sources share `src-other`,
/// past 4,096 (source, VNI) pairs a file's frames share one `overflow` interface; every
/// frame is still written, and each overflow is counted.
#[test]
fn spoofed_sources_and_vnis_cannot_grow_files_or_interfaces_without_bound() {
    let dir = temp_dir("bounded");
    let split = dir.join("split");
    let args = ["--listen", "127.0.0.1:0", "--write-dir", split.to_str().unwrap(), "--split-by", "source"];
    let rx = start(&[&args[..], &["--split-limit", "2", "--count", "6"]].concat(), Stdio::null());
    let senders = ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map(|a| sender(&format!("{a}:0"), rx.addr));
    for (n, s) in [0, 1, 2, 0, 2, 1].into_iter().enumerate() {
        senders[s].send(&vxlan_datagram(1, &inner_frame(n as u16, 60))).unwrap();
    }
    let (ok, lines) = rx.wait();
    assert!(ok, "{lines:?}");
    let s = summary(&lines);
    assert_eq!((s["written"], s["split_overflow"], s["files"]), (6, 2, 3), "{lines:?}");
    let rows = fields(&split.join("src-other.pcapng"), &["frame.interface_description", "ip.id"]);
    assert_eq!(rows, [["vxlan vni=1 src=127.0.0.3", "0x0002"], ["vxlan vni=1 src=127.0.0.3", "0x0004"]]);
    assert_eq!(fields(&split.join("src-127.0.0.2.pcapng"), &["ip.id"]), [["0x0001"], ["0x0005"]]);

    let file = dir.join("many-vnis.pcapng");
    let pairs = 4096 + 2;
    let rx = start(
        &["--listen", "127.0.0.1:0", "--write", file.to_str().unwrap(), "--count", &pairs.to_string()],
        Stdio::null(),
    );
    let tx = sender("127.0.0.1:0", rx.addr);
    for vni in 0..pairs {
        tx.send(&vxlan_datagram(vni, &inner_frame(vni as u16, 60))).unwrap();
    }
    let (ok, lines) = rx.wait();
    assert!(ok, "{lines:?}");
    let s = summary(&lines);
    assert_eq!((s["written"], s["interface_overflow"]), (u64::from(pairs), 2), "{lines:?}");
    let names = fields(&file, &["frame.interface_name"]);
    assert_eq!(names.len(), pairs as usize);
    assert_eq!(names[4095], ["vni4095-127.0.0.1"]);
    assert_eq!(names[4096..], [["overflow"], ["overflow"]]);
    let capinfos = check(Command::new("capinfos").arg(&file).output().unwrap(), "capinfos");
    assert!(capinfos.contains("Number of interfaces in file: 4097"), "{capinfos}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--allow-source`: copies from outer sources outside the list are written nowhere,
/// and counted; the list takes CIDRs and bare addresses, and a bad entry is refused.
#[test]
fn only_allowed_sources_are_written_and_the_rest_counted() {
    let dir = temp_dir("allow");
    let file = dir.join("allowed.pcapng");
    let args = ["--listen", "127.0.0.1:0", "--write", file.to_str().unwrap(), "--count", "3"];
    let rx = start(
        &[&args[..], &["--allow-source", "127.0.0.2/32,127.0.0.4", "--allow-source", "10.0.0.0/8"]].concat(),
        Stdio::null(),
    );
    assert!(rx.lines.last().unwrap().contains("from 127.0.0.2/32, 127.0.0.4/32, 10.0.0.0/8"), "{:?}", rx.lines);
    let senders = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"].map(|a| sender(&format!("{a}:0"), rx.addr));
    // Refused ones first: the receiver stops at its third written frame.
    for (n, s) in [0, 2, 0, 1, 2, 3, 1].into_iter().enumerate() {
        senders[s].send(&vxlan_datagram(7, &inner_frame(n as u16, 60))).unwrap();
    }
    let (ok, lines) = rx.wait();
    assert!(ok, "{lines:?}");
    let s = summary(&lines);
    assert_eq!((s["received"], s["written"], s["refused_source"], s["malformed"]), (7, 3, 4, 0), "{lines:?}");
    let rows = fields(&file, &["frame.interface_description", "ip.id"]);
    assert_eq!(
        rows,
        [
            ["vxlan vni=7 src=127.0.0.2", "0x0003"],
            ["vxlan vni=7 src=127.0.0.4", "0x0005"],
            ["vxlan vni=7 src=127.0.0.2", "0x0006"]
        ]
    );

    let out = Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(["receive", "--listen", "127.0.0.1:0", "--stdout", "--allow-source", "198.18.0.0/33"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'198.18.0.0/33' is not a CIDR"), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rotates_by_size_and_stops_at_count() {
    let dir = temp_dir("rotate");
    let base = dir.join("r.pcapng");
    let rx = start(
        &["--listen", "127.0.0.1:0", "--write", base.to_str().unwrap(), "--rotate", "10KB", "--count", "40"],
        Stdio::null(),
    );
    let tx = sender("127.0.0.1:0", rx.addr);
    let sent: Vec<Vec<u8>> = (0..40u16).map(|i| inner_frame(i, 1000)).collect();
    for f in &sent {
        tx.send(&vxlan_datagram(5, f)).unwrap();
    }
    // --count 40 ends the run by itself.
    let (ok, lines) = rx.wait();
    assert!(ok, "{lines:?}");
    let s = summary(&lines);
    assert_eq!(s["written"], 40);

    let mut files = vec![base.clone()];
    for n in 1.. {
        let p = PathBuf::from(format!("{}.{n}", base.display()));
        if !p.exists() {
            break;
        }
        files.push(p);
    }
    assert!(files.len() >= 4, "expected several files, got {files:?}");
    assert_eq!(s["files"], files.len() as u64);
    let record = 32 + 1000; // an Enhanced Packet Block holding a 1000-byte frame
    let mut all = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size <= 10_000, "{} is {size} bytes", f.display());
        if i + 1 < files.len() {
            assert!(size + record > 10_000, "{} could have held one more frame", f.display());
        }
        // Each file stands alone: its own section and interface block.
        let rows = fields(f, &["frame.interface_description"]);
        assert!(rows.iter().all(|r| r[0] == "vxlan vni=5 src=127.0.0.1"));
        all.extend(frames(f));
    }
    assert!(all == sent, "rotated files do not hold the sent frames in order");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn classic_pcap_and_ipv6_listen() {
    let dir = temp_dir("pcap6");
    let file = dir.join("m.pcap");
    let rx = start(
        &[
            "--listen",
            "[::1]:0",
            "--write",
            file.to_str().unwrap(),
            "--format",
            "pcap",
            "--count",
            "3",
            "--workers",
            "2",
        ],
        Stdio::null(),
    );
    assert!(rx.addr.is_ipv6());
    let tx = sender("[::1]:0", rx.addr);
    let sent: Vec<Vec<u8>> = (0..3u16).map(|i| inner_frame(i, 200 + usize::from(i))).collect();
    for f in &sent {
        tx.send(&vxlan_datagram(9, f)).unwrap();
    }
    let (ok, lines) = rx.wait();
    assert!(ok, "{lines:?}");
    assert!(frames(&file) == sent);
    let capinfos = check(Command::new("capinfos").arg("-t").arg("-E").arg(&file).output().unwrap(), "capinfos");
    assert!(capinfos.contains("pcap"), "{capinfos}");
    assert!(capinfos.contains("Ethernet"), "{capinfos}");
    assert!(!capinfos.contains("pcapng"), "{capinfos}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stdout_stream_is_read_live_by_tshark() {
    let mut rx = start(&["--listen", "127.0.0.1:0", "--stdout"], Stdio::piped());
    let stream = rx.child.stdout.take().unwrap();
    let mut ts = tshark()
        .args(["-l", "-r", "-", "-T", "fields", "-e", "frame.len", "-e", "ip.id", "-e"])
        .arg("frame.interface_description")
        .stdin(Stdio::from(stream))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(ts.stdout.take().unwrap());
    let tx = sender("127.0.0.1:0", rx.addr);

    // Two rounds: each round's frames must come out of tshark while the receiver is
    // still running, i.e. the stream is flushed per batch and read live.
    for round in 0..2u16 {
        for i in 0..5u16 {
            let seq = round * 5 + i;
            tx.send(&vxlan_datagram(77, &inner_frame(seq, 100 + usize::from(seq)))).unwrap();
        }
        for i in 0..5u16 {
            let seq = round * 5 + i;
            let line =
                lines.recv_timeout(TIMEOUT).unwrap_or_else(|_| panic!("tshark printed nothing live for frame {seq}"));
            assert_eq!(line, format!("{}\t0x{seq:04x}\tvxlan vni=77 src=127.0.0.1", 100 + seq));
        }
        assert!(rx.child.try_wait().unwrap().is_none(), "receiver exited early");
    }
    rx.sigterm();
    let (ok, stderr) = rx.wait();
    assert!(ok, "{stderr:?}");
    assert_eq!(summary(&stderr)["written"], 10);
    let status = ts.wait().unwrap();
    let mut err = String::new();
    ts.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "tshark failed at end of stream: {err}");
    assert!(lines.recv_timeout(Duration::from_secs(5)).is_err(), "unexpected extra frames");
}

#[test]
fn rejects_conflicting_destinations() {
    let out = Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(["receive", "--listen", "127.0.0.1:0", "--stdout", "--write", "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    let out = Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(["receive", "--listen", "127.0.0.1:0", "--stdout", "--rotate", "1MB"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn dedup_drops_the_second_copy_of_a_packet_mirrored_at_both_ends() {
    let dir = temp_dir("dedup");
    let file = dir.join("mirror.pcapng");
    let rx = start(&["--listen", "127.0.0.1:0", "--write", file.to_str().unwrap(), "--dedup", "50ms"], Stdio::null());
    // Two hosts' agents: one copy as the packet left, one as it arrived a hop later, on
    // different VNIs.
    let (near, far) = (sender("127.0.0.1:0", rx.addr), sender("127.0.0.2:0", rx.addr));
    let mut want = Vec::new();
    for i in 0..20u16 {
        let frame = inner_frame(i, 100);
        near.send(&vxlan_datagram(7, &frame)).unwrap();
        far.send(&vxlan_datagram(8, &routed(&frame))).unwrap();
        want.push(frame);
    }
    // Distinct packets that look alike are all kept: same addresses, another IP ID.
    let alike = inner_frame(300, 100);
    near.send(&vxlan_datagram(7, &alike)).unwrap();
    want.push(alike);
    // Past the window the same packet is new again.
    thread::sleep(Duration::from_millis(200));
    let again = inner_frame(0, 100);
    far.send(&vxlan_datagram(8, &again)).unwrap();
    want.push(again);
    rx.sigterm();
    let (ok, lines) = rx.wait();
    assert!(ok, "{lines:?}");
    let s = summary(&lines);
    assert_eq!((s["received"], s["written"], s["duplicates"]), (42, 22, 20), "{lines:?}");
    assert_eq!(frames(&file), want);
    std::fs::remove_dir_all(&dir).unwrap();
}
