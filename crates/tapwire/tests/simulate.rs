//! End-to-end tests of `tapwire simulate`: build a capture, run the real binary with a
//! configuration file, and judge its output with tshark (which must be installed: the
//! tests fail, never skip, without it) and byte by byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use tapwire_wire::build::{FrameSpec, L4, arp_request};

const CONFIG: &str = r#"{
  "schema": 1, "revision": 3, "network_interface_id": "eni-0000000000000000a",
  "addresses": ["198.18.0.2", "2001:db8::2"], "dns_resolvers": ["198.18.0.53"],
  "sessions": [
    { "session_id": "tms-0000000000000000b", "number": 2, "vni": 202, "enabled": true,
      "target": { "address": "198.18.1.2", "port": 4789 },
      "filter": { "filter_id": "tmf-0000000000000000b", "network_services": ["amazon-dns"],
        "ingress": [ { "rule_id": "tmfr-000000000000000b1", "number": 100, "action": "accept",
                       "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0" } ],
        "egress": [] } },
    { "session_id": "tms-0000000000000000a", "number": 1, "vni": 101, "packet_length": 64, "enabled": true,
      "target": { "address": "198.18.1.2", "port": 4789 },
      "filter": { "filter_id": "tmf-0000000000000000a",
        "ingress": [ { "rule_id": "tmfr-000000000000000a1", "number": 10, "action": "reject", "protocol": 6,
                       "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                       "destination_ports": { "from": 22, "to": 22 } },
                     { "rule_id": "tmfr-000000000000000a2", "number": 20, "action": "accept", "protocol": 6,
                       "source_cidr": "198.18.0.0/24", "destination_cidr": "198.18.0.0/24",
                       "destination_ports": { "from": 0, "to": 1023 } } ],
        "egress": [ { "rule_id": "tmfr-000000000000000a3", "number": 5, "action": "reject", "protocol": 17,
                      "source_cidr": "0.0.0.0/0", "destination_cidr": "198.18.0.53/32" },
                    { "rule_id": "tmfr-000000000000000a4", "number": 10, "action": "accept", "protocol": 17,
                      "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0" } ] } },
    { "session_id": "tms-0000000000000000c", "number": 3, "vni": 303, "packet_length": 100, "enabled": true,
      "target": { "address": "198.18.1.3", "port": 4789 },
      "filter": { "filter_id": "tmf-0000000000000000c",
        "ingress": [ { "rule_id": "tmfr-000000000000000c1", "number": 1, "action": "accept",
                       "source_cidr": "::/0", "destination_cidr": "::/0" } ] } },
    { "session_id": "tms-0000000000000000d", "number": 4, "vni": 404, "enabled": false,
      "target": { "address": "198.18.1.4", "port": 4789 },
      "filter": { "filter_id": "tmf-0000000000000000d",
        "egress": [ { "rule_id": "tmfr-000000000000000d1", "number": 1, "action": "accept",
                      "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0" } ] } }
  ] }"#;

fn v4(a: &str) -> std::net::IpAddr {
    a.parse().unwrap()
}

fn ipv4_frame(src: &str, dst: &str, l4: L4, payload_len: usize) -> Vec<u8> {
    FrameSpec { source: v4(src), destination: v4(dst), l4, payload_len, ..Default::default() }.to_bytes()
}

fn tcp(src: &str, dst: &str, sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    ipv4_frame(src, dst, L4::Tcp { source_port: sport, destination_port: dport }, payload_len)
}

fn udp(src: &str, dst: &str, sport: u16, dport: u16, payload_len: usize) -> Vec<u8> {
    ipv4_frame(src, dst, L4::Udp { source_port: sport, destination_port: dport }, payload_len)
}

