/*
 * enp_test: ENP R1 framing and compression (protocols/ergo/enp.c, enp_z.c)
 * against the frames captured between two live Ergo 3.1.0 nodes
 * ($GN_SHARED_DIR/vectors/ergo/enp_*.hex; provenance in that directory's
 * README.md; layouts in specs/ergo-wire.md section c).
 *
 * Every vector frame: splits out of the concatenated capture at any chunk
 * size, parses, matches the fields of its annotation line (types, order,
 * PIDs, refs, aliases, names, cache ids, flags, timestamps, codes,
 * compression fields; string and error payloads byte for byte; 199 type
 * names through caches.txt), rebuilds to the same bytes (stale msgref0
 * bytes included), and is refused cleanly when truncated at any offset.
 * Compressed vectors inflate to the annotated inner frame; LZW re-encodes
 * byte-identically; gzip/zlib re-deflate to an equivalent frame.
 */
#include "gn_failalloc.h"
#include "gn_test.h"

#include <dirent.h>
#include <zlib.h>

#include "enp.h"
#include "golemnet/golemnet.h"

/* ---- vector files ---- */

typedef struct vframe {
    char sender[16];
    char *note;     /* the "# F<n> ..." annotation line (may be NULL) */
    char *inner_hex; /* compressed frames: "decompressed inner frame" hex */
    uint8_t *bytes;
    size_t len;
} vframe;

typedef struct vfile {
    char name[128];
    vframe f[64];
    size_t n;
} vfile;

static char vec_dir[4096];

static bool find_vec_dir(void)
{
    const char *shared = getenv("GN_SHARED_DIR");
    const char *src = getenv("GN_SOURCE_DIR");
    const char *cands[3] = {NULL, NULL, "../shared"};
    char a[4096], b[4096];
    if (shared) {
        snprintf(a, sizeof a, "%s", shared);
        cands[0] = a;
    }
    if (src) {
        snprintf(b, sizeof b, "%s/../shared", src);
        cands[1] = b;
    }
    for (int i = 0; i < 3; i++) {
        if (!cands[i])
            continue;
        snprintf(vec_dir, sizeof vec_dir, "%s/vectors/ergo", cands[i]);
        DIR *d = opendir(vec_dir);
        if (d) {
            closedir(d);
            return true;
        }
    }
    return false;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
        }
        buf = nb;
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

static void vfile_free(vfile *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->f[i].note);
        free(v->f[i].inner_hex);
        free(v->f[i].bytes);
    }
    free(v);
}

static uint8_t *unhex_alloc(const char *hex, size_t n, size_t *out_len)
{
    uint8_t *b = malloc(n / 2 + 1);
    CHECK(b);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        CHECK(sscanf(hex + 2 * i, "%2x", &v) == 1);
        b[i] = (uint8_t)v;
    }
    *out_len = n / 2;
    return b;
}

static vfile *vfile_load(const char *name)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", vec_dir, name);
    char *text = read_text(path);
    CHECK(text);
    vfile *v = calloc(1, sizeof *v);
    CHECK(v);
    snprintf(v->name, sizeof v->name, "%s", name);
    char *pending_note = NULL, *pending_inner = NULL;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            if (strncmp(line, "# F", 3) == 0 && line[3] >= '0' && line[3] <= '9') {
                free(pending_note);
                pending_note = strdup(line);
            }
            const char *k = strstr(line, "decompressed inner frame (not on the wire): ");
            if (k) {
                free(pending_inner);
                pending_inner = strdup(k + strlen("decompressed inner frame (not on the wire): "));
            }
            continue;
        }
        char who[64], conn[16];
        int off = 0;
        if (sscanf(line, "%63s %15s %n", who, conn, &off) != 2)
            continue;
        const char *hex = line + off;
        size_t hl = strspn(hex, "0123456789abcdef");
        if (hl < 16 || strncmp(hex, "4e01", 4) != 0)
            continue; /* only ENP frames */
        CHECK(v->n < sizeof v->f / sizeof v->f[0]);
        vframe *f = &v->f[v->n++];
        char *gt = strchr(who, '>');
        CHECK(gt);
        *gt = 0;
        snprintf(f->sender, sizeof f->sender, "%.15s", who);
        f->bytes = unhex_alloc(hex, hl, &f->len);
        f->note = pending_note;
        f->inner_hex = pending_inner;
        pending_note = pending_inner = NULL;
    }
    free(pending_note);
    free(pending_inner);
    free(text);
    return v;
}

/* the enp_*.hex file names, sorted; returns the count */
static size_t list_enp_files(char names[][128], size_t max)
{
    DIR *d = opendir(vec_dir);
    CHECK(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "enp_", 4) == 0 && l > 4 && strcmp(e->d_name + l - 4, ".hex") == 0) {
            CHECK(n < max);
            snprintf(names[n++], 128, "%s", e->d_name);
        }
    }
    closedir(d);
    /* insertion sort: deterministic order */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[128];
            memcpy(t, names[j], 128);
            memcpy(names[j], names[j - 1], 128);
            memcpy(names[j - 1], t, 128);
        }
    return n;
}

#define MAX_FILES 64
static char files[MAX_FILES][128];
static size_t nfiles;

static void need_vectors(void)
{
    if (!find_vec_dir())
        SKIP("shared/vectors/ergo not found (set GN_SHARED_DIR)");
    nfiles = list_enp_files(files, MAX_FILES);
    /* the README lists 40 ENP captures */
    CHECK(nfiles >= 40);
}

/* ---- caches.txt: reg ids per sender ---- */

typedef struct regent {
    char sender[16];
    unsigned id;
    char name[160];
} regent;
static regent regs[512];
static size_t nregs;

static void load_caches(void)
{
    if (nregs)
        return;
    char path[8192];
    snprintf(path, sizeof path, "%s/caches.txt", vec_dir);
    char *text = read_text(path);
    CHECK(text);
    char who[16] = "";
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "### caches announced by ", 24) == 0) {
            sscanf(line + 24, "%15s", who);
            continue;
        }
        unsigned id;
        char name[160];
        if (sscanf(line, "reg %u %159s", &id, name) == 2 && who[0]) {
            CHECK(nregs < sizeof regs / sizeof regs[0]);
            regent *r = &regs[nregs++];
            snprintf(r->sender, sizeof r->sender, "%s", who);
            r->id = id;
            snprintf(r->name, sizeof r->name, "%s", name);
        }
    }
    free(text);
    CHECK(nregs > 200);
}

static const char *reg_name(const char *sender, unsigned id)
{
    for (size_t i = 0; i < nregs; i++)
        if (regs[i].id == id && strcmp(regs[i].sender, sender) == 0)
            return regs[i].name;
    return NULL;
}

/* ---- annotation parsing ---- */

/* The field part of a note: up to " payload:", " reason:" or " inner=". */
static void note_fields(const char *note, char *out, size_t cap)
{
    snprintf(out, cap, "%s", note);
    const char *cuts[] = {" payload:", " reason:", " inner="};
    for (int i = 0; i < 3; i++) {
        char *c = strstr(out, cuts[i]);
        if (c)
            *c = 0;
    }
}

/* finds " key" in @s; returns the text after it or NULL */
static const char *ann(const char *s, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s", key);
    const char *p = strstr(s, pat);
    return p ? p + strlen(pat) : NULL;
}

