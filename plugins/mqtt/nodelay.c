/*
 * nodelay.c - TCP_NODELAY for the sockets Paho opens.
 *
 * Paho MQTT C 1.3 (Debian 12) never sets TCP_NODELAY and offers no hook to
 * do it: no option, no socket callback, no accessor for a client's file
 * descriptor.  Left alone, Nagle's algorithm holds back a small PUBLISH while
 * an earlier one is unacknowledged, and the peer's delayed ACK releases it
 * 23-40 ms later: a latency tail that belongs to our client, not to the
 * broker under test.
 *
 * Interposing socket() or connect() does not work for a plugin loaded with
 * RTLD_LOCAL (libpaho binds to libc's symbols, not ours), and reading Paho's
 * private structures would break with any release.  What is public and
 * stable is the kernel's view: /proc/self/fd lists this process's
 * descriptors, getsockopt(TCP_NODELAY) tells a TCP socket from anything else
 * at the cost of one system call, and getpeername() tells which port it is
 * connected to.  So after connections come up, the driver sweeps the
 * process's TCP sockets and sets TCP_NODELAY on every one connected to a
 * broker port.  A socket to that port that is not ours (another library in
 * the same process talking to the same port) gets TCP_NODELAY too, which is
 * harmless; a descriptor closed and reused during the sweep is at worst
 * skipped until the next sweep.
 *
 * The sweep costs one getsockopt per open descriptor, plus getpeername and
 * setsockopt per new broker socket: microseconds for a shared connection,
 * a few milliseconds with thousands of per-device connections, which is why
 * conn.c runs it on the manager thread and coalesces requests.
 */
#include "mqtt_int.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

static int peer_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1; /* not connected (yet): a later sweep will see it */
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

long mq_nodelay_sweep(const uint16_t *ports, int nports)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    if (!d)
        return -1;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd == self)
            continue;
        int on = 0;
        socklen_t len = sizeof on;
        /* Fails with ENOTSOCK, EOPNOTSUPP or ENOPROTOOPT for anything that
         * is not a TCP socket. */
        if (getsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0)
            continue;
        int port = peer_port((int)fd);
        int ours = 0;
        for (int i = 0; i < nports && !ours; i++)
            ours = port == ports[i];
        if (!ours)
            continue;
        if (!on) {
            on = 1;
            if (setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0)
                continue;
        }
        n++;
    }
    closedir(d);
    return n;
}