/// An input frame and what simulate must do with it: `Some((vni, target, inner_len))`.
struct Case {
    name: &'static str,
    frame: Vec<u8>,
    expect: Option<(u32, &'static str, usize)>,
}

fn cases() -> Vec<Case> {
    let web = tcp("198.18.0.1", "198.18.0.2", 40000, 80, 200);
    let web_again = tcp("198.18.0.1", "198.18.0.2", 40000, 80, 10);
    let tagged = FrameSpec {
        vlan_tags: vec![(0x8100, 100)],
        source: v4("198.18.0.1"),
        destination: v4("198.18.0.2"),
        l4: L4::Tcp { source_port: 40001, destination_port: 8443 },
        payload_len: 30,
        ..Default::default()
    }
    .to_bytes();
    let qinq = FrameSpec {
        vlan_tags: vec![(0x88a8, 7), (0x8100, 200)],
        ..FrameSpec { destination: v4("198.18.0.2"), ..Default::default() }
    }
    .to_bytes();
    let v6 = FrameSpec {
        source: "2001:db8::1".parse().unwrap(),
        destination: "2001:db8::2".parse().unwrap(),
        l4: L4::Tcp { source_port: 40002, destination_port: 443 },
        payload_len: 300,
        ..Default::default()
    }
    .to_bytes();
    let len = |f: &Vec<u8>| f.len();
    vec![
        Case {
            name: "ingress TCP/80: session 1, rule 20, cut to 64",
            expect: Some((101, "198.18.1.2", 64)),
            frame: web,
        },
        Case {
            name: "same flow, short frame: not truncated",
            expect: Some((101, "198.18.1.2", len(&web_again))),
            frame: web_again,
        },
        Case {
            name: "ingress TCP/22: session 1 rejects, session 2 takes the whole frame",
            expect: Some((202, "198.18.1.2", 54 + 40)),
            frame: tcp("198.18.0.1", "198.18.0.2", 40003, 22, 40),
        },
        Case {
            name: "802.1Q ingress: session 2, tag kept",
            expect: Some((202, "198.18.1.2", len(&tagged))),
            frame: tagged,
        },
        Case {
            name: "QinQ ingress: session 1, tags kept, cut to 64",
            expect: Some((101, "198.18.1.2", 64)),
            frame: qinq,
        },
        Case { name: "IPv6 ingress: session 3", expect: Some((303, "198.18.1.3", 100)), frame: v6 },
        Case {
            name: "egress TCP: only the disabled session would take it",
            expect: None,
            frame: tcp("198.18.0.2", "198.18.0.1", 80, 40000, 20),
        },
        Case {
            name: "egress UDP: session 1, cut to 64",
            expect: Some((101, "198.18.1.2", 64)),
            frame: udp("198.18.0.2", "198.18.7.7", 5000, 9999, 30),
        },
        Case {
            name: "egress DNS: session 1 rejects, session 2's amazon-dns takes it",
            expect: Some((202, "198.18.1.2", 42 + 12)),
            frame: udp("198.18.0.2", "198.18.0.53", 5353, 53, 12),
        },
        Case { name: "egress DHCP: never mirrored", expect: None, frame: udp("198.18.0.2", "198.18.0.1", 68, 67, 300) },
        Case {
            name: "ARP: never mirrored",
            expect: None,
            frame: arp_request([2, 0, 0, 0, 0, 1], [198, 18, 0, 1], [198, 18, 0, 2]),
        },
        Case {
            name: "neither to nor from the interface",
            expect: None,
            frame: tcp("198.18.5.5", "198.18.6.6", 1, 80, 0),
        },
    ]
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("simulate-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn timestamp(i: usize) -> Duration {
    Duration::new(1_700_000_000 + i as u64, 123_456_000 + i as u32 * 1000)
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(File::create(path).unwrap()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(timestamp(i), f.len() as u32, f)).unwrap();
    }
}

fn write_pcapng(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapNgWriter::new(File::create(path).unwrap()).unwrap();
    let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0);
    idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
    w.write_pcapng_block(idb).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let epb = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: timestamp(i),
            original_len: f.len() as u32,
            data: Cow::Borrowed(f),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
}

fn run_simulate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tapwire")).arg("simulate").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "simulate failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `tapwire simulate --pcap INPUT --out OUT --config CONFIG`; its report.
fn simulate_with_config(input: &Path, out: &Path, config: &Path) -> String {
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    run_simulate(&["--pcap", &path(input), "--out", &path(out), "--config", &path(config)])
}

fn tshark(pcap: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(pcap).args(["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]);
    cmd.args(["-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "tshark is required for these tests and could not be run ({e}); install it with `apt-get install -y tshark`"
        )
    });
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| l.split('|').map(str::to_owned).collect()).collect()
}

