/*
 * golemnet daemon: a long-running node controlled through a control socket
 * (include/golemnet/ipcd.h, docs/daemon.md).
 *
 * Threads: the node runs on its own loop thread; the main thread blocks
 * SIGINT/SIGTERM before the node starts (the loop thread inherits the
 * mask), prints the ready line, then waits for a signal with sigwait()
 * (cli_stop_wait(), tools/cli_platform.c; on Windows a counting handler).
 * Shutdown: the control server drains (accepted messages written or
 * reported, running requests answered), the node closes, the send failures
 * it reports are logged, exit 0.
 *
 * Uses the public API only, like the rest of the CLI.
 */
#include "cli.h"
#include "golemnet/golemnet.h"
#include "golemnet/ipcd.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define D_EXIT_USAGE 2
#define D_MAX_LIST 32
#define D_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/** The config file format version this build reads. */
#define D_CONFIG_VERSION 1

const char cmd_daemon_help[] =
    "usage: golemnet daemon [--socket PATH] [--name NAME] [--config FILE] [options]\n"
    "Run a node controlled through a control socket (golemnet's control protocol,\n"
    "docs/protocols/control.md) until SIGINT/SIGTERM. Prints one ready line with the\n"
    "socket path once it serves. Logs go to stderr with UTC timestamps and levels.\n\n"
    "  --socket PATH                 control socket: a path, /unix/PATH (default\n"
    "                                $XDG_RUNTIME_DIR/golemnet/NAME.sock, else\n"
    "                                /tmp/golemnet-UID/NAME.sock; mode 0600)\n"
    "  --name NAME                   daemon name for the default socket (default 'default')\n"
    "  --control-tcp MA              also serve on loopback TCP (/ip4/127.0.0.1/tcp/N,\n"
    "                                /ip6/::1/tcp/N); any local user can connect there\n"
    "  --allow-uid UID               also accept this uid on the socket (repeatable;\n"
    "                                the socket becomes mode 0666, the uid check guards it)\n"
    "  --config FILE                 settings file (docs/daemon.md); flags override it\n"
    "  --drain-timeout S             on SIGTERM, wait at most S seconds for queued\n"
    "                                messages and running requests (default 5)\n"
    "  --client-queue-max N          per-client output bound, bytes (default 4194304)\n"
    "  --max-clients N               clients at once (default 64)\n"
    "node options, as 'golemnet node' takes them:\n"
    "  --listen MA                   listen address (repeatable; default\n"
    "                                /ip4/127.0.0.1/tcp/0)\n"
    "  --key FILE | --key-seed N     identity (default: a fresh random one)\n"
    "  --security LIST --muxer LIST  components in preference order\n"
    "  --router LIST --discovery LIST --nat LIST   hosted components ('' for none)\n"
    "  --option C.K=V                component option (repeatable)\n"
    "  --route MA/p2p/ID --bootstrap MA/p2p/ID --bootstrap-kad MA/p2p/ID  (repeatable)\n"
    "  --echo --perf                 also serve /echo/1.0.0, /perf/1.0.0\n"
    "  --log LEVEL                   err, warning, notice (default), info, debug\n"
    "  --log-components SPEC         e.g. all,-noise\n"
    "  --json                        the ready line as a JSON object\n";

typedef struct dlist {
    const char *v[D_MAX_LIST];
    size_t n;
} dlist;

typedef struct dset {
    const char *socket, *name, *control_tcp, *key, *key_seed, *security, *muxer;
    const char *router, *discovery, *nat, *log, *log_components, *drain, *queue_max, *max_clients;
    bool router_set, discovery_set, nat_set;
    int echo, perf; /* -1 unset, 0/1 */
    dlist listen, option, allow_uid;
    char *options_owned[D_MAX_LIST]; /* "static.peer=..." built for --route and friends */
    size_t n_owned;
} dset;

static gn_log_level d_level = GN_LOG_NOTICE;

static void d_log(gn_log_level level, const char *fmt, ...) GN_PRINTF(2, 3);
static void d_log(gn_log_level level, const char *fmt, ...)
{
    if (level > d_level) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_log(NULL, level, "daemon", msg);
}

static int d_usage(const char *fmt, ...) GN_PRINTF(1, 2);
/* "PATH:LINE" of the config line being applied, else empty (a flag's value) */
static char d_where[512];

