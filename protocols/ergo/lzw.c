/*
 * golemnet - LZW in Go's compress/lzw format (LSB, 8-bit literals).
 * Format and contract: lzw.h. Design notes:
 *  - encoder: the dictionary maps (prefix code, next byte) to a code; it is
 *    an open-addressing hash table of 8192 slots (twice the 4096 codes, so
 *    probes stay short) keyed by the 20-bit pair, cleared whenever the
 *    writer emits a clear code;
 *  - decoder: every dictionary string is a substring of the output already
 *    written (the previous code's string plus the next byte, which is the
 *    first byte the current code writes), so an entry is just (offset,
 *    length) into the output buffer and decoding a code is one forward copy.
 *    The output buffer is the caller's, of the declared size: that is the
 *    bound, and the decoder needs no other memory than the 32 KiB table.
 */
#include "lzw.h"

#include "gni.h"

#define LZW_CLEAR 256u
#define LZW_EOD 257u
#define LZW_FIRST 258u
#define LZW_MAX_CODE 4095u /* the writer never defines it (clears instead) */
#define LZW_HASH_BITS 13u
#define LZW_HASH_SLOTS (1u << LZW_HASH_BITS)
#define LZW_NO_CODE 0xffffu

size_t gni_lzw_bound(size_t len)
{
    if (len > SIZE_MAX / 4) {
        return SIZE_MAX;
    }
    size_t codes = len + len / 1024 + 8;
    return (codes * 3 + 1) / 2;
}

/* ---- encoder ---- */

typedef struct lzw_enc {
    uint8_t *out;
    size_t cap, n;
    uint64_t acc;   /* pending bits, least significant first */
    unsigned nacc;  /* how many */
    unsigned width; /* current code width */
    unsigned hi;    /* last code defined (or implied) */
    unsigned grow;  /* hi value at which the width grows: 1 << width */
    int err;
    uint32_t *keys; /* slot: pair key + 1, 0 = empty */
    uint16_t *vals; /* slot: the code for keys[i] - 1 */
} lzw_enc;

static void lzw_put(lzw_enc *e, unsigned code)
{
    e->acc |= (uint64_t)code << e->nacc;
    e->nacc += e->width;
    while (e->nacc >= 8) {
        if (e->n == e->cap) {
            e->err = GN_ENOSPC;
            e->nacc = 0;
            return;
        }
        e->out[e->n++] = (uint8_t)e->acc;
        e->acc >>= 8;
        e->nacc -= 8;
    }
}

static void lzw_reset(lzw_enc *e)
{
    e->width = GNI_LZW_LIT_WIDTH + 1;
    e->hi = LZW_EOD;
    e->grow = 1u << e->width;
    memset(e->keys, 0, LZW_HASH_SLOTS * sizeof e->keys[0]);
}

static inline uint32_t lzw_slot(uint32_t key)
{
    return (key * 2654435761u) >> (32 - LZW_HASH_BITS);
}

/*
 * A code was written: the next code is implied. Returns false when the
 * dictionary is full and a clear code went out (nothing may be defined).
 */
static bool lzw_next(lzw_enc *e)
{
    e->hi++;
    if (e->hi == e->grow) {
        e->width++;
        e->grow <<= 1;
    }
    if (e->hi == LZW_MAX_CODE) {
        lzw_put(e, LZW_CLEAR);
        lzw_reset(e);
        return false;
    }
    return true;
}

int gni_lzw_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if ((in == NULL && len > 0) || (out == NULL && cap > 0) || out_len == NULL) {
        return GN_EINVAL;
    }
    lzw_enc e = {.out = out, .cap = cap};
    e.keys = gn_malloc(LZW_HASH_SLOTS * (sizeof e.keys[0] + sizeof e.vals[0]));
    if (e.keys == NULL) {
        return GN_ENOMEM;
    }
    e.vals = (uint16_t *)(e.keys + LZW_HASH_SLOTS);
    lzw_reset(&e);
    lzw_put(&e, LZW_CLEAR); /* the writer always starts with a clear code */
    if (len > 0) {
        unsigned code = in[0];
        for (size_t i = 1; i < len && e.err == 0; i++) {
            uint32_t key = (uint32_t)code << 8 | in[i];
            uint32_t s = lzw_slot(key);
            bool hit = false;
            /* at most 4094 entries in 8192 slots: an empty slot always ends the probe */
            while (e.keys[s] != 0) {
                if (e.keys[s] == key + 1) {
                    hit = true;
                    break;
                }
                s = (s + 1) & (LZW_HASH_SLOTS - 1);
            }
            if (hit) {
                code = e.vals[s];
                continue;
            }
            lzw_put(&e, code);
            code = in[i];
            if (lzw_next(&e)) {
                e.keys[s] = key + 1; /* s is the empty slot the probe ended on */
                e.vals[s] = (uint16_t)e.hi;
            }
        }
        lzw_put(&e, code);
        (void)lzw_next(&e);
    }
    lzw_put(&e, LZW_EOD);
    if (e.nacc > 0 && e.err == 0) {
        if (e.n == e.cap) {
            e.err = GN_ENOSPC;
        } else {
            e.out[e.n++] = (uint8_t)e.acc;
        }
    }
    gn_free(e.keys);
    if (e.err != 0) {
        return e.err;
    }
    *out_len = e.n;
    return 0;
}

