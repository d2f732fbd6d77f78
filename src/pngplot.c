/*
 * pngplot.c - data files, a gnuplot script and gnuplot (see pngplot.h).
 */
#include "pngplot.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int il_pngplot_available(void)
{
    const char *path = getenv("PATH");
    char buf[4096];
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)n, path);
        if (n && access(buf, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

/* A gnuplot single-quoted string: a quote is written twice. */
static void gp_str(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static int mkdir_p(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static double ms(int64_t us) { return (double)us / 1000.0; }

static int write_timeline(const il_rollup *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "# seconds  messages  p50_ms  p90_ms  p99_ms  p99.9_ms  max_ms  "
               "service_p99_ms\n");
    int64_t t0 = r->nseries ? r->series[0].t_us : 0;
    for (size_t i = 0; i < r->nseries; i++) {
        const il_rollup_point *p = &r->series[i];
        const il_qsum *l = &p->q[IL_DIST_LAT], *s = &p->q[IL_DIST_SVC];
        if (!l->count)
            continue;
        fprintf(f, "%.3f %llu %.3f %.3f %.3f %.3f %.3f %.3f\n", (double)(p->t_us - t0) / 1e6,
                (unsigned long long)l->count, ms(l->q_us[0]), ms(l->q_us[1]),
                ms(l->q_us[2]), ms(l->q_us[3]), ms(l->q_us[4]),
                s->count ? ms(s->q_us[2]) : NAN);
    }
    return fclose(f);
}

/* The percentile spectrum at 20 points per decade of 1/(1-p), up to the
 * rank of the last value. */
static int write_distribution(const il_rollup *r, const char *path)
{
    const il_hist *lat = r->run[IL_DIST_LAT], *svc = r->run[IL_DIST_SVC];
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "# one_over_1_minus_p  percentile  latency_ms  service_latency_ms\n");
    for (int k = 0;; k++) {
        double x = pow(10.0, k / 20.0);
        double p = 100.0 * (1.0 - 1.0 / x);
        if (x > (double)lat->total || p > 99.99999)
            break;
        fprintf(f, "%.6g %.6f %.3f %.3f\n", x, p, ms(il_hist_percentile(lat, p)),
                svc->total ? ms(il_hist_percentile(svc, p)) : NAN);
    }
    fprintf(f, "%.6g 100 %.3f %.3f\n", (double)lat->total, ms(lat->max),
            svc->total ? ms(svc->max) : NAN);
    return fclose(f);
}

static int write_script(const il_rollup *r, const char *path, const char *png,
                        const char *timeline, const char *dist, const char *run)
{
    const il_hist *lat = r->run[IL_DIST_LAT];
    char title[512];
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    snprintf(title, sizeof title, "iotlat run %s: %llu messages, %zu topic%s, %zu s", run,
             (unsigned long long)lat->total, r->ntopics, r->ntopics == 1 ? "" : "s",
             r->nseries);
    fputs("# Written by iotlat-plotter; run with: gnuplot <this file>\n"
          "set terminal pngcairo size 1200,1000 font 'sans,10'\n",
          f);
    fputs("set output ", f);
    gp_str(f, png);
    fputs("\nset datafile missing 'nan'\nset multiplot layout 2,1 title ", f);
    gp_str(f, title);
    fputs(" font 'sans,12'\n"
          "set grid\nset key top left\nset logscale y\n"
          "set title 'Latency over time (all topics, per second)'\n"
          "set xlabel 'seconds since the first record'\nset ylabel 'latency (ms)'\n"
          "plot ",
          f);
    static const char *const cols[][2] = {{"3", "p50"}, {"4", "p90"}, {"5", "p99"},
                                          {"6", "p99.9"}, {"7", "max"}};
    for (int i = 0; i < 5; i++) {
        gp_str(f, timeline);
        fprintf(f, " using 1:%s with lines lw 2 title '%s', ", cols[i][0], cols[i][1]);
    }
    gp_str(f, timeline);
    fputs(" using 1:8 with lines dt 2 title 'service p99'\n"
          "set title 'Latency distribution (whole run)'\n"
          "set logscale x\nset xlabel 'percentile'\nset ylabel 'latency (ms)'\n"
          /* Tic labels are formats to gnuplot: %% is a percent sign. */
          "set xtics ('0%%' 1, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, "
          "'99.999%%' 100000, '99.9999%%' 1000000)\n"
          "plot ",
          f);
    gp_str(f, dist);
    fputs(" using 1:3 with lines lw 2 title 'end-to-end', ", f);
    gp_str(f, dist);
    fputs(" using 1:4 with lines dt 2 title 'service'\nunset multiplot\n", f);
    return fclose(f);
}

int il_pngplot_render(const il_rollup *r, const char *dir, const char *run, char *png_out,
                      size_t pnglen, char *errbuf, size_t errlen)
{
    char safe[128], base[4096], timeline[4200], dist[4200], script[4200], png[4200];
    if (!r->run[IL_DIST_LAT]->total || !r->nseries) {
        snprintf(errbuf, errlen, "no latency recorded yet: nothing to plot");
        return IL_PNGPLOT_EEMPTY;
    }
    size_t n = 0;
    for (const char *p = run; *p && n + 1 < sizeof safe; p++, n++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_';
        safe[n] = ok ? c : '_';
    }
    safe[n] = '\0';
    if (mkdir_p(dir) != 0) {
        snprintf(errbuf, errlen, "cannot create directory %s: %s", dir, strerror(errno));
        return IL_PNGPLOT_EIO;
    }
    snprintf(base, sizeof base, "%s/%s", dir, safe);
    snprintf(timeline, sizeof timeline, "%s-timeline.dat", base);
    snprintf(dist, sizeof dist, "%s-distribution.dat", base);
    snprintf(script, sizeof script, "%s-latency.gp", base);
    snprintf(png, sizeof png, "%s-latency.png", base);
    if (write_timeline(r, timeline) || write_distribution(r, dist) ||
        write_script(r, script, png, timeline, dist, run)) {
        snprintf(errbuf, errlen, "cannot write the plot files in %s: %s", dir,
                 strerror(errno));
        return IL_PNGPLOT_EIO;
    }
    pid_t pid;
    char *argv[] = {(char *)"gnuplot", script, NULL};
    int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (rc) {
        snprintf(errbuf, errlen, "cannot run gnuplot (Debian package gnuplot-nox): %s",
                 strerror(rc));
        return IL_PNGPLOT_EGNUPLOT;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(errbuf, errlen, "gnuplot failed on %s (status %d)", script,
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return IL_PNGPLOT_EGNUPLOT;
    }
    if (png_out)
        snprintf(png_out, pnglen, "%s", png);
    return 0;
}
