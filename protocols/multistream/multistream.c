/*
 * multistream-select 1.0: sans-I/O negotiation core.
 *
 * Spec: libp2p/specs connections/README.md "Protocol Negotiation";
 * multiformats/multistream-select README. See multistream.h for the API
 * contract and docs/protocols/multistream.md for the choices made where the
 * documents are silent (ls layout, lazy selection, limits).
 *
 * Receive side: a message is read in two steps, the varint length into
 * @vbuf (never more bytes than max_msg_len needs, so an oversize prefix is
 * caught before any body byte is stored), then the body into @rx, which was
 * allocated once with max_msg_len bytes. Nothing past the current message
 * is consumed, which is what makes the leftover after selection exact.
 *
 * Send side: @tx is a growable queue. Its size is bounded by the number of
 * answers (max_rounds for a responder, protocol_cnt + 2 for an initiator)
 * times the largest answer.
 */
#include "multistream.h"

#include "gni.h"
#include "golemnet/multiformats.h"

#include <string.h>

#define MS_COMP "multistream"
#define MS_HEADER GNI_MS_PROTOCOL_ID
#define MS_HEADER_LEN (sizeof(MS_HEADER) - 1)

/* What the next message from the peer is expected to be. */
enum ms_phase {
    MS_PH_HEADER,   /* both roles: "/multistream/1.0.0" */
    MS_PH_LS,       /* initiator: the answer to "ls" */
    MS_PH_ANSWER,   /* initiator: echo or "na" for proposal @cur */
    MS_PH_PROPOSAL, /* responder: a proposal or "ls" */
    MS_PH_DONE      /* nothing more is read */
};

struct gni_ms {
    gni_ms_role role;
    gni_ms_status status;
    int err;
    enum ms_phase phase;

    /* Configuration (protocol ids are owned copies): one allocation holds
     * the pointers, the lengths and the ids (freed with protos). */
    char **protos;
    size_t *proto_lens;
    size_t proto_cnt;
    size_t max_msg_len;
    size_t max_rounds;
    bool lazy;
    bool request_ls;
    bool answer_ls;
    gni_ms_match_fn match;
    void *user_data;
    gn_time deadline;

    /* Receive state. Invariant: vlen < vmax while reading a prefix. */
    uint8_t vbuf[GN_VARINT_MAX_LEN];
    size_t vlen;
    size_t vmax; /* bytes of the varint encoding of max_msg_len */
    bool in_body;
    uint8_t *rx; /* max_msg_len bytes */
    size_t rx_need;
    size_t rx_got;

    /* Send queue. */
    uint8_t *tx;
    size_t tx_len;
    size_t tx_cap;

    /* Progress. */
    size_t cur;    /* initiator: index of the outstanding proposal */
    size_t rounds; /* responder: proposals and ls received */
    bool last_na;  /* responder: the last answer queued was "na" */
    const char *selected;
    int selected_idx;

    /* Responder: the prebuilt "ls" answer (complete message). */
    uint8_t *ls_msg;
    size_t ls_msg_len;

    /* Initiator: the peer's "ls" answer; items point into ls_buf. */
    uint8_t *ls_buf;
    gn_slice *ls_items;
    size_t ls_cnt;
};

static bool ms_eq(const uint8_t *msg, size_t len, const char *s)
{
    size_t n = strlen(s);
    return len == n && memcmp(msg, s, n) == 0;
}

/* A protocol id we accept in a configuration. */
static bool ms_valid_id(const char *p, size_t max_msg_len, size_t *len_out)
{
    if (p == NULL) {
        return false;
    }
    size_t n = strlen(p);
    if (n == 0 || n + 1 > max_msg_len || memchr(p, '\n', n) != NULL) {
        return false;
    }
    if (strcmp(p, "na") == 0 || strcmp(p, "ls") == 0 || strcmp(p, MS_HEADER) == 0) {
        return false;
    }
    *len_out = n;
    return true;
}

static int ms_tx_reserve(gni_ms *ms, size_t extra)
{
    if (extra > SIZE_MAX / 2 - ms->tx_len) {
        return GN_ENOMEM;
    }
    size_t need = ms->tx_len + extra;
    if (need <= ms->tx_cap) {
        return 0;
    }
    size_t cap = ms->tx_cap ? ms->tx_cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    uint8_t *p = gn_realloc(ms->tx, cap);
    if (p == NULL) {
        return GN_ENOMEM;
    }
    ms->tx = p;
    ms->tx_cap = cap;
    return 0;
}

