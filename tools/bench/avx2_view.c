/* An AVX2-only view of an AVX-512 x86-64 CPU, for benchmarks (tools/bench/avx2_view.py).
 *
 * Loaded with LD_PRELOAD, before any thread starts:
 *  - CPUID faults (arch_prctl ARCH_SET_CPUID, the kernel's "cpuid_fault" flag); a SIGSEGV handler
 *    runs the instruction itself and clears AVX-512 (every subset), AVX-VNNI, AVX512-BF16, AVX512-FP16
 *    and AMX from what it returns, and the AVX-512/AMX state from leaf 0xD. Libraries that choose
 *    their kernels by CPUID (onnxruntime's MLAS, numpy, OpenBLAS, oneDNN) then take their AVX2/FMA
 *    paths, as on an AMD EPYC without AVX-512.
 *  - /proc/cpuinfo, opened through libc, reads without those flags, so code that reads the flags
 *    (qa's precision choice) decides as it would there.
 * The dynamic loader reads CPUID before this library runs; GLIBC_TUNABLES (set by the wrapper)
 * keeps glibc's own string functions off AVX-512. Threads inherit the faulting state; a child
 * process gets the view again through LD_PRELOAD.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012
#endif

static int view_active = 0;

static void raw_cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static void mask(unsigned leaf, unsigned sub, unsigned r[4]) {
    if (leaf == 7 && sub == 0) {
        /* EBX: avx512f dq ifma pf er cd bw vl */
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        /* ECX: avx512_vbmi vbmi2 vnni bitalg vpopcntdq */
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: avx512_4vnniw 4fmaps vp2intersect, amx_bf16, avx512_fp16, amx_tile, amx_int8 */
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        /* EAX: avx_vnni, avx512_bf16, amx_fp16, avx_ifma; EDX: avx_vnni_int8, avx_ne_convert, avx_vnni_int16 */
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        r[3] &= ~((1u << 4) | (1u << 5) | (1u << 10));
    } else if (leaf == 0xd && sub == 0) {
        /* state components: opmask, ZMM_Hi256, Hi16_ZMM, AMX TILECFG, TILEDATA */
        r[0] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));
    } else if (leaf == 0x1d || leaf == 0x1e || leaf == 0x24) {
        r[0] = r[1] = r[2] = r[3] = 0; /* AMX palettes, AVX10 */
    }
}

static void on_segv(int sig, siginfo_t *info, void *uctx) {
    (void)info;
    ucontext_t *ctx = (ucontext_t *)uctx;
    greg_t *g = ctx->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (ip && ip[0] == 0x0f && ip[1] == 0xa2) {
        unsigned r[4];
        unsigned leaf = (unsigned)g[REG_RAX], sub = (unsigned)g[REG_RCX];
        syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
        raw_cpuid(leaf, sub, r);
        syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
        mask(leaf, sub, r);
        g[REG_RAX] = r[0];
        g[REG_RBX] = r[1];
        g[REG_RCX] = r[2];
        g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        return;
    }
    /* a real fault: die as the process would have */
    signal(sig, SIG_DFL);
}

__attribute__((constructor)) static void avx2_view_start(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0)
        return;
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        fprintf(stderr, "avx2_view: this kernel or CPU cannot make CPUID fault; the view is off\n");
        signal(SIGSEGV, SIG_DFL);
        return;
    }
    view_active = 1;
}

/* 1 when CPUID faults in this process (the wrapper checks it through ctypes) */
int avx2_view_active(void) { return view_active; }

static const char *HIDDEN[] = {"avx512", "amx", "avx_vnni", "avx_ifma", "avx_ne_convert", NULL};

static int hidden(const char *flag, size_t n) {
    for (const char **h = HIDDEN; *h; h++)
        if (n >= strlen(*h) && strncmp(flag, *h, strlen(*h)) == 0)
            return 1;
    return 0;
}

/* /proc/cpuinfo without the hidden flags, as an anonymous file */
static int filtered_cpuinfo(int flags) {
    int src = (int)syscall(SYS_openat, AT_FDCWD, "/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return src;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(src, buf + len, cap - len)) > 0) {
        len += (size_t)got;
        if (len == cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more) { free(buf); buf = NULL; }
            buf = more;
        }
    }
    close(src);
    if (!buf)
        return -1;
    int out = memfd_create("cpuinfo", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    if (out < 0) { free(buf); return out; }
    char *line = buf, *end = buf + len;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl ? nl + 1 : end;
        if (strncmp(line, "flags", 5) == 0) {
            char *colon = memchr(line, ':', (size_t)(stop - line));
            char *p = colon ? colon + 1 : stop;
            if (write(out, line, (size_t)(p - line)) < 0) break;
            while (p < stop) {
                while (p < stop && (*p == ' ' || *p == '\n')) p++;
                char *w = p;
                while (p < stop && *p != ' ' && *p != '\n') p++;
                if (p > w && !hidden(w, (size_t)(p - w))) {
                    if (write(out, " ", 1) < 0 || write(out, w, (size_t)(p - w)) < 0) break;
                }
            }
            if (write(out, "\n", 1) < 0) break;
        } else if (write(out, line, (size_t)(stop - line)) < 0) {
            break;
        }
        line = stop;
    }
    free(buf);
    lseek(out, 0, SEEK_SET);
    return out;
}

static int is_cpuinfo(const char *path) { return path && strcmp(path, "/proc/cpuinfo") == 0; }

#define OPEN_MODE(flags, mode)                      \
    mode_t mode = 0;                                \
    if ((flags) & (O_CREAT | O_TMPFILE)) {          \
        va_list ap;                                 \
        va_start(ap, flags);                        \
        mode = (mode_t)va_arg(ap, int);             \
        va_end(ap);                                 \
    }

int open(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    if (view_active && is_cpuinfo(path)) return filtered_cpuinfo(flags);
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    if (view_active && is_cpuinfo(path)) return filtered_cpuinfo(flags);
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    if (view_active && is_cpuinfo(path)) return filtered_cpuinfo(flags);
    return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    OPEN_MODE(flags, mode)
    if (view_active && is_cpuinfo(path)) return filtered_cpuinfo(flags);
    return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

FILE *fopen(const char *path, const char *how) {
    static FILE *(*real_fopen)(const char *, const char *);
    if (view_active && is_cpuinfo(path)) {
        int fd = filtered_cpuinfo(O_RDONLY);
        return fd < 0 ? NULL : fdopen(fd, "r");
    }
    if (!real_fopen) real_fopen = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, "fopen");
    return real_fopen(path, how);
}

FILE *fopen64(const char *path, const char *how) { return fopen(path, how); }

int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