static bool ann_u64(const char *s, const char *key, uint64_t *v)
{
    const char *p = ann(s, key);
    if (!p)
        return false;
    char *end;
    *v = strtoull(p, &end, 10);
    CHECK(end != p);
    return true;
}

static bool ann_i64(const char *s, const char *key, int64_t *v)
{
    const char *p = ann(s, key);
    if (!p)
        return false;
    char *end;
    *v = strtoll(p, &end, 10);
    CHECK(end != p);
    return true;
}

static bool ann_triple(const char *s, const char *key, uint64_t v[3])
{
    const char *p = ann(s, key);
    if (!p)
        return false;
    unsigned long long a, b, c;
    CHECK(sscanf(p, "[%llu,%llu,%llu]", &a, &b, &c) == 3);
    v[0] = a;
    v[1] = b;
    v[2] = c;
    return true;
}

static bool ann_str(const char *s, const char *key, char *out, size_t cap)
{
    const char *p = ann(s, key);
    if (!p)
        return false;
    CHECK(*p == '"');
    const char *q = strchr(p + 1, '"');
    CHECK(q && (size_t)(q - p - 1) < cap);
    memcpy(out, p + 1, (size_t)(q - p - 1));
    out[q - p - 1] = 0;
    return true;
}

static unsigned note_type(const char *note)
{
    const char *p = strstr(note, " ENP ");
    CHECK(p);
    const char *sp = strstr(p + 5, " len=");
    CHECK(sp);
    const char *lp = sp;
    while (lp > p && *lp != '(')
        lp--;
    CHECK(*lp == '(');
    return (unsigned)strtoul(lp + 1, NULL, 10);
}

static bool slice_is(gn_slice s, const char *str)
{
    return s.len == strlen(str) && memcmp(s.base, str, s.len) == 0;
}

static size_t checks_done; /* annotation facts compared, over all frames */

/* compares the parsed frame with its annotation line */
static void check_note(const vframe *vf, const gni_enp_frame *f)
{
    char fl[1024];
    note_fields(vf->note, fl, sizeof fl);
    uint64_t u, tri[3];
    int64_t i64;
    char str[256];

    CHECK_EQ(note_type(vf->note), f->type);
    CHECK(ann_u64(fl, "len=", &u));
    CHECK_EQ(u, vf->len);
    CHECK(ann_u64(fl, "order=", &u));
    CHECK_EQ(u, f->order);
    checks_done += 3;
    if (ann_u64(fl, "from=", &u)) {
        CHECK_EQ(u, f->from);
        checks_done++;
    }
    const char *prio = ann(fl, "prio=");
    if (prio) {
        CHECK_EQ(strtoul(prio, NULL, 10), gni_enp_priority(f));
        bool imp = strncmp(prio + 1, "|important", 10) == 0;
        CHECK_EQ(imp, gni_enp_important(f));
        checks_done += 2;
    }
    if (ann_u64(fl, "msgref0=", &u)) {
        CHECK_EQ(u, f->ref[0]);
        checks_done++;
    }
    if (ann_u64(fl, "to=", &u)) {
        CHECK_EQ(u, f->to);
        checks_done++;
    }
    if (ann_u64(fl, "target=", &u)) {
        CHECK_EQ(f->type, GNI_ENP_TERM_PID);
        CHECK_EQ(u, f->to);
        checks_done++;
    }
    if (ann_triple(fl, "ref=", tri)) {
        CHECK(tri[0] == f->ref[0] && tri[1] == f->ref[1] && tri[2] == f->ref[2]);
        checks_done++;
    }
    if (ann_triple(fl, "toAlias=", tri) || ann_triple(fl, "targetAlias=", tri)) {
        CHECK(tri[0] == f->alias[0] && tri[1] == f->alias[1] && tri[2] == f->alias[2]);
        checks_done++;
    }
    if (ann_str(fl, "toName=", str, sizeof str) || ann_str(fl, "targetName=", str, sizeof str) ||
        ann_str(fl, "event=", str, sizeof str)) {
        CHECK(slice_is(f->name, str));
        checks_done++;
    }
    if (ann_u64(fl, "toNameCacheID=", &u) || ann_u64(fl, "targetNameCacheID=", &u) ||
        ann_u64(fl, "eventCacheID=", &u)) {
        CHECK_EQ(u, f->atom_id);
        checks_done++;
    }
    if (ann_i64(fl, "timestamp=", &i64)) {
        CHECK(i64 == f->timestamp);
        checks_done++;
    }
    if (ann_u64(fl, "code=", &u)) {
        CHECK_EQ(u, f->code);
        checks_done++;
    }
    if (ann_u64(fl, "ctype=", &u)) {
        CHECK_EQ(u, f->method);
        CHECK(ann_u64(fl, "unpackedLen=", &u));
        CHECK_EQ(u, f->orig_len);
        checks_done += 2;
    }

    /* payloads the annotation spells out completely: strings and error texts */
    const char *pl = strstr(vf->note, " payload: string \"");
    if (pl && !strstr(pl, "...(")) {
        pl += strlen(" payload: string \"");
        const char *q = strrchr(pl, '"');
        CHECK(q);
        size_t n = (size_t)(q - pl);
        CHECK_EQ(f->payload.len, 3 + n);
        CHECK_EQ(f->payload.base[0], 0x8d); /* EDF string */
        CHECK_EQ((f->payload.base[1] << 8) | f->payload.base[2], n);
        CHECK_MEM(f->payload.base + 3, pl, n);
        checks_done++;
    }
    const char *rs = strstr(vf->note, " reason: error(\"");
    if (rs) {
        rs += strlen(" reason: error(\"");
        const char *q = strstr(rs, "\")");
        CHECK(q);
        size_t n = (size_t)(q - rs);
        CHECK_EQ(f->payload.base[0], 0x9c); /* EDF error */
        unsigned v = (unsigned)(f->payload.base[1] << 8 | f->payload.base[2]);
        if (v < 0x8000) {
            CHECK_EQ(v, n);
            CHECK_EQ(f->payload.len, 3 + n);
            CHECK_MEM(f->payload.base + 3, rs, n);
        } else {
            CHECK_EQ(f->payload.len, 3); /* an err-cache id of the sender */
        }
        checks_done++;
    }
    /* 199: the registered struct's type, resolved with the sender's RegCache */
    const char *pp = strstr(vf->note, " payload: proto.");
    if (f->type == GNI_ENP_ANY) {
        CHECK(pp);
        pp += strlen(" payload: proto.");
        char want[160];
        size_t n = strcspn(pp, " ");
        CHECK(n < 100);
        snprintf(want, sizeof want, "#ergo.services/ergo/net/proto/%.*s", (int)n, pp);
        const char *name = NULL;
        if (f->any_type_id >= 4096) {
            name = reg_name(vf->sender, f->any_type_id);
        } else {
            CHECK(f->any_type_name.len > 0);
        }
        gn_slice ns = name ? gn_slice_of(name, strlen(name)) : f->any_type_name;
        CHECK(slice_is(ns, want));
        enum gni_enp_any_kind k = gni_enp_any_kind_of(ns);
        CHECK(k != GNI_ENP_ANY_UNKNOWN);
        CHECK_STR(gni_enp_any_type_name(k), want);
        checks_done++;
    }
}

/* ---- the vector tests ---- */

