/* libc headers first: libevent's event-config.h defines _GNU_SOURCE, and a module that
 * reaches glibc after it sees another fd_set (docs/development.md, "Interop pitfalls"). */
#include <sys/types.h>
#include <sys/time.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <stdio.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
