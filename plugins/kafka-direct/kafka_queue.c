/* kafka_queue.c - a librdkafka queue served from the loop.
 *
 * librdkafka writes one byte into a pipe whenever the queue goes from
 * empty to non-empty; the loop watches the other end.  A wake-up only
 * says "something arrived since the queue was last empty", so each turn
 * empties the pipe first and then the queue.  A turn serves a bounded
 * number of events so that a flood of delivery reports or messages does
 * not starve HTTP and the database; when it stops early the queue is not
 * empty, librdkafka will not write again, and a zero-delay timer takes
 * the next turn instead. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"

#define EVENTS_PER_TURN 500

struct kafka_queue {
	const struct todod_api *api;
	struct todod_ctx *ctx;
	rd_kafka_queue_t *q;
	kafka_event_fn fn;
	void *arg;
	int read_fd, write_fd;
	struct todod_watch *watch;
	struct todod_timer *next_turn;
	int serving;  /* depth of serve() calls on the stack */
	bool freed;   /* kafka_queue_free() came from inside `fn` */
};

static void queue_release(struct kafka_queue *kq)
{
	rd_kafka_queue_io_event_enable(kq->q, -1, NULL, 0);
	kq->api->fd_unwatch(&kq->watch);
	kq->api->timer_del(&kq->next_turn);
	close(kq->read_fd);
	close(kq->write_fd);
	rd_kafka_queue_destroy(kq->q);
	free(kq);
}

static void on_next_turn(void *arg);

static void schedule_turn(struct kafka_queue *kq)
{
	if (!kq->next_turn)
		kq->api->timer_add(kq->ctx, &kq->next_turn, 0, 0, on_next_turn, kq);
}

void kafka_queue_serve(struct kafka_queue *kq)
{
	kq->serving++;
	int served = 0;
	rd_kafka_event_t *ev;
	while (!kq->freed && served < EVENTS_PER_TURN && (ev = rd_kafka_queue_poll(kq->q, 0))) {
		served++;
		kq->fn(ev, kq->arg);
		rd_kafka_event_destroy(ev);
	}
	kq->serving--;
	if (kq->freed) {
		if (!kq->serving)
			queue_release(kq);
		return;
	}
	if (served == EVENTS_PER_TURN)
		schedule_turn(kq);
}

static void on_next_turn(void *arg)
{
	kafka_queue_serve(arg);
}

static void on_wake(int fd, int what, void *arg)
{
	char buf[64];
	while (read(fd, buf, sizeof buf) > 0)
		;
	kafka_queue_serve(arg);
}

struct kafka_queue *kafka_queue_watch(const struct todod_api *api, struct todod_ctx *ctx,
				      rd_kafka_queue_t *q, kafka_event_fn fn, void *arg,
				      struct todod_err *err)
{
	struct kafka_queue *kq = todod_xcalloc(1, sizeof *kq);
	int fds[2];
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		todod_err_set(err, "cannot create the librdkafka wake-up pipe: %s",
			      strerror(errno));
		free(kq);
		rd_kafka_queue_destroy(q);
		return NULL;
	}
	*kq = (struct kafka_queue){ .api = api, .ctx = ctx, .q = q, .fn = fn, .arg = arg,
				    .read_fd = fds[0], .write_fd = fds[1] };
	kq->watch = api->fd_watch(ctx, kq->read_fd, TODOD_FD_READ, on_wake, kq);
	if (!kq->watch) {
		todod_err_set(err, "cannot watch the librdkafka wake-up pipe");
		queue_release(kq);
		return NULL;
	}
	rd_kafka_queue_io_event_enable(q, kq->write_fd, "1", 1);
	/* What was queued before the pipe was attached never wakes it. */
	schedule_turn(kq);
	return kq;
}

void kafka_queue_free(struct kafka_queue *kq)
{
	if (!kq)
		return;
	if (kq->serving) {
		kq->freed = true;
		return;
	}
	queue_release(kq);
}
