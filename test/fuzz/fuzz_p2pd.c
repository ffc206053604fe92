/*
 * Fuzzes golemnet-p2pd's sans-I/O core (ipc/p2pd/p2pd.c) the way a control
 * connection drives it: the input is a byte stream cut into reads by byte 0
 * and fed to the request framing (core's gni_lp_reader bounded at
 * GNI_P2PD_REQ_MAX); each complete frame is decoded. Checks: decoding
 * succeeds or fails with one of the documented codes and a message; a
 * decoded request stays within every bound; the responses the server would
 * build from it encode and decode back (peer, addresses, protocol).
 */
#include "p2pd.h"
#include "p2pd.pb-c.h"

#include "gni.h"
#include "golemnet/err.h"
#include "golemnet/log.h"
#include "golemnet/multiformats.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t *body_of(const gni_p2pd_frame *f, size_t *len)
{
    uint64_t v = 0;
    int pl = gn_varint_decode(f->data, f->len, &v);
    if (pl <= 0 || v != f->len - (size_t)pl)
        abort();
    *len = (size_t)v;
    return f->data + pl;
}

static void check_request(const gni_p2pd_req *r)
{
    if (r->naddrs > GNI_P2PD_ADDRS_MAX || r->nprotos > GNI_P2PD_PROTOS_MAX ||
        r->key_len > GNI_P2PD_KEY_MAX || r->value_len > GNI_P2PD_VALUE_MAX ||
        r->count > GNI_P2PD_PROVIDERS_MAX || r->timeout_s < 1 ||
        r->timeout_s > GNI_P2PD_TIMEOUT_MAX_S || strlen(r->tag) > GNI_P2PD_TAG_MAX)
        abort();
    for (size_t i = 0; i < r->nprotos; i++) {
        size_t l = strlen(r->protos[i]);
        if (l == 0 || l >= GN_PROTOCOL_ID_MAX)
            abort();
    }
    if ((r->op == GNI_P2PD_CONNECT || r->op == GNI_P2PD_STREAM_OPEN ||
         r->op == GNI_P2PD_DISCONNECT) &&
        r->peer.len == 0)
        abort();
    if (r->op == GNI_P2PD_STREAM_HANDLER && (!r->handler_addr || r->nprotos == 0))
        abort();

    /* what the server answers with these fields */
    gni_p2pd_frame f;
    const char *proto = r->nprotos ? r->protos[0] : "/p";
    int rc = gni_p2pd_stream_info(&r->peer, r->naddrs ? r->addrs[0] : r->handler_addr, proto,
                                  true, &f);
    if (rc == GN_ENOMEM)
        return;
    if (rc < 0)
        abort();
    size_t len = 0;
    const uint8_t *b = body_of(&f, &len);
    Gnp2pd__Response *resp = gnp2pd__response__unpack(NULL, len, b);
    if (!resp || !resp->streaminfo || strcmp(resp->streaminfo->proto, proto) != 0 ||
        resp->streaminfo->peer.len != r->peer.len ||
        (r->peer.len && memcmp(resp->streaminfo->peer.data, r->peer.bytes, r->peer.len) != 0))
        abort();
    gnp2pd__response__free_unpacked(resp, NULL);
    gn_free(f.data);

    gn_router_peer p;
    memset(&p, 0, sizeof p);
    p.id = r->peer;
    p.addrs = (gn_multiaddr *const *)r->addrs;
    p.naddrs = r->naddrs;
    gn_slice v = gn_slice_of(r->key, r->key_len);
    rc = gni_p2pd_dht(GNI_P2PD_DHT_VALUE, &p, &v, false, &f);
    if (rc == GN_ENOMEM)
        return;
    if (rc < 0)
        abort();
    b = body_of(&f, &len);
    Gnp2pd__DHTResponse *d = gnp2pd__dhtresponse__unpack(NULL, len, b);
    if (!d || !d->peer || d->peer->n_addrs != r->naddrs || d->value.len != r->key_len)
        abort();
    gnp2pd__dhtresponse__free_unpacked(d, NULL);
    gn_free(f.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)(data[0] % 16) + 1; /* reads of 1..16 bytes, or all at once */
    if (data[0] >= 0xf0)
        chunk = size;
    data++;
    size--;
    gni_lp_reader rd;
    gni_lp_reader_init(&rd, GNI_P2PD_REQ_MAX);
    size_t off = 0;
    unsigned frames = 0;
    while (off < size && frames < 64) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t used = 0, mlen = 0;
        const uint8_t *msg = NULL;
        int rc = gni_lp_reader_feed(&rd, data + off, n, &used, &msg, &mlen);
        if (used > n)
            abort();
        off += used;
        if (rc < 0) {
            if (rc != GN_EFRAMESIZE && rc != GN_EPARSE && rc != GN_ENOMEM)
                abort();
            break; /* framing lost: the server closes the connection */
        }
        if (rc == 0) {
            if (used != n)
                abort();
            continue;
        }
        frames++;
        gni_p2pd_req r;
        char err[GNI_P2PD_ERRMSG_MAX];
        rc = gni_p2pd_req_decode(msg, mlen, &r, err, sizeof err);
        if (rc == 0) {
            check_request(&r);
        } else if (rc != GN_EPARSE && rc != GN_EINVAL && rc != GN_ETOOBIG && rc != GN_ENOTSUP &&
                   rc != GN_ENOMEM) {
            abort();
        } else if (err[0] == '\0') {
            abort(); /* every refusal is named for the ERROR response */
        } else {
            gni_p2pd_frame f;
            if (gni_p2pd_resp_error(err, &f) == 0)
                gn_free(f.data);
        }
        gni_p2pd_req_fini(&r);
    }
    gni_lp_reader_clear(&rd);
    return 0;
}
