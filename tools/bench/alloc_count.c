/*
 * alloc_count: an LD_PRELOAD library that counts heap allocations, for the
 * benchmark only (never linked into sluice). Every process that loads it with
 * ALLOC_COUNT_DIR set keeps its counters in a shared file DIR/alloc.<pid>
 * that the harness reads while the process runs, so allocations per request
 * are (count after a run - count before) / requests, and heap bytes per idle
 * connection are (live bytes with them open - before) / connections, free of
 * the page-granular noise of RSS.
 *
 *   cc -O2 -shared -fPIC -o alloc_count.so alloc_count.c
 *   ALLOC_COUNT_DIR=/tmp/x LD_PRELOAD=$PWD/alloc_count.so sluice -c ...
 *
 * The file holds three little-endian uint64: allocations (malloc, calloc,
 * realloc of a null pointer or to a new block, the aligned variants; C++
 * operator new calls malloc), frees (of non-null pointers), and live bytes
 * (malloc_usable_size of what is allocated, so allocator rounding counts).
 * A forked child gets its own file. Counters are relaxed atomics: exact in a
 * single-threaded worker, approximate across threads.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

struct counters {
    uint64_t allocations;
    uint64_t frees;
    uint64_t live_bytes;
};

/* Until the file is mapped (and when ALLOC_COUNT_DIR is unset) counting goes
 * to this private block. */
static struct counters fallback;
static struct counters *counts = &fallback;

static void map_counters(void) {
    const char *dir = getenv("ALLOC_COUNT_DIR");
    if (!dir || !*dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/alloc.%d", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (ftruncate(fd, sizeof(struct counters)) == 0) {
        void *p = mmap(NULL, sizeof(struct counters), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            struct counters *mapped = p;
            /* A child starts from its parent's figures (its heap is a copy). */
            *mapped = *counts;
            counts = mapped;
        }
    }
    close(fd);
}

static void in_child(void) {
    /* The parent's mapping is shared: leave it and count in a file of our own. */
    struct counters copy = *counts;
    fallback = copy;
    counts = &fallback;
    map_counters();
}

__attribute__((constructor)) static void start(void) {
    map_counters();
    pthread_atfork(NULL, NULL, in_child);
}

static void counted(void *p) {
    if (!p) return;
    __atomic_fetch_add(&counts->allocations, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&counts->live_bytes, malloc_usable_size(p), __ATOMIC_RELAXED);
}

static void uncounted(void *p) {
    if (!p) return;
    __atomic_fetch_add(&counts->frees, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&counts->live_bytes, malloc_usable_size(p), __ATOMIC_RELAXED);
}

void *malloc(size_t n) {
    void *p = __libc_malloc(n);
    counted(p);
    return p;
}

void *calloc(size_t n, size_t size) {
    void *p = __libc_calloc(n, size);
    counted(p);
    return p;
}

void free(void *p) {
    uncounted(p);
    __libc_free(p);
}

void *realloc(void *old, size_t n) {
    size_t old_size = old ? malloc_usable_size(old) : 0;
    void *p = __libc_realloc(old, n);
    if (!old) {
        counted(p);
    } else if (p) {
        /* Growing in place is not an allocation; moving to a new block is. */
        if (p != old) __atomic_fetch_add(&counts->allocations, 1, __ATOMIC_RELAXED);
        if (p != old) __atomic_fetch_add(&counts->frees, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&counts->live_bytes, malloc_usable_size(p) - old_size,
                           __ATOMIC_RELAXED);
    } else if (n == 0) {
        __atomic_fetch_add(&counts->frees, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&counts->live_bytes, old_size, __ATOMIC_RELAXED);
    }
    return p;
}

void *memalign(size_t alignment, size_t n) {
    void *p = __libc_memalign(alignment, n);
    counted(p);
    return p;
}

void *aligned_alloc(size_t alignment, size_t n) { return memalign(alignment, n); }

int posix_memalign(void **out, size_t alignment, size_t n) {
    void *p = __libc_memalign(alignment, n);
    if (!p) return 12; /* ENOMEM */
    counted(p);
    *out = p;
    return 0;
}