/* ---- decoder ---- */

typedef struct lzw_entry {
    uint32_t off; /* where the string starts in the output */
    uint32_t len; /* its length (2 .. 4096) */
} lzw_entry;

int gni_lzw_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if ((in == NULL && len > 0) || (out == NULL && cap > 0) || out_len == NULL) {
        return GN_EINVAL;
    }
    /* entry offsets are 32-bit: a larger output bound cannot be described by ENP anyway */
    if (cap > UINT32_MAX) {
        cap = UINT32_MAX;
    }
    lzw_entry *tab = gn_malloc((LZW_MAX_CODE + 1) * sizeof *tab);
    if (tab == NULL) {
        return GN_ENOMEM;
    }
    unsigned width = GNI_LZW_LIT_WIDTH + 1;
    unsigned hi = LZW_EOD;    /* next code to define */
    unsigned grow = 1u << width;
    unsigned ndef = LZW_FIRST; /* codes below are defined (or literals) */
    bool have_last = false;
    uint32_t last_off = 0, last_len = 0;
    uint64_t acc = 0;
    unsigned nacc = 0;
    size_t ip = 0, o = 0;
    int rc = GN_EPARSE; /* input ended before the end code */
    /* each pass consumes at least 9 input bits or ends: bounded by 8 * len / 9 + 1 */
    for (;;) {
        while (nacc < width && ip < len) {
            acc |= (uint64_t)in[ip++] << nacc;
            nacc += 8;
        }
        if (nacc < width) {
            break;
        }
        unsigned code = (unsigned)(acc & ((1u << width) - 1));
        acc >>= width;
        nacc -= width;
        if (code == LZW_CLEAR) {
            width = GNI_LZW_LIT_WIDTH + 1;
            hi = LZW_EOD;
            grow = 1u << width;
            ndef = LZW_FIRST;
            have_last = false;
            continue;
        }
        if (code == LZW_EOD) {
            rc = 0;
            break;
        }
        uint32_t start = (uint32_t)o;
        if (have_last) {
            /* hi = the previous string + this code's first byte (written next) */
            tab[hi].off = last_off;
            tab[hi].len = last_len + 1;
            if (hi >= ndef) {
                ndef = hi + 1;
            }
        }
        uint32_t n;
        if (code < LZW_CLEAR) {
            if (o == cap) {
                rc = GN_ETOOBIG;
                break;
            }
            out[o++] = (uint8_t)code;
            n = 1;
        } else if (code < ndef) {
            n = tab[code].len;
            if (n > cap - o) {
                rc = GN_ETOOBIG;
                break;
            }
            const uint8_t *src = out + tab[code].off;
            uint8_t *dst = out + o;
            if ((size_t)(dst - src) >= n) {
                memcpy(dst, src, n);
            } else {
                /* code == hi just defined: the string overlaps its own output */
                for (uint32_t k = 0; k < n; k++) {
                    dst[k] = src[k];
                }
            }
            o += n;
        } else {
            break; /* not defined yet: GN_EPARSE */
        }
        have_last = true;
        last_off = start;
        last_len = n;
        hi++;
        if (hi >= grow) {
            if (width == GNI_LZW_MAX_WIDTH) {
                /* dictionary full: keep it, define nothing until a clear */
                have_last = false;
                hi--;
            } else {
                width++;
                grow <<= 1;
            }
        }
    }
    gn_free(tab);
    if (rc == 0) {
        *out_len = o;
    }
    return rc;
}
