/*
 * The benchmark's workload: one tiny copy of a supervised program.
 *
 * Reads CLOCK_MONOTONIC first thing, appends "PID NANOSECONDS\n" to the
 * record file named by argv[1] (or $DROVER_BENCH_RECORD) with one
 * O_APPEND write (atomic against the other copies' appends), then
 * pause()s until a signal ends it. Built by the benchmark with `cc -O2`.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);

    const char *path = argc > 1 ? argv[1] : getenv("DROVER_BENCH_RECORD");
    if (path == NULL || *path == '\0') {
        fputs("workload: no record file (argv[1] or DROVER_BENCH_RECORD)\n", stderr);
        return 2;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("workload: open");
        return 3;
    }
    char line[64];
    int len = snprintf(line, sizeof line, "%d %lld\n", (int)getpid(),
                       (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    if (write(fd, line, (size_t)len) != len) {
        perror("workload: write");
        return 4;
    }
    close(fd);
    for (;;)
        pause();
}