static int d_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("golemnet daemon: ", stderr);
    if (d_where[0]) {
        fprintf(stderr, "%s: ", d_where);
    }
    vfprintf(stderr, fmt, ap);
    fputs("\n(see golemnet daemon --help)\n", stderr);
    va_end(ap);
    return D_EXIT_USAGE;
}

static bool d_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s || !*s || *s < '0' || *s > '9') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/*
 * Checks the value @v of setting @n (dash form) where the value has a fixed
 * form; 0, or an exit code after a message (d_usage: with d_where).
 */
static int d_check_value(const char *n, const char *v)
{
    unsigned long long u;
    if (!v) {
        return 0;
    }
    if (!strcmp(n, "log")) {
        static const char *const lv[] = {"err", "warning", "notice", "info", "debug"};
        for (size_t k = 0; k < D_ARRAY_LEN(lv); k++) {
            if (!strcmp(v, lv[k])) {
                return 0;
            }
        }
        return d_usage("bad value '%s' for --log: expected err, warning, notice, info or "
                       "debug", v);
    }
    if (!strcmp(n, "drain-timeout") && !d_uint(v, 3600, &u)) {
        return d_usage("bad value '%s' for --drain-timeout: expected seconds 0..3600", v);
    }
    if (!strcmp(n, "client-queue-max") &&
        (!d_uint(v, 256u * 1024u * 1024u, &u) || u < 64u * 1024u)) {
        return d_usage("bad value '%s' for --client-queue-max: expected bytes 65536..268435456",
                       v);
    }
    if (!strcmp(n, "max-clients") && (!d_uint(v, 65536, &u) || u == 0)) {
        return d_usage("bad value '%s' for --max-clients: expected 1..65536", v);
    }
    if (!strcmp(n, "allow-uid") && !d_uint(v, UINT32_MAX - 1, &u)) {
        return d_usage("bad value '%s' for --allow-uid: expected a numeric uid", v);
    }
    return 0;
}

static int d_list_add(dlist *l, const char *opt, const char *v)
{
    if (l->n == D_MAX_LIST) {
        return d_usage("at most %d %s", D_MAX_LIST, opt);
    }
    l->v[l->n++] = v;
    return 0;
}

/* Flags with a value; the rest are switches. */
static const char *const d_valued[] = {
    "socket", "name", "control-tcp", "allow-uid", "config", "drain-timeout", "client-queue-max",
    "max-clients", "listen", "key", "key-seed", "security", "muxer", "router", "discovery", "nat",
    "option", "route", "bootstrap", "bootstrap-kad", "log", "log-components",
};