static void each_frame(void (*fn)(const vfile *, const vframe *))
{
    need_vectors();
    for (size_t i = 0; i < nfiles; i++) {
        vfile *v = vfile_load(files[i]);
        CHECK(v->n > 0);
        for (size_t k = 0; k < v->n; k++) {
            printf("# %s frame %zu\n", v->name, k + 1);
            fn(v, &v->f[k]);
        }
        printf("# %s: %zu frames\n", v->name, v->n);
        vfile_free(v);
    }
}

static size_t frames_seen;

static void parse_and_rebuild(const vfile *v, const vframe *vf)
{
    (void)v;
    gni_enp_frame f;
    gni_enp_diag d = {{0}};
    int rc = gni_enp_parse(vf->bytes, vf->len, &f, &d);
    if (rc != 0)
        printf("# parse: %s\n", d.msg);
    CHECK_EQ(rc, 0);
    CHECK(vf->note);
    check_note(vf, &f);
    /* payload lies inside the frame, at its end */
    CHECK(f.payload.base + f.payload.len == vf->bytes + vf->len);
    /* rebuild: same bytes, stale msgref0 included */
    CHECK_EQ(gni_enp_frame_len(&f), vf->len);
    uint8_t *out = malloc(vf->len);
    CHECK(out);
    CHECK_EQ(gni_enp_build(&f, out, vf->len), (long)vf->len);
    CHECK_MEM(out, vf->bytes, vf->len);
    /* the head alone, then the payload: the zero-copy path */
    long h = gni_enp_build_head(&f, out, vf->len);
    CHECK_EQ(h, (long)(vf->len - f.payload.len));
    CHECK_MEM(out, vf->bytes, (size_t)h);
    /* any smaller buffer is refused */
    CHECK_EQ(gni_enp_build(&f, out, vf->len - 1), GN_ENOSPC);
    free(out);
    /* the order byte is what Ergo's rule gives (network-layer acks carry 0) */
    if (f.type != GNI_ENP_ANY && f.type != GNI_ENP_COMPRESSED) {
        if (f.order != 0)
            CHECK_EQ(gni_enp_default_order(&f, true), f.order);
        else
            CHECK(f.type == GNI_ENP_RESPONSE_ERROR || f.type >= GNI_ENP_TERM_PID);
        CHECK_EQ(gni_enp_default_order(&f, false), f.type == GNI_ENP_MSG_EXIT ? f.order : 0);
    }
    frames_seen++;
}

GN_TEST(vectors_parse_match_notes_and_rebuild)
{
    need_vectors();
    load_caches();
    frames_seen = checks_done = 0;
    each_frame(parse_and_rebuild);
    printf("# %zu frames, %zu annotation facts compared\n", frames_seen, checks_done);
    CHECK_EQ(frames_seen, 117); /* every data line of the 40 captures */
    CHECK(checks_done >= 7 * frames_seen); /* 829 when written */
}

/* split the whole capture of a file, fed in chunks of @chunk bytes */
static void split_file(const vfile *v, size_t chunk, uint32_t max_len)
{
    size_t total = 0;
    for (size_t i = 0; i < v->n; i++)
        total += v->f[i].len;
    uint8_t *all = malloc(total);
    CHECK(all);
    size_t o = 0;
    for (size_t i = 0; i < v->n; i++) {
        memcpy(all + o, v->f[i].bytes, v->f[i].len);
        o += v->f[i].len;
    }
    gni_enp_splitter s;
    CHECK_OK(gni_enp_splitter_init(&s, max_len));
    size_t next = 0, pos = 0;
    /* each call consumes input or yields a frame: bounded by 2 * total + frames */
    for (size_t guard = 0; pos < total && guard < 2 * total + v->n + 2; guard++) {
        size_t n = (chunk < total - pos ? chunk : total - pos);
        size_t used = 0;
        gn_slice fr;
        int rc = gni_enp_splitter_feed(&s, all + pos, n, &used, &fr);
        CHECK(rc >= 0);
        CHECK(used <= n);
        pos += used;
        if (rc == 1) {
            CHECK(next < v->n);
            CHECK_EQ(fr.len, v->f[next].len);
            CHECK_MEM(fr.base, v->f[next].bytes, fr.len);
            next++;
        } else {
            CHECK_EQ(used, n); /* no frame: all input taken */
        }
    }
    CHECK_EQ(pos, total);
    CHECK_EQ(next, v->n);
    CHECK_EQ(gni_enp_splitter_pending(&s), 0);
    gni_enp_splitter_fini(&s);
    free(all);
}

GN_TEST(vectors_split_at_every_chunk_size)
{
    need_vectors();
    size_t chunks[] = {1, 2, 3, 7, 8, 9, 31, 64, 1000, 1u << 20};
    size_t frames = 0;
    for (size_t i = 0; i < nfiles; i++) {
        vfile *v = vfile_load(files[i]);
        uint32_t biggest = 0;
        for (size_t k = 0; k < v->n; k++)
            if (v->f[k].len > biggest)
                biggest = (uint32_t)v->f[k].len;
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            split_file(v, chunks[c], 0);
            /* a limit exactly at the largest frame lets every frame through */
            split_file(v, chunks[c], biggest);
        }
        frames += v->n;
        vfile_free(v);
    }
    CHECK_EQ(frames, 117);
}

static void truncate_frame(const vfile *v, const vframe *vf)
{
    (void)v;
    gni_enp_frame full, f;
    CHECK_OK(gni_enp_parse(vf->bytes, vf->len, &full, NULL));
    size_t head = vf->len - full.payload.len;
    size_t min_ok = full.type == GNI_ENP_ANY ? head + 1 : head;
    uint8_t *cut = malloc(vf->len);
    CHECK(cut);
    for (size_t k = 0; k < vf->len; k++) {
        /* the splitter waits for the rest, holds k bytes, yields nothing */
        gni_enp_splitter s;
        CHECK_OK(gni_enp_splitter_init(&s, 0));
        size_t used = 0;
        gn_slice fr = {0};
        CHECK_EQ(gni_enp_splitter_feed(&s, vf->bytes, k, &used, &fr), 0);
        CHECK_EQ(used, k);
        CHECK_EQ(gni_enp_splitter_pending(&s), k);
        /* the rest completes it */
        CHECK_EQ(gni_enp_splitter_feed(&s, vf->bytes + k, vf->len - k, &used, &fr), 1);
        CHECK_EQ(used, vf->len - k);
        CHECK_MEM(fr.base, vf->bytes, vf->len);
        gni_enp_splitter_fini(&s);

        /* the cut bytes with the original header: a length mismatch */
        gni_enp_diag d = {{0}};
        CHECK_EQ(gni_enp_parse(vf->bytes, k, &f, &d), GN_EPARSE);
        CHECK(d.msg[0] != 0);
        if (k < GNI_ENP_HEADER_LEN)
            continue;
        /* the cut bytes with their length in the header: short fixed part or a shorter payload */
        memcpy(cut, vf->bytes, k);
        cut[2] = (uint8_t)(k >> 24);
        cut[3] = (uint8_t)(k >> 16);
        cut[4] = (uint8_t)(k >> 8);
        cut[5] = (uint8_t)k;
        int rc = gni_enp_parse(cut, k, &f, &d);
        if (k < min_ok) {
            CHECK_EQ(rc, GN_EPARSE);
            CHECK(strstr(d.msg, "too short") != NULL);
            CHECK_EQ(f.type, 0); /* nothing half-filled */
        } else {
            CHECK_EQ(rc, 0);
            CHECK_EQ(f.type, full.type);
            CHECK(f.from == full.from && f.to == full.to && f.ref[0] == full.ref[0]);
            CHECK_EQ(f.payload.len, k - head);
        }
    }
    free(cut);
}

