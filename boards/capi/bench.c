/* One commit through the C library against one fork of `fsatomic save`.
 * Usage: bench DIR FSATOMIC_CLI N. Prints the median of each, and the
 * ratio. Both commit the same 200-byte document to a state of its own in
 * DIR with the default protocol (Replace: two flushes). */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsatomic.h"

extern char **environ;

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s DIR FSATOMIC_CLI N\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *cli = argv[2];
    int n = atoi(argv[3]);
    if (n < 1) n = 1;
    char doc[256];
    int len = snprintf(doc, sizeof doc,
                       "{\"users\": [{\"name\": \"admin\", \"hash\": \"%0120d\", \"admin\": true}], \"v\": 1}", 7);
    double *lib = calloc(n, sizeof *lib), *fork = calloc(n, sizeof *fork);

    for (int i = 0; i < n; i++) {
        double t = now_us();
        int rc = fsatomic_save(dir, "bench-lib.json", doc, (size_t)len, 0, FSATOMIC_PROTOCOL_AUTO);
        lib[i] = now_us() - t;
        if (rc != FSATOMIC_OK) {
            char msg[256];
            fsatomic_last_error_message(msg, sizeof msg);
            fprintf(stderr, "fsatomic_save: %d: %s\n", rc, msg);
            return 1;
        }
    }

    char input[4096], target[4096];
    snprintf(input, sizeof input, "%s/bench-input.json", dir);
    snprintf(target, sizeof target, "%s/bench-cli.json", dir);
    FILE *f = fopen(input, "w");
    if (!f || fwrite(doc, 1, (size_t)len, f) != (size_t)len || fclose(f)) return 1;
    for (int i = 0; i < n; i++) {
        double t = now_us();
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, input, O_RDONLY, 0);
        char *args[] = {(char *)cli, "save", target, NULL};
        pid_t pid;
        int status = 0;
        if (posix_spawn(&pid, cli, &fa, NULL, args, environ) != 0 || waitpid(pid, &status, 0) < 0 ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "fsatomic save failed (status %d)\n", status);
            return 1;
        }
        posix_spawn_file_actions_destroy(&fa);
        fork[i] = now_us() - t;
    }
    double l = median(lib, n), c = median(fork, n);
    printf("one commit of %d bytes, median of %d: C library %.0f us, fork of `fsatomic save` %.0f us; "
           "the library is %.1fx faster\n", len, n, l, c, c / l);
    return 0;
}