/* Queues <varint(len + 1)><text>'\n'. */
static int ms_queue_msg(gni_ms *ms, const void *text, size_t len)
{
    size_t vl = gn_varint_len((uint64_t)len + 1);
    int rc = ms_tx_reserve(ms, vl + len + 1);
    if (rc < 0) {
        return rc;
    }
    rc = gn_varint_encode((uint64_t)len + 1, ms->tx + ms->tx_len, vl);
    if (rc < 0) {
        return GN_EINTERNAL;
    }
    ms->tx_len += (size_t)rc;
    memcpy(ms->tx + ms->tx_len, text, len);
    ms->tx_len += len;
    ms->tx[ms->tx_len++] = '\n';
    return 0;
}

static int ms_queue_raw(gni_ms *ms, const uint8_t *bytes, size_t len)
{
    int rc = ms_tx_reserve(ms, len);
    if (rc < 0) {
        return rc;
    }
    memcpy(ms->tx + ms->tx_len, bytes, len);
    ms->tx_len += len;
    return 0;
}

static int ms_fail(gni_ms *ms, int rc)
{
    /*
     * After a responder answered "na", garbage is most likely the
     * application data of a lazy initiator that settled on the rejected
     * protocol: report a failed negotiation, not a protocol violation (as
     * rust-libp2p's listener does).
     */
    if (ms->role == GNI_MS_RESPONDER && ms->last_na && (rc == GN_EPROTO || rc == GN_EFRAMESIZE)) {
        rc = GN_ENEGOTIATION;
    }
    ms->status = GNI_MS_FAILED;
    ms->err = rc;
    ms->phase = MS_PH_DONE;
    ms->selected = NULL;
    ms->selected_idx = GN_ENOTFOUND;
    GN_LOG(GN_LOG_DEBUG, MS_COMP, "%s: negotiation failed: %s",
           ms->role == GNI_MS_INITIATOR ? "initiator" : "responder", gn_err_name(rc));
    return rc;
}

/*
 * Builds the responder's answer to "ls": one message whose body is, for
 * each protocol, <varint(len + 1)><id>'\n', followed by a final '\n' (the
 * layout rust-libp2p and js-libp2p use).
 */
static int ms_build_ls(gni_ms *ms)
{
    size_t body = 1;
    for (size_t i = 0; i < ms->proto_cnt; i++) {
        size_t n = ms->proto_lens[i] + 1;
        body += gn_varint_len(n) + n;
    }
    size_t vl = gn_varint_len(body);
    uint8_t *m = gn_malloc(vl + body);
    if (m == NULL) {
        return GN_ENOMEM;
    }
    size_t off = 0;
    int rc = gn_varint_encode(body, m, vl);
    if (rc < 0) {
        gn_free(m);
        return GN_EINTERNAL;
    }
    off += (size_t)rc;
    for (size_t i = 0; i < ms->proto_cnt; i++) {
        size_t n = ms->proto_lens[i];
        rc = gn_varint_encode(n + 1, m + off, vl + body - off);
        if (rc < 0) {
            gn_free(m);
            return GN_EINTERNAL;
        }
        off += (size_t)rc;
        memcpy(m + off, ms->protos[i], n);
        off += n;
        m[off++] = '\n';
    }
    m[off++] = '\n';
    ms->ls_msg = m;
    ms->ls_msg_len = off;
    return 0;
}

/*
 * Parses the body of an "ls" answer (@len bytes, the last one the message's
 * '\n'): entries <varint L><L-1 bytes of id>'\n' until only the final '\n'
 * is left. Ids must be non-empty and free of '\n'.
 */
