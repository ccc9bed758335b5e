/* fsatomic from C: save, load, update, append, lock with a timeout, check.
 * Usage: example DIR (an existing directory). Exits 0 if every step did
 * what it should. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsatomic.h"

static const char *dir;
static int failed;

static void expect(const char *what, int rc, int want) {
    char msg[512];
    fsatomic_last_error_message(msg, sizeof msg);
    printf("%-40s -> %d%s%s\n", what, rc, rc ? ": " : "", rc ? msg : "");
    if (rc != want) {
        printf("  FAILED: wanted %d\n", want);
        failed = 1;
    }
}

/* The update callback: the document is a counter; write counter + 1. */
static int add_one(void *ctx, const void *current, size_t current_len, void *out, size_t out_cap,
                   size_t *out_len) {
    long n = 0;
    if (current != NULL) {
        char text[32] = {0};
        memcpy(text, current, current_len < sizeof text - 1 ? current_len : sizeof text - 1);
        n = strtol(text, NULL, 10);
    }
    int len = snprintf(out, out_cap, "%ld", n + *(long *)ctx);
    if (len < 0 || (size_t)len >= out_cap) return FSATOMIC_CANCELED;
    *out_len = (size_t)len;
    return 0;
}

static void show(const char *name) {
    char buf[4096];
    size_t len = 0;
    int rc = fsatomic_load(dir, name, buf, sizeof buf, &len);
    expect("fsatomic_load", rc, FSATOMIC_OK);
    if (rc == FSATOMIC_OK) printf("%s:\n%.*s", name, (int)len, buf);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];

    const char *doc = "{\"completed\": true, \"users\": [\"admin\"]}";
    expect("fsatomic_save firstboot.json", fsatomic_save(dir, "firstboot.json", doc, strlen(doc), 0600,
                                                         FSATOMIC_PROTOCOL_AUTO), FSATOMIC_OK);
    show("firstboot.json");
    expect("fsatomic_save of broken JSON", fsatomic_save(dir, "firstboot.json", "{\"a\":", 5, 0, 0),
           FSATOMIC_INVALID);
    size_t len = 0;
    expect("fsatomic_load of a missing state", fsatomic_load(dir, "missing.json", NULL, 0, &len),
           FSATOMIC_ABSENT);

    long step = 5;
    for (int i = 0; i < 3; i++)
        expect("fsatomic_update counter.json (+5)", fsatomic_update(dir, "counter.json", 0, add_one, &step),
               FSATOMIC_OK);
    show("counter.json");

    const char *records[] = {"{\"tx\": \"t1\"}", "{\"tx\": \"t2\"}"};
    for (int i = 0; i < 2; i++)
        expect("fsatomic_append snapdb.json", fsatomic_append(dir, "snapdb.json", records[i],
                                                              strlen(records[i]), 0), FSATOMIC_OK);
    show("snapdb.json");

    fsatomic_lock_handle *held = NULL, *other = NULL;
    expect("fsatomic_lock users.json", fsatomic_lock(dir, "users.json", 1000, &held), FSATOMIC_OK);
    expect("fsatomic_lock users.json again, 100 ms", fsatomic_lock(dir, "users.json", 100, &other),
           FSATOMIC_LOCK_TIMEOUT);
    expect("fsatomic_unlock", fsatomic_unlock(held), FSATOMIC_OK);

    expect("fsatomic_check snapdb.json", fsatomic_check(dir, "snapdb.json"), FSATOMIC_OK);
    expect("fsatomic_check with a bad name", fsatomic_check(dir, "../etc/passwd"), FSATOMIC_BAD_NAME);

    printf("%s\n", failed ? "RESULT: FAIL" : "RESULT: PASS");
    return failed;
}
