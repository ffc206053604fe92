/*
 * /wss certificate checks between two golemnet nodes on 127.0.0.1
 * (layers/transport/websocket/ws_uv.c over core/tlsbio.c). The
 * certificates are made by the openssl CLI (skipped without it):
 *  - a certificate naming IP:127.0.0.1, trusted through websocket.ca_file:
 *    the dial succeeds (the positive control);
 *  - a certificate trusted the same way but naming another IP
 *    (IP:127.0.0.2) while we dial 127.0.0.1: the dial fails with
 *    GN_EHANDSHAKE (RFC 6125 / RFC 2818 name check on the dialled IP).
 * Skipped (TAP SKIP) when golemnet was built without /wss (no OpenSSL
 * libssl) or without the websocket transport.
 */
#include "gn_tnode.h"

#include "ws_config.h"

#include <stdlib.h>
#include <unistd.h>

static char g_dir[64];

/* Makes cert/key PEM files for @san in g_dir; false when openssl failed. */
static bool make_cert(const char *name, const char *san)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout %s/%s.key -out %s/%s.pem -days 2 -subj /CN=golemnet-test "
             "-addext 'subjectAltName=%s' >%s/%s.log 2>&1",
             g_dir, name, g_dir, name, san, g_dir, name);
    return system(cmd) == 0;
}

/* A node with the websocket transport and @opts; listening on /wss when @listen. */
static void wss_node_up(tnode *t, uint32_t seed, const char *const *opts, size_t n, bool listen)
{
    memset(t, 0, sizeof *t);
    CHECK_OK(gn_identity_from_int_seed(seed, &t->id));
    gn_identity_peer_id(t->id, &t->pid);
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = t->id;
    cfg.loop = loop;
    cfg.transports = "websocket";
    cfg.options = opts;
    cfg.n_options = n;
    cfg.upgrade_timeout = 5 * GN_S;
    const char *la = "/ip4/127.0.0.1/tcp/0/wss";
    if (listen) {
        cfg.listen = &la;
        cfg.n_listen = 1;
    }
    CHECK_OK(gn_node_new(&cfg, &t->n));
    CHECK_OK(gn_node_start(t->n));
    if (listen) {
        CHECK(run_until(got_listen, t, 5000));
        CHECK(strstr(t->addr, "/wss/p2p/") != NULL);
    }
}

/* Server with @name's certificate, client trusting it: the dial's status. */
static int dial_with(const char *name)
{
    char cert[128], key[128], ca[128];
    snprintf(cert, sizeof cert, "websocket.cert_file=%s/%s.pem", g_dir, name);
    snprintf(key, sizeof key, "websocket.key_file=%s/%s.key", g_dir, name);
    snprintf(ca, sizeof ca, "websocket.ca_file=%s/%s.pem", g_dir, name);
    const char *sopts[] = {cert, key};
    const char *copts[] = {ca};
    tnode s, c;
    wss_node_up(&s, 1, sopts, 2, true);
    wss_node_up(&c, 2, copts, 1, false);
    int rc = dial_wait(&c, s.addr);
    node_down(&c);
    node_down(&s);
    return rc;
}

GN_TEST(wss_ip_san_checked)
{
#if !GNI_WS_HAVE_TLS
    SKIP("built without /wss (no OpenSSL libssl)");
#else
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        SKIP("openssl CLI not found");
    }
    snprintf(g_dir, sizeof g_dir, "%s", "/tmp/gn-wss-test.XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
    if (!make_cert("good", "IP:127.0.0.1") || !make_cert("other", "IP:127.0.0.2")) {
        SKIP("openssl could not make a certificate");
    }
    setup();
    CHECK_OK(dial_with("good"));
    CHECK_EQ(dial_with("other"), GN_EHANDSHAKE);
    finish();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    (void)system(cmd);
#endif
}

GN_TEST_MAIN(GN_T(wss_ip_san_checked))
