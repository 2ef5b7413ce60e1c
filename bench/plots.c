/*
 * plots.c: the charts, as gnuplot data and one script: a bar chart per
 * link of time and pause per mode, with several links the clustered charts
 * that put the links side by side, and with --series a chart per run of
 * its copy rate, dirty rate and remaining RAM over time.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

/* OUT/series-MODE-REP.EXT; with several links OUT/series-LINK-MODE-REP.EXT,
 * since the same mode and repeat then run once per link. */
static void series_path(char *buf, size_t len, const char *link, const char *mode, int rep, const char *ext)
{
	if (cfg.nlinks > 1)
		snprintf(buf, len, "%s/series-%s-%s-%d.%s", cfg.out, link, mode, rep, ext);
	else
		snprintf(buf, len, "%s/series-%s-%d.%s", cfg.out, mode, rep, ext);
}

/* --series: "t_ms remaining_bytes dirty_Bps copy_Bps" */
FILE *series_open(const char *link, const char *mode, int rep)
{
	char path[PATH_MAX + 96];
	FILE *f;

	if (!cfg.series)
		return NULL;
	series_path(path, sizeof(path), link, mode, rep, "dat");
	f = fopen(path, "w");
	if (f)
		fprintf(f, "# t_ms remaining_bytes dirty_Bps copy_Bps (%s, repeat %d, link %s)\n", mode, rep, link);
	return f;
}

void series_plot(const char *link, const char *mode, int rep)
{
	char dat[PATH_MAX + 96], png[PATH_MAX + 96], gp[PATH_MAX + 96], lg[PATH_MAX + 32];
	FILE *f;

	if (!cfg.series)
		return;
	series_path(dat, sizeof(dat), link, mode, rep, "dat");
	series_path(png, sizeof(png), link, mode, rep, "png");
	series_path(gp, sizeof(gp), link, mode, rep, "gp");
	snprintf(lg, sizeof(lg), "%s/gnuplot.log", cfg.out);
	f = fopen(gp, "w");
	if (!f)
		return;
	fprintf(f,
		"set terminal pngcairo size 900,500 noenhanced\nset output '%s'\n"
		"set title '%s repeat %d, link %s'\nset xlabel 's'\nset ylabel 'MiB/s'\nset y2label 'MiB remaining'\n"
		"set ytics nomirror\nset y2tics\nset grid\nset key top right\n"
		"plot '%s' using ($1/1000):($4/1048576) with lines lw 2 title 'copy rate', "
		"'' using ($1/1000):($3/1048576) with lines lw 2 title 'dirty rate', "
		"'' using ($1/1000):($2/1048576) axes x1y2 with lines lw 2 dt 2 title 'remaining'\n",
		png, mode, rep, link, dat);
	fclose(f);
	{
		char *argv[] = {"gnuplot", gp, NULL};

		run(argv, -1, 0, lg, lg, 60);
	}
}

/* "mode time_med time_min time_max pause_med pause_min pause_max", a line
 * per mode with a successful run. Returns the lines written, -1 on error. */
static int plot_dat(const char *path, const struct result *rs, int n)
{
	FILE *d = fopen(path, "w");
	int rows = 0;

	if (!d)
		return -1;
	fprintf(d, "# mode time_med time_min time_max pause_med pause_min pause_max\n");
	for (int m = 0; m < cfg.nmodes; m++) {
		struct stat3 t = stat_of(rs, n, cfg.modes[m], F_E2E), p = stat_of(rs, n, cfg.modes[m], F_PAUSE);

		if (!t.n)
			continue;
		fprintf(d, "%s %.0f %.0f %.0f %.0f %.0f %.0f\n", cfg.modes[m], t.med, t.min, t.max, p.med, p.min, p.max);
		rows++;
	}
	fclose(d);
	return rows;
}

