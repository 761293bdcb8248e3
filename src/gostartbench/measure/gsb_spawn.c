/*
 * gsb-spawn: starts one program and reports how long it took and what it used.
 *
 * Why a separate, tiny C process: on Linux a child started by vfork/exec (posix_spawn) takes
 * the spawning process's memory high-water mark into its own ru_maxrss at exec (the kernel
 * folds the old mm's peak into the child's). Spawned from a Python harness that has pandas
 * loaded, a 1.8 MB hello world reads as ~13 MB or more. So this helper is built static where
 * the C library allows (~0.7 MB resident, against ~1.5 MB dynamic: as much as a Go no-op),
 * resets its own peak to its current RSS before every spawn (/proc/self/clear_refs "5"), and
 * hands its request buffer's pages back once a batch is read. The child's ru_maxrss is then
 * max(the program's own peak, the helper's RSS at the spawn), and that floor is reported too
 * (floor_kb), so a reader can tell the program's peak from the helper's.
 * The timing is taken here too, around posix_spawn .. wait4, so no Python overhead is in it.
 *
 *   gsb-spawn [-t TIMEOUT_MS] [-c CPU,CPU] [-o STDOUT_FILE] [-e STDERR_FILE]
 *             [-r READY_TEXT | -p READY_PORT] [-g GRACE_MS] [-n LOOPS] -- PROG ARGS...
 *   gsb-spawn -S [-c CPU,CPU]      (server: requests on stdin, see serve())
 *
 * Prints one line per run on its own stdout:
 *   status=exited|signaled|timeout|spawnerr|noready code=N sig=N wall_ns=N user_ns=N sys_ns=N
 *   maxrss_kb=N minflt=N majflt=N floor_kb=N
 * The program's stdin is /dev/null; it runs in a process group of its own, which is killed
 * (TERM, then KILL after GRACE_MS) at the timeout or once ready, so nothing is left behind.
 * -n LOOPS runs the program LOOPS times back to back (used by `calibrate` as the C loop).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t timed_out = 0;
static volatile pid_t child_pgid = 0;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
    if (child_pgid > 0) kill(-child_pgid, SIGKILL);
}

static void arm(long ms) {
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static int64_t tv_ns(struct timeval tv) {
    return (int64_t)tv.tv_sec * 1000000000LL + (int64_t)tv.tv_usec * 1000LL;
}

/* The RSS floor: the helper's peak, reset to its resident set just before a spawn, in kB
 * (-1 where /proc cannot tell). The kernel reads the same per-mm counters at the exec. */
static int clear_refs_fd = -1, statm_fd = -1;
static long floor_kb = -1;
static size_t page_size = 4096; /* set in main */

static void reset_floor(void) {
    if (clear_refs_fd >= 0 && write(clear_refs_fd, "5", 1) != 1) {
        close(clear_refs_fd);
        clear_refs_fd = -1;
    }
    floor_kb = -1;
    char b[128];
    ssize_t n = statm_fd >= 0 ? pread(statm_fd, b, sizeof b - 1, 0) : -1;
    if (n > 0 && clear_refs_fd >= 0) {
        b[n] = 0;
        long size = 0, resident = 0;
        if (sscanf(b, "%ld %ld", &size, &resident) == 2)
            floor_kb = resident * (long)(page_size / 1024);
    }
}

static void report(const char *status, int code, int sig, int64_t wall, struct rusage *ru) {
    printf("status=%s code=%d sig=%d wall_ns=%lld user_ns=%lld sys_ns=%lld maxrss_kb=%ld "
           "minflt=%ld majflt=%ld floor_kb=%ld\n",
           status, code, sig, (long long)wall, (long long)(ru ? tv_ns(ru->ru_utime) : 0),
           (long long)(ru ? tv_ns(ru->ru_stime) : 0), ru ? ru->ru_maxrss : 0L,
           ru ? ru->ru_minflt : 0L, ru ? ru->ru_majflt : 0L, floor_kb);
    /* No flush here: results are flushed when the helper runs out of requests, so the caller
     * sleeps while a batch of programs runs instead of competing with them for the CPUs. */
}