/* Applies setting @name (without "--", '_' allowed for '-') = @v to @s. 0, or an exit code. */
static int d_apply(dset *s, const char *name, const char *v)
{
    char n[32];
    size_t i = 0;
    for (; name[i] && i < sizeof n - 1; i++) {
        n[i] = name[i] == '_' ? '-' : name[i];
    }
    n[i] = '\0';
    int bad = d_check_value(n, v);
    if (bad) {
        return bad;
    }
#define D_SCALAR(key, field)                                                                 \
    if (!strcmp(n, key)) {                                                                   \
        s->field = v;                                                                        \
        return 0;                                                                            \
    }
    D_SCALAR("socket", socket)
    D_SCALAR("name", name)
    D_SCALAR("control-tcp", control_tcp)
    D_SCALAR("key", key)
    D_SCALAR("key-seed", key_seed)
    D_SCALAR("security", security)
    D_SCALAR("muxer", muxer)
    D_SCALAR("log", log)
    D_SCALAR("log-components", log_components)
    D_SCALAR("drain-timeout", drain)
    D_SCALAR("client-queue-max", queue_max)
    D_SCALAR("max-clients", max_clients)
#undef D_SCALAR
    if (!strcmp(n, "router")) {
        s->router = v;
        s->router_set = true;
        return 0;
    }
    if (!strcmp(n, "discovery")) {
        s->discovery = v;
        s->discovery_set = true;
        return 0;
    }
    if (!strcmp(n, "nat")) {
        s->nat = v;
        s->nat_set = true;
        return 0;
    }
    if (!strcmp(n, "echo") || !strcmp(n, "perf")) {
        int on = !v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes");
        if (v && !on && strcmp(v, "false") && strcmp(v, "0") && strcmp(v, "no")) {
            return d_usage("bad value '%s' for %s: expected true or false", v, n);
        }
        if (!strcmp(n, "echo")) {
            s->echo = on;
        } else {
            s->perf = on;
        }
        return 0;
    }
    if (!strcmp(n, "listen")) {
        return d_list_add(&s->listen, "--listen", v);
    }
    if (!strcmp(n, "allow-uid")) {
        return d_list_add(&s->allow_uid, "--allow-uid", v);
    }
    if (!strcmp(n, "option")) {
        if (!strchr(v, '.') || !strchr(v, '=')) {
            return d_usage("bad value '%s' for option: expected COMPONENT.KEY=VALUE", v);
        }
        return d_list_add(&s->option, "--option", v);
    }
    if (!strcmp(n, "route") || !strcmp(n, "bootstrap") || !strcmp(n, "bootstrap-kad")) {
        const char *key = !strcmp(n, "route")       ? "static.peer="
                          : !strcmp(n, "bootstrap") ? "bootstrap.peer="
                                                    : "kad.bootstrap=";
        if (s->n_owned == D_MAX_LIST) {
            return d_usage("at most %d --route/--bootstrap/--bootstrap-kad", D_MAX_LIST);
        }
        size_t len = strlen(key) + strlen(v) + 1;
        char *o = malloc(len);
        if (!o) {
            return 1;
        }
        snprintf(o, len, "%s%s", key, v);
        s->options_owned[s->n_owned++] = o;
        return d_list_add(&s->option, n, o);
    }
    return -1; /* unknown */
}

/* Reads the config file @path into @s. 0, or an exit code. Lines and
 * values are kept in @buf (freed by the caller). */
static int d_read_config(const char *path, dset *s, char **buf)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "golemnet daemon: cannot read config %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t cap = 64 * 1024, len = 0;
    char *b = malloc(cap + 1);
    if (!b) {
        fclose(f);
        return 1;
    }
    len = fread(b, 1, cap, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (more) {
        free(b);
        fprintf(stderr, "golemnet daemon: config %s is larger than 64 KiB\n", path);
        return 1;
    }
    b[len] = '\0';
    *buf = b;
    const char *nul = memchr(b, '\0', len);
    if (nul) {
        unsigned at = 1;
        for (const char *q = b; q < nul; q++) {
            at += *q == '\n';
        }
        fprintf(stderr, "golemnet daemon: %s:%u: a NUL byte (the file must be text)\n", path, at);
        return D_EXIT_USAGE;
    }
    bool have_version = false;
    unsigned line = 0;
    char *p = b;
    while (p && *p) {
        line++;
        char *nl = strchr(p, '\n');
        if (nl) {
            *nl = '\0';
        }
        char *l = p;
        p = nl ? nl + 1 : NULL;
        while (*l == ' ' || *l == '\t') {
            l++;
        }
        size_t ll = strlen(l);
        while (ll && (l[ll - 1] == ' ' || l[ll - 1] == '\t' || l[ll - 1] == '\r')) {
            l[--ll] = '\0';
        }
        if (!*l || *l == '#') {
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) {
            fprintf(stderr, "golemnet daemon: %s:%u: expected KEY = VALUE\n", path, line);
            return D_EXIT_USAGE;
        }
        char *k = l, *v = eq + 1;
        char *ke = eq;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) {
            ke--;
        }
        *ke = '\0';
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        if (!have_version) {
            unsigned long long ver;
            if (strcmp(k, "version") || !d_uint(v, 1000, &ver)) {
                fprintf(stderr, "golemnet daemon: %s:%u: the first setting must be "
                        "'version = %d'\n", path, line, D_CONFIG_VERSION);
                return D_EXIT_USAGE;
            }
            if (ver != D_CONFIG_VERSION) {
                fprintf(stderr, "golemnet daemon: %s: config version %llu; this golemnet reads "
                        "version %d\n", path, ver, D_CONFIG_VERSION);
                return D_EXIT_USAGE;
            }
            have_version = true;
            continue;
        }
        if (!strcmp(k, "config") || !strcmp(k, "version")) {
            fprintf(stderr, "golemnet daemon: %s:%u: '%s' is not allowed here\n", path, line, k);
            return D_EXIT_USAGE;
        }
        snprintf(d_where, sizeof d_where, "%s:%u", path, line);
        int rc = d_apply(s, k, v);
        d_where[0] = '\0';
        if (rc < 0) {
            fprintf(stderr, "golemnet daemon: %s:%u: unknown setting '%s'\n", path, line, k);
            return D_EXIT_USAGE;
        }
        if (rc) {
            return rc;
        }
    }
    if (!have_version) {
        fprintf(stderr, "golemnet daemon: %s: no 'version = %d' line\n", path, D_CONFIG_VERSION);
        return D_EXIT_USAGE;
    }
    return 0;
}

