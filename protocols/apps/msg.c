/* /golem/msg/1.0.0: sans-I/O framing core. See msg.h and docs/protocols/msg.md. */
#include "msg.h"

#include "golemnet/multiformats.h"
#include "gni.h"

#include <string.h>

int gni_msg_header_encode(uint64_t len, uint8_t out[GNI_MSG_HEADER_MAX])
{
    return gn_varint_encode(len, out, GNI_MSG_HEADER_MAX);
}

int gni_msg_decoder_init(gni_msg_decoder *d, size_t max_len, bool expect_version)
{
    if (!d || max_len > GNI_MSG_MAX_LEN_LIMIT) {
        return GN_EINVAL;
    }
    memset(d, 0, sizeof *d);
    d->max_len = max_len ? max_len : GNI_MSG_DEFAULT_MAX_LEN;
    d->state = expect_version ? GNI_MSG_DEC_VERSION : GNI_MSG_DEC_LENGTH;
    return 0;
}

void gni_msg_decoder_set_mem(gni_msg_decoder *d, const gni_msg_mem *mem)
{
    if (mem && mem->reserve && mem->release) {
        d->mem = *mem;
    } else {
        memset(&d->mem, 0, sizeof d->mem);
    }
}

/* Gives back what was reserved for the current message. */
static void dec_unreserve(gni_msg_decoder *d)
{
    if (d->reserved > 0) {
        d->mem.release(d->mem.arg, d->reserved);
        d->reserved = 0;
    }
}

/* Asks for @more bytes of storage before allocating them: 0 or GN_ERESOURCE. */
static int dec_reserve(gni_msg_decoder *d, size_t more)
{
    if (!d->mem.reserve || more == 0) {
        return 0;
    }
    if (d->mem.reserve(d->mem.arg, more) != 0) {
        return GN_ERESOURCE;
    }
    d->reserved += more;
    return 0;
}

static void dec_drop(gni_msg_decoder *d)
{
    gn_rcbuf_rele(d->cur);
    d->cur = NULL;
    dec_unreserve(d);
}

void gni_msg_decoder_fini(gni_msg_decoder *d)
{
    dec_drop(d);
}

static int dec_fail(gni_msg_decoder *d, int err)
{
    dec_drop(d);
    d->state = GNI_MSG_DEC_FAILED;
    d->err = err;
    return err;
}

/* Hands the finished message over and goes back to reading a length. */
static int dec_complete(gni_msg_decoder *d, size_t pos, size_t *consumed, gn_rcbuf **msg)
{
    *msg = d->cur;
    d->cur = NULL;
    dec_unreserve(d); /* the storage is the caller's now */
    d->need = d->have = 0;
    d->state = GNI_MSG_DEC_LENGTH;
    *consumed = pos;
    return 1;
}

int gni_msg_decode(gni_msg_decoder *d, const uint8_t *in, size_t len, size_t *consumed,
                   gn_rcbuf **msg)
{
    *consumed = 0;
    if (d->state == GNI_MSG_DEC_FAILED) {
        return d->err;
    }
    size_t pos = 0;
    while (pos < len) {
        switch (d->state) {
        case GNI_MSG_DEC_VERSION:
            if (in[pos] != GNI_MSG_VERSION) {
                return dec_fail(d, GN_EVERSION);
            }
            pos++;
            d->state = GNI_MSG_DEC_LENGTH;
            break;
        case GNI_MSG_DEC_LENGTH: {
            uint64_t v = 0;
            int rc = gni_varint_rd_byte(&d->len_rd, in[pos++], &v);
            if (rc == 0) {
                break;
            }
            if (rc < 0) {
                return dec_fail(d, GN_EBADFRAME); /* longer than 9 bytes or not minimal */
            }
            if (v > d->max_len) {
                return dec_fail(d, GN_EFRAMESIZE);
            }
            /* storage follows the payload as it arrives, never the
             * announced length alone: at first what this call holds (at
             * least GNI_MSG_ALLOC_MIN), then doubling up to the length */
            size_t first = GNI_MIN((size_t)v, GNI_MAX(len - pos, (size_t)GNI_MSG_ALLOC_MIN));
            if (dec_reserve(d, first) < 0) {
                return dec_fail(d, GN_ERESOURCE);
            }
            d->cur = gni_rcbuf_alloc(first);
            if (!d->cur) {
                return dec_fail(d, GN_ENOMEM);
            }
            d->need = (size_t)v;
            d->have = 0;
            if (v == 0) {
                return dec_complete(d, pos, consumed, msg);
            }
            d->state = GNI_MSG_DEC_BODY;
            break;
        }
        case GNI_MSG_DEC_BODY: {
            size_t take = GNI_MIN(len - pos, d->need - d->have);
            size_t cap = gn_rcbuf_slice(d->cur).len;
            if (d->have + take > cap) {
                size_t grow = GNI_MIN(d->need, GNI_MAX(d->have + take, cap * 2));
                if (dec_reserve(d, grow - cap) < 0) {
                    return dec_fail(d, GN_ERESOURCE);
                }
                if (gni_rcbuf_resize(&d->cur, grow) < 0) {
                    return dec_fail(d, GN_ENOMEM);
                }
            }
            memcpy(gn_rcbuf_data_mut(d->cur) + d->have, in + pos, take);
            d->have += take;
            pos += take;
            if (d->have == d->need) {
                return dec_complete(d, pos, consumed, msg);
            }
            break;
        }
        default:
            return dec_fail(d, GN_EINTERNAL);
        }
    }
    *consumed = pos;
    return 0;
}

bool gni_msg_decoder_partial(const gni_msg_decoder *d)
{
    return d->state == GNI_MSG_DEC_BODY ||
           (d->state == GNI_MSG_DEC_LENGTH && gni_varint_rd_busy(&d->len_rd));
}

void gni_msg_decoder_set_stall_timeout(gni_msg_decoder *d, gn_time timeout)
{
    d->stall_timeout = timeout;
}

void gni_msg_decoder_touch(gni_msg_decoder *d, gn_time now)
{
    d->progress_at = now;
}

gn_time gni_msg_decoder_deadline(const gni_msg_decoder *d)
{
    if (!d->stall_timeout || !gni_msg_decoder_partial(d)) {
        return GN_TIME_INFINITY;
    }
    if (d->progress_at > GN_TIME_INFINITY - d->stall_timeout) {
        return GN_TIME_INFINITY;
    }
    return d->progress_at + d->stall_timeout;
}

int gni_msg_decoder_expire(gni_msg_decoder *d, gn_time now)
{
    gn_time dl = gni_msg_decoder_deadline(d);
    if (dl == GN_TIME_INFINITY || now < dl) {
        return 0;
    }
    return dec_fail(d, GN_ETIMEDOUT);
}

int gni_msg_decode_eof(gni_msg_decoder *d)
{
    switch (d->state) {
    case GNI_MSG_DEC_FAILED:
        return d->err;
    case GNI_MSG_DEC_VERSION:
        return 0;
    case GNI_MSG_DEC_LENGTH:
        return !gni_varint_rd_busy(&d->len_rd) ? 0 : dec_fail(d, GN_EPROTO);
    default:
        return dec_fail(d, GN_EPROTO);
    }
}
