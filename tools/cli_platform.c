/* The CLI's platform file: see cli_platform.h. */
#include "cli_platform.h"

#include <signal.h>
#include <string.h>

#ifndef _WIN32

#include <pthread.h>

static sigset_t cli_stop_sigs;

void cli_stop_block(void)
{
    sigemptyset(&cli_stop_sigs);
    sigaddset(&cli_stop_sigs, SIGINT);
    sigaddset(&cli_stop_sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &cli_stop_sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int cli_stop_wait(void)
{
    int sig = 0;
    while (sigwait(&cli_stop_sigs, &sig) != 0) {
    }
    return sig;
}

int cli_stop_take(void)
{
    sigset_t pend;
    sigemptyset(&pend);
    if (sigpending(&pend) == 0 &&
        (sigismember(&pend, SIGTERM) == 1 || sigismember(&pend, SIGINT) == 1)) {
        int sig = 0;
        (void)sigwait(&cli_stop_sigs, &sig); /* pending: returns at once */
        return sig;
    }
    return 0;
}

void cli_signals_catch(void (*fn)(int), cli_sigsave *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old ? &old->old_int : NULL);
    sigaction(SIGTERM, &sa, old ? &old->old_term : NULL);
}

void cli_sigpipe_ignore(void)
{
    signal(SIGPIPE, SIG_IGN); /* a write to a reset socket fails with EPIPE */
}

void cli_signals_restore(const cli_sigsave *old)
{
    sigaction(SIGINT, &old->old_int, NULL);
    sigaction(SIGTERM, &old->old_term, NULL);
}

#else /* _WIN32 */

#include <stdatomic.h>
#include <windows.h>

/* the last stop signal not yet taken (0: none) */
static atomic_int cli_stop_sig;

static void cli_stop_handler(int sig)
{
    atomic_store(&cli_stop_sig, sig);
    signal(sig, cli_stop_handler); /* the CRT resets the handler before calling it */
}

void cli_stop_block(void)
{
    signal(SIGINT, cli_stop_handler);
    signal(SIGTERM, cli_stop_handler);
    signal(SIGBREAK, cli_stop_handler);
}

int cli_stop_take(void)
{
    int sig = atomic_exchange(&cli_stop_sig, 0);
    return sig == SIGBREAK ? SIGTERM : sig;
}

int cli_stop_wait(void)
{
    int sig;
    while ((sig = cli_stop_take()) == 0) {
        Sleep(50); /* Ctrl-C arrives on a console thread; 50 ms is prompt enough */
    }
    return sig;
}

void cli_signals_catch(void (*fn)(int), cli_sigsave *old)
{
    void (*oi)(int) = signal(SIGINT, fn);
    void (*ot)(int) = signal(SIGTERM, fn);
    if (old) {
        old->old_int = oi;
        old->old_term = ot;
    }
}

void cli_sigpipe_ignore(void)
{
    /* no SIGPIPE: a write to a reset socket fails with WSAECONNRESET */
}

void cli_signals_restore(const cli_sigsave *old)
{
    signal(SIGINT, old->old_int);
    signal(SIGTERM, old->old_term);
}

#endif