static int ms_parse_ls(gni_ms *ms, const uint8_t *body, size_t len)
{
    size_t end = len - 1;
    size_t cnt = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0, k = 0;
        while (off < end) {
            uint64_t l;
            int rc = gn_varint_decode(body + off, end - off, &l);
            if (rc < 0) {
                return GN_EPROTO;
            }
            off += (size_t)rc;
            if (l < 2 || l > end - off) {
                return GN_EPROTO;
            }
            size_t n = (size_t)l - 1;
            if (body[off + n] != '\n' || memchr(body + off, '\n', n) != NULL) {
                return GN_EPROTO;
            }
            if (pass == 1) {
                ms->ls_items[k] = gn_slice_of(ms->ls_buf + off, n);
            }
            k++;
            off += (size_t)l;
        }
        if (pass == 0) {
            cnt = k;
            if (cnt == 0) {
                return 0;
            }
            ms->ls_buf = gn_malloc(len);
            ms->ls_items = gn_calloc(cnt, sizeof(gn_slice));
            if (ms->ls_buf == NULL || ms->ls_items == NULL) {
                return GN_ENOMEM;
            }
            memcpy(ms->ls_buf, body, len);
        }
    }
    ms->ls_cnt = cnt;
    return 0;
}

static int ms_on_initiator_msg(gni_ms *ms, const uint8_t *msg, size_t len)
{
    switch (ms->phase) {
    case MS_PH_HEADER:
        if (!ms_eq(msg, len, MS_HEADER)) {
            return GN_EPROTO;
        }
        ms->phase = ms->request_ls ? MS_PH_LS : MS_PH_ANSWER;
        return 0;
    case MS_PH_LS: {
        if (!ms_eq(msg, len, "na")) {
            /* len + 1: the parser wants the body with its '\n'. */
            int rc = ms_parse_ls(ms, msg, len + 1);
            if (rc < 0) {
                return rc;
            }
        }
        if (ms->proto_cnt == 0) {
            ms->status = GNI_MS_LISTED;
            ms->phase = MS_PH_DONE;
        } else {
            ms->phase = MS_PH_ANSWER;
        }
        return 0;
    }
    case MS_PH_ANSWER:
        if (len == ms->proto_lens[ms->cur] && memcmp(msg, ms->protos[ms->cur], len) == 0) {
            ms->status = GNI_MS_SELECTED;
            ms->phase = MS_PH_DONE;
            ms->selected = ms->protos[ms->cur];
            ms->selected_idx = (int)ms->cur;
            GN_LOG(GN_LOG_DEBUG, MS_COMP, "initiator: selected protocol #%zu", ms->cur);
            return 0;
        }
        if (!ms_eq(msg, len, "na")) {
            return GN_EPROTO;
        }
        if (ms->status == GNI_MS_OPTIMISTIC || ms->cur + 1 >= ms->proto_cnt) {
            return GN_ENEGOTIATION;
        }
        ms->cur++;
        {
            int rc = ms_queue_msg(ms, ms->protos[ms->cur], ms->proto_lens[ms->cur]);
            if (rc < 0) {
                return rc;
            }
        }
        if (ms->lazy && ms->cur + 1 == ms->proto_cnt) {
            ms->status = GNI_MS_OPTIMISTIC;
            ms->selected = ms->protos[ms->cur];
            ms->selected_idx = (int)ms->cur;
        }
        return 0;
    default:
        return GN_EINTERNAL;
    }
}

static int ms_find(const gni_ms *ms, const uint8_t *msg, size_t len)
{
    for (size_t i = 0; i < ms->proto_cnt; i++) {
        if (ms->proto_lens[i] == len && memcmp(ms->protos[i], msg, len) == 0) {
            return (int)i;
        }
    }
    return GN_ENOTFOUND;
}

