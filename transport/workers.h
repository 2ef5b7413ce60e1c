/* Compression workers: a small thread pool that runs LZ4 work off the loop
 * thread, so compressing one chunk overlaps with sending the previous one.
 *
 * A job runs work(arg) on a worker, then done(arg) on the loop thread (via
 * loop_post), in no particular order across jobs: callers that need order
 * (a stream's chunks) keep their own sequence. */
#ifndef FERRY_TRANSPORT_WORKERS_H
#define FERRY_TRANSPORT_WORKERS_H

struct loop;
struct workers;
struct codec;

/* nthreads <= 0 picks one per online CPU, capped at 4. */
int workers_new(struct loop *lp, int nthreads, struct workers **out);
void workers_free(struct workers *w);
/* work() gets the calling worker's own codec (LZ4 state) to use. */
int workers_submit(struct workers *w, void (*work)(void *arg, struct codec *c),
		   void (*done)(void *arg), void *arg);

#endif
