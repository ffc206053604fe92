"""Resource transfer from Python (issue 19; docs/transfer.md): share a file on
one node, fetch it on another as an async iterator of progress events, a
malformed CID, a provider without the resource, cancel and resume."""

from __future__ import annotations

import os

import pytest

import golemnet

from conftest import Nodes, aio

pytestmark = pytest.mark.skipif(not hasattr(golemnet, "Fetch"), reason="no transfer")


@aio(60)
async def test_share_and_fetch_with_progress_events(tmp_path):
    src = tmp_path / "data.bin"
    data = os.urandom(5 * 256 * 1024 + 333)
    src.write_bytes(data)
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new(listen=False)
        cid = await a.share(str(src))
        assert cid.startswith("bafk")
        out = tmp_path / "out.bin"
        seen = []
        async for ev in b.fetch(cid, str(out), [a.addrs[0]], progress_interval=0.05):
            assert isinstance(ev, golemnet.TransferEvent)
            seen.append(ev.type)
        assert seen[-1] == "done" and "peer_up" in seen and "progress" in seen, seen
        assert out.read_bytes() == data
        assert not (tmp_path / "out.bin.part.state").exists()
        # the same again: an existing file is replaced, the result is the same
        done = await b.fetch(cid, str(out), [a.addrs[0]]).wait()
        assert done.status == 0 and done.bytes_total == len(data)
        assert done.bytes_received == len(data) and done.bytes_resumed == 0


@aio(60)
async def test_fetch_errors(tmp_path):
    src = tmp_path / "x"
    src.write_bytes(b"hello")
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new(listen=False)
        cid = await a.share(str(src))
        with pytest.raises(golemnet.NetworkError):
            await a.share(str(tmp_path / "missing"))
        other = await b.share(str(src))  # b shares too: same content, same CID
        assert other == cid
        with pytest.raises(golemnet.ParseError):  # reported by the iterator
            await b.fetch("not-a-cid", str(tmp_path / "y"), [a.addrs[0]]).wait()
        # a provider without the CID: NOT_FOUND
        missing = "bafk2bzaceb66br7fjksnucowtoc35mrssi6qb3zzbyv7s4sqaahmkb5y347gg"
        c = await ns.new()
        with pytest.raises(golemnet.NotFoundError) as ei:
            await b.fetch(missing, str(tmp_path / "z"), [c.addrs[0]]).wait()
        assert ei.value.event.type == "done"  # type: ignore[attr-defined]


@aio(60)
async def test_cancel_then_resume(tmp_path):
    src = tmp_path / "big"
    with open(src, "wb") as f:
        f.truncate(128 << 20)  # sparse: fast to make, hashed like any file
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new(listen=False)
        cid = await a.share(str(src))
        out = tmp_path / "big.out"
        f = b.fetch(cid, str(out), [a.addrs[0]], memory_chunks=4, progress_interval=0.02)
        with pytest.raises(golemnet.CanceledError):
            async for ev in f:
                if ev.type == "progress" and ev.bytes_done > 0:
                    f.cancel()
        assert f.result is not None and f.result.bytes_done > 0
        assert (tmp_path / "big.out.part.state").exists() and not out.exists()
        done = await b.fetch(cid, str(out), [a.addrs[0]]).wait()
        # what was verified before the cancel was committed, and not fetched again
        assert done.bytes_resumed == f.result.bytes_done, (done, f.result)
        assert done.bytes_received == done.bytes_total - done.bytes_resumed
        assert os.path.getsize(out) == 128 << 20


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _frame(body: bytes) -> bytes:
    return _varint(len(body)) + body


def _cid_bytes(cid: str) -> bytes:
    import base64
    t = cid[1:].upper()
    return base64.b32decode(t + "=" * (-len(t) % 8))


