/*
 * golemnet CLI: what tools/golemnet.c and the command files beside it
 * share (the tool's own helpers, not a library API).
 */
#ifndef GOLEMNET_TOOLS_CLI_H
#define GOLEMNET_TOOLS_CLI_H

#include "cli_platform.h" /* signals (tools/cli_platform.c) */
#include "golemnet/log.h"

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
/*
 * Output: one line per event, JSON (cli_json) or "event key=value ..." text:
 * cli_out_begin(), fields, cli_out_end() (which flushes).
 */
extern bool cli_json;
/** @s as a JSON string literal (quotes, escapes) on stdout. */
void cli_json_str(const char *s);
void cli_out_begin(const char *event);
void cli_out_str(const char *key, const char *val);
void cli_out_u64(const char *key, uint64_t v);
/** @name=text when @p is printable UTF-8, else @name_hex=hex. */
void cli_out_bytes(const char *name, const uint8_t *p, size_t n);
void cli_out_end(void);
/**
 * The gn_log_set() callback of the tool's commands: "<UTC time> golemnet
 * <level> <component>: <message>" on stderr (a progress line is cleared first).
 */
void cli_log(void *ud, gn_log_level level, const char *component, const char *msg);

/* cmd_client.c: commands on a running daemon (docs/cli.md "Commands on a daemon") */
/**
 * Runs @cmd (argv[0] == @cmd, @argc arguments) when it is a command on a
 * running daemon: peers, dial, send, listen, events, and ping or dht with
 * --socket. Returns the exit status, or -1 when @cmd is not one of them.
 */
int cmd_client_main(const char *cmd, int argc, char **argv, bool json);
/** The help text of a daemon command, or NULL. */
const char *cmd_client_help(const char *cmd);

/* cmd_ergo.c: "golemnet ergo" (built with the ergo component: GN_CLI_ERGO) */
/** Runs "golemnet ergo OP ..." (@argv[0] == OP); returns the exit status. */
int cmd_ergo(int argc, char **argv);
extern const char cmd_ergo_help[];

/* cmd_pubsub.c: "golemnet pubsub" (built with the pubsub component: GN_CLI_PUBSUB) */
/** Runs "golemnet pubsub sub|pub TOPIC ..." (@argv[0] == sub or pub); returns the exit status. */
int cmd_pubsub(int argc, char **argv);
extern const char cmd_pubsub_help[];
/* cmd_xfer.c: "golemnet share" and "golemnet fetch" (built with transfer: GN_CLI_XFER) */
/** Runs share (@fetch false) or fetch with their arguments; returns the exit status. */
int cmd_xfer(bool fetch, int argc, char **argv);
extern const char cmd_share_help[];
extern const char cmd_fetch_help[];

#endif