/* Command-line settings override the file's: scalars when given, lists as a whole. */
static void d_merge(dset *out, const dset *file, const dset *flags)
{
    *out = *file;
#define D_OVR(field)                                                                         \
    if (flags->field) {                                                                      \
        out->field = flags->field;                                                           \
    }
    D_OVR(socket)
    D_OVR(name)
    D_OVR(control_tcp)
    D_OVR(key)
    D_OVR(key_seed)
    D_OVR(security)
    D_OVR(muxer)
    D_OVR(log)
    D_OVR(log_components)
    D_OVR(drain)
    D_OVR(queue_max)
    D_OVR(max_clients)
#undef D_OVR
    if (flags->router_set) {
        out->router = flags->router;
        out->router_set = true;
    }
    if (flags->discovery_set) {
        out->discovery = flags->discovery;
        out->discovery_set = true;
    }
    if (flags->nat_set) {
        out->nat = flags->nat;
        out->nat_set = true;
    }
    if (flags->echo >= 0) {
        out->echo = flags->echo;
    }
    if (flags->perf >= 0) {
        out->perf = flags->perf;
    }
    if (flags->listen.n) {
        out->listen = flags->listen;
    }
    if (flags->option.n) {
        out->option = flags->option;
    }
    if (flags->allow_uid.n) {
        out->allow_uid = flags->allow_uid;
    }
}

/* ---- running ---- */

typedef struct dwait {
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    bool done;
} dwait;

static void dwait_signal(dwait *w)
{
    pthread_mutex_lock(&w->mtx);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mtx);
}

/*
 * Waits for @w at most @timeout_s seconds, watching for another SIGTERM or
 * SIGINT (cli_stop_take()) meanwhile. Returns 0 (done), 1 (a
 * second signal: the user wants out now) or 2 (the deadline passed).
 */
static int dwait_wait_bounded(dwait *w, unsigned long long timeout_s)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += (time_t)timeout_s;
    int rc = 0;
    pthread_mutex_lock(&w->mtx);
    while (!w->done) {
        if (cli_stop_take() != 0) {
            rc = 1;
            break;
        }
        struct timespec now, slice;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec)) {
            rc = 2;
            break;
        }
        /* check for a signal every 100 ms */
        slice = now;
        slice.tv_nsec += 100000000L;
        if (slice.tv_nsec >= 1000000000L) {
            slice.tv_sec++;
            slice.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&w->cond, &w->mtx, &slice);
    }
    pthread_mutex_unlock(&w->mtx);
    return rc;
}

/* The shutdown cannot finish (@why 1: a second signal, 2: past its time):
 * exit now, without freeing what the loop thread may still use. */
static _Noreturn void d_force_exit(int why, const char *step)
{
    d_log(GN_LOG_ERR, "%s: exiting at once (status 3) while %s",
          why == 1 ? "second signal" : "shutdown took too long", step);
    fflush(stdout);
    fflush(stderr);
    _exit(3);
}

static void d_ipcd_closed(void *arg) { dwait_signal(arg); }
static void d_node_closed(gn_node *n, void *arg)
{
    (void)n;
    dwait_signal(arg);
}

/*
 * Waits (at most 10 s) for the outcome of the @n configured listeners and
 * copies the bound addresses. Returns 0, or 1 after logging the failure.
 */
