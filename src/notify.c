/* Service manager notifications: see notify.h. */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* $NOTIFY_SOCKET as an address: "/path" or "@name" (Linux's abstract
 * namespace).  0 when it is unset or of a kind gatherd does not speak
 * (systemd also knows vsock addresses, for virtual machines). */
static socklen_t notify_addr(struct sockaddr_un *sa)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n;

	if (e == NULL || (e[0] != '/' && e[0] != '@'))
		return 0;
	n = strlen(e);
	if (n < 2 || n > sizeof sa->sun_path)
		return 0;
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, e, n);
	if (e[0] == '@')
		sa->sun_path[0] = '\0';
	else if (n == sizeof sa->sun_path)
		return 0; /* a path needs its terminating NUL */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			   (e[0] == '/'));
}

void notify_send(const char *fmt, ...)
{
	struct sockaddr_un sa;
	socklen_t salen = notify_addr(&sa);
	char msg[4096];
	va_list ap;
	int n, fd;

	if (salen == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1; /* a long status line, cut */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   salen) < 0)
		log_debug("notifying the service manager: %s", strerror(errno));
	close(fd);
}

uint64_t notify_watchdog_usec(void)
{
	const char *e = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long usec;
	char *end;

	if (e == NULL)
		return 0;
	/* The pings are for the process the manager started, not for one
	 * it forked (systemd sets the PID when it could be ambiguous). */
	if (pid != NULL && strtol(pid, &end, 10) != (long)getpid())
		return 0;
	errno = 0;
	usec = strtoull(e, &end, 10);
	if (errno != 0 || end == e || *end != '\0' || e[0] == '-')
		return 0;
	return usec;
}