async def _frames(st, n_max: int = 16):
    """Reads frames until the stream ends: [(type, body)]."""
    data = await st.read_all(limit=4 << 20)
    out = []
    i = 0
    while i < len(data) and len(out) < n_max:
        ln, shift = 0, 0
        while True:
            b = data[i]
            i += 1
            ln |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append((data[i], data[i + 1:i + ln]))
        i += ln
    return out


@aio(60)
async def test_limits_on_the_wire(tmp_path):
    """A requester over the bounds (docs/protocols/transfer.md 6.3): a WANT
    beyond the last chunk, more than 32 chunks outstanding, a frame longer
    than the bound. Each gets ERROR (PROTOCOL 2 or LIMIT 3) and the end of
    its stream; the provider keeps serving others."""
    src = tmp_path / "f"
    src.write_bytes(os.urandom(40 * 256 * 1024))  # 40 chunks
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new(listen=False)
        cid = await a.share(str(src))
        ch = await b.dial(a.addrs[0])
        get = _frame(b"\x01" + _cid_bytes(cid))
        cases = [
            (_frame(b"\x04" + _varint(1) + _varint(40) + _varint(1)), 2),   # chunk 40 of 0..39
            (_frame(b"\x04" + _varint(1) + _varint(0) + _varint(33)), 3),   # 33 > window 32
            (_varint(2 << 20) + b"\x04", 3),                                # 2 MiB frame
        ]
        for bad, code in cases:
            st = await ch.open_stream("/golem/transfer/1.0.0")
            await st.write(get + bad)
            frames = await _frames(st)
            types = [t for t, _ in frames]
            assert types[0] == 2 and 8 in types, frames  # MANIFEST ..., ERROR
            err = dict(frames)[8]
            assert err[0] == code, (bad, frames)
            await st.close()
        out = tmp_path / "ok"
        done = await b.fetch(cid, str(out), [a.addrs[0]]).wait()
        assert done.status == 0 and out.read_bytes() == src.read_bytes()


@aio(60)
async def test_one_download_per_path_and_a_node_without_the_component(tmp_path):
    src = tmp_path / "s"
    with open(src, "wb") as f:
        f.truncate(32 << 20)
    async with Nodes() as ns:
        a = await ns.new()
        b = await ns.new(listen=False)
        cid = await a.share(str(src))
        out = str(tmp_path / "o")
        first = b.fetch(cid, out, [a.addrs[0]], memory_chunks=4)
        with pytest.raises(golemnet.ExistsError):  # a download to this path runs
            await b.fetch(cid, out, [a.addrs[0]]).wait()
        done = await first.wait()
        assert done.status == 0 and os.path.getsize(out) == 32 << 20
        # a node that leaves the component out: no transfer API, no service
        c = await ns.new(protocol_components="id")
        with pytest.raises(golemnet.NotSupportedError):
            await c.share(str(src))
        with pytest.raises(golemnet.NegotiationError):
            ch = await b.dial(c.addrs[0])
            await ch.open_stream("/golem/transfer/1.0.0")


@aio(60)
async def test_silent_provider_times_out(tmp_path):
    """A provider that takes the stream and never answers: the requester's
    first-answer timeout (10 s, transfer.md 6.5) drops it."""
    async with Nodes() as ns:
        silent = await ns.new(protocol_components="id")  # no transfer component

        async def never(stream):
            await stream.read_all()

        await silent.set_handler("/golem/transfer/1.0.0", never)
        b = await ns.new(listen=False)
        cid = "bafk2bzaceb66br7fjksnucowtoc35mrssi6qb3zzbyv7s4sqaahmkb5y347gg"
        events = []
        with pytest.raises(golemnet.UnreachableError):
            async for ev in b.fetch(cid, str(tmp_path / "t"), [silent.addrs[0]]):
                events.append(ev)
        downs = [e for e in events if e.type == "peer_down"]
        assert downs and isinstance(golemnet.error_from_code(downs[0].status),
                                    golemnet.TimeoutError), events
        assert downs and "in time" in (downs[0].detail or ""), events
