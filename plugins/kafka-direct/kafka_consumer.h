/* kafka_consumer.h - the group consumer (kafka_consume.c and
 * kafka_partition.c), for kafka_plugin.c; its two halves share more in
 * kafka_consume.h. */
#ifndef TODOD_KAFKA_CONSUMER_H
#define TODOD_KAFKA_CONSUMER_H

#include "kafka.h"

int kafka_consumer_start(struct kafka *k, struct todod_err *err);
void kafka_consumer_drain(struct kafka *k, void (*done)(struct kafka *k));
void kafka_consumer_free(struct kafka *k);

#endif