fn read_output(path: &Path) -> Vec<(Duration, Vec<u8>)> {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    assert_eq!(r.header().datalink, DataLink::ETHERNET);
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        out.push((p.timestamp, p.data.into_owned()));
    }
    out
}

/// Checks an output capture against the cases, with tshark and byte by byte.
fn check_output(out: &Path, cases: &[Case]) {
    let expected: Vec<(usize, &Case)> = cases.iter().enumerate().filter(|(_, c)| c.expect.is_some()).collect();
    let copies = read_output(out);
    assert_eq!(copies.len(), expected.len(), "one copy per mirrored frame");
    for ((i, case), (ts, copy)) in expected.iter().zip(&copies) {
        let (_, _, inner_len) = case.expect.unwrap();
        assert_eq!(*ts, timestamp(*i), "{}: input timestamp kept", case.name);
        assert_eq!(copy.len(), 50 + inner_len, "{}: outer 50 bytes + inner", case.name);
        assert_eq!(&copy[50..], &case.frame[..inner_len], "{}: inner frame byte-exact", case.name);
    }

    let rows = tshark(
        out,
        &[
            "vxlan.vni",
            "vxlan.flag_i",
            "ip.src",
            "ip.dst",
            "ip.flags.df",
            "ip.ttl",
            "ip.checksum.status",
            "udp.dstport",
            "udp.srcport",
            "udp.checksum.status",
            "vlan.id",
            "frame.len",
            "ieee8021ad.id",
        ],
    );
    assert_eq!(rows.len(), expected.len());
    let mut flow_ports = Vec::new();
    for ((_, case), row) in expected.iter().zip(&rows) {
        let (vni, target, inner_len) = case.expect.unwrap();
        let outer = |field: &str| field.split(';').next().unwrap_or_default().to_owned();
        assert_eq!(row[0], vni.to_string(), "{}: VNI (tshark decoded VXLAN)", case.name);
        assert_eq!(row[1], "1", "{}: I flag", case.name);
        assert_eq!(outer(&row[2]), "198.18.0.2", "{}: outer source = interface's primary IPv4", case.name);
        assert_eq!(outer(&row[3]), target, "{}: outer destination = target", case.name);
        assert_eq!(outer(&row[4]), "1", "{}: DF", case.name);
        assert_eq!(outer(&row[5]), "64", "{}: TTL", case.name);
        assert_eq!(outer(&row[6]), "1", "{}: outer IP checksum good (1 = good)", case.name);
        assert_eq!(outer(&row[7]), "4789", "{}: VXLAN port", case.name);
        let sport: u16 = outer(&row[8]).parse().unwrap();
        assert!(sport >= 49152, "{}: source port {sport} in the dynamic range", case.name);
        assert_eq!(outer(&row[9]), "1", "{}: outer UDP checksum good", case.name);
        let inner = &case.frame[..inner_len];
        // tshark shows an 802.1ad outer tag as ieee8021ad.id and 802.1Q tags as vlan.id.
        let tci = |at: usize| (u16::from_be_bytes([inner[at], inner[at + 1]]) & 0xfff).to_string();
        let (service_tag, customer_tag) = match (inner.len() > 20, &inner[12..14]) {
            (true, [0x81, 0x00]) => (String::new(), tci(14)),
            (true, [0x88, 0xa8]) => (tci(14), tci(18)),
            _ => (String::new(), String::new()),
        };
        assert_eq!(row[10], customer_tag, "{}: 802.1Q tag as tshark sees it", case.name);
        assert_eq!(row[12], service_tag, "{}: 802.1ad tag as tshark sees it", case.name);
        assert_eq!(row[11], (50 + inner_len).to_string(), "{}: frame length", case.name);
        flow_ports.push(sport);
    }
    assert_eq!(flow_ports[0], flow_ports[1], "one flow keeps one outer source port");
}