/* Stop the group: TERM, wait up to grace_ms for the leader, then KILL. Returns wait status. */
static int stop_group(pid_t pid, long grace_ms, struct rusage *ru) {
    int st = 0;
    kill(-pid, SIGTERM);
    int64_t deadline = now_ns() + grace_ms * 1000000LL;
    for (;;) {
        pid_t r = wait4(pid, &st, WNOHANG, ru);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) break;
        if (now_ns() > deadline) {
            kill(-pid, SIGKILL);
            while (wait4(pid, &st, 0, ru) < 0 && errno == EINTR) {}
            break;
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL); /* anything the program left in its group */
    return st;
}

static int tcp_ready(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

struct opts {
    long timeout_ms, grace_ms;
    const char *out_path, *err_path, *ready_text;
    int ready_port;
    const char *evict_path, *readback_path;
    const char *prewarm;  /* "read" | "mmap": a step of its own process after the eviction */
    char **after;         /* argv run (untimed, waited for) once the run is stopped and reported */
    int drop_caches;      /* evict with `echo 3 > /proc/sys/vm/drop_caches` (host-wide, root) */
};

/* Cold runs: drop the binary from the page cache (no root: POSIX_FADV_DONTNEED). */
static void evict(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

/* After a cold run of a binary warm cells share: read it back with read(), the same way the
 * warm normalisation does. */
static void read_back(const char *path) {
    static char buf[1 << 16];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    while (read(fd, buf, sizeof buf) > 0) {}
    close(fd);
}

/* Host-wide eviction, as the article's init container does: sync, then drop clean page cache,
 * dentries and inodes. Fails (and the run reports it) without CAP_SYS_ADMIN. */
static int drop_caches(void) {
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int ok = write(fd, "3\n", 2) == 2;
    close(fd);
    return ok ? 0 : -1;
}

/* The prewarm steps, each in a process of its own (an init container is one), after the
 * eviction and before the timed spawn:
 *   read: read(2) every byte (the init container's `cat`);
 *   mmap: the article's warmup_mmap as written — map PROT_READ/MAP_PRIVATE, touch one byte a
 *         page, madvise(MADV_DONTNEED), munmap. */
static void prewarm_child(const char *how, const char *path) {
    if (strcmp(how, "read") == 0) { read_back(path); return; }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == 0) { close(fd); return; }
    volatile unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return;
    long page = sysconf(_SC_PAGESIZE);
    unsigned sum = 0;
    for (off_t i = 0; i < st.st_size; i += page) sum += m[i];
    (void)sum;
    madvise((void *)m, (size_t)st.st_size, MADV_DONTNEED);
    munmap((void *)m, (size_t)st.st_size);
}

static int prewarm(const char *how, const char *path) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) { prewarm_child(how, path); _exit(0); }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int run_once(const struct opts *o, char **prog, char **envp) {
    /* A port that accepts before the program starts would read as an instant "ready": refuse
     * the run instead (a previous run's server, or someone else's, still holds it). */
    if (o->ready_port && tcp_ready(o->ready_port)) {
        report("spawnerr", EADDRINUSE, 0, 0, NULL);
        return 2;
    }
    if (o->drop_caches && drop_caches() != 0) {
        report("spawnerr", errno ? errno : EPERM, 0, 0, NULL);
        return 2;
    }
    if (o->evict_path && !o->drop_caches) evict(o->evict_path);
    if (o->prewarm && o->evict_path && prewarm(o->prewarm, o->evict_path) != 0) {
        report("spawnerr", ECHILD, 0, 0, NULL);
        return 2;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    int pipefd[2] = {-1, -1};
    if (o->ready_text) {
        if (pipe2(pipefd, O_CLOEXEC) != 0) { perror("pipe"); return 2; }
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, o->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    posix_spawn_file_actions_addopen(&fa, 2, o->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&at, 0);
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&at, &empty);

    timed_out = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t pid;
    reset_floor();
    int64_t t0 = now_ns();
    int rc = posix_spawnp(&pid, prog[0], &fa, &at, prog, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        if (pipefd[0] >= 0) { close(pipefd[0]); close(pipefd[1]); }
        report("spawnerr", rc, 0, 0, NULL);
        return 3;
    }
    child_pgid = pid;
    arm(o->timeout_ms);
    int st = 0;
    int64_t wall = 0;
    const char *status = NULL;
    if (o->ready_text || o->ready_port) {
        if (pipefd[1] >= 0) close(pipefd[1]);
        char buf[65536];
        size_t used = 0;
        int ready = 0, exited = 0;
        while (!ready && !timed_out) {
            if (o->ready_text) {
                struct pollfd p = {pipefd[0], POLLIN, 0};
                int pr = poll(&p, 1, 50);
                if (pr > 0) {
                    ssize_t n = read(pipefd[0], buf + used, sizeof buf - 1 - used);
                    if (n <= 0) { exited = 1; break; }
                    used += (size_t)n;
                    buf[used] = 0;
                    char *nl;
                    char *start = buf;
                    while ((nl = strchr(start, '\n')) != NULL) {
                        *nl = 0;
                        if (strstr(start, o->ready_text)) { ready = 1; break; }
                        start = nl + 1;
                    }
                    if (!ready) {
                        size_t rest = used - (size_t)(start - buf);
                        memmove(buf, start, rest);
                        used = rest;
                        if (used >= sizeof buf - 1) used = 0; /* an overlong line */
                    }
                }
            } else {
                if (tcp_ready(o->ready_port)) { ready = 1; break; }
                struct timespec ts = {0, 100000};
                nanosleep(&ts, NULL);
            }
            if (!ready && wait4(pid, &st, WNOHANG, &ru) == pid) { exited = 2; break; }
        }
        wall = now_ns() - t0;
        arm(0);
        if (pipefd[0] >= 0) close(pipefd[0]);
        if (exited == 2) {
            kill(-pid, SIGKILL);
            status = "noready";
        } else {
            st = stop_group(pid, o->grace_ms, &ru);
            status = ready ? "ready" : (timed_out ? "timeout" : "noready");
        }
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        report(status, code, sig, wall, &ru);
    } else {
        while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {}
        wall = now_ns() - t0;
        arm(0);
        kill(-pid, SIGKILL); /* children the program left behind in its group */
        if (timed_out) status = "timeout";
        else if (WIFSIGNALED(st)) status = "signaled";
        else status = "exited";
        report(status, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
               WIFSIGNALED(st) ? WTERMSIG(st) : 0, wall, &ru);
    }
    child_pgid = 0;
    if (o->after && o->after[0]) {
        /* e.g. the engine's `rm -f NAME` of a container timed to ready: gone before the next
         * run, whose port must be free */
        pid_t ap;
        posix_spawn_file_actions_t afa;
        posix_spawn_file_actions_init(&afa);
        posix_spawn_file_actions_addopen(&afa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&afa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&afa, 2, "/dev/null", O_WRONLY, 0);
        if (posix_spawn(&ap, o->after[0], &afa, NULL, o->after, envp) == 0) {
            int ast;
            while (waitpid(ap, &ast, 0) < 0 && errno == EINTR) {}
        }
        posix_spawn_file_actions_destroy(&afa);
    }
    if (o->readback_path) read_back(o->readback_path);
    return 0;
}

/* Server mode (-S): requests on stdin, one result line each on stdout. A request is a run of
 * NUL-terminated fields ended by an empty field: option fields "t=MS", "g=MS", "o=PATH",
 * "e=PATH", "r=TEXT", "p=PORT", "E=NAME=VALUE" (the whole environment, one field each) and
 * "A=ARG" (the argv, in order; prefixed so that an empty argument is not a terminator),
 * "X=PATH" (evict PATH from the page cache before the spawn), "R=PATH" (read PATH back after),
 * "W=read|mmap" (prewarm the evicted file in a process of its own), "D=1" (evict host-wide by
 * drop_caches instead), "Z=ARG" (an argv run after the run, untimed: e.g. removing a container).
 * Requests can be queued ahead: a batch runs back to back, and its results are flushed when
 * the helper runs out of requests. Keeping one warm helper makes each run a back-to-back spawn, as in a
 * C loop or hyperfine, rather than an exec of the helper first. */
static int serve(void) {
    /* The request buffer is mapped here rather than malloc'd so that its pages can be handed
     * back (MADV_DONTNEED) as requests are used up: pages the queue once touched would
     * otherwise stay in the helper's RSS, which is the floor of every program's peak. */
    size_t cap = 1 << 20, len = 0, pos = 0, dropped = 0;
    char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) { perror("mmap"); return 2; }
    for (;;) {
        /* Find one complete request in buf[pos..len): fields up to an empty one. */
        size_t end = pos;
        int complete = 0;
        while (end < len) {
            if (buf[end] == 0 && (end == pos || buf[end - 1] == 0)) { complete = 1; break; }
            end++;
        }
        if (!complete) {
            /* Out of requests: hand back every result so far, then wait for more. */
            fflush(stdout);
            if (pos > 0) { memmove(buf, buf + pos, len - pos); len -= pos; pos = 0; }
            dropped = 0;
            size_t kept = (len + page_size - 1) / page_size * page_size;
            if (kept < cap) madvise(buf + kept, cap - kept, MADV_DONTNEED);
            if (len == cap) {
                char *grown = mremap(buf, cap, cap * 2, MREMAP_MAYMOVE);
                if (grown == MAP_FAILED) { perror("mremap"); return 2; }
                buf = grown;
                cap *= 2;
            }
            ssize_t n;
            while ((n = read(0, buf + len, cap - len)) < 0 && errno == EINTR) {}
            if (n <= 0) { fflush(stdout); munmap(buf, cap); return 0; }
            len += (size_t)n;
            continue;
        }
        size_t used_up = pos / page_size * page_size; /* whole pages of requests already run */
        if (used_up > dropped) {
            madvise(buf + dropped, used_up - dropped, MADV_DONTNEED);
            dropped = used_up;
        }
        struct opts o = {10000, 1000, "/dev/null", "/dev/null", NULL, 0, NULL, NULL};
        size_t cap_f = 64, ne = 0, na = 0, nz = 0;
        char **envp = malloc(cap_f * sizeof *envp), **args = malloc(cap_f * sizeof *args);
        char **after = malloc(cap_f * sizeof *after);
        for (char *f = buf + pos; f < buf + end; f += strlen(f) + 1) {
            if (ne + 2 >= cap_f || na + 2 >= cap_f || nz + 2 >= cap_f) {
                cap_f *= 2;
                envp = realloc(envp, cap_f * sizeof *envp);
                args = realloc(args, cap_f * sizeof *args);
                after = realloc(after, cap_f * sizeof *after);
            }
            if (f[0] == 0 || f[1] != '=') continue;
            switch (f[0]) {
            case 'A': args[na++] = f + 2; break;
            case 'E': envp[ne++] = f + 2; break;
            case 't': o.timeout_ms = atol(f + 2); break;
            case 'g': o.grace_ms = atol(f + 2); break;
            case 'o': o.out_path = f + 2; break;
            case 'e': o.err_path = f + 2; break;
            case 'r': o.ready_text = f + 2; break;
            case 'p': o.ready_port = atoi(f + 2); break;
            case 'X': o.evict_path = f + 2; break;
            case 'R': o.readback_path = f + 2; break;
            case 'W': o.prewarm = f + 2; break;
            case 'Z': after[nz++] = f + 2; break;
            case 'D': o.drop_caches = atoi(f + 2); break;
            default: break;
            }
        }
        envp[ne] = NULL;
        args[na] = NULL;
        after[nz] = NULL;
        o.after = after;
        if (na == 0) report("spawnerr", 22, 0, 0, NULL);
        else run_once(&o, args, envp);
        free(envp);
        free(args);
        free(after);
        pos = end + 1;
    }
}

