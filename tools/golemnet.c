/*
 * golemnet - the command-line tool.
 *
 * Contract (docs/cli.md): every command takes --json (one JSON object per
 * line on stdout); exit 0 on success, 1 on failure, 2 on bad usage; logs and
 * errors go to stderr.
 */
#include "golemnet/golemnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

static bool json_out;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: golemnet <command> [options]\n"
            "\n"
            "commands:\n"
            "  id [--key FILE | --key-seed N]   print the peer ID (fresh identity by default)\n"
            "  keygen --out FILE                write a new Ed25519 key file (libp2p PrivateKey)\n"
            "  multiaddr ADDR                   parse a multiaddr, print its parts and bytes\n"
            "  version                          print the library version\n"
            "\n"
            "options: --json   one JSON object per line on stdout\n");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "golemnet: %s: %s (%s)\n", what, gn_strerror(rc), gn_err_name(rc));
    if (json_out) {
        printf("{\"event\":\"error\",\"what\":");
        json_str(what);
        printf(",\"error\":\"%s\"}\n", gn_err_name(rc));
    }
    return EXIT_FAILURE;
}

/* Parses a decimal integer in [0, max]; false on anything else. */
static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (!s || !*s || *s == '-') {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Loads the identity chosen by --key / --key-seed, or makes a fresh one. */
static int load_identity(const char *key_file, const char *seed, gn_identity **out)
{
    if (key_file && seed) {
        fprintf(stderr, "golemnet: --key and --key-seed exclude each other\n");
        return GN_EINVAL;
    }
    if (key_file) {
        return gn_identity_load(key_file, out);
    }
    if (seed) {
        unsigned long n;
        if (!parse_uint(seed, UINT32_MAX, &n)) {
            fprintf(stderr, "golemnet: --key-seed takes an integer 0..4294967295\n");
            return GN_EINVAL;
        }
        return gn_identity_from_int_seed((uint32_t)n, out);
    }
    return gn_identity_generate(out);
}

static int cmd_id(int argc, char **argv)
{
    const char *key_file = NULL, *seed = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--key") && i + 1 < argc) {
            key_file = argv[++i];
        } else if (!strcmp(argv[i], "--key-seed") && i + 1 < argc) {
            seed = argv[++i];
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    gn_identity *id = NULL;
    int rc = load_identity(key_file, seed, &id);
    if (rc == GN_EINVAL) {
        return EXIT_USAGE;
    }
    if (rc < 0) {
        return fail(key_file ? key_file : "identity", rc);
    }
    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    char b58[GN_PEER_ID_MAX_STRLEN], cid[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&pid, b58, sizeof b58);
    gn_peer_id_to_cid_string(&pid, cid, sizeof cid);
    gn_identity_free(id);
    if (json_out) {
        printf("{\"event\":\"id\",\"peer_id\":\"%s\",\"peer_id_cid\":\"%s\"}\n", b58, cid);
    } else {
        printf("%s\n", b58);
    }
    return EXIT_SUCCESS;
}

static int cmd_keygen(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!out) {
        usage(stderr);
        return EXIT_USAGE;
    }
    gn_identity *id = NULL;
    int rc = gn_identity_generate(&id);
    if (rc == 0) {
        rc = gn_identity_save(id, out);
    }
    if (rc < 0) {
        gn_identity_free(id);
        return fail(out, rc);
    }
    gn_peer_id pid;
    gn_identity_peer_id(id, &pid);
    gn_identity_free(id);
    char b58[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&pid, b58, sizeof b58);
    if (json_out) {
        printf("{\"event\":\"keygen\",\"peer_id\":\"%s\",\"file\":", b58);
        json_str(out);
        printf("}\n");
    } else {
        printf("%s\n", b58);
    }
    return EXIT_SUCCESS;
}

static int cmd_multiaddr(int argc, char **argv)
{
    if (argc != 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_parse(argv[0], &ma);
    if (rc < 0) {
        return fail(argv[0], rc);
    }
    char str[GN_MA_MAX_STRLEN];
    gn_multiaddr_to_string(ma, str, sizeof str);
    gn_slice bytes = gn_multiaddr_bytes(ma);
    char hex[2 * GN_MA_MAX_BYTES + 1];
    for (size_t i = 0; i < bytes.len; i++) {
        snprintf(hex + 2 * i, 3, "%02x", bytes.base[i]);
    }
    hex[2 * bytes.len] = '\0';
    size_t n = gn_multiaddr_count(ma);
    if (json_out) {
        printf("{\"event\":\"multiaddr\",\"multiaddr\":");
        json_str(str);
        printf(",\"bytes\":\"%s\",\"components\":[", hex);
    } else {
        printf("%s\n%s\n", str, hex);
    }
    for (size_t i = 0; i < n; i++) {
        gn_ma_component c;
        char val[GN_MA_MAX_STRLEN];
        gn_multiaddr_component(ma, i, &c);
        if (gn_ma_component_value_string(&c, val, sizeof val) < 0) {
            val[0] = '\0';
        }
        if (json_out) {
            printf("%s{\"protocol\":\"%s\",\"code\":%llu,\"value\":", i ? "," : "", c.name,
                   (unsigned long long)c.code);
            json_str(val);
            printf("}");
        } else {
            printf("  %-12s %s\n", c.name, val);
        }
    }
    if (json_out) {
        printf("]}\n");
    }
    gn_multiaddr_free(ma);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    /* --json may appear anywhere; remove it from the argument list */
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json_out = true;
        } else {
            argv[n++] = argv[i];
        }
    }
    argc = n;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "id")) {
        return cmd_id(argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "keygen")) {
        return cmd_keygen(argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "multiaddr")) {
        return cmd_multiaddr(argc - 2, argv + 2);
    }
    if (!strcmp(cmd, "version")) {
        if (json_out) {
            printf("{\"event\":\"version\",\"version\":\"%s\"}\n", gn_version());
        } else {
            printf("golemnet %s\n", gn_version());
        }
        return EXIT_SUCCESS;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    fprintf(stderr, "golemnet: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