#[test]
fn simulate_mirrors_by_the_rules_and_tshark_agrees() {
    let dir = scratch("pcap");
    let cases = cases();
    let frames: Vec<Vec<u8>> = cases.iter().map(|c| c.frame.clone()).collect();
    let (input, config, out) = (dir.join("in.pcap"), dir.join("config.json"), dir.join("out.pcap"));
    write_pcap(&input, &frames);
    std::fs::write(&config, CONFIG).unwrap();
    let report = simulate_with_config(&input, &out, &config);
    check_output(&out, &cases);

    // The report: totals, and per-rule hits (reject rules count the packets they passed on).
    let mirrored = cases.iter().filter(|c| c.expect.is_some()).count();
    assert!(report.contains(&format!("frames read:   {}", cases.len())), "{report}");
    assert!(report.contains("ignored:       2 (not IP: 1, malformed: 0, not to/from the interface: 1)"), "{report}");
    assert!(report.contains(&format!("mirrored:      {mirrored}")), "{report}");
    assert!(report.contains("not mirrored:  2"), "{report}");
    assert!(report.contains("truncated:     4"), "{report}");
    let row = |rule: &str| {
        report.lines().find(|l| l.contains(rule)).unwrap_or_else(|| panic!("no row for {rule}:\n{report}")).to_owned()
    };
    let hits = |rule: &str| -> (String, String, u64) {
        let r = row(rule);
        let cols: Vec<&str> = r.split_whitespace().collect();
        (cols[4].to_owned(), cols[5].to_owned(), cols[6].parse().unwrap())
    };
    assert_eq!(hits("tmfr-000000000000000a1"), ("ingress".into(), "reject".into(), 1));
    assert_eq!(hits("tmfr-000000000000000a2"), ("ingress".into(), "accept".into(), 3));
    assert_eq!(hits("tmfr-000000000000000a3"), ("egress".into(), "reject".into(), 1));
    assert_eq!(hits("tmfr-000000000000000a4"), ("egress".into(), "accept".into(), 1));
    assert_eq!(hits("tmfr-000000000000000b1"), ("ingress".into(), "accept".into(), 2));
    assert_eq!(hits("tmfr-000000000000000c1"), ("ingress".into(), "accept".into(), 1));
    assert_eq!(hits("tmfr-000000000000000d1"), ("egress".into(), "accept".into(), 0));
    assert!(row("amazon-dns").split_whitespace().nth(6) == Some("1"), "{report}");
}

#[test]
fn pcapng_input_gives_the_same_copies() {
    let dir = scratch("pcapng");
    let cases = cases();
    let frames: Vec<Vec<u8>> = cases.iter().map(|c| c.frame.clone()).collect();
    let (input, config, out) = (dir.join("in.pcapng"), dir.join("config.json"), dir.join("out.pcap"));
    write_pcapng(&input, &frames);
    std::fs::write(&config, CONFIG).unwrap();
    simulate_with_config(&input, &out, &config);
    check_output(&out, &cases);
}