int main(int argc, char **argv) {
    struct opts o = {10000, 1000, "/dev/null", "/dev/null", NULL, 0, NULL, NULL};
    long loops = 1;
    const char *cpus = NULL;
    int opt, server = 0;
    while ((opt = getopt(argc, argv, "+St:c:o:e:r:p:g:n:")) != -1) {
        switch (opt) {
        case 'S': server = 1; break;
        case 't': o.timeout_ms = atol(optarg); break;
        case 'c': cpus = optarg; break;
        case 'o': o.out_path = optarg; break;
        case 'e': o.err_path = optarg; break;
        case 'r': o.ready_text = optarg; break;
        case 'p': o.ready_port = atoi(optarg); break;
        case 'g': o.grace_ms = atol(optarg); break;
        case 'n': loops = atol(optarg); break;
        default: fprintf(stderr, "gsb-spawn: bad option\n"); return 2;
        }
    }
    if (cpus) {
        cpu_set_t set;
        CPU_ZERO(&set);
        char *dup = strdup(cpus), *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save))
            CPU_SET(atoi(t), &set);
        free(dup);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            fprintf(stderr, "gsb-spawn: cannot pin to CPUs %s: %s\n", cpus, strerror(errno));
            return 2;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    clear_refs_fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (server) return serve();
    if (optind >= argc) { fprintf(stderr, "gsb-spawn: no program\n"); return 2; }
    for (long loop = 0; loop < loops; loop++) {
        int rc = run_once(&o, argv + optind, environ);
        if (rc != 0) return rc;
    }
    return 0;
}