/* One link's two charts (a bar per mode), as gnuplot commands. */
static void gp_bars(FILE *f, const char *dat, const char *time_png, const char *pause_png, const char *link)
{
	fprintf(f,
		"set terminal pngcairo size 900,500 noenhanced\n"
		"set style fill solid 0.6 border -1\nset boxwidth 0.6\nset grid ytics\nset yrange [0:*]\n"
		"set xtics rotate by -30\nunset key\n"
		"set output '%s'\nset title 'migration time end to end, link %s, %d MiB (median, min-max)'\n"
		"set ylabel 'ms'\nplot '%s' using 0:2:3:4:(0.6):xtic(1) with boxerrorbars lc rgb '#4477aa'\n"
		"set output '%s'\nset title 'true pause, link %s (median, min-max)'\n"
		"plot '%s' using 0:5:6:7:(0.6):xtic(1) with boxerrorbars lc rgb '#cc6677'\n",
		time_png, link, cfg.mem_mib, dat, pause_png, link, dat);
}

/* Value ranges of the clustered charts, to choose their y axis. */
struct span {
	double lo, hi; /* smallest positive minimum, largest maximum */
};

static void span_add(struct span *s, struct stat3 v)
{
	if (v.min > 0 && (s->lo <= 0 || v.min < s->lo))
		s->lo = v.min;
	if (v.max > s->hi)
		s->hi = v.max;
}

/*
 * The data of the clustered charts: a gnuplot block per mode (blocks apart
 * by two blank lines, so `index m` is mode m), a line per link in --link
 * order: "link_index link time_med time_min time_max pause_med pause_min
 * pause_max", NaN where the mode had no successful run on that link (no
 * bar, the mode keeps its place and colour). Returns the successful
 * (mode, link) pairs, -1 on error.
 */
static int links_dat(const char *path, const struct result *rs, int n, struct span *ts, struct span *ps)
{
	static struct result sub[MAX_RUNS];
	FILE *d = fopen(path, "w");
	int cells = 0;

	if (!d)
		return -1;
	fprintf(d, "# a block per mode; link_index link time_med time_min time_max pause_med pause_min pause_max\n");
	for (int m = 0; m < cfg.nmodes; m++) {
		fprintf(d, "%s# %s\n", m ? "\n\n" : "", cfg.modes[m]);
		for (int l = 0; l < cfg.nlinks; l++) {
			int k = link_runs(rs, n, cfg.links[l], sub);
			struct stat3 t = stat_of(sub, k, cfg.modes[m], F_E2E), p = stat_of(sub, k, cfg.modes[m], F_PAUSE);

			if (!t.n) {
				fprintf(d, "%d %s NaN NaN NaN NaN NaN NaN\n", l, cfg.links[l]);
				continue;
			}
			fprintf(d, "%d %s %.0f %.0f %.0f %.0f %.0f %.0f\n", l, cfg.links[l], t.med, t.min, t.max, p.med,
				p.min, p.max);
			span_add(ts, t);
			span_add(ps, p);
			cells++;
		}
	}
	fclose(d);
	return cells;
}

/*
 * A clustered chart: x = link, a bar per mode (median, min-max), every bar
 * labelled with its median. col: the median's column in links_dat (3 time,
 * 6 pause). Links differ by 10-100x (lo against 100mbit), which leaves
 * lo's bars flat on a linear axis: beyond a 20x span the axis is
 * logarithmic, from the power of ten below the smallest minimum, and the
 * labels carry the exact values.
 */