GN_TEST(vectors_truncated_at_every_offset)
{
    each_frame(truncate_frame);
}

/* ---- compression vectors ---- */

static vframe *load_single(const char *name, vfile **vp)
{
    need_vectors();
    *vp = vfile_load(name);
    CHECK_EQ((*vp)->n, 1);
    return &(*vp)->f[0];
}

static void check_compressed(const char *file, uint8_t method)
{
    vfile *v;
    vframe *vf = load_single(file, &v);
    CHECK(vf->inner_hex);
    size_t inner_len;
    uint8_t *inner = unhex_alloc(vf->inner_hex, strlen(vf->inner_hex), &inner_len);
    CHECK_EQ(inner_len, 2336);

    gni_enp_frame z;
    CHECK_OK(gni_enp_parse(vf->bytes, vf->len, &z, NULL));
    CHECK_EQ(z.type, GNI_ENP_COMPRESSED);
    CHECK_EQ(z.method, method);
    CHECK_EQ(z.orig_len, 2336);
    CHECK_EQ(z.order, inner[6]); /* the wrapper keeps the inner order byte */

    /* inflates to exactly the annotated inner frame */
    uint8_t *out = malloc(4096);
    CHECK(out);
    gni_enp_diag d = {{0}};
    CHECK_EQ(gni_enp_inflate(&z, out, 4096, &d), 2336);
    CHECK_MEM(out, inner, 2336);
    gni_enp_frame in;
    CHECK_OK(gni_enp_parse(out, 2336, &in, NULL));
    CHECK_EQ(in.type, GNI_ENP_MSG_PID);
    CHECK_EQ(in.from, 1004);
    CHECK_EQ(in.to, 1004);
    CHECK_EQ(in.order, 239);
    CHECK_EQ(in.payload.len, 3 + 2300);
    for (size_t i = 0; i < 2300; i++)
        CHECK_EQ(in.payload.base[3 + i], "golem-compression-test "[i % 23]);

    /* the bound is the caller's: one byte short is refused before any work */
    CHECK_EQ(gni_enp_inflate(&z, out, 2335, &d), GN_ETOOBIG);
    CHECK(strstr(d.msg, "2336") != NULL);
    /* an announced length that does not match the stream */
    gni_enp_frame bad = z;
    bad.orig_len = 2337;
    CHECK_EQ(gni_enp_inflate(&bad, out, 4096, &d), GN_EPARSE);
    bad.orig_len = 2335;
    CHECK_EQ(gni_enp_inflate(&bad, out, 4096, &d), GN_EPARSE);
    bad.orig_len = 4;
    CHECK_EQ(gni_enp_inflate(&bad, out, 4096, &d), GN_EPARSE);
    /* the stream cut short */
    bad = z;
    bad.payload.len -= 1;
    CHECK_EQ(gni_enp_inflate(&bad, out, 4096, &d), GN_EPARSE);
    bad.payload.len = 0;
    CHECK_EQ(gni_enp_inflate(&bad, out, 4096, &d), GN_EPARSE);
    bad = z;
    bad.method = 99;
    CHECK_EQ(gni_enp_inflate(&bad, out, 4096, &d), GN_ENOTSUP);

    /* compress the inner frame again */
    size_t cap = gni_enp_compress_bound(2336);
    uint8_t *re = malloc(cap);
    CHECK(re);
    long n = gni_enp_compress(inner, 2336, method, GNI_ENP_ZLEVEL_DEFAULT, re, cap);
    CHECK(n > GNI_ENP_Z_HEAD_LEN);
    if (method == GNI_ENP_Z_LZW) {
        /* Go's LZW writer is deterministic: byte-identical */
        CHECK_EQ(n, (long)vf->len);
        CHECK_MEM(re, vf->bytes, vf->len);
    } else {
        /* deflate may differ from Go's: an equivalent frame */
        CHECK_MEM(re, vf->bytes, 2); /* magic, version */
        CHECK_MEM(re + 6, vf->bytes + 6, 7); /* order, type, method, original length */
        gni_enp_frame z2;
        CHECK_OK(gni_enp_parse(re, (size_t)n, &z2, NULL));
        memset(out, 0, 4096);
        CHECK_EQ(gni_enp_inflate(&z2, out, 2336, NULL), 2336);
        CHECK_MEM(out, inner, 2336);
    }
    /* a corrupted deflate stream is caught by its checksum */
    if (method != GNI_ENP_Z_LZW) {
        uint8_t *cor = malloc(vf->len);
        CHECK(cor);
        memcpy(cor, vf->bytes, vf->len);
        cor[vf->len - 6] ^= 0x5a; /* inside the trailer checksum */
        gni_enp_frame zc;
        CHECK_OK(gni_enp_parse(cor, vf->len, &zc, NULL));
        CHECK_EQ(gni_enp_inflate(&zc, out, 4096, &d), GN_EPARSE);
        free(cor);
    }
    free(re);
    free(out);
    free(inner);
    vfile_free(v);
}

GN_TEST(compressed_gzip_vector)
{
    check_compressed("enp_compress_gzip.hex", GNI_ENP_Z_GZIP);
}

GN_TEST(compressed_zlib_vector)
{
    check_compressed("enp_compress_zlib.hex", GNI_ENP_Z_ZLIB);
}

GN_TEST(compressed_lzw_vector_is_byte_identical)
{
    check_compressed("enp_compress_lzw.hex", GNI_ENP_Z_LZW);
}

GN_TEST(compression_threshold_rule)
{
    vfile *v;
    vframe *vf = load_single("enp_compress_below_threshold.hex", &v);
    gni_enp_frame f;
    CHECK_OK(gni_enp_parse(vf->bytes, vf->len, &f, NULL));
    CHECK_EQ(vf->len, 536);
    gni_enp_zopts z = {.enable = true, .method = GNI_ENP_Z_GZIP, .threshold = 1024};
    /* the captured 536-byte frame went out uncompressed with compression on */
    CHECK(!gni_enp_should_compress(f.type, vf->len, &z));
    /* the 2336-byte frames of the other captures were compressed */
    CHECK(gni_enp_should_compress(GNI_ENP_MSG_PID, 2336, &z));
    /* strictly greater, header counted */
    CHECK(!gni_enp_should_compress(GNI_ENP_MSG_PID, 1024, &z));
    CHECK(gni_enp_should_compress(GNI_ENP_MSG_PID, 1025, &z));
    /* the threshold cannot go below 1024 */
    z.threshold = 10;
    CHECK(!gni_enp_should_compress(GNI_ENP_MSG_PID, 1000, &z));
    z.threshold = 0;
    CHECK(!gni_enp_should_compress(GNI_ENP_MSG_PID, 1024, &z));
    z.threshold = 4096;
    CHECK(!gni_enp_should_compress(GNI_ENP_MSG_PID, 4096, &z));
    CHECK(gni_enp_should_compress(GNI_ENP_MSG_PID, 4097, &z));
    /* eligible types only */
    const uint8_t yes[] = {101, 102, 103, 104, 105, 106, 121, 122, 123, 124, 129, 130};
    const uint8_t no[] = {107, 181, 182, 183, 184, 185, 186, 199, 200};
    for (size_t i = 0; i < sizeof yes; i++)
        CHECK(gni_enp_should_compress(yes[i], 5000, &z));
    for (size_t i = 0; i < sizeof no; i++)
        CHECK(!gni_enp_should_compress(no[i], 5000, &z));
    /* off by default */
    z.enable = false;
    CHECK(!gni_enp_should_compress(GNI_ENP_MSG_PID, 5000, &z));
    CHECK(!gni_enp_should_compress(GNI_ENP_MSG_PID, 5000, NULL));
    vfile_free(v);
}

