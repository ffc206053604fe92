/*
 * Fuzz target: the resource manager. The input is a sequence of
 * operations (open, move, reserve, release and close spans, change limits
 * and per-key overrides) on a manager with small limits taken from the
 * first bytes. After every operation the manager's usage must equal what
 * the open spans hold (gni_rcmgr_check), stay within the limits while they
 * were never lowered, and a refused operation must change no usage at all.
 * At the end, closing every span must leave every scope collected.
 * Violations abort().
 */
#include "golemnet/err.h"
#include "golemnet/rcmgr.h"

#include "gni_rcmgr.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL() (fprintf(stderr, "fuzz_rcmgr: invariant broken at line %d\n", __LINE__), abort())

enum { MAXC = 48, MAXS = 96 };

typedef struct in {
    const uint8_t *p;
    size_t n;
} in;

static uint8_t take(in *x)
{
    if (x->n == 0) {
        return 0;
    }
    x->n--;
    return *x->p++;
}

static gn_peer_id peer_of(uint8_t v)
{
    gn_peer_id p;
    memset(&p, 0, sizeof p);
    p.len = 6;
    p.bytes[0] = 0;
    p.bytes[1] = 4;
    p.bytes[5] = (uint8_t)(v % 24);
    return p;
}

static void check(const gn_rcmgr *rm, bool limits)
{
    char why[256];
    if (gni_rcmgr_check(rm, limits, why, sizeof why) != 0) {
        fprintf(stderr, "fuzz_rcmgr: %s\n", why);
        FAIL();
    }
}

/* Usage of the system and transient scopes, to compare before and after a refusal. */
typedef struct snap {
    gn_rcmgr_usage sys, tr;
    size_t tables[4];
} snap;

static void take_snap(const gn_rcmgr *rm, snap *s)
{
    memset(s, 0, sizeof *s);
    if (gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &s->sys) != 0 ||
        gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_TRANSIENT, NULL, 0, &s->tr) != 0) {
        FAIL();
    }
    s->sys.refused = s->tr.refused = 0;
    for (int k = 0; k < 4; k++) {
        s->tables[k] = gni_rcmgr_table_len(rm, (gn_rcmgr_scope_kind)(GN_RCMGR_SCOPE_PEER + k));
    }
}