static void gp_clustered(FILE *f, const char *dat, const char *png, int col, const char *what, struct span s)
{
	int logy = s.lo > 0 && s.hi / s.lo > 20;
	double floor10 = 1;

	while (floor10 * 10 <= s.lo)
		floor10 *= 10;
	fprintf(f, "reset\nset terminal pngcairo size 1000,500 noenhanced\n"
		   "set style fill solid 0.6 border -1\nset grid ytics\nset key outside right top\nset xtics (");
	for (int l = 0; l < cfg.nlinks; l++)
		fprintf(f, "%s'%s' %d", l ? ", " : "", cfg.links[l], l);
	fprintf(f, ")\nset xrange [-0.5:%d.5]\nmodes = '", cfg.nlinks - 1);
	for (int m = 0; m < cfg.nmodes; m++)
		fprintf(f, "%s%s", m ? " " : "", cfg.modes[m]);
	fprintf(f, "'\nnm = %d\nbw = 0.8 / nm\n", cfg.nmodes);
	if (logy) /* plain numbers on the axis: 100000, not 1e+05 */
		fprintf(f, "set logscale y\nset format y '%%.0f'\nset yrange [%.0f:*]\n", floor10);
	else
		fprintf(f, "set yrange [0:*]\n");
	fprintf(f,
		"set output '%s'\nset title '%s per link, %d MiB (median, min-max%s)'\nset ylabel 'ms'\n"
		"plot for [m=0:nm-1] '%s' index m using ($1 - 0.4 + bw * (m + 0.5)):%d:%d:%d:(bw) with boxerrorbars "
		"lt m+1 title word(modes, m+1), \\\n"
		"     for [m=0:nm-1] '%s' index m using ($1 - 0.4 + bw * (m + 0.5)):%d:(sprintf('%%.0f', column(%d))) "
		"with labels %s font ',8' notitle\n",
		png, what, cfg.mem_mib, logy ? "; log scale" : "", dat, col, col + 1, col + 2, dat, col + 2, col,
		/* side by side, 8 modes leave ~20 px a bar: too narrow for "12345" */
		cfg.nmodes > 4 ? "rotate by 90 left offset 0,0.4" : "offset 0,0.6");
}

static void gnuplot_run(const char *gp)
{
	char *argv[] = {"gnuplot", (char *)gp, NULL};
	char lg[PATH_MAX + 32];
	int r;

	snprintf(lg, sizeof(lg), "%s/gnuplot.log", cfg.out);
	r = run(argv, -1, 0, lg, lg, 60);
	if (r == 127)
		msg("warning: gnuplot not found; no plots");
	else if (r != 0)
		msg("warning: gnuplot failed (%d); see %s", r, lg);
}

/*
 * One link: plot.dat -> time.png, pause.png. Several: per link
 * plot-LINK.dat -> time-LINK.png, pause-LINK.png (each link on its own
 * scale), and plot-links.dat -> bench-time.png, bench-pause.png, the
 * links side by side. One plot.gp draws them all.
 */
void write_plots(const struct result *rs, int n)
{
	static struct result sub[MAX_RUNS];
	char gp[PATH_MAX + 32], dat[PATH_MAX + 64], tp[PATH_MAX + 64], pp[PATH_MAX + 64];
	struct span ts = {0, 0}, ps = {0, 0};
	int have = 0;
	FILE *f;

	snprintf(gp, sizeof(gp), "%s/plot.gp", cfg.out);
	f = fopen(gp, "w");
	if (!f)
		return;
	for (int l = 0; l < cfg.nlinks; l++) {
		const char *link = cfg.links[l];
		int k = link_runs(rs, n, link, sub);

		if (cfg.nlinks == 1) {
			snprintf(dat, sizeof(dat), "%s/plot.dat", cfg.out);
			snprintf(tp, sizeof(tp), "%s/time.png", cfg.out);
			snprintf(pp, sizeof(pp), "%s/pause.png", cfg.out);
		} else {
			snprintf(dat, sizeof(dat), "%s/plot-%s.dat", cfg.out, link);
			snprintf(tp, sizeof(tp), "%s/time-%s.png", cfg.out, link);
			snprintf(pp, sizeof(pp), "%s/pause-%s.png", cfg.out, link);
		}
		if (plot_dat(dat, sub, k) > 0) {
			gp_bars(f, dat, tp, pp, link);
			have = 1;
		}
	}
	if (cfg.nlinks > 1) {
		snprintf(dat, sizeof(dat), "%s/plot-links.dat", cfg.out);
		snprintf(tp, sizeof(tp), "%s/bench-time.png", cfg.out);
		snprintf(pp, sizeof(pp), "%s/bench-pause.png", cfg.out);
		if (links_dat(dat, rs, n, &ts, &ps) > 0) {
			gp_clustered(f, dat, tp, 3, "migration time end to end", ts);
			gp_clustered(f, dat, pp, 6, "true pause", ps);
		}
	}
	fclose(f);
	if (have)
		gnuplot_run(gp);
	else
		unlink(gp); /* nothing succeeded: no script, as no plots */
}