GN_TEST(compress_roundtrip_every_method_and_level)
{
    /* a 20 KB call with mixed content: every method and gzip level round trips */
    size_t plen = 20000;
    uint8_t *payload = malloc(plen);
    CHECK(payload);
    for (size_t i = 0; i < plen; i++)
        payload[i] = (uint8_t)(i % 251 < 100 ? 'a' + i % 7 : (i * 2654435761u) >> 13);
    gni_enp_frame f = {.type = GNI_ENP_REQ_NAME, .order = 17, .from = 1004, .flags = 1,
                       .ref = {1, 2, 3}, .name = gn_slice_of("receiver", 8),
                       .payload = gn_slice_of(payload, plen)};
    size_t flen = gni_enp_frame_len(&f);
    uint8_t *frame = malloc(flen);
    CHECK(frame);
    CHECK_EQ(gni_enp_build(&f, frame, flen), (long)flen);
    size_t cap = gni_enp_compress_bound(flen);
    uint8_t *z = malloc(cap), *back = malloc(flen);
    CHECK(z && back);
    const uint8_t methods[] = {GNI_ENP_Z_LZW, GNI_ENP_Z_ZLIB, GNI_ENP_Z_GZIP, 0};
    for (size_t m = 0; m < sizeof methods; m++) {
        for (uint8_t lv = 0; lv < 3; lv++) {
            long n = gni_enp_compress(frame, flen, methods[m], lv, z, cap);
            CHECK(n > 0 && (size_t)n < flen);
            gni_enp_frame zf;
            CHECK_OK(gni_enp_parse(z, (size_t)n, &zf, NULL));
            CHECK_EQ(zf.method, methods[m] ? methods[m] : GNI_ENP_Z_GZIP);
            CHECK_EQ(zf.order, 17);
            CHECK_EQ(zf.orig_len, flen);
            memset(back, 0, flen);
            CHECK_EQ(gni_enp_inflate(&zf, back, flen, NULL), (long)flen);
            CHECK_MEM(back, frame, flen);
            /* too small an output buffer */
            CHECK_EQ(gni_enp_compress(frame, flen, methods[m], lv, z, (size_t)n - 1), GN_ENOSPC);
        }
    }
    /* a compressed frame inside a compressed frame is refused */
    long n1 = gni_enp_compress(frame, flen, GNI_ENP_Z_ZLIB, 0, z, cap);
    CHECK(n1 > 0);
    uint8_t *zz = malloc(gni_enp_compress_bound((size_t)n1));
    CHECK(zz);
    long n2 = gni_enp_compress(z, (size_t)n1, GNI_ENP_Z_GZIP, 0, zz,
                               gni_enp_compress_bound((size_t)n1));
    CHECK(n2 > 0);
    gni_enp_frame outer;
    CHECK_OK(gni_enp_parse(zz, (size_t)n2, &outer, NULL));
    gni_enp_diag d = {{0}};
    CHECK_EQ(gni_enp_inflate(&outer, back, flen, &d), GN_EPARSE);
    CHECK(strstr(d.msg, "inside a compressed") != NULL);
    /* not a frame, unknown method */
    CHECK_EQ(gni_enp_compress(payload, 100, GNI_ENP_Z_GZIP, 0, z, cap), GN_EPARSE);
    CHECK_EQ(gni_enp_compress(frame, flen, 7, 0, z, cap), GN_ENOTSUP);
    free(zz);
    free(z);
    free(back);
    free(frame);
    free(payload);
}

/* one gzip member of @len bytes at @in, appended at @out; returns its size */
static size_t gzip_member(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t n = cap - zs.avail_out;
    deflateEnd(&zs);
    return n;
}

GN_TEST(gzip_concatenated_members_accepted)
{
    /* Go's gzip reader reads concatenated members (multistream): so do we */
    gni_enp_frame f = {.type = GNI_ENP_MSG_PID, .from = 1, .to = 2,
                       .payload = gn_slice_of("\x8d\x00\x03" "abc", 6)};
    uint8_t frame[64];
    long flen = gni_enp_build(&f, frame, sizeof frame);
    CHECK_EQ(flen, 39);
    uint8_t z[512];
    memcpy(z, "\x4e\x01\x00\x00\x00\x00\x00\xc8\x66\x00\x00\x00\x27", 13);
    size_t n = 13;
    n += gzip_member(frame, 20, z + n, sizeof z - n);
    size_t one = n;
    n += gzip_member(frame + 20, 19, z + n, sizeof z - n);
    z[4] = (uint8_t)(n >> 8);
    z[5] = (uint8_t)n;
    gni_enp_frame zf;
    CHECK_OK(gni_enp_parse(z, n, &zf, NULL));
    uint8_t back[64];
    CHECK_EQ(gni_enp_inflate(&zf, back, sizeof back, NULL), 39);
    CHECK_MEM(back, frame, 39);
    /* garbage after a member is an error (Go: invalid header) */
    memset(z + one, 0x11, n - one);
    CHECK_OK(gni_enp_parse(z, n, &zf, NULL));
    CHECK_EQ(gni_enp_inflate(&zf, back, sizeof back, NULL), GN_EPARSE);
}

/* ---- MaxMessageSize, bad headers, garbage types ---- */

static void put_len(uint8_t *fr, uint32_t n)
{
    fr[2] = (uint8_t)(n >> 24);
    fr[3] = (uint8_t)(n >> 16);
    fr[4] = (uint8_t)(n >> 8);
    fr[5] = (uint8_t)n;
}