/* @msg is ms->rx; msg[len] is the '\n' and may be overwritten. */
static int ms_on_responder_msg(gni_ms *ms, uint8_t *msg, size_t len)
{
    if (ms->phase == MS_PH_HEADER) {
        if (!ms_eq(msg, len, MS_HEADER)) {
            return GN_EPROTO;
        }
        ms->phase = MS_PH_PROPOSAL;
        return 0;
    }
    if (ms->phase != MS_PH_PROPOSAL) {
        return GN_EINTERNAL;
    }
    if (++ms->rounds > ms->max_rounds) {
        return GN_ENEGOTIATION;
    }
    if (ms->answer_ls && ms_eq(msg, len, "ls")) {
        ms->last_na = false;
        /* built on the first "ls" only: most streams never ask */
        int rc = ms->ls_msg ? 0 : ms_build_ls(ms);
        return rc < 0 ? rc : ms_queue_raw(ms, ms->ls_msg, ms->ls_msg_len);
    }
    /* Commands and the header are never matched; nor are ids that could not be C strings. */
    bool valid = len > 0 && memchr(msg, '\n', len) == NULL && memchr(msg, '\0', len) == NULL &&
                 !ms_eq(msg, len, "ls") && !ms_eq(msg, len, "na") && !ms_eq(msg, len, MS_HEADER);
    int idx = GN_ENOTFOUND;
    bool accepted = false;
    if (valid) {
        idx = ms_find(ms, msg, len);
        if (ms->match != NULL) {
            msg[len] = '\0';
            int r = ms->match(ms->user_data, (const char *)msg, len);
            msg[len] = '\n';
            if (r < 0) {
                return GN_ECALLBACK;
            }
            accepted = r > 0;
        } else {
            accepted = idx >= 0;
        }
    }
    if (!accepted) {
        ms->last_na = true;
        return ms_queue_msg(ms, "na", 2);
    }
    int rc = ms_queue_msg(ms, msg, len);
    if (rc < 0) {
        return rc;
    }
    msg[len] = '\0'; /* rx is no longer read from: keep the id there */
    ms->last_na = false;
    ms->status = GNI_MS_SELECTED;
    ms->phase = MS_PH_DONE;
    ms->selected = idx >= 0 ? ms->protos[idx] : (const char *)msg;
    ms->selected_idx = idx;
    GN_LOG(GN_LOG_DEBUG, MS_COMP, "responder: selected protocol (index %d)", idx);
    return 0;
}

static int ms_on_message(gni_ms *ms)
{
    size_t n = ms->rx_need;
    if (ms->rx[n - 1] != '\n') {
        return GN_EPROTO;
    }
    if (ms->role == GNI_MS_INITIATOR) {
        return ms_on_initiator_msg(ms, ms->rx, n - 1);
    }
    return ms_on_responder_msg(ms, ms->rx, n - 1);
}

void gni_ms_config_default(gni_ms_config *cfg, gni_ms_role role)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->role = role;
    cfg->max_msg_len = GNI_MS_DEFAULT_MAX_MSG_LEN;
    cfg->max_rounds = GNI_MS_DEFAULT_MAX_ROUNDS;
    cfg->timeout = 0;
    cfg->lazy = false;
    cfg->request_ls = false;
    cfg->answer_ls = true;
    cfg->match = NULL;
    cfg->user_data = NULL;
}

static int ms_check_config(const gni_ms_config *cfg)
{
    if (cfg->role != GNI_MS_INITIATOR && cfg->role != GNI_MS_RESPONDER) {
        return GN_EINVAL;
    }
    if (cfg->max_msg_len < GNI_MS_MIN_MAX_MSG_LEN || cfg->max_msg_len > GNI_MS_MAX_MAX_MSG_LEN ||
        cfg->max_rounds == 0) {
        return GN_EINVAL;
    }
    if (cfg->protocol_cnt > GNI_MS_MAX_PROTOCOLS || (cfg->protocol_cnt > 0 && !cfg->protocols)) {
        return GN_EINVAL;
    }
    if (cfg->role == GNI_MS_INITIATOR && cfg->protocol_cnt == 0 && !cfg->request_ls) {
        return GN_EINVAL;
    }
    if (cfg->role == GNI_MS_RESPONDER && cfg->protocol_cnt == 0 && cfg->match == NULL) {
        return GN_EINVAL;
    }
    for (size_t i = 0; i < cfg->protocol_cnt; i++) {
        size_t n;
        if (!ms_valid_id(cfg->protocols[i], cfg->max_msg_len, &n)) {
            return GN_EINVAL;
        }
    }
    return 0;
}

