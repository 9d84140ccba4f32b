/* loop.h - an epoll event loop owned by one thread: file descriptors, timers, and tasks posted
 * from other threads.
 *
 * Each network thread runs one loop. Everything registered on a loop is touched only by the
 * loop's own thread, except stratus_loop_post(), which any thread may call to run a function
 * on the loop's thread (it is how the WAL writer and the I/O pool hand results back).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_UTIL_LOOP_H
#define STRATUS_UTIL_LOOP_H

#include <stdint.h>

#include "stratus/stratus_err.h"

struct stratus_loop;

/* Called on the loop thread with the epoll events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP). */
typedef void stratus_fd_fn(void *arg, uint32_t events);
typedef void stratus_task_fn(void *arg);

struct stratus_loop *stratus_loop_new(const char *name, struct stratus_errbuf *eb);
/* Frees the loop; runs no pending task. The loop thread must have returned from run(). */
void stratus_loop_free(struct stratus_loop *loop);

/* Runs the loop on the calling thread until stratus_loop_stop(); posts are refused after. */
void stratus_loop_run(struct stratus_loop *loop);
/* @locality any. Makes run() return after the current iteration. */
void stratus_loop_stop(struct stratus_loop *loop);

/* The loop running on this thread, or NULL. */
struct stratus_loop *stratus_loop_current(void);
const char *stratus_loop_name(const struct stratus_loop *loop);

/* @locality loop. Registers fd for events; cb(arg, events) runs on readiness. */
int stratus_loop_add_fd(struct stratus_loop *loop, int fd, uint32_t events, stratus_fd_fn *cb,
                        void *arg);
int stratus_loop_mod_fd(struct stratus_loop *loop, int fd, uint32_t events, stratus_fd_fn *cb,
                        void *arg);
void stratus_loop_del_fd(struct stratus_loop *loop, int fd);

/* @locality any. Queues fn(arg) to run on the loop thread, in posting order. Returns
 * STRATUS_ECLOSED once run() has returned or the loop is being freed (fn is then not run). */
int stratus_loop_post(struct stratus_loop *loop, stratus_task_fn *fn, void *arg);

/* @locality any thread but a loop's. Between defer_wakes() and flush_wakes() (they nest), a
 * post from this thread that would wake a loop records the loop instead, and flush_wakes()
 * wakes each recorded loop once: the WAL's writer finishes a whole group commit's requests and
 * each network thread wakes once for all of its share. */
void stratus_loop_defer_wakes(void);
void stratus_loop_flush_wakes(void);

/* @locality loop. fn(arg) runs once at the end of the calling loop's current iteration, after
 * its events and timers and before the after hook; tasks it posts to this loop run then too.
 * Asking again for the same fn and arg in one iteration does nothing more. The WAL writes a
 * group commit this way from the thread that filled it, once it has read all it can.
 * Returns STRATUS_EINVAL when the calling thread runs no loop and STRATUS_ENOMEM when the
 * iteration's table is full: the caller then does the work another way. */
int stratus_loop_at_end(stratus_task_fn *fn, void *arg);

/* @locality loop. fn(arg) runs at the end of every iteration of run(), after that iteration's
 * events, posted tasks and timers (the network threads send the responses that became ready
 * during the iteration there, several per send). One per loop; NULL removes it. */
void stratus_loop_set_after(struct stratus_loop *loop, stratus_task_fn *fn, void *arg);

/* @locality loop. One-shot timer at a monotonic deadline (stratus_mono_ms()). Returns an id > 0
 * for cancel; a cancelled or fired id is never reused. */
uint64_t stratus_loop_timer_at(struct stratus_loop *loop, int64_t deadline_ms, stratus_task_fn *fn,
                               void *arg);
void stratus_loop_timer_cancel(struct stratus_loop *loop, uint64_t id);

#endif
