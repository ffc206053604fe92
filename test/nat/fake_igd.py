#!/usr/bin/python3
"""A minimal UPnP IGD 1.0 for the NAT tests (Python 3 stdlib only).

Runs inside a test network namespace: an SSDP responder (M-SEARCH on
239.255.255.250:1900, answered by unicast) and an HTTP server with the
device description and a WANIPConnection:1 control URL answering
GetStatusInfo, GetExternalIPAddress, AddPortMapping,
GetSpecificPortMappingEntry and DeletePortMapping with canned SOAP. Every
request is appended to --log, one line each, so the test can assert that
the mapping was made, renewed and deleted.

Usage: fake_igd.py --addr 10.77.1.1 --port 5000 --ext 203.0.113.7 --log FILE
                   [--seconds 60]
"""
import argparse
import http.server
import re
import socket
import struct
import threading
import time

ST_IGD = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
ST_IPC = "urn:schemas-upnp-org:service:WANIPConnection:1"
UUID = "uuid:6e0d7c3e-7a1f-4b5e-9d1e-0a77fa4e0001"

DESC = """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>golemnet test IGD</friendlyName>
<manufacturer>golemnet tests</manufacturer>
<modelName>fake_igd.py</modelName>
<UDN>%(uuid)s</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<friendlyName>WAN device</friendlyName>
<UDN>%(uuid)s-wan</UDN>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>
<controlURL>/ctl/CmnIfCfg</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL>
<SCPDURL>/WANCfg.xml</SCPDURL>
</service></serviceList>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<friendlyName>WAN connection</friendlyName>
<UDN>%(uuid)s-conn</UDN>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL>
<SCPDURL>/WANIPCn.xml</SCPDURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>
"""

ENVELOPE = ('<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>%s</s:Body></s:Envelope>\r\n')

ERRORS = {402: "Invalid Args", 501: "Action Failed", 714: "NoSuchEntryInArray"}

lock = threading.Lock()
mappings = {}  # (ext_port, proto) -> dict


def record(logf, line):
    with lock:
        with open(logf, "a") as f:
            f.write(line + "\n")


def ssdp(addr, http_port, logf, stop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", 1900))
    mreq = struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton(addr))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    s.settimeout(0.5)
    while not stop.is_set():
        try:
            data, peer = s.recvfrom(2048)
        except socket.timeout:
            continue
        text = data.decode("latin-1")
        if not text.startswith("M-SEARCH"):
            continue
        m = re.search(r"^ST:\s*(\S+)", text, re.M | re.I)
        st = m.group(1) if m else ""
        record(logf, "SSDP M-SEARCH st=%s from=%s" % (st, peer[0]))
        if st not in (ST_IGD, "ssdp:all", "upnp:rootdevice"):
            continue
        reply = ("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: %s\r\nUSN: %s::%s\r\nEXT:\r\n"
                 "SERVER: Linux UPnP/1.1 fake_igd/1\r\nLOCATION: http://%s:%d/rootDesc.xml\r\n\r\n"
                 % (st, UUID, st, addr, http_port))
        s.sendto(reply.encode(), peer)


def make_handler(ext, logf):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def send_xml(self, code, body):
            b = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", 'text/xml; charset="utf-8"')
            self.send_header("Content-Length", str(len(b)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b)

        def do_GET(self):
            if self.path == "/rootDesc.xml":
                record(logf, "GET /rootDesc.xml")
                self.send_xml(200, DESC % {"uuid": UUID})
            else:
                self.send_xml(404, "")

        def ok(self, action, args=""):
            self.send_xml(200, ENVELOPE % ('<u:%sResponse xmlns:u="%s">%s</u:%sResponse>'
                                           % (action, ST_IPC, args, action)))

        def fault(self, code):
            self.send_xml(500, ENVELOPE % (
                '<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>'
                '<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode>'
                '<errorDescription>%s</errorDescription></UPnPError></detail></s:Fault>'
                % (code, ERRORS.get(code, "error"))))

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
            sa = self.headers.get("SOAPAction", "").strip('"')
            action = sa.split("#")[-1]
            a = dict(re.findall(r"<(New\w+)>([^<]*)</\1>", body))
            if self.path != "/ctl/IPConn" or not sa.startswith(ST_IPC):
                record(logf, "UNKNOWN %s %s" % (self.path, sa))
                self.fault(401)
                return
            key = (a.get("NewExternalPort"), a.get("NewProtocol"))
            if action == "GetStatusInfo":
                record(logf, "GetStatusInfo")
                self.ok(action, "<NewConnectionStatus>Connected</NewConnectionStatus>"
                                "<NewLastConnectionError>ERROR_NONE</NewLastConnectionError>"
                                "<NewUptime>100</NewUptime>")
            elif action == "GetExternalIPAddress":
                record(logf, "GetExternalIPAddress")
                self.ok(action, "<NewExternalIPAddress>%s</NewExternalIPAddress>" % ext)
            elif action == "AddPortMapping":
                record(logf, "AddPortMapping ext=%s proto=%s int=%s client=%s lease=%s desc=%s" % (
                    key[0], key[1], a.get("NewInternalPort"), a.get("NewInternalClient"),
                    a.get("NewLeaseDuration"), a.get("NewPortMappingDescription")))
                if not key[0] or key[1] not in ("TCP", "UDP"):
                    self.fault(402)
                    return
                with lock:
                    mappings[key] = a
                self.ok(action)
            elif action == "GetSpecificPortMappingEntry":
                record(logf, "GetSpecificPortMappingEntry ext=%s proto=%s" % key)
                with lock:
                    m = mappings.get(key)
                if not m:
                    self.fault(714)
                    return
                self.ok(action, "<NewInternalPort>%s</NewInternalPort><NewInternalClient>%s</NewInternalClient>"
                                "<NewEnabled>1</NewEnabled><NewPortMappingDescription>%s</NewPortMappingDescription>"
                                "<NewLeaseDuration>%s</NewLeaseDuration>"
                        % (m.get("NewInternalPort"), m.get("NewInternalClient"),
                           m.get("NewPortMappingDescription"), m.get("NewLeaseDuration")))
            elif action == "DeletePortMapping":
                with lock:
                    found = mappings.pop(key, None) is not None
                record(logf, "DeletePortMapping ext=%s proto=%s found=%d" % (key[0], key[1], found))
                if found:
                    self.ok(action)
                else:
                    self.fault(714)
            else:
                record(logf, "UNKNOWN action %s" % action)
                self.fault(401)
    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, default=5000)
    ap.add_argument("--ext", default="203.0.113.7")
    ap.add_argument("--log", required=True)
    ap.add_argument("--seconds", type=float, default=60)
    o = ap.parse_args()
    open(o.log, "w").close()
    stop = threading.Event()
    srv = http.server.ThreadingHTTPServer((o.addr, o.port), make_handler(o.ext, o.log))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    threading.Thread(target=ssdp, args=(o.addr, o.port, o.log, stop), daemon=True).start()
    record(o.log, "READY")
    time.sleep(o.seconds)  # bounded life; the test kills it earlier
    stop.set()
    srv.shutdown()


if __name__ == "__main__":
    main()