GN_TEST(max_message_size_enforced)
{
    uint8_t fr[200];
    memset(fr, 0, sizeof fr);
    gni_enp_frame f = {.type = GNI_ENP_MSG_PID, .from = 1004, .to = 1004};
    uint8_t payload[67];
    memset(payload, 'p', sizeof payload);
    f.payload = gn_slice_of(payload, sizeof payload);
    CHECK_EQ(gni_enp_build(&f, fr, sizeof fr), 100);

    gni_enp_splitter s;
    size_t used;
    gn_slice out;
    /* exactly at the limit: accepted */
    CHECK_OK(gni_enp_splitter_init(&s, 100));
    CHECK_EQ(gni_enp_splitter_feed(&s, fr, 100, &used, &out), 1);
    CHECK_EQ(out.len, 100);
    gni_enp_splitter_fini(&s);

    /* one byte over: refused from the header alone, naming size and limit */
    CHECK_OK(gni_enp_splitter_init(&s, 99));
    CHECK_EQ(gni_enp_splitter_feed(&s, fr, 7, &used, &out), 0);
    CHECK_EQ(gni_enp_splitter_feed(&s, fr + 7, 1, &used, &out), GN_EFRAMESIZE);
    CHECK_STR(gni_enp_splitter_diag(&s),
              "received too long message (len: 100, limit: 99 = MaxMessageSize): closing the link");
    CHECK(gn_err_is_fatal(GN_EFRAMESIZE)); /* the link closes */
    /* sticky: the link is done */
    CHECK_EQ(gni_enp_splitter_feed(&s, fr + 8, 92, &used, &out), GN_EFRAMESIZE);
    CHECK_EQ(used, 0);
    gni_enp_splitter_fini(&s);

    /* the same on the no-copy path (whole frame in one feed) */
    CHECK_OK(gni_enp_splitter_init(&s, 99));
    CHECK_EQ(gni_enp_splitter_feed(&s, fr, 100, &used, &out), GN_EFRAMESIZE);
    CHECK_EQ(used, 0);
    gni_enp_splitter_fini(&s);

    /* a header announcing 4 GiB - 1 with a 1 MiB limit: refused before any buffering */
    uint8_t huge[8] = {0x4e, 1, 0xff, 0xff, 0xff, 0xff, 0, 101};
    CHECK_OK(gni_enp_splitter_init(&s, 1u << 20));
    CHECK_EQ(gni_enp_splitter_feed(&s, huge, 8, &used, &out), GN_EFRAMESIZE);
    CHECK(strstr(gni_enp_splitter_diag(&s), "len: 4294967295") != NULL);
    CHECK(strstr(gni_enp_splitter_diag(&s), "limit: 1048576") != NULL);
    CHECK(s.cap == 0);
    gni_enp_splitter_fini(&s);

    /* unlimited (0, Ergo's default): memory follows the bytes, not the claim */
    CHECK_OK(gni_enp_splitter_init(&s, 0));
    CHECK_EQ(gni_enp_splitter_feed(&s, huge, 8, &used, &out), 0);
    CHECK_EQ(gni_enp_splitter_feed(&s, fr, 100, &used, &out), 0);
    CHECK_EQ(gni_enp_splitter_pending(&s), 108);
    CHECK(s.cap <= 4096);
    gni_enp_splitter_fini(&s);
}

GN_TEST(sender_size_check)
{
    /* final frame over the peer's limit */
    CHECK_EQ(gni_enp_check_send_size(GNI_ENP_MSG_PID, 2000, 2000, 1999), GN_ETOOBIG);
    CHECK_EQ(gni_enp_check_send_size(GNI_ENP_MSG_PID, 2000, 2000, 2000), 0);
    /* 101 compressed below the limit passes; 102-106 and 129 check the plain frame too */
    CHECK_EQ(gni_enp_check_send_size(GNI_ENP_MSG_PID, 5000, 100, 1000), 0);
    const uint8_t plain[] = {102, 103, 104, 105, 106, 129};
    for (size_t i = 0; i < sizeof plain; i++)
        CHECK_EQ(gni_enp_check_send_size(plain[i], 5000, 100, 1000), GN_ETOOBIG);
    CHECK_EQ(gni_enp_check_send_size(GNI_ENP_REQ_PID, 5000, 100, 1000), 0);
    /* unlimited */
    CHECK_EQ(gni_enp_check_send_size(GNI_ENP_MSG_NAME, 1u << 30, 1u << 30, 0), 0);
}

