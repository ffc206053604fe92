/* Compiled against an installed golemnet through pkg-config by the CI install check. */
#include <golemnet/golemnet.h>

#include <stdio.h>

int main(void)
{
    /* The component drivers are installed and exported for out-of-tree
     * security and muxer components: their symbols must link. */
    int (*secure_run)(gn_crypto *, gn_stream *, const gn_secure_hs_vtbl *, void *, gn_secure_cb,
                      void *, gn_op **) = gn_secure_run;
    /* and the host interface, for out-of-tree protocol, router, discovery
     * and NAT components */
    const char *(*option)(gn_host *, const char *, const char *, size_t) = gn_host_option;
    int (*muxd_new)(gn_mux *, const gn_muxd_vtbl *, gn_stream *, bool, const gn_mux_session_cbs *,
                    void *, gn_mux_session **) = gn_muxd_session_new;
    /* and the resource manager, for the node and components */
    int (*rcmgr_new)(const gn_rcmgr_limits *, gn_rcmgr **) = gn_rcmgr_new;
    if (secure_run == NULL || muxd_new == NULL || option == NULL || rcmgr_new == NULL) {
        return 1;
    }
    gn_multiaddr *ma = NULL;
    int rc = gn_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &ma);
    if (rc < 0) {
        printf("parse failed: %s\n", gn_err_name(rc));
        return 1;
    }
    char s[128];
    gn_multiaddr_to_string(ma, s, sizeof s);
    gn_multiaddr_free(ma);
    printf("golemnet %s %s\n", gn_version(), s);
    return 0;
}