static int d_wait_listeners(gn_node *node, size_t n, char addrs[][GN_NODE_ADDR_MAX], size_t *got)
{
    *got = 0;
    size_t outcomes = 0;
    for (int i = 0; i < 1000 && outcomes < n; i++) {
        gn_node_event ev;
        int rc = gn_node_next_event(node, &ev, 10 * GN_MS);
        if (rc != 0) {
            continue;
        }
        if (ev.type == GN_NODE_EV_LISTENING) {
            snprintf(addrs[(*got)++], GN_NODE_ADDR_MAX, "%s", ev.addr);
            outcomes++;
        } else if (ev.type == GN_NODE_EV_LISTEN_FAILED) {
            d_log(GN_LOG_ERR, "cannot listen on %s: %s", ev.addr, gn_strerror(ev.status));
            gn_rcbuf_rele(ev.message);
            return 1;
        } else if (ev.type == GN_NODE_EV_START_FAILED) {
            d_log(GN_LOG_ERR, "component %s failed to start: %s", ev.protocol,
                  gn_strerror(ev.status));
            gn_rcbuf_rele(ev.message);
            return 1;
        }
        gn_rcbuf_rele(ev.message);
    }
    if (outcomes < n) {
        d_log(GN_LOG_ERR, "listeners did not start within 10 s");
        return 1;
    }
    return 0;
}

int cmd_daemon(int argc, char **argv, bool json);

