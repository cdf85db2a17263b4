/* The service manager's notification protocol (systemd's sd_notify(3)):
 * readiness, reloading, stopping, a status line and watchdog pings, sent
 * as datagrams to $NOTIFY_SOCKET.  The protocol is a few lines of text on
 * a Unix socket, so gatherd speaks it itself rather than load libsystemd
 * (and the compression and crypto libraries it pulls in) for it. */
#ifndef GATHERD_NOTIFY_H
#define GATHERD_NOTIFY_H

#include <stdint.h>

/* Send one message ("READY=1", "STATUS=...", several joined by newlines).
 * Nothing happens outside a service that asked for notifications; a
 * message that cannot be sent is dropped (the manager's own timeouts tell
 * the admin). */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval systemd asks this process to ping within
 * (WatchdogSec=, through $WATCHDOG_USEC and $WATCHDOG_PID), in
 * microseconds; 0 when there is none. */
uint64_t notify_watchdog_usec(void);

#endif