int gni_ms_new(const gni_ms_config *cfg, gn_time now, gni_ms **out)
{
    if (cfg == NULL || out == NULL) {
        return GN_EINVAL;
    }
    int rc = ms_check_config(cfg);
    if (rc < 0) {
        return rc;
    }
    gni_ms *ms = gn_calloc(1, sizeof *ms);
    if (ms == NULL) {
        return GN_ENOMEM;
    }
    ms->role = cfg->role;
    ms->status = GNI_MS_PENDING;
    ms->phase = MS_PH_HEADER;
    ms->max_msg_len = cfg->max_msg_len;
    ms->max_rounds = cfg->max_rounds;
    ms->lazy = cfg->role == GNI_MS_INITIATOR && cfg->lazy;
    ms->request_ls = cfg->role == GNI_MS_INITIATOR && cfg->request_ls;
    ms->answer_ls = cfg->role == GNI_MS_RESPONDER && cfg->answer_ls;
    ms->match = cfg->role == GNI_MS_RESPONDER ? cfg->match : NULL;
    ms->user_data = cfg->user_data;
    ms->selected_idx = GN_ENOTFOUND;
    ms->vmax = gn_varint_len(cfg->max_msg_len);
    if (cfg->timeout == 0) {
        ms->deadline = GN_TIME_INFINITY;
    } else {
        ms->deadline = cfg->timeout > GN_TIME_INFINITY - now ? GN_TIME_INFINITY : now + cfg->timeout;
    }

    rc = GN_ENOMEM;
    ms->rx = gn_malloc(cfg->max_msg_len);
    if (ms->rx == NULL) {
        goto out;
    }
    if (cfg->protocol_cnt > 0) {
        /* one block: pointers, lengths, then the ids with their NULs (ids
         * are bounded by max_msg_len, counts by the caller's array) */
        size_t cnt = cfg->protocol_cnt;
        size_t bytes = cnt * (sizeof(char *) + sizeof(size_t));
        for (size_t i = 0; i < cnt; i++) {
            bytes += strlen(cfg->protocols[i]) + 1;
        }
        uint8_t *blk = gn_malloc(bytes);
        if (blk == NULL) {
            goto out;
        }
        ms->protos = (char **)(void *)blk;
        ms->proto_lens = (size_t *)(void *)(blk + cnt * sizeof(char *));
        char *ids = (char *)(blk + cnt * (sizeof(char *) + sizeof(size_t)));
        for (size_t i = 0; i < cnt; i++) {
            size_t n = strlen(cfg->protocols[i]);
            memcpy(ids, cfg->protocols[i], n + 1);
            ms->protos[i] = ids;
            ms->proto_lens[i] = n;
            ids += n + 1;
        }
        ms->proto_cnt = cnt;
    }
    if ((rc = ms_queue_msg(ms, MS_HEADER, MS_HEADER_LEN)) < 0) {
        goto out;
    }
    if (ms->role == GNI_MS_INITIATOR) {
        if (ms->request_ls && (rc = ms_queue_msg(ms, "ls", 2)) < 0) {
            goto out;
        }
        if (ms->proto_cnt > 0 &&
            (rc = ms_queue_msg(ms, ms->protos[0], ms->proto_lens[0])) < 0) {
            goto out;
        }
        if (ms->lazy && ms->proto_cnt == 1) {
            ms->status = GNI_MS_OPTIMISTIC;
            ms->selected = ms->protos[0];
            ms->selected_idx = 0;
        }
    }
    *out = ms;
    ms = NULL;
    rc = 0;
out:
    gni_ms_free(ms);
    return rc;
}

void gni_ms_free(gni_ms *ms)
{
    if (ms == NULL) {
        return;
    }
    gn_free(ms->protos); /* also the lengths and the ids */
    gn_free(ms->rx);
    gn_free(ms->tx);
    gn_free(ms->ls_msg);
    gn_free(ms->ls_buf);
    gn_free(ms->ls_items);
    gn_free(ms);
}

