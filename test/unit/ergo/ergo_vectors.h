/*
 * ergo_vectors.h - reading the Ergo captures (the .hex files of ../shared/vectors/ergo)
 * in the Ergo node tests: find_vec_dir() locates the folder (GN_SHARED_DIR,
 * GN_SOURCE_DIR/../shared, or ../shared), vec_frame() reads one frame of a
 * capture as bytes. Include once per test program, after gn_test.h.
 */
#ifndef GN_ERGO_VECTORS_H
#define GN_ERGO_VECTORS_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char vec_dir[8192];

static bool find_vec_dir(void)
{
    const char *shared = getenv("GN_SHARED_DIR");
    const char *src = getenv("GN_SOURCE_DIR");
    char cand[3][2048] = {"", "", "../shared"};
    if (shared)
        snprintf(cand[0], sizeof cand[0], "%s", shared);
    if (src)
        snprintf(cand[1], sizeof cand[1], "%s/../shared", src);
    for (int i = 0; i < 3; i++) {
        if (!cand[i][0])
            continue;
        snprintf(vec_dir, sizeof vec_dir, "%s/vectors/ergo", cand[i]);
        DIR *d = opendir(vec_dir);
        if (d) {
            closedir(d);
            return true;
        }
    }
    return false;
}

/* the @idx-th (from 0) data line of capture @file, as bytes into @out (at most @cap);
 * returns the length (a missing file or line fails the test) */
static size_t vec_frame(const char *file, int idx, uint8_t *out, size_t cap)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", vec_dir, file);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    static char line[16384];
    size_t n = 0;
    int k = 0;
    while (fgets(line, sizeof line, f)) { /* bounded: the file */
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (k++ != idx)
            continue;
        char *hex = strrchr(line, ' ');
        CHECK(hex != NULL);
        for (hex++; hex[0] && hex[1] && hex[0] != '\n' && n < cap; hex += 2) {
            unsigned b;
            CHECK(sscanf(hex, "%2x", &b) == 1);
            out[n++] = (uint8_t)b;
        }
        break;
    }
    fclose(f);
    CHECK(n > 0);
    return n;
}

#endif
