/* A tiny HTTP server for the probe benchmark: listens on 127.0.0.1:$PORT,
 * answers every request with 200 and an empty body, and appends the
 * CLOCK_MONOTONIC arrival time (ns) of each request to $OUT/$DROVER_POD_NAME
 * so the benchmark can see when probes came. One process, one thread. */
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    const char *port = getenv("PORT"), *out = getenv("OUT"), *pod = getenv("DROVER_POD_NAME");
    if (!port || !out || !pod) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out, pod);
    int log = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 64)) return 3;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    char buf[2048];
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        (void)!read(c, buf, sizeof buf);
        (void)!write(c, resp, sizeof resp - 1);
        close(c);
        char line[64];
        int n = snprintf(line, sizeof line, "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
        (void)!write(log, line, n);
    }
}