int gni_ms_feed(gni_ms *ms, const uint8_t *in, size_t len, size_t *consumed)
{
    if (ms == NULL || consumed == NULL || (in == NULL && len > 0)) {
        return GN_EINVAL;
    }
    if (ms->status == GNI_MS_FAILED) {
        return ms->err;
    }
    size_t pos = 0;
    while (pos < len && (ms->status == GNI_MS_PENDING || ms->status == GNI_MS_OPTIMISTIC)) {
        if (!ms->in_body) {
            uint64_t v;
            ms->vbuf[ms->vlen++] = in[pos++];
            int rc = gn_varint_decode(ms->vbuf, ms->vlen, &v);
            if (rc == GN_EAGAIN) {
                /* vmax bytes can hold any length up to max_msg_len. */
                if (ms->vlen >= ms->vmax) {
                    return ms_fail(ms, GN_EFRAMESIZE);
                }
                continue;
            }
            if (rc < 0) {
                return ms_fail(ms, GN_EPROTO);
            }
            if (v > ms->max_msg_len) {
                return ms_fail(ms, GN_EFRAMESIZE);
            }
            if (v == 0) {
                return ms_fail(ms, GN_EPROTO); /* no room for the newline */
            }
            ms->vlen = 0;
            ms->in_body = true;
            ms->rx_need = (size_t)v;
            ms->rx_got = 0;
            continue;
        }
        size_t n = GNI_MIN(ms->rx_need - ms->rx_got, len - pos);
        memcpy(ms->rx + ms->rx_got, in + pos, n);
        ms->rx_got += n;
        pos += n;
        if (ms->rx_got == ms->rx_need) {
            ms->in_body = false;
            int rc = ms_on_message(ms);
            if (rc < 0) {
                return ms_fail(ms, rc);
            }
        }
    }
    *consumed = pos;
    return 0;
}

int gni_ms_feed_eof(gni_ms *ms)
{
    if (ms == NULL) {
        return GN_EINVAL;
    }
    switch (ms->status) {
    case GNI_MS_SELECTED:
    case GNI_MS_LISTED:
        return 0;
    case GNI_MS_FAILED:
        return ms->err;
    default:
        return ms_fail(ms, ms->role == GNI_MS_RESPONDER && ms->last_na ? GN_ENEGOTIATION
                                                                         : GN_EEOF);
    }
}

int gni_ms_drain(gni_ms *ms, gn_buf *out)
{
    if (ms == NULL || out == NULL) {
        return GN_EINVAL;
    }
    size_t n = GNI_MIN(ms->tx_len, gn_buf_left(out));
    if (n > (size_t)INT32_MAX) {
        n = (size_t)INT32_MAX;
    }
    if (n == 0) {
        return 0;
    }
    memcpy(out->last, ms->tx, n);
    out->last += n;
    memmove(ms->tx, ms->tx + n, ms->tx_len - n);
    ms->tx_len -= n;
    return (int)n;
}

size_t gni_ms_pending(const gni_ms *ms)
{
    return ms ? ms->tx_len : 0;
}

gni_ms_status gni_ms_get_status(const gni_ms *ms)
{
    return ms ? ms->status : GNI_MS_FAILED;
}

int gni_ms_get_error(const gni_ms *ms)
{
    if (ms == NULL) {
        return GN_EINVAL;
    }
    return ms->status == GNI_MS_FAILED ? ms->err : 0;
}

const char *gni_ms_get_protocol(const gni_ms *ms)
{
    if (ms == NULL || (ms->status != GNI_MS_SELECTED && ms->status != GNI_MS_OPTIMISTIC)) {
        return NULL;
    }
    return ms->selected;
}

int gni_ms_get_index(const gni_ms *ms)
{
    if (ms == NULL || (ms->status != GNI_MS_SELECTED && ms->status != GNI_MS_OPTIMISTIC)) {
        return GN_ENOTFOUND;
    }
    return ms->selected_idx;
}

size_t gni_ms_ls_count(const gni_ms *ms)
{
    return ms ? ms->ls_cnt : 0;
}

int gni_ms_ls_get(const gni_ms *ms, size_t i, gn_slice *out)
{
    if (ms == NULL || out == NULL) {
        return GN_EINVAL;
    }
    if (i >= ms->ls_cnt) {
        return GN_ERANGE;
    }
    *out = ms->ls_items[i];
    return 0;
}

gn_time gni_ms_deadline(const gni_ms *ms)
{
    if (ms == NULL || (ms->status != GNI_MS_PENDING && ms->status != GNI_MS_OPTIMISTIC)) {
        return GN_TIME_INFINITY;
    }
    return ms->deadline;
}

int gni_ms_expire(gni_ms *ms, gn_time now)
{
    if (ms == NULL) {
        return GN_EINVAL;
    }
    if (ms->status == GNI_MS_FAILED) {
        return ms->err;
    }
    if (ms->status != GNI_MS_PENDING && ms->status != GNI_MS_OPTIMISTIC) {
        return 0;
    }
    if (ms->deadline != GN_TIME_INFINITY && now >= ms->deadline) {
        return ms_fail(ms, GN_ETIMEDOUT);
    }
    return 0;
}
