#!/usr/bin/env python3
"""golemnet uTP <-> libtorrent (python3-libtorrent) on 127.0.0.1 (issue 16).

A libtorrent session with only uTP enabled serves a one-file torrent. Over
golemnet's uTP transport (the test-only tool utp_pipe, env GN_UTP_PIPE):

1. golemnet dials libtorrent and sends a BitTorrent handshake; libtorrent's
   handshake comes back (protocol string, our info hash, a "-LT" peer id)
   and libtorrent lists our peer id among its peers.
2. libtorrent dials golemnet (connect_peer to utp_pipe's listener): its
   handshake arrives with the info hash and a "-LT" peer id; our handshake
   goes back and libtorrent lists our peer id.

Prints TAP. Skips (1..0 # SKIP) when python3-libtorrent is missing:
install it with `apt-get install -y python3-libtorrent`.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

try:
    import libtorrent as lt
except ImportError:
    print("1..0 # SKIP python3-libtorrent not installed (apt-get install -y python3-libtorrent)")
    sys.exit(0)

PIPE = os.environ.get("GN_UTP_PIPE")
if not PIPE or not os.path.exists(PIPE):
    print("1..0 # SKIP GN_UTP_PIPE not set (built without -Dutp?)")
    sys.exit(0)

PSTR = b"\x13BitTorrent protocol"
OUR_ID = b"-GN0001-" + b"utpinterop01"
assert len(OUR_ID) == 20


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def handshake(info_hash):
    # reserved: 0x10 in byte 5 (extension protocol) like libtorrent's
    return PSTR + bytes([0, 0, 0, 0, 0, 0x10, 0, 0]) + info_hash + OUR_ID


def check_handshake(data, info_hash):
    if len(data) < 68:
        return "short: %d bytes" % len(data)
    if data[:20] != PSTR:
        return "protocol string %r" % data[:20]
    if data[28:48] != info_hash:
        return "info hash %s" % data[28:48].hex()
    if not data[48:51] == b"-LT":
        return "peer id %r" % data[48:68]
    return None


def sees_our_id(handle, deadline):
    while time.time() < deadline:
        for p in handle.get_peer_info():
            pid = bytes(p.pid.to_bytes()) if hasattr(p.pid, "to_bytes") else bytes.fromhex(str(p.pid))
            if pid == OUR_ID:
                return True
        time.sleep(0.05)
    return False


def main():
    work = tempfile.mkdtemp(prefix="gn_utp_lt_")
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, "hello.bin"), "wb") as f:
        f.write(os.urandom(32768))
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(data_dir, "hello.bin"))
    ct = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, data_dir)
    ti = lt.torrent_info(lt.bdecode(lt.bencode(ct.generate())))
    info_hash = bytes.fromhex(str(ti.info_hashes().v1))
    port = free_udp_port()
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_outgoing_tcp": False, "enable_incoming_tcp": False,
        "enable_outgoing_utp": True, "enable_incoming_utp": True,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "allow_multiple_connections_per_ip": True,
        # plaintext BitTorrent: libtorrent would otherwise open its outgoing
        # connections with the MSE/PE obfuscation handshake
        "out_enc_policy": 2, "in_enc_policy": 2,  # pe_disabled
    })
    p = lt.add_torrent_params()
    p.ti = ti
    p.save_path = data_dir
    h = ses.add_torrent(p)
    for _ in range(100):  # checking the files: bounded
        if h.status().state == lt.torrent_status.seeding:
            break
        time.sleep(0.05)
    hs_file = os.path.join(work, "hs.bin")
    with open(hs_file, "wb") as f:
        f.write(handshake(info_hash))

    print("1..4")
    failed = 0

    # 1: golemnet dials libtorrent
    proc = subprocess.Popen([PIPE, "dial", "/ip4/127.0.0.1/udp/%d/utp" % port, hs_file, "68",
                             "1500"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = sees_our_id(h, time.time() + 10)
    out, err = proc.communicate(timeout=30)
    why = check_handshake(out, info_hash) if proc.returncode == 0 else \
        "utp_pipe exit %d: %s" % (proc.returncode, err.decode(errors="replace").strip())
    if why:
        failed += 1
        print("not ok 1 - golemnet dials libtorrent: handshake back\n# %s" % why)
    else:
        print("ok 1 - golemnet dials libtorrent: handshake back (%d bytes, peer id %s)"
              % (len(out), out[48:56].decode(errors="replace")))
    print(("ok" if seen else "not ok") + " 2 - libtorrent saw our peer id (golemnet dialled)")
    failed += 0 if seen else 1

    # 2: libtorrent dials golemnet
    proc = subprocess.Popen([PIPE, "listen", "/ip4/127.0.0.1/udp/0/utp", hs_file, "68", "1500"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stderr.readline().decode().strip()
    lport = int(line.split("/udp/")[1].split("/")[0]) if line.startswith("LISTEN") else 0
    if lport:
        h.connect_peer(("127.0.0.1", lport))
    seen = bool(lport) and sees_our_id(h, time.time() + 10)
    out, err = proc.communicate(timeout=30)
    why = (check_handshake(out, info_hash) if proc.returncode == 0 else
           "utp_pipe exit %d: %s %s" % (proc.returncode, line, err.decode(errors="replace").strip()))
    if why:
        failed += 1
        print("not ok 3 - libtorrent dials golemnet: its handshake arrives\n# %s" % why)
    else:
        print("ok 3 - libtorrent dials golemnet: its handshake arrives (%d bytes)" % len(out))
    print(("ok" if seen else "not ok") + " 4 - libtorrent accepted our handshake (golemnet listened)")
    failed += 0 if seen else 1
    del ses
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
