/*
 * fsatomic.h: crash-safe JSON state files, from C.
 *
 * libfsatomic_capi (static or shared) is the Rust library fsatomic-linux
 * behind a C ABI: each function does what one `fsatomic` command does,
 * without the fork. A power cut at any instant leaves a state at its old
 * or its new content; a call that returned FSATOMIC_OK is durable.
 *
 *   cc app.c $(pkg-config --cflags --libs fsatomic)            (shared)
 *   cc app.c $(pkg-config --static --cflags --libs fsatomic)   (static)
 *
 * A state is a file NAME (no '/', no "..") in an existing directory DIR.
 * Documents are JSON bytes (not NUL-terminated); they are validated and
 * indented before they are written. Every function returns one of the
 * codes below and, on failure, leaves a sentence for
 * fsatomic_last_error_message() on the calling thread.
 *
 * This header is checked against the library's Rust declarations by its
 * tests (linux-adapter/capi/src/header_check.rs), and against the
 * library's exported symbols by boards/capi/run.
 */
#ifndef FSATOMIC_H
#define FSATOMIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Codes. Stable; 1 to 4 are the `fsatomic` command's exit codes. */
#define FSATOMIC_OK 0           /* success */
#define FSATOMIC_IO 1           /* the filesystem failed (missing directory, permission, EIO) */
#define FSATOMIC_INVALID 2      /* the caller's mistake: null pointer, not JSON, bad mode; nothing written */
#define FSATOMIC_ABSENT 3       /* the state does not exist */
#define FSATOMIC_CORRUPT 4      /* a file is torn, empty or not JSON; left untouched */
#define FSATOMIC_TOO_LARGE 5    /* does not fit the buffer (load sets *len to the size needed) */
#define FSATOMIC_BAD_NAME 6     /* the name was refused */
#define FSATOMIC_UNSUPPORTED 7  /* JSON nested too deep; a whole-document save/update of a journaled array */
#define FSATOMIC_LOCK_TIMEOUT 8 /* fsatomic_lock gave up */
#define FSATOMIC_CANCELED 9     /* the update callback said no; nothing written */
#define FSATOMIC_INTERNAL 10    /* a bug in fsatomic; please report */

/* fsatomic_save's protocol (a state on disk keeps the one it has). */
#define FSATOMIC_PROTOCOL_AUTO 0    /* Replace, or Slots where rename is not crash-atomic (FAT) */
#define FSATOMIC_PROTOCOL_REPLACE 1 /* temporary file, flush, rename, flush the directory */
#define FSATOMIC_PROTOCOL_SLOTS 2   /* two preallocated slot files, overwritten in place */

/* A held writers' lock. */
typedef struct fsatomic_lock_handle fsatomic_lock_handle;

/*
 * The update callback: read current_len bytes of current (NULL and 0 if the
 * state is absent), write the new document into out (at most out_cap bytes),
 * set *out_len, return 0 to commit. Return FSATOMIC_TOO_LARGE with *out_len
 * set to the size needed to be called once more with a buffer that large;
 * any other value cancels (FSATOMIC_CANCELED).
 */
typedef int (*fsatomic_update_fn)(void *ctx, const void *current, size_t current_len, void *out,
                                  size_t out_cap, size_t *out_len);

/* Commit len bytes of JSON as NAME, under the writers' lock; mode 0 = 0600. */
int fsatomic_save(const char *dir, const char *name, const void *data, size_t len, uint32_t mode,
                  int protocol);

/* Read NAME into buf (cap bytes), *len = its length (no NUL added). No lock. */
int fsatomic_load(const char *dir, const char *name, void *buf, size_t cap, size_t *len);

/* Lock, load, callback, commit, unlock. */
int fsatomic_update(const char *dir, const char *name, uint32_t mode, fsatomic_update_fn callback,
                    void *ctx);

/* Append one JSON value to the journaled array NAME: one record, one flush.
 * mode 0 keeps the state's mode (0600 for a new one). */
int fsatomic_append(const char *dir, const char *name, const void *value, size_t len,
                    uint32_t mode);

/* Take NAME's writers' lock, waiting at most timeout_ms (0: one try, < 0: for
 * ever). Excludes other processes; this process's own commits of NAME would
 * wait for it, so unlock first. */
int fsatomic_lock(const char *dir, const char *name, int64_t timeout_ms, fsatomic_lock_handle **handle);

/* Release the lock and free the handle. */
int fsatomic_unlock(fsatomic_lock_handle *handle);

/* 0 if NAME reads back whole and well-formed; FSATOMIC_ABSENT, _CORRUPT, ... */
int fsatomic_check(const char *dir, const char *name);

/* This thread's last failure message into buf (truncated, NUL-terminated);
 * returns its full length, as snprintf does. */
size_t fsatomic_last_error_message(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* FSATOMIC_H */
