/* Compiled against an installed golemnet through pkg-config by the CI install check. */
#include <golemnet/golemnet.h>

#include <stdio.h>

int main(void)
{
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