#[test]
fn config_is_fetched_from_the_server() {
    // A one-shot HTTP server on loopback standing in for the control plane.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            head.push_str(&line);
            line.clear();
        }
        let mut stream = stream;
        write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{CONFIG}", CONFIG.len()).unwrap();
        head
    });
    let dir = scratch("server");
    // The key the server would have written; simulate signs its fetch with it.
    std::fs::write(
        dir.join("credentials"),
        "[tapwire]\naws_access_key_id = TWAKSIMULATETEST0000\naws_secret_access_key = s3cr3t\nregion = us-east-1\n",
    )
    .unwrap();
    let cases = cases();
    let frames: Vec<Vec<u8>> = cases.iter().map(|c| c.frame.clone()).collect();
    let (input, out) = (dir.join("in.pcap"), dir.join("out.pcap"));
    write_pcap(&input, &frames);
    run_simulate(&[
        "--pcap",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--server",
        &url,
        "--network-interface",
        "eni-0000000000000000a",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let head = server.join().unwrap();
    assert!(head.starts_with("GET /tapwire/v1/network-interfaces/eni-0000000000000000a/config "), "{head}");
    let authorization = head.lines().find(|l| l.to_ascii_lowercase().starts_with("authorization:")).unwrap_or("");
    assert!(authorization.contains("AWS4-HMAC-SHA256 Credential=TWAKSIMULATETEST0000/"), "{head}");
    assert!(authorization.contains("/us-east-1/tapwire/aws4_request") && !head.contains("s3cr3t"), "{head}");
    check_output(&out, &cases);
}

#[test]
fn config_and_server_are_exclusive_and_bad_input_fails() {
    let dir = scratch("args");
    let input = dir.join("in.pcap");
    write_pcap(&input, &[]);
    let status = Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(["simulate", "--pcap", input.to_str().unwrap(), "--out", dir.join("o").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!status.status.success(), "a config source is required");
    let garbage = dir.join("garbage.pcap");
    File::create(&garbage).unwrap().write_all(b"not a capture file at all").unwrap();
    std::fs::write(dir.join("c.json"), CONFIG).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapwire"))
        .args(["simulate", "--pcap", garbage.to_str().unwrap(), "--out", dir.join("o").to_str().unwrap()])
        .args(["--config", dir.join("c.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let mut stderr = String::new();
    out.stderr.as_slice().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("garbage.pcap"), "{stderr}");
}

#[test]
fn simulate_honours_a_sessions_sampling_and_cap_by_the_captures_clock() {
    let dir = scratch("limits");
    let config = r#"{
      "schema": 1, "revision": 1, "network_interface_id": "eni-0000000000000000a", "addresses": ["198.18.0.2"],
      "sessions": [
        { "session_id": "tms-0000000000000000a", "number": 1, "vni": 1, "enabled": true,
          "target": { "address": "198.18.1.2", "port": 4789 }, "limits": { "max_pps": 1000 },
          "filter": { "filter_id": "tmf-0000000000000000a",
            "ingress": [ { "rule_id": "tmfr-000000000000000a1", "number": 1, "action": "accept", "protocol": 17,
                           "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                           "destination_ports": { "from": 1000, "to": 1000 } } ] } },
        { "session_id": "tms-0000000000000000b", "number": 2, "vni": 2, "enabled": true,
          "target": { "address": "198.18.1.2", "port": 4789 }, "limits": { "sample_packets": 2 },
          "filter": { "filter_id": "tmf-0000000000000000b",
            "ingress": [ { "rule_id": "tmfr-000000000000000b1", "number": 1, "action": "accept", "protocol": 17,
                           "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                           "destination_ports": { "from": 2000, "to": 2000 } } ] } } ] }"#;
    // 10,000 packets a second for 2 s to the capped session, then 100 to the sampled one.
    let (input, config_path, out) = (dir.join("in.pcap"), dir.join("config.json"), dir.join("out.pcap"));
    let mut w = PcapWriter::new(File::create(&input).unwrap()).unwrap();
    for i in 0..20_000u64 {
        let f = udp("198.18.0.9", "198.18.0.2", 5000, 1000, 10);
        w.write_packet(&PcapPacket::new(Duration::from_micros(1_700_000_000_000_000 + i * 100), f.len() as u32, &f))
            .unwrap();
    }
    for i in 0..100u64 {
        let f = udp("198.18.0.9", "198.18.0.2", 5000 + i as u16, 2000, 10);
        w.write_packet(&PcapPacket::new(Duration::from_secs(1_700_000_003), f.len() as u32, &f)).unwrap();
    }
    drop(w);
    std::fs::write(&config_path, config).unwrap();
    let report = simulate_with_config(&input, &out, &config_path);
    let columns = |session: &str| -> Vec<u64> {
        let row = report.lines().rfind(|l| l.starts_with(session)).unwrap().to_owned();
        row.split_whitespace().skip(3).map(|c| c.parse().unwrap()).collect()
    };
    // MATCHED, BYTES, COPIED, TRUNCATED, SAMPLED-OUT, RATE-LIMITED.
    let capped = columns("tms-0000000000000000a");
    let passed = 20_000 - capped[5];
    // 2 s of traffic at 1,000 a second, plus the bucket's one second.
    assert!((2_000..=3_000).contains(&passed), "{passed} passed the cap\n{report}");
    assert_eq!(capped[4], 0);
    let sampled = columns("tms-0000000000000000b");
    assert_eq!((sampled[0], sampled[4], sampled[5]), (100, 50, 0), "{report}");
    assert!(report.contains(&format!("mirrored:      {}", passed + 50)), "{report}");
    assert!(report.contains(&format!("rate limited:  {}", capped[5])), "{report}");
    assert_eq!(read_output(&out).len() as u64, passed + 50);
}

#[test]
fn simulate_sends_a_sensor_groups_copies_where_the_agent_would() {
    let dir = scratch("groups");
    let members = r#"[ { "network_interface_id": "eni-00000000000000001", "target": { "address": "198.18.1.1" } },
                       { "network_interface_id": "eni-00000000000000002", "target": { "address": "198.18.1.2" } } ]"#;
    let config = format!(
        r#"{{ "schema": 1, "revision": 1, "network_interface_id": "eni-0000000000000000a", "addresses": ["198.18.0.2"],
      "sessions": [
        {{ "session_id": "tms-0000000000000000a", "number": 1, "vni": 1, "enabled": true,
          "target": {{ "address": "198.18.1.1" }}, "group": {{ "mode": "flow-hash", "members": {members} }},
          "filter": {{ "filter_id": "tmf-0000000000000000a",
            "ingress": [ {{ "rule_id": "tmfr-000000000000000a1", "number": 1, "action": "accept", "protocol": 17,
                           "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                           "destination_ports": {{ "from": 1000, "to": 1000 }} }} ],
            "egress": [ {{ "rule_id": "tmfr-000000000000000a2", "number": 1, "action": "accept", "protocol": 17,
                           "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                           "source_ports": {{ "from": 1000, "to": 1000 }} }} ] }} }},
        {{ "session_id": "tms-0000000000000000b", "number": 2, "vni": 2, "enabled": true,
          "target": {{ "address": "198.18.1.1" }}, "group": {{ "mode": "replicate", "members": {members} }},
          "filter": {{ "filter_id": "tmf-0000000000000000b",
            "ingress": [ {{ "rule_id": "tmfr-000000000000000b1", "number": 1, "action": "accept", "protocol": 17,
                           "source_cidr": "0.0.0.0/0", "destination_cidr": "0.0.0.0/0",
                           "destination_ports": {{ "from": 2000, "to": 2000 }} }} ] }} }} ] }}"#
    );
    // 40 flows both ways to the flow-hash session, 10 datagrams to the replicated one.
    let mut frames = Vec::new();
    for i in 0..40u16 {
        frames.push(udp("198.18.0.9", "198.18.0.2", 3000 + i, 1000, 10));
        frames.push(udp("198.18.0.2", "198.18.0.9", 1000, 3000 + i, 10));
    }
    frames.extend((0..10).map(|i| udp("198.18.0.9", "198.18.0.2", 4000 + i, 2000, 10)));
    let (input, config_path, out) = (dir.join("in.pcap"), dir.join("config.json"), dir.join("out.pcap"));
    write_pcap(&input, &frames);
    std::fs::write(&config_path, config).unwrap();
    let report = simulate_with_config(&input, &out, &config_path);
    assert!(report.contains("mirrored:      90") && report.contains("copies:        100"), "{report}");
    let rows = tshark(&out, &["ip.dst", "vxlan.vni", "udp.srcport", "udp.dstport"]);
    // Each flow-hash flow (keyed by its non-1000 port) at one member, both ways; both
    // members used; each replicated datagram at both.
    let mut member_of = std::collections::BTreeMap::new();
    let mut replicated = std::collections::BTreeMap::<String, usize>::new();
    for r in &rows {
        // Outer then inner, for addresses and ports.
        let member = r[0].split(';').next().unwrap().to_owned();
        let inner = |f: &str| f.rsplit(';').next().unwrap().to_owned();
        if r[1] == "1" {
            let (sport, dport) = (inner(&r[2]), inner(&r[3]));
            let flow = if sport == "1000" { dport } else { sport };
            let was = member_of.insert(flow.clone(), member.clone());
            assert!(was.is_none_or(|w| w == member), "flow {flow} at two members");
        } else {
            *replicated.entry(member).or_default() += 1;
        }
    }
    assert_eq!(member_of.len(), 40);
    assert_eq!(member_of.values().collect::<std::collections::BTreeSet<_>>().len(), 2, "both members take flows");
    assert_eq!(replicated.values().copied().collect::<Vec<_>>(), [10, 10]);
}