int cmd_daemon(int argc, char **argv, bool json)
{
    dset file, flags, s;
    memset(&file, 0, sizeof file);
    memset(&flags, 0, sizeof flags);
    file.echo = file.perf = flags.echo = flags.perf = -1;
    const char *config = NULL;
    char *config_buf = NULL;
    int code = D_EXIT_USAGE;
    gn_identity *id = NULL;
    gn_node *node = NULL;
    gn_ipcd *ipcd = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            code = d_usage("unexpected argument '%s'", a);
            goto out;
        }
        const char *name = a + 2, *v = NULL;
        char nbuf[32];
        const char *eq = strchr(name, '=');
        if (eq) {
            size_t nl = (size_t)(eq - name);
            if (nl >= sizeof nbuf) {
                code = d_usage("unknown option '%s'", a);
                goto out;
            }
            memcpy(nbuf, name, nl);
            nbuf[nl] = '\0';
            name = nbuf;
            v = eq + 1;
        }
        bool valued = false;
        for (size_t k = 0; k < D_ARRAY_LEN(d_valued); k++) {
            valued = valued || !strcmp(d_valued[k], name);
        }
        if (valued && !v) {
            if (i + 1 >= argc) {
                code = d_usage("--%s needs a value", name);
                goto out;
            }
            v = argv[++i];
        } else if (!valued && v && strcmp(name, "echo") && strcmp(name, "perf")) {
            code = d_usage("--%s takes no value", name);
            goto out;
        }
        if (!strcmp(name, "config")) {
            config = v;
            continue;
        }
        int rc = d_apply(&flags, name, v);
        if (rc < 0) {
            code = d_usage("unknown option '--%s'", name);
            goto out;
        }
        if (rc) {
            code = rc;
            goto out;
        }
    }
    if (config) {
        int rc = d_read_config(config, &file, &config_buf);
        if (rc) {
            code = rc;
            goto out;
        }
    }
    d_merge(&s, &file, &flags);

    /* values */
    static const struct {
        const char *name;
        gn_log_level level;
    } levels[] = {{"err", GN_LOG_ERR},   {"warning", GN_LOG_WARNING}, {"notice", GN_LOG_NOTICE},
                  {"info", GN_LOG_INFO}, {"debug", GN_LOG_DEBUG}};
    if (s.log) {
        size_t k = 0;
        while (k < D_ARRAY_LEN(levels) && strcmp(levels[k].name, s.log)) {
            k++;
        }
        if (k == D_ARRAY_LEN(levels)) {
            code = d_usage("bad value '%s' for --log: expected err, warning, notice, info or "
                           "debug", s.log);
            goto out;
        }
        d_level = levels[k].level;
    }
    if (s.log_components && gn_log_set_components(s.log_components) < 0) {
        code = d_usage("bad value '%s' for --log-components", s.log_components);
        goto out;
    }
    gn_log_set(cli_log, NULL, d_level);
    unsigned long long drain_s = 5, queue_max = 4u * 1024u * 1024u, max_clients = 64;
    if (s.drain && !d_uint(s.drain, 3600, &drain_s)) {
        code = d_usage("bad value '%s' for --drain-timeout: expected seconds 0..3600", s.drain);
        goto out;
    }
    if (s.queue_max && (!d_uint(s.queue_max, 256u * 1024u * 1024u, &queue_max) ||
                        queue_max < 64u * 1024u)) {
        code = d_usage("bad value '%s' for --client-queue-max: expected bytes 65536..268435456",
                       s.queue_max);
        goto out;
    }
    if (s.max_clients && (!d_uint(s.max_clients, 65536, &max_clients) || max_clients == 0)) {
        code = d_usage("bad value '%s' for --max-clients: expected 1..65536", s.max_clients);
        goto out;
    }
    uint32_t uids[D_MAX_LIST];
    for (size_t k = 0; k < s.allow_uid.n; k++) {
        unsigned long long u;
        if (!d_uint(s.allow_uid.v[k], UINT32_MAX - 1, &u)) {
            code = d_usage("bad value '%s' for --allow-uid: expected a numeric uid",
                           s.allow_uid.v[k]);
            goto out;
        }
        uids[k] = (uint32_t)u;
    }
    if (s.key && s.key_seed) {
        code = d_usage("--key and --key-seed exclude each other");
        goto out;
    }
    char sock[512];
    bool default_sock = !s.socket;
    if (default_sock) {
        const char *name = s.name ? s.name : GN_IPCD_DEFAULT_NAME;
        int rc = gn_ipcd_default_address(name, sock, sizeof sock);
        if (rc < 0) {
            code = d_usage("bad value '%s' for --name: 1..64 of A-Z a-z 0-9 . _ -", name);
            goto out;
        }
    } else {
        snprintf(sock, sizeof sock, "%s", s.socket);
    }

    /* identity */
    code = 1;
    int rc;
    if (s.key) {
        rc = gn_identity_load(s.key, &id);
    } else if (s.key_seed) {
        unsigned long long seed;
        if (!d_uint(s.key_seed, UINT32_MAX, &seed)) {
            code = d_usage("bad value '%s' for --key-seed: expected 0..4294967295", s.key_seed);
            goto out;
        }
        rc = gn_identity_from_int_seed((uint32_t)seed, &id);
    } else {
        rc = gn_identity_generate(&id);
    }
    if (rc < 0) {
        d_log(GN_LOG_ERR, "identity%s%s: %s", s.key ? " " : "", s.key ? s.key : "",
              gn_strerror(rc));
        goto out;
    }

    /* signals: blocked here, inherited by the loop thread, taken by sigwait() */
    cli_stop_block(); /* and SIGPIPE ignored (cli_platform.h) */

    const char *listen_default = "/ip4/127.0.0.1/tcp/0";
    gn_node_config cfg;
    gn_node_config_default(&cfg);
    cfg.identity = id;
    cfg.security = s.security;
    cfg.muxers = s.muxer;
    if (s.listen.n) {
        cfg.listen = s.listen.v;
        cfg.n_listen = s.listen.n;
    } else {
        cfg.listen = &listen_default;
        cfg.n_listen = 1;
    }
    if (s.router_set) {
        cfg.routers = s.router;
    }
    if (s.discovery_set) {
        cfg.discovery = s.discovery;
    }
    if (s.nat_set) {
        cfg.nat = s.nat;
    }
    cfg.options = s.option.v;
    cfg.n_options = s.option.n;
    if (s.echo == 1) {
        cfg.protocols |= GN_NODE_PROTO_ECHO;
    }
    if (s.perf == 1) {
        cfg.protocols |= GN_NODE_PROTO_PERF;
    }
    rc = gn_node_new(&cfg, &node);
    if (rc < 0) {
        d_log(GN_LOG_ERR, "cannot create the node: %s%s", gn_strerror(rc),
              rc == GN_ENOTFOUND ? " (a component name is not built in)" : "");
        goto out;
    }
    rc = gn_node_start(node);
    if (rc < 0) {
        d_log(GN_LOG_ERR, "cannot start the node: %s", gn_strerror(rc));
        goto out;
    }
    char (*laddrs)[GN_NODE_ADDR_MAX] = calloc(cfg.n_listen, GN_NODE_ADDR_MAX);
    size_t nl = 0;
    if (!laddrs || d_wait_listeners(node, cfg.n_listen, laddrs, &nl) != 0) {
        free(laddrs);
        goto close_node;
    }

    gn_ipcd_config icfg;
    gn_ipcd_config_default(&icfg);
    icfg.address = sock;
    icfg.tcp_address = s.control_tcp;
    icfg.allow_uids = uids;
    icfg.n_allow_uids = s.allow_uid.n;
    icfg.socket_mode = s.allow_uid.n ? 0666 : 0600;
    icfg.create_dir = default_sock;
    icfg.client_queue_max = (size_t)queue_max;
    icfg.max_clients = (size_t)max_clients;
    char err[512];
    rc = gn_ipcd_new(node, &icfg, &ipcd, err, sizeof err);
    if (rc < 0) {
        d_log(GN_LOG_ERR, "cannot serve the control socket: %s (%s)", err[0] ? err : "-",
              gn_err_name(rc));
        free(laddrs);
        goto close_node;
    }
    gn_peer_id pid;
    gn_node_peer_id(node, &pid);
    char pstr[GN_PEER_ID_MAX_STRLEN];
    gn_peer_id_to_string(&pid, pstr, sizeof pstr);
    const char *tcp = gn_ipcd_address(ipcd, 1);
    if (json) {
        fputs("{\"event\":\"ready\",\"socket\":", stdout);
        cli_json_str(gn_ipcd_address(ipcd, 0));
        if (tcp) {
            fputs(",\"control_tcp\":", stdout);
            cli_json_str(tcp);
        }
        fputs(",\"peer\":", stdout);
        cli_json_str(pstr);
        fputs(",\"listen\":[", stdout);
        for (size_t k = 0; k < nl; k++) {
            if (k) {
                putchar(',');
            }
            cli_json_str(laddrs[k]);
        }
        fputs("]}\n", stdout);
    } else {
        printf("ready socket=%s%s%s peer=%s", gn_ipcd_address(ipcd, 0), tcp ? " control_tcp=" : "",
               tcp ? tcp : "", pstr);
        for (size_t k = 0; k < nl; k++) {
            printf(" listen=%s", laddrs[k]);
        }
        putchar('\n');
    }
    fflush(stdout);
    free(laddrs);
    d_log(GN_LOG_NOTICE, "serving %s (peer %s)", gn_ipcd_address(ipcd, 0), pstr);

    int sig = cli_stop_wait();
    d_log(GN_LOG_NOTICE, "%s: stopping (drain at most %llu s)",
          sig == SIGINT ? "SIGINT" : "SIGTERM", drain_s);
    dwait w1 = {.mtx = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    gn_ipcd_close(ipcd, (gn_time)drain_s * GN_S, d_ipcd_closed, &w1);
    /* the drain, then at most 5 s of flushing clients: 10 s of slack */
    int why = dwait_wait_bounded(&w1, drain_s + 10);
    if (why != 0) {
        d_force_exit(why, "stopping the control server");
    }
    ipcd = NULL;
    code = 0;
close_node:;
    dwait w2 = {.mtx = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    gn_node_close(node, d_node_closed, &w2);
    why = dwait_wait_bounded(&w2, 10);
    if (why != 0) {
        d_force_exit(why, "closing the node");
    }
    /* what the close cancelled is reported, never silently lost */
    gn_node_event ev;
    uint64_t lost = 0;
    for (int i = 0; i < 1000000 && gn_node_next_event(node, &ev, 0) == 0; i++) {
        if (ev.type == GN_NODE_EV_SEND_FAILED) {
            lost += ev.count ? ev.count : 1;
            d_log(GN_LOG_WARNING, "message %llu not delivered: %s",
                  (unsigned long long)ev.request_id, gn_strerror(ev.status));
        }
        gn_rcbuf_rele(ev.message);
    }
    if (lost) {
        d_log(GN_LOG_WARNING, "%llu accepted messages were not delivered",
              (unsigned long long)lost);
    }
    d_log(GN_LOG_NOTICE, "stopped");
out:
    if (node) {
        gn_node_free(node);
    }
    gn_identity_free(id);
    for (size_t k = 0; k < file.n_owned; k++) {
        free(file.options_owned[k]);
    }
    for (size_t k = 0; k < flags.n_owned; k++) {
        free(flags.options_owned[k]);
    }
    free(config_buf);
    return code;
}
