/* coldgate.h - cold reads yield to the WAL: a limit on the storage reads the I/O pool makes at
 * once for cold reads, lowered while those reads slow the WAL's writes down.
 *
 * When the objects and the WAL share a device (storage-local on the WAL's disk, the embedded
 * default), a catch-up consumer's 1 MiB reads queue ahead of the group commits, and every
 * acks=all produce waits for them: on this project's test machine the WAL's mean write went
 * from 0.4 to 2.3 ms beside a reader with 4 reads in flight, 0.9 ms with 1. Where they do not
 * share it (S3, GCS, Azure, another disk) the reads cost the WAL nothing and nothing is held.
 *
 * The WAL reports every write (start, duration). Writes that began and ended with no cold read
 * in flight make the baseline (a moving average); the others the loaded average. Every 50 ms
 * of writes: loaded above 2 x baseline + 200 us halves the limit (down to 1), loaded under
 * 1.5 x baseline + 100 us raises it by one (up to the pool's size); only while the loaded
 * average has had a sample in those 50 ms. With no write for 500 ms
 * (nothing being ingested) the limit goes back to the pool's size. Before any baseline exists
 * nothing is limited.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_STREAM_COLDGATE_H
#define STRATUS_STREAM_COLDGATE_H

#include <pthread.h>
#include <stdint.h>

struct stratus_coldgate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int enabled; /* 0 = never limits (broker.cold_read_yield = false) */
    int max, limit, inflight;
    int64_t idle_since_us; /* when inflight last fell to 0 */
    int64_t last_write_us, last_eval_us;
    double base_us, load_us; /* 0 = no sample yet */
    int64_t last_load_us;    /* when load_us last had a sample */
    uint64_t waits;          /* reads that waited for the limit */
};

/* max: the most reads at once (the I/O pool's size). */
void stratus_coldgate_init(struct stratus_coldgate *g, int max, int enabled);
void stratus_coldgate_destroy(struct stratus_coldgate *g);

/* Around each storage read of a cold read or read-ahead: enter waits while the limit is
 * reached; leave must follow every enter. Any thread. Returns 1 when the limit was below the
 * pool's size as the read entered (cold reads are slowing the WAL down: coldread.c then reads
 * in smaller pieces), else 0. */
int stratus_coldgate_enter(struct stratus_coldgate *g);
void stratus_coldgate_leave(struct stratus_coldgate *g);

/* The WAL's write observer (struct stratus_wal_conf.write_observer): a write that began at
 * start_us (stratus_mono_us) and took dt_us. Does not block beyond the gate's mutex. */
void stratus_coldgate_wal_write(void *gate, int64_t start_us, int64_t dt_us);

/* The current limit and the reads that waited so far (metrics). */
void stratus_coldgate_stats(struct stratus_coldgate *g, int *limit, uint64_t *waits);

/* The controller step alone, for tests: now_us the time of the write. Caller holds mu. */
void stratus_coldgate_observe_locked(struct stratus_coldgate *g, int64_t now_us,
                                     int64_t start_us, int64_t dt_us);

#endif