static void limits_from(in *x, gn_rcmgr_limits *l)
{
    gn_rcmgr_limits_default(l);
    l->system.memory = 1 + (uint64_t)take(x) * 4096;
    l->system.conns = 1 + take(x) % 48;
    l->system.streams = 1 + take(x) % 96;
    l->system.fd = take(x) % 40;
    l->transient.conns = 1 + take(x) % 16;
    l->transient.streams = 1 + take(x) % 32;
    l->peer.conns = 1 + take(x) % 6;
    l->peer.streams = 1 + take(x) % 24;
    l->peer.memory = 1 + (uint64_t)take(x) * 1024;
    l->protocol.streams = 1 + take(x) % 32;
    l->ip.conns = 1 + take(x) % 8;
    l->ip.conns_upgrading = 1 + take(x) % 4;
    l->subnet.conns = 1 + take(x) % 12;
    l->subnet.conns_upgrading = 1 + take(x) % 6;
    l->conn.streams = 1 + take(x) % 12;
    l->conn.memory = 1 + (uint64_t)take(x) * 1024;
    l->stream.memory = 1 + (uint64_t)take(x) * 512;
    l->ipv4_prefix = (uint8_t)(1 + take(x) % 32);
    l->max_peers = 1 + take(x) % 16;
    l->max_protocols = 1 + take(x) % 4;
    l->max_ips = 1 + take(x) % 16;
    l->max_subnets = 1 + take(x) % 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in x = {data, size};
    gn_rcmgr_limits l;
    limits_from(&x, &l);
    gn_rcmgr *rm = NULL;
    if (gn_rcmgr_new(&l, &rm) != 0) {
        FAIL(); /* the limits above are always valid */
    }
    static gn_rcmgr_conn *conns[MAXC];
    static gn_rcmgr_stream *streams[MAXS];
    static uint64_t cmem[MAXC], smem[MAXS];
    static bool cpeer[MAXC];
    size_t nc = 0, ns = 0;
    uint64_t total = 0;
    bool lowered = false;
    static const char *const protos[] = {"/a", "/b/1.0.0", "/c", "/d", "/e", "/f"};
    while (x.n > 0) {
        uint8_t op = take(&x) % 11;
        uint8_t a = take(&x), b = take(&x);
        snap before, after;
        take_snap(rm, &before);
        int rc = 0;
        if (op == 0 && nc < MAXC) {
            uint8_t ip[16] = {0x20, 0x01, 0x0d, 0xb8};
            size_t ip_len = (a & 3) == 0 ? 0 : (a & 3) == 1 ? 16 : 4;
            if (ip_len == 4) {
                ip[0] = 10, ip[1] = b & 3, ip[2] = (uint8_t)(b >> 2 & 3), ip[3] = (uint8_t)(b >> 4);
            } else {
                ip[7] = b & 3, ip[15] = (uint8_t)(b >> 2);
            }
            rc = gn_rcmgr_open_conn(rm, (gn_rcmgr_dir)(a >> 7), (a & 4) != 0, ip, ip_len,
                                    &conns[nc]);
            if (rc == 0) {
                cmem[nc] = 0;
                cpeer[nc] = false;
                nc++;
            }
        } else if (op == 1 && nc > 0) {
            size_t i = a % nc;
            gn_peer_id p = peer_of(b);
            rc = gn_rcmgr_conn_set_peer(conns[i], &p);
            if (rc == GN_ESTATE && cpeer[i]) {
                rc = 0;
            }
            cpeer[i] = cpeer[i] || rc == 0;
        } else if (op == 2 && ns < MAXS) {
            gn_peer_id p = peer_of(b);
            if (nc > 0 && (a & 1)) {
                size_t i = (a >> 1) % nc;
                rc = gn_rcmgr_open_stream(rm, conns[i], NULL, (gn_rcmgr_dir)(b & 1), &streams[ns]);
                if (rc == GN_ESTATE && !cpeer[i]) {
                    rc = 0;
                    continue;
                }
            } else {
                rc = gn_rcmgr_open_stream(rm, NULL, &p, (gn_rcmgr_dir)(b & 1), &streams[ns]);
            }
            if (rc == 0) {
                smem[ns++] = 0;
            }
        } else if (op == 3 && ns > 0) {
            const char *id = protos[b % 6];
            rc = gn_rcmgr_stream_set_protocol(streams[a % ns], id, strlen(id));
            if (rc == GN_ESTATE) {
                rc = 0;
            }
        } else if (op == 4 && (nc > 0 || ns > 0)) {
            size_t len = (size_t)b * 97 + take(&x);
            uint8_t prio = take(&x);
            uint64_t *m;
            gn_rcmgr_span *sp;
            if (ns > 0 && ((a & 1) || nc == 0)) {
                size_t i = (a >> 1) % ns;
                m = &smem[i], sp = gn_rcmgr_stream_span(streams[i]);
            } else {
                size_t i = (a >> 1) % nc;
                m = &cmem[i], sp = gn_rcmgr_conn_span(conns[i]);
            }
            rc = gn_rcmgr_reserve_memory(sp, len, prio);
            if (rc == 0) {
                *m += len;
                total += len;
            }
        } else if (op == 5 && (nc > 0 || ns > 0)) {
            uint64_t *m;
            gn_rcmgr_span *sp;
            if (ns > 0 && ((a & 1) || nc == 0)) {
                size_t i = (a >> 1) % ns;
                m = &smem[i], sp = gn_rcmgr_stream_span(streams[i]);
            } else {
                size_t i = (a >> 1) % nc;
                m = &cmem[i], sp = gn_rcmgr_conn_span(conns[i]);
            }
            size_t len = (size_t)b * 31;
            rc = gn_rcmgr_release_memory(sp, len);
            if ((rc == 0) != (len <= *m)) {
                FAIL();
            }
            if (rc == 0) {
                *m -= len;
                total -= len;
            } else {
                rc = 0; /* GN_EINVAL: nothing released, checked below */
                take_snap(rm, &after);
                if (memcmp(&before, &after, sizeof before) != 0) {
                    FAIL();
                }
            }
        } else if (op == 6 && ns > 0) {
            size_t i = a % ns;
            gn_rcmgr_stream_done(streams[i]);
            total -= smem[i];
            streams[i] = streams[--ns];
            smem[i] = smem[ns];
        } else if (op == 7 && nc > 0) {
            size_t i = a % nc;
            gn_rcmgr_conn_done(conns[i]); /* its streams stay open */
            total -= cmem[i];
            nc--;
            conns[i] = conns[nc], cmem[i] = cmem[nc], cpeer[i] = cpeer[nc];
        } else if (op == 8) {
            /* change a limit at run time, possibly below what is in use */
            gn_rcmgr_limits nl;
            gn_rcmgr_get_limits(rm, &nl);
            switch (a % 6) {
            case 0: nl.system.memory = (uint64_t)b * 4096; break;
            case 1: nl.peer.conns = b % 6; break;
            case 2: nl.ip.conns_upgrading = b % 4; break;
            case 3: nl.max_peers = 1 + b % 16; break;
            case 4: nl.ipv4_prefix = (uint8_t)(1 + b % 32); break;
            default: nl.transient.streams = b % 32; break;
            }
            if (gn_rcmgr_set_limits(rm, &nl) != 0) {
                FAIL();
            }
            lowered = true;
        } else if (op == 9) {
            gn_rcmgr_usage u;
            uint8_t ip[4] = {10, b & 3, (uint8_t)(b >> 2 & 3), (uint8_t)(b >> 4)};
            gn_peer_id p = peer_of(b);
            int r1 = gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_IP, ip, 4, &u);
            int r2 = gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len, &u);
            if ((r1 != 0 && r1 != GN_ENOTFOUND) || (r2 != 0 && r2 != GN_ENOTFOUND)) {
                FAIL();
            }
        } else if (op == 10) {
            /* set or remove a per-key override (may lower a limit below usage) */
            gn_rcmgr_limits cur;
            gn_rcmgr_get_limits(rm, &cur);
            gn_peer_id p = peer_of(b);
            uint8_t ip[4] = {10, b & 3, (uint8_t)(b >> 2 & 3), (uint8_t)(b >> 4)};
            const char *id = protos[b % 6];
            gn_rcmgr_limit lim;
            int r;
            switch (a % 3) {
            case 0:
                lim = cur.peer;
                lim.conns = a >> 4;
                lim.streams = a >> 2;
                r = gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PEER, p.bytes, p.len,
                                             (a & 8) ? NULL : &lim);
                break;
            case 1:
                lim = cur.protocol;
                lim.streams = a >> 3;
                r = gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_PROTOCOL, id, strlen(id),
                                             (a & 4) ? NULL : &lim);
                break;
            default:
                lim = cur.ip;
                lim.conns_upgrading = a >> 5;
                r = gn_rcmgr_set_scope_limit(rm, GN_RCMGR_SCOPE_IP, ip, 4, (a & 4) ? NULL : &lim);
                break;
            }
            if (r != 0 && r != GN_ENOTFOUND && r != GN_ELIMIT) {
                FAIL();
            }
            lowered = true;
        }
        if (rc == GN_ERESOURCE) {
            gn_rcmgr_refusal r;
            if (gn_rcmgr_last_refusal(rm, &r) != 0 || r.name[0] == '\0' ||
                strlen(r.name) >= sizeof r.name) {
                FAIL();
            }
            take_snap(rm, &after);
            if (memcmp(&before, &after, sizeof before) != 0) {
                FAIL(); /* a refusal reserved or created something */
            }
        } else if (rc != 0) {
            FAIL();
        }
        check(rm, !lowered);
        gn_rcmgr_usage sys;
        if (gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &sys) != 0 || sys.memory != total ||
            sys.conns_in + sys.conns_out != nc || sys.streams_in + sys.streams_out != ns) {
            FAIL();
        }
    }
    for (size_t i = 0; i < nc; i++) {
        gn_rcmgr_conn_done(conns[i]);
    }
    for (size_t i = 0; i < ns; i++) {
        gn_rcmgr_stream_done(streams[i]);
    }
    check(rm, false);
    for (int k = GN_RCMGR_SCOPE_PEER; k <= GN_RCMGR_SCOPE_SUBNET; k++) {
        if (gni_rcmgr_table_len(rm, (gn_rcmgr_scope_kind)k) != 0) {
            FAIL();
        }
    }
    gn_rcmgr_usage sys;
    if (gn_rcmgr_stat(rm, GN_RCMGR_SCOPE_SYSTEM, NULL, 0, &sys) != 0 || sys.memory != 0 ||
        sys.fd != 0 || sys.conns_in + sys.conns_out + sys.streams_in + sys.streams_out != 0) {
        FAIL();
    }
    gn_rcmgr_free(rm);
    return 0;
}
