/* kafka_topics.h - creating the topics todod uses (kafka_topics.c), for
 * kafka_plugin.c. */
#ifndef TODOD_KAFKA_TOPICS_H
#define TODOD_KAFKA_TOPICS_H

#include "kafka.h"

/* Creates the topics todod uses now, and again after a failure once the
 * brokers are reachable, or when one turns out to be missing (it sets
 * the hooks in struct kafka that say so).  `first_answer` is called
 * once, when the first request is answered. */
int kafka_topics_start(struct kafka *k, void (*first_answer)(struct kafka *k),
		       struct todod_err *err);
void kafka_topics_free(struct kafka *k);
/* Has the producer look up the leaders of every topic above now (they
 * exist: just created, or create_topics = no), not at its first event. */
void kafka_topics_look_up(struct kafka *k);

#endif
