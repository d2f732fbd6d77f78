/*
 * runctl.h - stopping a run cleanly on SIGINT / SIGTERM.
 *
 * Kubernetes stops a pod with SIGTERM and a person with Ctrl-C; either way
 * the binaries must finish the second they are in, write their reports and
 * release what they claimed.  The handler only sets a flag that the loops
 * poll.
 */
#ifndef IL_RUNCTL_H
#define IL_RUNCTL_H

/* Install the handlers (idempotent) and ignore SIGPIPE. */
void il_runctl_install(void);
/* The signal number that asked to stop, or 0. */
int il_runctl_stop_requested(void);

#endif
