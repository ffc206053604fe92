/*
 * golemnet CLI: what tools/golemnet.c and the command files beside it
 * share (the tool's own helpers, not a library API).
 */
#ifndef GOLEMNET_TOOLS_CLI_H
#define GOLEMNET_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* golemnet.c */
/** Decodes hex (even length, either case) into @out (@cap bytes); false on anything else. */
bool cli_hex(const char *s, uint8_t *out, size_t cap, size_t *len);
/** The DHT key of a CID (its multihash); false after writing why into @why. */
bool cli_cid_key(const char *s, uint8_t *out, size_t cap, size_t *len, const char **why);
/** True when @p (@n bytes) is printable UTF-8 (printed as text, else as hex). */
bool dht_text(const uint8_t *p, size_t n);

/* cmd_client.c: commands on a running daemon (docs/cli.md "Commands on a daemon") */
/**
 * Runs @cmd (argv[0] == @cmd, @argc arguments) when it is a command on a
 * running daemon: peers, dial, send, listen, events, and ping or dht with
 * --socket. Returns the exit status, or -1 when @cmd is not one of them.
 */
int cmd_client_main(const char *cmd, int argc, char **argv, bool json);
/** The help text of a daemon command, or NULL. */
const char *cmd_client_help(const char *cmd);

#endif
