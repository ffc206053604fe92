/*
 * The CLI's platform file (tools/cli_platform.c): process-level facilities
 * whose POSIX and Windows forms differ and which libuv does not cover for a
 * program that blocks outside a loop. Everything else in tools/ is portable C
 * on the public API.
 */
#ifndef GN_CLI_PLATFORM_H
#define GN_CLI_PLATFORM_H

#include <signal.h>

/* Saved handlers, for cli_signals_restore(). */
typedef struct cli_sigsave {
#ifdef _WIN32
    void (*old_int)(int);
    void (*old_term)(int);
#else
    struct sigaction old_int, old_term;
#endif
} cli_sigsave;

/*
 * Calls @fn (from signal context: set a sig_atomic_t only) on SIGINT and
 * SIGTERM; SIGPIPE is left alone (see cli_sigpipe_ignore()). POSIX: sigaction without
 * SA_RESTART, so a blocking read returns EINTR and the caller sees the flag.
 * Windows: the C runtime's signal() (Ctrl-C and Ctrl-Break arrive as SIGINT
 * on a console thread). @old (may be NULL) receives the previous handlers.
 */
void cli_signals_catch(void (*fn)(int), cli_sigsave *old);

/* Puts back the handlers saved by cli_signals_catch(). */
void cli_signals_restore(const cli_sigsave *old);

/*
 * Ignores SIGPIPE (POSIX; nothing on Windows, which has none), so a write to
 * a socket the peer reset fails with EPIPE instead of killing the process.
 * For the programs that run a node (golemnet's one-shot commands, ergo,
 * golemnet-p2pd); the daemon's cli_stop_block() does it too. Not for the
 * daemon's client commands: a stdout pipe whose reader went away
 * (`golemnet events ... | head -n 1`) must end them, as it ends any filter.
 */
void cli_sigpipe_ignore(void);

/*
 * Stop requests of a program that waits for them (the daemon): SIGINT and
 * SIGTERM (Ctrl-C, Ctrl-Break on Windows).
 * cli_stop_block(): call in the main thread before any other thread starts.
 *   POSIX: blocks both signals in every thread (the mask is inherited), to be
 *   taken with sigwait(), and ignores SIGPIPE. Windows: a handler counts them.
 * cli_stop_wait(): blocks until one arrives; returns SIGINT or SIGTERM.
 * cli_stop_take(): takes one that is pending without blocking; returns it,
 *   or 0 when none is.
 */
void cli_stop_block(void);
int cli_stop_wait(void);
int cli_stop_take(void);

#endif /* GN_CLI_PLATFORM_H */