GN_TEST(bad_headers_close_the_link)
{
    uint8_t fr[40] = {0x4e, 1, 0, 0, 0, 40, 0, 101};
    gni_enp_splitter s;
    size_t used;
    gn_slice out;
    struct {
        uint8_t b0, b1;
        uint32_t len;
        int err;
        const char *says;
    } cases[] = {
        {0x57, 1, 40, GN_EBADFRAME, "magic 0x57"}, /* a handshake message where ENP was due */
        {0x4e, 2, 40, GN_EVERSION, "version 2"},
        {0x4e, 1, 7, GN_EBADFRAME, "length 7"},
        {0x4e, 1, 0, GN_EBADFRAME, "length 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fr[0] = cases[i].b0;
        fr[1] = cases[i].b1;
        put_len(fr, cases[i].len);
        for (int split = 0; split < 2; split++) {
            CHECK_OK(gni_enp_splitter_init(&s, 0));
            int rc;
            if (split) {
                CHECK_EQ(gni_enp_splitter_feed(&s, fr, 3, &used, &out), 0);
                rc = gni_enp_splitter_feed(&s, fr + 3, sizeof fr - 3, &used, &out);
            } else {
                rc = gni_enp_splitter_feed(&s, fr, sizeof fr, &used, &out);
            }
            CHECK_EQ(rc, cases[i].err);
            CHECK(gn_err_is_fatal(rc));
            CHECK(strstr(gni_enp_splitter_diag(&s), cases[i].says) != NULL);
            gni_enp_splitter_fini(&s);
        }
    }
}

GN_TEST(garbage_type_refused_link_stays)
{
    /* a well-framed frame of an unknown type: the splitter passes it, parse refuses it */
    uint8_t fr[41] = {0x4e, 1, 0, 0, 0, 41, 0, 77};
    uint8_t next[35] = {0x4e, 1, 0, 0, 0, 35, 0, 101};
    next[34] = 0xff;
    uint8_t both[76];
    memcpy(both, fr, 41);
    memcpy(both + 41, next, 35);
    gni_enp_splitter s;
    CHECK_OK(gni_enp_splitter_init(&s, 0));
    size_t used;
    gn_slice out;
    CHECK_EQ(gni_enp_splitter_feed(&s, both, sizeof both, &used, &out), 1);
    CHECK_EQ(used, 41);
    gni_enp_frame f;
    gni_enp_diag d = {{0}};
    CHECK_EQ(gni_enp_parse(out.base, out.len, &f, &d), GN_ENOTSUP);
    CHECK_STR(d.msg, "unknown ENP message type 77 (frame of 41 bytes dropped)");
    CHECK(!gn_err_is_fatal(GN_ENOTSUP)); /* Ergo drops it; the link stays */
    /* the next frame still comes out and parses */
    CHECK_EQ(gni_enp_splitter_feed(&s, both + 41, 35, &used, &out), 1);
    CHECK_OK(gni_enp_parse(out.base, out.len, &f, NULL));
    CHECK_EQ(f.type, GNI_ENP_MSG_PID);
    gni_enp_splitter_fini(&s);
    /* reserved types and every other undefined type */
    for (unsigned t = 0; t < 256; t++) {
        fr[7] = (uint8_t)t;
        int rc = gni_enp_parse(fr, sizeof fr, &f, &d);
        if (gni_enp_type_name(t) != NULL) {
            CHECK(rc == 0 || rc == GN_EPARSE);
        } else {
            CHECK_EQ(rc, GN_ENOTSUP);
            if (t >= 201 && t <= 203)
                CHECK(strstr(d.msg, "reserved") != NULL);
        }
    }
    /* parse checks the header too */
    fr[7] = 101;
    fr[0] = 0x4f;
    CHECK_EQ(gni_enp_parse(fr, sizeof fr, &f, &d), GN_EPARSE);
    CHECK_EQ(gni_enp_parse(NULL, 4, &f, &d), GN_EINVAL);
    /* builders refuse what they cannot write */
    gni_enp_frame b = {.type = 77};
    uint8_t buf[400];
    CHECK_EQ(gni_enp_build(&b, buf, sizeof buf), GN_ENOTSUP);
    CHECK_EQ(gni_enp_frame_len(&b), 0);
    char longname[256];
    memset(longname, 'n', sizeof longname);
    b.type = GNI_ENP_MSG_NAME;
    b.name = gn_slice_of(longname, 256);
    CHECK_EQ(gni_enp_build(&b, buf, sizeof buf), GN_ETOOBIG);
    b.name.len = 255;
    CHECK_EQ(gni_enp_build(&b, buf, sizeof buf), 8 + 17 + 1 + 255);
}

/* ---- every type from fields, back and forth ---- */

GN_TEST(build_parse_every_type)
{
    const uint8_t types[] = {101, 102, 103, 104, 105, 106, 107, 121, 122, 123, 124,
                             129, 130, 181, 182, 183, 184, 185, 186, 199, 200};
    /* fixed part lengths from the spec's layout table (names: 5 bytes) */
    const size_t head[] = {33, 26 + 5, 27, 49, 26 + 5, 27, 25, 49, 42 + 5, 43, 65,
                           49, 50, 17, 10 + 5, 11, 33, 10 + 5, 11, 8, 13};
    const uint8_t pl[] = {0x83, 0x10, 0x63, 0xaa, 0xbb};
    for (size_t i = 0; i < sizeof types; i++) {
        gni_enp_frame f = {
            .type = types[i], .order = (uint8_t)(i + 1), .flags = 0x82, .code = 255,
            .method = GNI_ENP_Z_LZW, .atom_id = 0x0102, .orig_len = 0x01020304,
            .from = 0x1112131415161718ull, .to = 0x2122232425262728ull,
            .ref = {0x31, 0x32, 0x33}, .alias = {0x41, 0x42, 0x43},
            .timestamp = -5, .name = gn_slice_of("hello", 5), .payload = gn_slice_of(pl, 5),
        };
        uint8_t buf[128];
        long n = gni_enp_build(&f, buf, sizeof buf);
        CHECK_EQ(n, (long)(head[i] + 5));
        CHECK_EQ(gni_enp_frame_len(&f), (size_t)n);
        CHECK_EQ(gni_enp_get32(buf + 2), (uint32_t)n);
        CHECK_EQ(buf[6], i + 1);
        CHECK_EQ(buf[7], types[i]);
        gni_enp_frame g;
        CHECK_OK(gni_enp_parse(buf, (size_t)n, &g, NULL));
        CHECK_EQ(g.type, f.type);
        CHECK_EQ(g.payload.len, 5);
        CHECK_MEM(g.payload.base, pl, 5);
        uint8_t again[128];
        CHECK_EQ(gni_enp_build(&g, again, sizeof again), n);
        CHECK_MEM(again, buf, (size_t)n);
        /* every smaller output buffer is refused */
        for (size_t c = 0; c < (size_t)n; c++)
            CHECK_EQ(gni_enp_build(&f, again, c), GN_ENOSPC);
        CHECK_STR(gni_enp_type_name(types[i]) ? "named" : "none", "named");
    }
    /* spot checks of offsets from the spec table */
    gni_enp_frame f = {.type = GNI_ENP_RESPONSE_ERROR, .from = 7, .to = 9, .ref = {1, 2, 3},
                       .code = GNI_ENP_RC_UNKNOWN};
    uint8_t b[64];
    CHECK_EQ(gni_enp_build(&f, b, sizeof b), 50);
    CHECK_EQ(b[15], 7);  /* [8] from */
    CHECK_EQ(b[24], 9);  /* [17] to */
    CHECK_EQ(b[32], 1);  /* [25] ref */
    CHECK_EQ(b[48], 3);
    CHECK_EQ(b[49], 1);  /* [49] code */
    gni_enp_frame e = {.type = GNI_ENP_MSG_EVENT_CACHE, .from = 1, .flags = 2,
                       .timestamp = 0x0102030405060708ll, .atom_id = 256};
    CHECK_EQ(gni_enp_build(&e, b, sizeof b), 27);
    CHECK_EQ(b[16], 2);    /* [16] priority */
    CHECK_EQ(b[17], 1);    /* [17] timestamp */
    CHECK_EQ(b[25], 1);    /* [25] atom id 0x0100 */
    CHECK_EQ(b[26], 0);
    /* flags: priority bits and the important bit; other types carry a plain priority */
    gni_enp_frame p = {.type = GNI_ENP_REQ_PID, .flags = 0x82};
    CHECK_EQ(gni_enp_priority(&p), GNI_ENP_PRIO_MAX);
    CHECK(gni_enp_important(&p));
    p.type = GNI_ENP_RESPONSE;
    CHECK_EQ(gni_enp_priority(&p), 0x82);
    CHECK(!gni_enp_important(&p));
    /* a zeroed 101 carries zero msgref0 (not someone's stale bytes) */
    gni_enp_frame z = {.type = GNI_ENP_MSG_PID, .from = 1, .to = 2};
    CHECK_EQ(gni_enp_build(&z, b, sizeof b), 33);
    for (int k = 17; k < 25; k++)
        CHECK_EQ(b[k], 0);
}

/* ---- order byte and queues ---- */

GN_TEST(receive_queue_distribution)
{
    /* pool of 3: 12 queues */
    unsigned nq = GNI_ENP_QUEUES_PER_LINK * 3;
    CHECK_EQ(nq, 12);
    /* a keyed frame always lands in order mod N, whatever its position */
    for (uint64_t seq = 1; seq < 50; seq++) {
        CHECK_EQ(gni_enp_queue_index(239, seq, nq), 239 % 12);
        CHECK_EQ(gni_enp_queue_index(11, seq, nq), 11);
        CHECK_EQ(gni_enp_queue_index(12, seq, nq), 0);
    }
    /* unkeyed frames rotate with the link's frame count (Ergo's recvN, from 1) */
    unsigned hits[12] = {0};
    for (uint64_t seq = 1; seq <= 120; seq++) {
        unsigned q = gni_enp_queue_index(0, seq, nq);
        CHECK_EQ(q, seq % 12);
        hits[q]++;
    }
    for (int i = 0; i < 12; i++)
        CHECK_EQ(hits[i], 10);
    CHECK_EQ(gni_enp_queue_index(5, 1, 0), 0);
    /* straight from a frame's header: the captured 124 (order 11) and 130 (order 0) */
    const uint8_t hdr124[8] = {0x4e, 1, 0, 0, 0, 0x48, 0x0b, 0x7c};
    const uint8_t hdr130[8] = {0x4e, 1, 0, 0, 0, 0x32, 0x00, 0x82};
    CHECK_EQ(gni_enp_frame_queue(gn_slice_of(hdr124, 8), 7, nq), 11);
    CHECK_EQ(gni_enp_frame_queue(gn_slice_of(hdr130, 8), 7, nq), 7);
    CHECK_EQ(gni_enp_frame_queue(gn_slice_of(hdr130, 8), 13, nq), 1);
    /* sender link choice: keyed by from.ID mod 255, else round robin */
    uint32_t rr = 0;
    CHECK_EQ(gni_enp_link_index(gni_enp_order_of(1004), &rr, 3), 239 % 3);
    CHECK_EQ(rr, 0);
    CHECK_EQ(gni_enp_link_index(0, &rr, 3), 1);
    CHECK_EQ(gni_enp_link_index(0, &rr, 3), 2);
    CHECK_EQ(gni_enp_link_index(0, &rr, 3), 0);
    CHECK_EQ(gni_enp_order_of(255), 0);
    CHECK_EQ(gni_enp_order_of(25511), 11);
    /* the vectors' order bytes: 1004 -> 239, alias ID[1] 25511 -> 11 */
    gni_enp_frame f = {.type = GNI_ENP_MSG_ALIAS, .from = 1004, .alias = {162686, 25511, 0}};
    CHECK_EQ(gni_enp_default_order(&f, true), 11);
    f.type = GNI_ENP_MSG_EXIT;
    f.to = 1007;
    CHECK_EQ(gni_enp_default_order(&f, false), 242); /* 107 always carries it */
    f.type = GNI_ENP_TERM_PID;
    CHECK_EQ(gni_enp_default_order(&f, true), 0);
    /* 199, from the captures: LinkPID to worker 1006 -> 241, MonitorAlias
     * [162686, 25511, 0] -> 11, MonitorPID -> 0, results -> Source 1004 = 239,
     * app start result -> 0 */
    CHECK_EQ(gni_enp_any_order(GNI_ENP_ANY_LINK_PID, false, 1006), 241);
    CHECK_EQ(gni_enp_any_order(GNI_ENP_ANY_UNLINK_PID, false, 1010), 245);
    CHECK_EQ(gni_enp_any_order(GNI_ENP_ANY_MONITOR_ALIAS, false, 25511), 11);
    CHECK_EQ(gni_enp_any_order(GNI_ENP_ANY_MONITOR_PID, false, 1006), 0);
    CHECK_EQ(gni_enp_any_order(GNI_ENP_ANY_MONITOR_EVENT, false, 1006), 0);
    CHECK_EQ(gni_enp_any_order(GNI_ENP_ANY_SPAWN, false, 1004), 0);
    CHECK_EQ(gni_enp_any_order(GNI_ENP_ANY_LINK_PID, true, 1004), 239);
    CHECK_EQ(gni_enp_any_order(GNI_ENP_ANY_SPAWN, true, 1004), 239);
    CHECK_EQ(gni_enp_any_order(GNI_ENP_ANY_APPLICATION_START, true, 1004), 0);
}

GN_TEST(any_kinds_named)
{
    for (int k = 1; k < GNI_ENP_ANY_KIND_COUNT; k++) {
        const char *n = gni_enp_any_type_name((enum gni_enp_any_kind)k);
        CHECK(n && strncmp(n, "#ergo.services/ergo/net/proto/Message", 37) == 0);
        CHECK_EQ(gni_enp_any_kind_of(gn_slice_of(n, strlen(n))), k);
        /* a prefix is not a match */
        CHECK_EQ(gni_enp_any_kind_of(gn_slice_of(n, strlen(n) - 1)), GNI_ENP_ANY_UNKNOWN);
    }
    CHECK(gni_enp_any_type_name(GNI_ENP_ANY_UNKNOWN) == NULL);
    CHECK(gni_enp_any_type_name(GNI_ENP_ANY_KIND_COUNT) == NULL);
    CHECK_EQ(gni_enp_any_kind_of(gn_slice_of("#main/Point", 11)), GNI_ENP_ANY_UNKNOWN);
    /* an inline type name in a 199 payload is exposed as such */
    const char *nm = "#ergo.services/ergo/net/proto/MessageSpawn";
    uint8_t fr[128] = {0x4e, 1, 0, 0, 0, 0, 0, 199, 0x83, 0, (uint8_t)strlen(nm)};
    memcpy(fr + 11, nm, strlen(nm));
    size_t n = 11 + strlen(nm) + 2;
    put_len(fr, (uint32_t)n);
    gni_enp_frame f;
    CHECK_OK(gni_enp_parse(fr, n, &f, NULL));
    CHECK_EQ(f.any_type_id, 0);
    CHECK_EQ(gni_enp_any_kind_of(f.any_type_name), GNI_ENP_ANY_SPAWN);
}

/* ---- allocation failure ---- */

static int alloc_scenario(void)
{
    static uint8_t payload[3000], frame[3100], z[8192], back[3100];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)("golem-compression-test "[i % 23] + i / 700);
    gni_enp_frame f = {.type = GNI_ENP_MSG_PID, .from = 1, .to = 2,
                       .payload = gn_slice_of(payload, sizeof payload)};
    long fl = gni_enp_build(&f, frame, sizeof frame);
    CHECK(fl > 0);
    const uint8_t methods[] = {GNI_ENP_Z_LZW, GNI_ENP_Z_ZLIB, GNI_ENP_Z_GZIP};
    for (size_t m = 0; m < sizeof methods; m++) {
        long n = gni_enp_compress(frame, (size_t)fl, methods[m], 0, z, sizeof z);
        if (n < 0)
            return (int)n;
        gni_enp_frame zf;
        CHECK_OK(gni_enp_parse(z, (size_t)n, &zf, NULL));
        long r = gni_enp_inflate(&zf, back, sizeof back, NULL);
        if (r < 0)
            return (int)r;
        CHECK_EQ(r, fl);
        CHECK_MEM(back, frame, (size_t)fl);
    }
    /* the splitter's buffer: a frame in two pieces */
    gni_enp_splitter s;
    CHECK_OK(gni_enp_splitter_init(&s, 0));
    size_t used;
    gn_slice out;
    int rc = gni_enp_splitter_feed(&s, frame, 100, &used, &out);
    if (rc == 0)
        rc = gni_enp_splitter_feed(&s, frame + 100, (size_t)fl - 100, &used, &out);
    if (rc == GN_ENOMEM) {
        /* sticky, explained */
        CHECK_EQ(gni_enp_splitter_feed(&s, frame, 1, &used, &out), GN_ENOMEM);
        CHECK(strstr(gni_enp_splitter_diag(&s), "no memory") != NULL);
    } else {
        CHECK_EQ(rc, 1);
        CHECK_MEM(out.base, frame, (size_t)fl);
        rc = 0;
    }
    gni_enp_splitter_fini(&s);
    return rc;
}

GN_TEST(allocation_failure_every_k)
{
    /* LZW, zlib and gzip each allocate in compress and inflate; the splitter once */
    size_t failures = fa_every_k(alloc_scenario, 200);
    CHECK(failures >= 7);
}

GN_TEST_MAIN(GN_T(vectors_parse_match_notes_and_rebuild), GN_T(vectors_split_at_every_chunk_size),
             GN_T(vectors_truncated_at_every_offset), GN_T(compressed_gzip_vector),
             GN_T(compressed_zlib_vector), GN_T(compressed_lzw_vector_is_byte_identical),
             GN_T(compression_threshold_rule), GN_T(compress_roundtrip_every_method_and_level),
             GN_T(gzip_concatenated_members_accepted), GN_T(max_message_size_enforced),
             GN_T(sender_size_check), GN_T(bad_headers_close_the_link),
             GN_T(garbage_type_refused_link_stays), GN_T(build_parse_every_type),
             GN_T(receive_queue_distribution), GN_T(any_kinds_named),
             GN_T(allocation_failure_every_k))
