/* sdnotify.h - systemd's notify protocol without libsystemd: one
 * datagram to $NOTIFY_SOCKET per state change; a no-op elsewhere. */
#ifndef TODOD_SDNOTIFY_H
#define TODOD_SDNOTIFY_H

/* "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=..." */
void sd_notify_state(const char *state);

#endif
