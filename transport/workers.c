#include "transport/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "transport/codec.h"
#include "transport/loop.h"

struct job {
	void (*work)(void *arg, struct codec *c);
	void (*done)(void *arg);
	void *arg;
	struct job *next;
};

struct workers {
	struct loop *lp;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	int stopping;
	int n;
	pthread_t *threads;
};

static void *worker_main(void *arg)
{
	struct workers *w = arg;
	struct codec *c = NULL;
	struct job *j;

	if (codec_new(&c, 1) < 0)
		return NULL;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		j = w->head;
		if (j) {
			w->head = j->next;
			if (!w->head)
				w->tail = NULL;
		}
		pthread_mutex_unlock(&w->mu);
		if (!j)
			break; /* stopping and queue empty */
		j->work(j->arg, c);
		/* The job node rides along to the loop thread only as its arg. */
		loop_post_must(w->lp, j->done, j->arg);
		free(j);
	}
	codec_free(c);
	return NULL;
}

int workers_new(struct loop *lp, int nthreads, struct workers **out)
{
	struct workers *w;
	long ncpu;
	int r = 0;

	if (nthreads <= 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = ncpu < 1 ? 1 : ncpu > 4 ? 4 : (int)ncpu;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->lp = lp;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->threads = calloc((size_t)nthreads, sizeof(pthread_t));
	if (!w->threads) {
		r = -ENOMEM;
		goto fail;
	}
	for (w->n = 0; w->n < nthreads; w->n++) {
		r = -pthread_create(&w->threads[w->n], NULL, worker_main, w);
		if (r < 0)
			goto fail;
	}
	*out = w;
	return 0;
fail:
	workers_free(w);
	return r;
}

void workers_free(struct workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

int workers_submit(struct workers *w, void (*work)(void *arg, struct codec *c),
		   void (*done)(void *arg), void *arg)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}
